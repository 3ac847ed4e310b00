"""Start, watch and stop the local services of the embedded default: an ``mlflow server`` over SQLite and
the Airflow components (api-server, scheduler, dag-processor, triggerer) over SQLite with LocalExecutor.
``Stack.mlflow_backend_uri`` / ``Stack.airflow_db_uri`` replace either SQLite database with a server
database (e.g. PostgreSQL), as in the production topology.

It drives the ``mlflow`` and ``airflow`` command-line programs as subprocesses and never imports Airflow.
Everything lives under one home folder (default ``./.demo``): databases, logs, pid files, the generated
Airflow login. ``stop_all`` ends whatever ``start_*`` started, also from another process (pid files).

``throwaway_postgres`` runs a PostgreSQL cluster in a temporary folder for as long as a ``with`` block (the
topology tests, the benchmarks' PostgreSQL runs): the production topology's database without containers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import (
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
    wait_incrementing,
)

from genai_flywheel.exceptions import FlywheelError
from genai_flywheel.memory import process_env

log = logging.getLogger(__name__)

AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Modules every task imports: the LocalExecutor's forkserver loads them once, and each task process
# inherits them copy-on-write instead of spending seconds re-importing mlflow and pyarrow.
FORKSERVER_PRELOAD = (
    "airflow,airflow.executors.local_executor,airflow.sdk,pyarrow,pyarrow.parquet,pandas,mlflow,"
    "mlflow.entities,mlflow.tracing.client,genai_flywheel.pipeline,genai_flywheel.traces.extract"
)


# Airflow over SQLite has several writers (scheduler, dag-processor, api-server, CLI). sqlite3's default
# 5 s busy timeout turns a long write of one of them into "database is locked" for another; waiting up to
# a minute instead serialises them. Airflow imports this dict by its path (sql_alchemy_connect_args).
SQLITE_CONNECT_ARGS = {"timeout": 60}

# The async driver Airflow derives from a sync database URI (airflow.settings._get_async_conn_uri_from_sync).
_ASYNC_DRIVERS = {"postgresql": "asyncpg", "mysql": "aiomysql"}


class ServiceError(FlywheelError):
    """A local service did not start or did not become healthy."""


@dataclass(frozen=True)
class Stack:
    """Where the embedded default runs: project folder, home folder, ports.

    ``mlflow_backend_uri`` and ``airflow_db_uri`` (SQLAlchemy URIs) replace the SQLite databases under the
    home folder when set; ``airflow_extra_env`` is applied last to every Airflow command's environment
    (e.g. other log-server ports when a second stack runs on the same machine).
    """

    project: Path
    home: Path
    mlflow_port: int = 5500
    airflow_port: int = 8080
    parallelism: int = 4
    mlflow_backend_uri: str | None = None
    airflow_db_uri: str | None = None
    airflow_extra_env: Mapping[str, str] | None = field(default=None, hash=False)

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def mlflow_backend(self) -> str:
        """The tracking store the MLflow server runs on (default: SQLite under the home folder)."""
        return self.mlflow_backend_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def airflow_db(self) -> str:
        """The Airflow metadata database (default: SQLite under the Airflow home)."""
        return self.airflow_db_uri or f"sqlite:///{self.airflow_home / 'airflow.db'}"

    @property
    def airflow_on_sqlite(self) -> bool:
        return self.airflow_db.startswith("sqlite")

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pids(self) -> Path:
        return self.home / "pids"

    @property
    def data_root(self) -> Path:
        return Path(os.environ.get("FLYWHEEL_DATA_ROOT") or self.project / "data")

    def bin(self, name: str) -> str:
        """A program of the active virtual environment (next to this interpreter), else from PATH."""
        here = Path(sys.executable).parent / name
        return str(here) if here.exists() else (shutil.which(name) or name)

    def _secret(self, name: str) -> str:
        path = self.home / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def airflow_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment every Airflow command of this stack runs with."""
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.project / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.project / "plugins"),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
                "AIRFLOW__CORE__MP_START_METHOD": "forkserver",
                "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": FORKSERVER_PRELOAD,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "airflow-passwords.json"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db,
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt-secret"),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "airflow"),
                "FLYWHEEL_CONFIG": os.environ.get("FLYWHEEL_CONFIG") or str(self.project / "flywheel.yaml"),
                "FLYWHEEL_DATA_ROOT": str(self.data_root),
                "MLFLOW_TRACKING_URI": self.mlflow_uri,
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                "GX_ANALYTICS_ENABLED": "false",
                **process_env(),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(self.project / "plugins"), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        if self.airflow_on_sqlite:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "flywheel_demo.services.SQLITE_CONNECT_ARGS"
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = "flywheel_demo.services.SQLITE_CONNECT_ARGS"
        else:
            # sqlite3's busy timeout means nothing to a server database's driver (psycopg2 rejects it).
            env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", None)
            env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC", None)
            env.update(_async_db_fallback(self.airflow_db, env))
        env.update(self.airflow_extra_env or {})
        if extra:
            env.update(extra)
        return env

    def login(self) -> tuple[str, str]:
        """The Airflow UI's user and password (written by ``init_airflow``)."""
        data = json.loads((self.home / "airflow-passwords.json").read_text())
        user = next(iter(data))
        return user, data[user]


def _async_db_fallback(sync_uri: str, env: Mapping[str, str]) -> dict[str, str]:
    """Disable Airflow's async metadata engine when its driver is not installed.

    Airflow derives an async URI from the sync one (postgresql -> postgresql+asyncpg) and every component
    creates that engine at start: without asyncpg each one dies with ModuleNotFoundError. Airflow 3.3 uses
    the async engine only for multi-team deployments and the dag-run ``wait`` endpoint, so an empty async
    URI keeps the stack working; installing the driver is the real fix.
    """
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" in env:
        return {}
    scheme = sync_uri.split(":", 1)[0].split("+", 1)[0]
    if _missing_async_driver(scheme) is None:
        return {}
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": ""}


@functools.cache
def _missing_async_driver(scheme: str) -> str | None:
    """The async driver Airflow would use for ``scheme`` if it is not installed (warned about once)."""
    driver = _ASYNC_DRIVERS.get(scheme)
    if driver is None or importlib.util.find_spec(driver) is not None:
        return None
    log.warning("%s is not installed: Airflow's async metadata engine is disabled (install %s)", driver, driver)
    return driver


def sqlite_wal(path: Path) -> Path:
    """Create (or switch) the SQLite database at ``path`` in WAL mode.

    In the default rollback-journal mode a reader blocks every writer and a reader that wants to write
    gets "database is locked" at once, whatever the busy timeout: with a scheduler, a dag-processor, an
    api-server and tasks sharing one file that happens within minutes. WAL lets readers and one writer
    proceed together; the mode is stored in the file, so every later connection gets it.
    """
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    return path


def _alive(pid: int) -> bool:
    try:  # a child of this process that exited stays a zombie (and "alive" to kill 0) until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(stack: Stack, name: str, argv: list[str], env: Mapping[str, str]) -> int:
    """Start ``argv`` in its own process group with output to ``logs/<name>.log``; record its pid."""
    stack.logs.mkdir(parents=True, exist_ok=True)
    stack.pids.mkdir(parents=True, exist_ok=True)
    pid_file = stack.pids / f"{name}.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        log.info("%s already running (pid %s)", name, pid_file.read_text().strip())
        return int(pid_file.read_text())
    out = open(stack.logs / f"{name}.log", "ab")  # handed to the child, which keeps it open
    proc = subprocess.Popen(
        argv, stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=stack.project, start_new_session=True
    )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def _http_status(url: str) -> str | None:
    """None when ``url`` answers 2xx/3xx/401/403 (up, if behind a login); otherwise why it does not."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return None if resp.status < 400 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as err:
        return None if err.code in (401, 403) else f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return str(err)


def wait_http(url: str, *, timeout_s: float, name: str, log_file: Path | None = None) -> None:
    """Wait until ``url`` answers 2xx/3xx/401, or raise ServiceError with the log's tail."""
    polling = Retrying(
        retry=retry_if_result(lambda problem: problem is not None),
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(1),
        retry_error_callback=lambda state: state.outcome.result(),  # the last problem, not a RetryError
    )
    last = polling(_http_status, url)
    if last is None:
        return
    tail = ""
    if log_file and log_file.exists():
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
    raise ServiceError(f"{name} did not answer at {url} within {timeout_s:.0f} s ({last}); log tail:\n{tail}")


def start_mlflow(
    stack: Stack, *, workers: int = 2, extra_env: Mapping[str, str] | None = None, timeout_s: float = 180
) -> str:
    """Start ``mlflow server`` over ``stack.mlflow_backend`` (default: SQLite under the home folder);
    returns its URI once healthy. ``extra_env`` is added to the server's environment."""
    stack.home.mkdir(parents=True, exist_ok=True)
    if stack.mlflow_backend_uri is None:
        sqlite_wal(stack.home / "mlflow.db")
    argv = [
        stack.bin("mlflow"),
        "server",
        "--backend-store-uri",
        stack.mlflow_backend,
        "--artifacts-destination",
        str(stack.home / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(stack.mlflow_port),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", **(extra_env or {})}
    start(stack, "mlflow", argv, env)
    wait_http(
        f"{stack.mlflow_uri}/health", timeout_s=timeout_s, name="mlflow server", log_file=stack.logs / "mlflow.log"
    )
    return stack.mlflow_uri


def airflow(stack: Stack, *args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    """Run one ``airflow`` CLI command against this stack (again, if SQLite was locked)."""

    # SQLite answers a writer that loses a race with another (a scheduler loop, a DAG parse) with an
    # immediate "database is locked", whatever the busy timeout; the commands used here are safe to repeat:
    # up to 10 tries, 3 s, 4 s, 5 s... apart.
    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [stack.bin("airflow"), *args],
            env=stack.airflow_env(),
            cwd=stack.project,
            capture_output=capture,
            text=True,
        )

    retrying = Retrying(
        retry=retry_if_result(lambda p: p.returncode != 0 and "database is locked" in (p.stderr or "")),
        stop=stop_after_attempt(10),
        wait=wait_incrementing(start=3, increment=1),
        before_sleep=lambda state: log.info(
            "airflow %s: SQLite was locked, trying again (%d)", args[0], state.attempt_number
        ),
        retry_error_callback=lambda state: state.outcome.result(),  # the last attempt's process
    )
    proc = retrying(run)
    if check and proc.returncode != 0:
        raise ServiceError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def init_airflow(stack: Stack, pools: Mapping[str, int] | None = None) -> None:
    """Create the metadata DB, the UI login and the pools (idempotent)."""
    stack.airflow_home.mkdir(parents=True, exist_ok=True)
    pw_file = stack.home / "airflow-passwords.json"
    if not pw_file.exists():
        pw_file.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        pw_file.chmod(0o600)
    if stack.airflow_on_sqlite:
        sqlite_wal(stack.airflow_home / "airflow.db")
    airflow(stack, "db", "migrate")
    for name, slots in (pools or {}).items():
        airflow(stack, "pools", "set", name, str(slots), "LLM-judge calls of genai-flywheel")


def start_airflow(stack: Stack, components: Sequence[str] = AIRFLOW_COMPONENTS) -> str:
    """Start the Airflow components (default: all four); returns the UI URL once the api-server is
    healthy. A stack whose DAGs defer nothing may leave out the triggerer."""
    if "api-server" not in components or set(components) - set(AIRFLOW_COMPONENTS):
        raise ServiceError(
            f"components must include api-server and be among {', '.join(AIRFLOW_COMPONENTS)}; "
            f"got {', '.join(components)}"
        )
    env = stack.airflow_env()
    for component in components:
        start(stack, f"airflow-{component}", [stack.bin("airflow"), component], env)
    wait_http(
        f"{stack.airflow_url}/api/v2/monitor/health",
        timeout_s=240,
        name="airflow api-server",
        log_file=stack.logs / "airflow-api-server.log",
    )
    return stack.airflow_url


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is a finished child of this process (else a zombie looks alive)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def stop(stack: Stack, name: str, *, timeout_s: float = 30, kill: bool = False) -> bool:
    """Stop the process ``name`` of this stack with its whole process group; returns whether it ran.

    SIGTERM, then SIGKILL after ``timeout_s``; ``kill=True`` sends SIGKILL at once, as a crash or an
    OOM kill would. The pid file is removed, so ``start`` can start the service again.
    """
    pid_file = stack.pids / f"{name}.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    running = _alive(pid)
    if running:
        _signal_group(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
            _reap(pid)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
                _reap(pid)
    pid_file.unlink(missing_ok=True)
    return running


def ensure_airflow(stack: Stack) -> list[str]:
    """Start again every Airflow component of this stack that has exited; returns their names.

    On SQLite the scheduler can die of a lost write race (``StaleDataError``); a supervisor restarting it,
    as systemd or Kubernetes would, lets the queued runs go on.
    """
    restarted = []
    env = stack.airflow_env()
    for component in AIRFLOW_COMPONENTS:
        pid_file = stack.pids / f"airflow-{component}.pid"
        if pid_file.exists() and not _alive(int(pid_file.read_text())):
            log.warning("airflow %s exited (see %s); starting it again", component, stack.logs)
            pid_file.unlink()
            start(stack, f"airflow-{component}", [stack.bin("airflow"), component], env)
            restarted.append(component)
    return restarted


def stop_all(stack: Stack, *, timeout_s: float = 30) -> list[str]:
    """Stop every process this stack started (SIGTERM to its group, then SIGKILL); returns their names."""
    if not stack.pids.exists():
        return []
    return [f.stem for f in sorted(stack.pids.glob("*.pid")) if stop(stack, f.stem, timeout_s=timeout_s)]


# --- PostgreSQL: a throw-away cluster (the production topology's tracking database, without containers) ---

PG_VERSION = "15"
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text)


def pg_bindir() -> Path | None:
    """The folder holding PostgreSQL's server programs (initdb, pg_ctl, postgres), or None."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        # pg_config also comes with the client library alone: its bindir may lack the server programs.
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates.append(Path(f"/usr/lib/postgresql/{PG_VERSION}/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    for d in candidates:
        if all(os.access(d / p, os.X_OK) for p in PG_PROGRAMS):
            return d
    return None


def _server_os_user() -> str | None:
    """The OS user the server runs as: None (this one) unless we are root, which initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "flywheel-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "flywheel-pg"],
        check=True,
        capture_output=True,
    )
    return "flywheel-pg"


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster in ``root`` (owned by ``os_user``), listening on 127.0.0.1:port."""

    bindir: Path
    root: Path
    port: int
    os_user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def uri(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        kw: dict[str, Any] = {}
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            kw = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.root), "LC_ALL": "C"}
        proc = subprocess.run(
            [str(self.bindir / argv[0]), *argv[1:]], cwd=self.root, env=env, capture_output=True, text=True, **kw
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def start(self, databases: tuple[str, ...]) -> None:
        """initdb, start the server (waits until it accepts connections), create ``databases``."""
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C")
        # Durability settings off: the cluster is thrown away after the tests, and fsync on a busy CI disk
        # would only slow every commit of Airflow and MLflow down.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        self.create_databases(databases)

    def create_databases(self, databases: tuple[str, ...], *, replace: bool = False) -> None:
        """Create ``databases`` (empty; with ``replace``, dropped first if they exist)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for db in databases:
                    if replace:
                        cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
                    cur.execute(f'CREATE DATABASE "{db}"')
        finally:
            conn.close()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")


@contextlib.contextmanager
def throwaway_postgres(databases: tuple[str, ...]) -> Iterator[Postgres]:
    """A PostgreSQL cluster on a free port with ``databases``, in a temporary folder; stopped and deleted
    on exit. Raises FileNotFoundError when the server binaries are missing."""
    bindir = pg_bindir()
    if bindir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via pg_config, "
            f"/usr/lib/postgresql/*/bin or PATH: install postgresql-{PG_VERSION}"
        )
    # Not under pytest's tmp folders: those are private to this user (0700) and the server may run as
    # another one. The short path also keeps the unix socket under the 107-character limit.
    root = Path(tempfile.mkdtemp(prefix="flywheel-pg-"))
    pg = Postgres(bindir=bindir, root=root, port=free_port(), os_user=_server_os_user())
    try:
        pg.start(databases)
        yield pg
    except BaseException:
        print(f"----- {pg.log} -----\n{tail(pg.log)}")
        raise
    finally:
        try:
            pg.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
