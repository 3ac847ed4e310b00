"""The production topology as files: docker-compose.yml, Dockerfile, .env.example, deploy/.

No Docker engine runs here, so these are static checks of what `docker compose up` would do: the file
parses and interpolates from .env.example, every path and variable it names exists, every command it runs
is a real subcommand of the real CLI (Airflow's parser, ``mlflow server --help``, ``flywheel``'s parser),
the configuration it mounts validates and points at its own MLflow service, the worker can be scaled, and
the Dockerfile installs from the lock file. ``docker compose config`` runs too where the client has it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_SCRIPT = ROOT / "deploy" / "init-airflow.sh"
PRODUCTION_REQUIREMENTS = ROOT / "deploy" / "requirements-production.txt"
VENV_BIN = Path(sys.executable).parent

REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
AIRFLOW_SERVICES = sorted(s for s in REQUIRED_SERVICES if s.startswith("airflow-"))
LONG_RUNNING = sorted(REQUIRED_SERVICES - {"airflow-init"})
MUST_HAVE_HEALTHCHECK = ["postgres", "redis", "mlflow", "airflow-apiserver", "airflow-scheduler"]
SECRETS = ["POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY"]
# `airflow celery ...` exists only with apache-airflow-providers-celery, which the image installs
# (deploy/requirements-production.txt) but uv.lock, hence this environment, does not hold. Its subcommands,
# from the provider's cli/definition.py (3.26.0), stand in for the parser until the lock has the provider.
CELERY_SUBCOMMANDS = {
    "worker": {"-q", "--queues", "-c", "--concurrency", "-H", "--celery-hostname", "--skip-serve-logs"},
    "flower": {"-H", "--hostname", "-p", "--port", "-A", "--basic-auth", "-u", "--url-prefix"},
    "stop": {"--pid", "-v", "--verbose"},
}
# Programs that run inside images other than ours (postgres:15, redis:7) or are shell built-ins.
FOREIGN_PROGRAMS = {"pg_isready", "redis-cli", "redis-server"}

# ------------------------------------------------------------------------------------------------------
# Compose interpolation, as `docker compose` does it: on the values of the parsed file, `$$` escapes `$`.

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with ``${VAR}``, ``${VAR:-default}``, ``${VAR:?err}``, ``${VAR:+alt}``, ``$VAR`` resolved."""

    def sub(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["name"] or m["bare"]
        op, arg = m["op"], m["arg"] or ""
        value = env.get(name)
        present = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return value if present else arg
        if op in (":?", "?"):
            if not present:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            return arg if present else ""
        return value or ""

    return _VAR.sub(sub, text)


def walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    return node


def references(raw: Any) -> list[tuple[str, str | None, str]]:
    """Every variable reference in the parsed (uninterpolated) file: (name, operator, argument)."""
    refs = []
    for text in walk_strings(raw):
        for m in _VAR.finditer(text):
            if not m["escaped"]:
                refs.append((m["name"] or m["bare"], m["op"], m["arg"] or ""))
    return refs


def parse_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: line {line!r} is not NAME=value"
        env[name.strip()] = value.strip()
    return env


# ------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def deploy_env(env_example: dict[str, str]) -> dict[str, str]:
    """.env.example as an operator fills it in: every empty secret set."""
    return {k: v or f"test-{k.lower().replace('_', '-')}" for k, v in env_example.items()}


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], deploy_env: dict[str, str]) -> dict[str, Any]:
    return resolve(raw, deploy_env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def cli_help() -> dict[str, Any]:
    """The real CLIs, introspected in subprocesses (started together: each import costs seconds).

    ``airflow``: the command tree of ``airflow.cli.cli_parser`` (name -> options and subcommands);
    ``mlflow_server``: the output of ``mlflow server --help``.
    """
    airflow_tree = textwrap.dedent(
        """
        import argparse, json
        from airflow.cli import cli_parser

        def tree(parser):
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            return {
                "options": sorted(o for a in parser._actions for o in a.option_strings),
                "sub": {n: tree(p) for s in subs for n, p in s.choices.items()},
            }

        print(json.dumps(tree(cli_parser.get_parser())))
        """
    )
    mlflow = VENV_BIN / "mlflow" if (VENV_BIN / "mlflow").exists() else shutil.which("mlflow")
    assert mlflow, "the mlflow program is not installed next to this interpreter"
    procs = {
        "airflow": subprocess.Popen(
            [sys.executable, "-c", airflow_tree], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
        "mlflow_server": subprocess.Popen(
            [str(mlflow), "server", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{name} introspection failed:\n{stderr[-2000:]}"
        out[name] = stdout
    out["airflow"] = json.loads(out["airflow"].strip().splitlines()[-1])
    return out


# ------------------------------------------------------------------------------------------------------
# Commands: collected from services, healthchecks and the init script, checked against the CLIs.


def split_shell(text: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ``&&``, ``||``, ``;``, ``|``)."""
    words = shlex.split(text)
    commands, current = [], []
    for w in words:
        if w in {"&&", "||", ";", "|"}:
            commands.append(current)
            current = []
        else:
            current.append(w)
    commands.append(current)
    return [c for c in commands if c]


def service_commands(services: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    found = []
    for name, svc in services.items():
        cmd = svc.get("command")
        if isinstance(cmd, str):
            found += [(name, c) for c in split_shell(cmd)]
        elif cmd:
            found.append((name, [str(c) for c in cmd]))
        test = (svc.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] == "CMD":
            found.append((f"{name} healthcheck", [str(c) for c in test[1:]]))
        elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
            found += [(f"{name} healthcheck", c) for c in split_shell(" ".join(test[1:]))]
        elif isinstance(test, str):
            found += [(f"{name} healthcheck", c) for c in split_shell(test)]
    return found


def check_airflow_argv(argv: list[str], tree: dict[str, Any], where: str) -> None:
    """``argv`` (after ``airflow``) names existing subcommands and only their options."""
    node, path = tree, ["airflow"]
    rest = list(argv)
    while rest and node["sub"]:
        word = rest.pop(0)
        if path == ["airflow"] and word == "celery" and "celery" not in node["sub"]:
            sub = rest.pop(0) if rest else ""
            assert sub in CELERY_SUBCOMMANDS, f"{where}: `airflow celery {sub}` is not a celery subcommand"
            for opt in (w.split("=")[0] for w in rest if w.startswith("-")):
                assert opt in CELERY_SUBCOMMANDS[sub], f"{where}: `airflow celery {sub}` has no option {opt}"
            return
        assert word in node["sub"], (
            f"{where}: `{' '.join(path)} {word}` is not an Airflow command; choose one of {sorted(node['sub'])}"
        )
        node = node["sub"][word]
        path.append(word)
    assert not node["sub"], f"{where}: `{' '.join(path)}` needs a subcommand: {sorted(node['sub'])}"
    for opt in (w.split("=")[0] for w in rest if w.startswith("-")):
        assert opt in node["options"], f"{where}: `{' '.join(path)}` has no option {opt}"


def check_flywheel_argv(argv: list[str], where: str) -> None:
    import argparse

    from genai_flywheel.cli import build_parser

    parser, path = build_parser(), ["flywheel"]
    rest = list(argv)
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or not rest:
            break
        word = rest.pop(0)
        choices = subs[0].choices
        assert word in choices, f"{where}: `{' '.join(path)} {word}` is not a flywheel command: {sorted(choices)}"
        parser, path = choices[word], [*path, word]
    options = {o for a in parser._actions for o in a.option_strings}
    for opt in (w.split("=")[0] for w in rest if w.startswith("-")):
        assert opt in options, f"{where}: `{' '.join(path)}` has no option {opt}"


def check_mlflow_argv(argv: list[str], server_help: str, where: str) -> None:
    assert argv and argv[0] == "server", f"{where}: only `mlflow server` runs in the topology, not {argv}"
    for opt in (w.split("=")[0] for w in argv[1:] if w.startswith("-")):
        assert re.search(rf"(^|[\s,/]){re.escape(opt)}([\s,=/]|$)", server_help, re.M), (
            f"{where}: `mlflow server --help` lists no option {opt}"
        )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comment lines dropped."""
    instructions, buf = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        keyword, _, args = buf.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        buf = ""
    return instructions


def image_files() -> dict[str, Path]:
    """Absolute path in the image -> repository path, for everything the Dockerfile COPYs."""
    workdir, files = "/", {}
    for keyword, args in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = args
        elif keyword == "COPY":
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            *sources, dest = words
            for src in sources:
                target = dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}"
                if dest.endswith("/") and len(sources) > 1:
                    target = f"{target.rstrip('/')}/{Path(src).name}"
                files[posixpath.normpath(target)] = ROOT / src.rstrip("/")
    return files


# ------------------------------------------------------------------------------------------------------
# The compose file


def test_compose_parses_with_every_required_service(raw: dict[str, Any], services: dict) -> None:
    assert REQUIRED_SERVICES <= set(services), f"missing services: {sorted(REQUIRED_SERVICES - set(services))}"
    declared = set(raw.get("volumes") or {})
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: named volume {source!r} is not declared under volumes:"


def test_every_variable_is_documented_in_env_example(raw: dict[str, Any], env_example: dict) -> None:
    used = {name for name, _, _ in references(raw)}
    assert used, "docker-compose.yml references no variable: the interpolation scan is broken"
    assert not used - set(env_example), f"not in .env.example: {sorted(used - set(env_example))}"
    assert not set(env_example) - used, f".env.example entries compose never uses: {sorted(set(env_example) - used)}"


def test_env_example_values_are_the_compose_defaults(raw: dict[str, Any], env_example: dict) -> None:
    for name, op, arg in references(raw):
        if op in (":-", "-") and env_example.get(name):
            assert env_example[name] == arg, (
                f".env.example sets {name}={env_example[name]!r} but docker-compose.yml defaults it "
                f"to {arg!r}; make them the same"
            )


def test_secrets_are_required_and_never_defaulted(raw: dict[str, Any], env_example: dict) -> None:
    refs = references(raw)
    for secret in SECRETS:
        ops = {op for name, op, _ in refs if name == secret}
        assert ops == {":?"}, f"{secret} must be used only as ${{{secret}:?...}} (fail when unset), got {ops}"
        assert env_example[secret] == "", f".env.example must not ship a value for the secret {secret}"
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        resolve(raw, {k: v for k, v in env_example.items() if k != "POSTGRES_PASSWORD"})


def test_paths_the_compose_file_names_exist(services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} does not exist"
            dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
            assert dockerfile.is_file(), f"{name}: dockerfile {dockerfile} does not exist"
            checked += 1
        env_files = svc.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert (ROOT / path).is_file(), f"{name}: env_file {path} does not exist"
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind-mount source {source} does not exist in the repo"
                checked += 1
    assert checked >= 3, "expected the build and the config/init-SQL bind mounts to be checked"


def test_dependencies_are_defined_acyclic_and_gate_on_init(services: dict[str, dict[str, Any]]) -> None:
    graph = {}
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on {dep!r}, which is not a service"
            assert dep != name, f"{name} depends on itself"
            assert spec["condition"] in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }
            if spec["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), (
                    f"{name} waits for {dep} to be healthy; {dep} has no healthcheck"
                )
        graph[name] = set(deps)

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert node not in trail, f"dependency cycle: {' -> '.join((*trail, node))}"
        for dep in graph[node]:
            visit(dep, (*trail, node))

    for name in graph:
        visit(name, ())
    for name in AIRFLOW_SERVICES:
        if name != "airflow-init":
            cond = services[name]["depends_on"].get("airflow-init", {}).get("condition")
            assert cond == "service_completed_successfully", f"{name} must start after airflow-init succeeded"
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["airflow-worker"]
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"airflow-worker sets {key}: `--scale airflow-worker=N` would collide"
    assert worker["command"][:3] == ["airflow", "celery", "worker"]


def test_healthchecks_and_restart_policies(services: dict[str, dict[str, Any]]) -> None:
    for name in MUST_HAVE_HEALTHCHECK:
        assert (services[name].get("healthcheck") or {}).get("test"), f"{name} has no healthcheck"
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", f"{name} must be restart: unless-stopped"
    # A one-shot job restarted on exit would migrate and exit forever, and never count as completed.
    assert services["airflow-init"].get("restart", "no") == "no"
    api = " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "/api/v2/monitor/health" in api
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])


def test_airflow_services_share_executor_broker_and_data(services: dict[str, dict[str, Any]]) -> None:
    api_port = services["airflow-apiserver"]["command"][services["airflow-apiserver"]["command"].index("--port") + 1]
    mlflow_cmd = services["mlflow"]["command"]
    mlflow_uri = f"http://mlflow:{mlflow_cmd[mlflow_cmd.index('--port') + 1]}"
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"]).hostname == "postgres", name
        db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (db.scheme, db.hostname, db.path) == ("postgresql+psycopg2", "postgres", "/airflow"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{api_port}/execution/"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False", name
        assert int(env["AIRFLOW__CORE__PARALLELISM"]) > 0, name
        for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
            assert env[key], f"{name}: {key} is empty"
        assert env["MLFLOW_TRACKING_URI"] == mlflow_uri, name
        assert env["FLYWHEEL_CONFIG"] == "/opt/flywheel/flywheel.yaml", name
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get(env["FLYWHEEL_DATA_ROOT"]) == "flywheel-data", (
            f"{name}: FLYWHEEL_DATA_ROOT {env['FLYWHEEL_DATA_ROOT']} is not the shared flywheel-data volume"
        )
        assert mounts.get("/opt/airflow/logs") == "airflow-logs", f"{name}: task logs are not shared"
    # The judge key reaches the init job only, not every long-running container.
    for name in AIRFLOW_SERVICES:
        has_key = "FLYWHEEL_JUDGE_API_KEY" in services[name]["environment"]
        assert has_key == (name == "airflow-init"), f"{name}: FLYWHEEL_JUDGE_API_KEY placement"


def test_mounted_flywheel_config_validates_and_targets_the_mlflow_service(
    services: dict[str, dict[str, Any]],
) -> None:
    from genai_flywheel.config import load_config

    repo_apps = {a.name: a.mlflow.experiment for a in load_config(ROOT / "flywheel.yaml").applications}
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        source = mounts.get(env["FLYWHEEL_CONFIG"])
        assert source, f"{name}: nothing is mounted at FLYWHEEL_CONFIG={env['FLYWHEEL_CONFIG']}"
        cfg = load_config(ROOT / source)
        assert cfg.data_root == env["FLYWHEEL_DATA_ROOT"]
        for app in cfg.applications:
            assert app.mlflow.tracking_uri == env["MLFLOW_TRACKING_URI"], (
                f"{source}: application {app.name} logs to {app.mlflow.tracking_uri}, "
                f"not the compose mlflow service {env['MLFLOW_TRACKING_URI']}"
            )
        assert {a.name: a.mlflow.experiment for a in cfg.applications} == repo_apps, (
            f"{source} monitors other applications than flywheel.yaml; copy the change over"
        )


def test_every_command_names_a_real_cli(services: dict[str, dict[str, Any]], cli_help: dict[str, Any]) -> None:
    baked = image_files()
    programs = set()
    for where, argv in service_commands(services):
        program, args = argv[0], argv[1:]
        programs.add(program)
        if program == "airflow":
            check_airflow_argv(args, cli_help["airflow"], where)
        elif program == "mlflow":
            check_mlflow_argv(args, cli_help["mlflow_server"], where)
        elif program == "flywheel":
            check_flywheel_argv(args, where)
        elif program == "bash":
            script = args[0]
            assert script in baked and baked[script].is_file(), f"{where}: {script} is not COPYed into the image"
        elif program == "curl":
            assert re.search(r"apt-get install[^&]*\bcurl\b", DOCKERFILE.read_text()), "curl is not installed"
        elif program == "celery":
            assert re.search(r"^celery==", PRODUCTION_REQUIREMENTS.read_text(), re.M), "celery is not installed"
            assert args[:2] == ["--app", "airflow.providers.celery.executors.celery_executor.app"], where
        else:
            assert program in FOREIGN_PROGRAMS, f"{where}: unexpected program {program!r}"
    assert {"airflow", "mlflow", "bash"} <= programs


def test_init_script_runs_real_commands(tmp_path: Path, cli_help: dict[str, Any]) -> None:
    """Run deploy/init-airflow.sh with a recording `airflow` and the real `flywheel` and `python`."""
    calls = tmp_path / "airflow-calls.jsonl"
    fake = tmp_path / "bin" / "airflow"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.exit(1 if sys.argv[1:3] == ['connections', 'get'] else 0)\n"
    )
    fake.chmod(0o755)
    path = os.pathsep.join([str(fake.parent), str(VENV_BIN), os.environ.get("PATH", "")])
    base = {**os.environ, "PATH": path, "FLYWHEEL_CONFIG": str(ROOT / "deploy" / "flywheel.compose.yaml")}

    def run(extra: dict[str, str]) -> list[list[str]]:
        calls.unlink(missing_ok=True)
        proc = subprocess.run(
            ["bash", str(INIT_SCRIPT)], env={**base, **extra}, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return [json.loads(line) for line in calls.read_text().splitlines()]

    with_judge = run({"FLYWHEEL_JUDGE_BASE_URL": "http://judge.internal/v1", "FLYWHEEL_JUDGE_API_KEY": "sk-1"})
    assert with_judge[0] == ["db", "migrate"]
    assert [
        "pools",
        "set",
        "flywheel_llm_judge",
        "4",
        "LLM-judge calls of genai-flywheel (judge.pool_slots)",
    ] in with_judge
    add = next(c for c in with_judge if c[:2] == ["connections", "add"])
    assert add == [
        "connections",
        "add",
        "flywheel_judge",
        "--conn-type",
        "http",
        "--conn-host",
        "http://judge.internal/v1",
        "--conn-password",
        "sk-1",
    ]
    for argv in with_judge:
        check_airflow_argv(argv, cli_help["airflow"], f"deploy/init-airflow.sh: airflow {' '.join(argv)}")

    without = run({"FLYWHEEL_JUDGE_BASE_URL": "", "FLYWHEEL_JUDGE_API_KEY": ""})
    assert not [c for c in without if c[0] == "connections"]
    assert ["db", "migrate"] in without

    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: []\n")
    calls.unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(INIT_SCRIPT)],
        env={**base, "FLYWHEEL_CONFIG": str(bad)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "applications" in proc.stderr, "an invalid config must stop the init job"
    assert not calls.exists() or ["db", "migrate"] not in [json.loads(x) for x in calls.read_text().splitlines()]


def test_flywheel_commands_in_init_script_exist() -> None:
    for line in INIT_SCRIPT.read_text().splitlines():
        words = shlex.split(line, comments=True) if line.strip().startswith("flywheel") else []
        if words:
            check_flywheel_argv([w for w in words[1:] if not w.startswith("$")], f"init-airflow.sh: {line.strip()}")


def test_docker_compose_config_accepts_the_file(deploy_env: dict[str, str], tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode:
        pytest.skip("the `docker compose` plugin is not installed (the docker client alone has no `compose`)")
    env_file = tmp_path / "deploy.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in deploy_env.items()))
    proc = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------------
# The image


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Whether the build context drops ``rel`` (last matching .dockerignore pattern wins; parents count)."""
    parts = rel.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(c, pat) or fnmatch.fnmatchcase(c, pat.removeprefix("**/")) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerfile_copies_existing_files_into_the_context() -> None:
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]
    assert dockerignored(".env", patterns) and dockerignored(".venv/bin/python", patterns)
    copied = image_files()
    assert copied, "the Dockerfile COPYs nothing"
    for source in copied.values():
        assert source.exists(), f"Dockerfile COPYs {source.relative_to(ROOT)}, which does not exist"
        files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel:
                assert not dockerignored(rel, patterns), f".dockerignore drops {rel}, which the Dockerfile COPYs"
    for needed in ("pyproject.toml", "uv.lock", "src", "dags", "plugins", "flywheel.yaml"):
        assert ROOT / needed in copied.values(), f"the Dockerfile does not COPY {needed}"


def test_dockerfile_installs_from_the_lock_as_non_root() -> None:
    instructions = dockerfile_instructions()
    text = " ".join(f"{k} {a}" for k, a in instructions)
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    assert "uv sync --frozen --no-dev" in text and "--compile-bytecode" in text
    assert "UV_PROJECT_ENVIRONMENT=/opt/venv" in text and "PATH=/opt/venv/bin:$PATH" in text
    assert "AIRFLOW_HOME=/opt/airflow" in text
    assert re.search(r"useradd[^&]*--uid 50000[^&]* airflow\b", text), "no user airflow with uid 50000"
    users = [a for k, a in instructions if k == "USER"]
    assert users and users[-1] == "airflow", "the image must run as airflow, not root"
    # The switch to the lock file's `production` extra, default off until pyproject.toml defines it.
    assert "ARG FLYWHEEL_PRODUCTION_EXTRA=true" in text and "--extra production" in text
    # Same uv as the Makefile, so developers, CI and the image resolve alike.
    make_uv = re.search(r"^UV_VERSION \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)
    docker_uv = re.search(r"ARG UV_VERSION=(\S+)", text)
    assert make_uv and docker_uv and make_uv[1] == docker_uv[1], "uv version differs from the Makefile's"
    assert 'pip install "uv==${UV_VERSION}"' in text


def test_production_requirements_are_exact_pins() -> None:
    pins = {}
    for line in PRODUCTION_REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[\w.]+", version), f"not an exact pin: {line!r}"
            pins[name.lower()] = version
    assert {"apache-airflow-providers-celery", "redis", "psycopg2-binary", "celery"} <= set(pins)
    lock = (ROOT / "uv.lock").read_text()
    for name, version in pins.items():
        locked = re.search(rf'^name = "{re.escape(name)}"\nversion = "([^"]+)"', lock, re.M)
        if locked:  # packages the lock already holds must not be pinned to another version
            assert locked[1] == version, f"{name}=={version} here but {locked[1]} in uv.lock"


def test_uv_commands_of_the_dockerfile_use_real_flags() -> None:
    uv = shutil.which("uv")
    if not uv:
        pytest.skip("uv is not on PATH")
    text = " ".join(a for k, a in dockerfile_instructions() if k == "RUN")
    invocations = re.findall(r"\buv ((?:pip )?[a-z]+)((?: +(?:--?[a-z][\w-]*(?:[ =](?!-)[^\s;]+)?))*)", text)
    assert len(invocations) >= 4, invocations
    helps: dict[str, str] = {}
    for sub, args in invocations:
        if sub not in helps:
            # `uv help <command>`: the full help, global options (--quiet, ...) included.
            proc = subprocess.run([uv, "help", *sub.split()], capture_output=True, text=True, timeout=30)
            assert proc.returncode == 0, f"`uv {sub}` is not a uv command"
            helps[sub] = proc.stdout
        for flag in re.findall(r"(?<!\S)(--?[a-z][\w-]*)", args):
            assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=<.\[]|$)", helps[sub], re.M), (
                f"`uv {sub}` has no option {flag}"
            )
