"""The production topology without containers, started once for this package.

A real PostgreSQL 15 (two databases: ``airflow`` and ``mlflow``) in a temporary folder, an ``mlflow
server`` over it, and Airflow's api-server, scheduler and dag-processor over it with the LocalExecutor,
all on 127.0.0.1 on free ports, driven by ``flywheel_demo.services``. Every process started here is
stopped by the fixtures' finalizers, also when a test or the start-up fails; on failure the tails of the
service and task logs are printed. The tests skip only when the PostgreSQL server binaries are missing.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel_demo.services import (
    PG_VERSION,
    Postgres,
    Stack,
    airflow,
    free_port,
    init_airflow,
    pg_bindir,
    start_airflow,
    start_mlflow,
    stop,
    stop_all,
    tail,
    throwaway_postgres,
)
from tests.integration.conftest import ROOT, write_config

APP = "support-assistant"
EXPERIMENT = "support-prod"
SCHEDULE = "0 */6 * * *"
INTERVAL = timedelta(hours=6)
# A fixed, 6-hour-aligned end of the simulated traffic, months before the machine's clock: far enough that
# the runs the scheduler makes on its own (the monitor's latest interval) see none of this traffic.
END = datetime(2026, 8, 1, tzinfo=UTC)
# The curation DAG's own schedule is moved to 29 February: its first interval after start_date ends in
# 2032, so the scheduler makes no curation run of its own to queue before (and block) the one the test
# triggers (the DAG allows one active run).
NO_SCHEDULED_CURATION = "0 0 29 2 *"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor")  # no deferrable task: no triggerer
TERMINAL = {"success", "failed"}


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    """Remember whether a test failed, so the log fixture can print the service logs."""
    if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
        item.stash[_FAILED] = True


_FAILED = pytest.StashKey[bool]()


def logical_date(run: dict[str, Any]) -> datetime | None:
    """A DAG run's logical date (from the CLI's or the REST API's JSON), or None for a run without one."""
    value = run.get("logical_date")
    return datetime.fromisoformat(value) if value else None


# --- the stack -------------------------------------------------------------------------------------------


@dataclass
class Topology:
    """The running stack and what the tests need to drive and inspect it."""

    stack: Stack
    pg: Postgres
    config: Path
    data_root: Path
    mlflow_env: Mapping[str, str]
    app: str = APP
    experiment: str = EXPERIMENT
    _token: str | None = None

    @property
    def mlflow_uri(self) -> str:
        return self.stack.mlflow_uri

    def dag_id(self, kind: str) -> str:
        return f"flywheel_{kind}_{self.app}"

    # Airflow's CLI, as an operator (and `make demo`) drives it.
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return airflow(self.stack, *args, check=check)

    def cli_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """``airflow dags list-runs <dag> -o json`` (dag_id, run_id, state, logical_date, ...)."""
        out = self.cli("dags", "list-runs", dag_id, "-o", "json", check=False).stdout
        # The JSON list is the last line that is one: Airflow logs warnings ("[warning  ] ...") before it.
        for line in reversed(out.splitlines()):
            if line.startswith("[{") or line.strip() == "[]":
                return json.loads(line)
        return []

    # Airflow's REST API: fields the CLI does not print (run_type, task instances), and fast polling.
    def api(self, path: str, *, method: str = "GET", body: dict | None = None) -> Any:
        for attempt in (1, 2):
            if self._token is None:
                user, password = self.stack.login()
                self._token = self._request(
                    "/auth/token", method="POST", body={"username": user, "password": password}
                )["access_token"]
            try:
                return self._request(path, method=method, body=body, token=self._token)
            except urllib.error.HTTPError as err:
                if err.code != 401 or attempt == 2:
                    raise
                self._token = None  # expired: log in again
        raise AssertionError("unreachable")

    def _request(self, path: str, *, method: str, body: dict | None = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.stack.airflow_url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def trigger_interval(self, dag_id: str, run_id: str, start: datetime, end: datetime) -> None:
        """A run of ``dag_id`` over exactly [start, end) under ``run_id``, through the REST API."""
        q = urllib.parse.quote(dag_id, safe="")
        body = {
            "dag_run_id": run_id,
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
        }
        self.api(f"/api/v2/dags/{q}/dagRuns", method="POST", body=body)

    def api_runs(self, dag_id: str) -> list[dict[str, Any]]:
        q = urllib.parse.quote(dag_id, safe="")
        return self.api(f"/api/v2/dags/{q}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        dag, run = (urllib.parse.quote(x, safe="") for x in (dag_id, run_id))
        return self.api(f"/api/v2/dags/{dag}/dagRuns/{run}/taskInstances?limit=100")["task_instances"]

    def wait_dag(self, dag_id: str, timeout_s: float = 300) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` into the metadata DB."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.api(f"/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}")
                return
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            time.sleep(2)
        errors = self.cli("dags", "list-import-errors", check=False).stdout
        raise AssertionError(f"{dag_id} was not parsed within {timeout_s:.0f} s; import errors:\n{errors}")

    def wait_runs(
        self,
        dag_id: str,
        select: Callable[[dict[str, Any]], bool],
        expected: int,
        timeout_s: float,
        *,
        api: bool = False,
    ) -> list[dict[str, Any]]:
        """Poll ``airflow dags list-runs`` (or, with ``api``, the REST API, whose runs carry ``run_type``)
        until ``expected`` runs picked by ``select`` have finished; returns the picked runs."""
        deadline = time.monotonic() + timeout_s
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = [r for r in (self.api_runs(dag_id) if api else self.cli_runs(dag_id)) if select(r)]
            if len([r for r in runs if r.get("state") in TERMINAL]) >= expected:
                return runs
            time.sleep(2 if api else 5)
        states = {r.get("run_id") or r.get("dag_run_id"): r.get("state") for r in runs}
        raise AssertionError(f"{dag_id}: {expected} runs did not finish within {timeout_s:.0f} s: {states}")

    def code_assessments(self, start: datetime, end: datetime) -> dict[str, list[tuple[str, str]]]:
        """(name, assessment id) of every CODE-source assessment, per trace of the window, read over HTTP."""
        from genai_flywheel.traces.extract import get_experiment_id, iter_traces, window_filter
        from genai_flywheel.workspace import to_ms

        exp = get_experiment_id(self.mlflow_uri, self.experiment)
        window = window_filter(to_ms(start), to_ms(end))
        return {
            t.info.trace_id: [
                (a.name, a.assessment_id) for a in t.info.assessments or [] if a.source.source_type == "CODE"
            ]
            for t in iter_traces(self.mlflow_uri, exp, window, include_spans=False)
        }

    def check_exactly_once(self, start: datetime, end: datetime) -> dict[str, int]:
        """Assert that the interval's traces carry exactly the scores its run computed, each once: every
        sampled trace has assessments, none is missing, none is extra, none is there twice."""
        from collections import Counter

        import pyarrow as pa

        from genai_flywheel.workspace import IntervalWorkspace, read_parquet

        ws = IntervalWorkspace.of(self.data_root, self.app, start, end)
        sampled = set(read_parquet(ws.path("sample.parquet")).column("trace_id").to_pylist())
        shards = sorted(ws.path("scores").glob("shard=*.parquet"))
        scores = pa.concat_tables([read_parquet(f) for f in shards]).to_pylist() if shards else []
        expected = {(r["trace_id"], r["scorer"], r["assessment_id"]) for r in scores}
        found = self.code_assessments(start, end)
        twice = {t: [n for n, c in Counter(n for n, _ in a).items() if c > 1] for t, a in found.items()}
        twice = {t: names for t, names in twice.items() if names}
        assert not twice, f"{start:%Y-%m-%d %H:%M}: traces with a scorer's assessment twice: {twice}"
        actual = {(t, name, aid) for t, a in found.items() for name, aid in a}
        assert actual == expected, (
            f"{start:%Y-%m-%d %H:%M}: lost {sorted(expected - actual)[:5]} ({len(expected - actual)}), "
            f"unexpected {sorted(actual - expected)[:5]} ({len(actual - expected)})"
        )
        assert sampled, f"{start:%Y-%m-%d %H:%M}: nothing was sampled"
        unscored = sampled - {t for t, a in found.items() if a}
        assert not unscored, f"sampled traces without CODE assessments: {sorted(unscored)[:5]}"
        return {"traces": len(found), "sampled": len(sampled), "assessments": len(actual)}

    def kill_mlflow(self) -> None:
        """SIGKILL the mlflow server's whole process group, as a crash would; wait until its port is shut."""
        assert stop(self.stack, "mlflow", kill=True), "the mlflow server was not running"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.stack.mlflow_port)) != 0:
                    return
            time.sleep(0.2)
        raise AssertionError(f"port {self.stack.mlflow_port} still answers 30 s after the kill")

    def start_mlflow(self) -> float:
        """Start the mlflow server (again, on the same port); returns the seconds until it was healthy."""
        t0 = time.monotonic()
        start_mlflow(self.stack, extra_env=self.mlflow_env, timeout_s=300)
        return time.monotonic() - t0

    def logs(self, task_logs: int = 6, lines: int = 40) -> str:
        """Tails of every service log and of the most recent task logs."""
        parts = []
        for path in sorted(self.stack.logs.glob("*.log")) + [self.pg.log]:
            parts.append(f"----- {path.name} (last {lines} lines) -----\n{tail(path, lines)}")
        tasks = sorted(
            (self.stack.logs / "airflow").rglob("attempt=*.log") if (self.stack.logs / "airflow").exists() else [],
            key=lambda p: p.stat().st_mtime,
        )
        for path in tasks[-task_logs:]:
            rel = path.relative_to(self.stack.logs / "airflow")
            parts.append(f"----- task log {rel} (last {lines} lines) -----\n{tail(path, lines)}")
        return "\n".join(parts)


def tier_config(base: Path, tracking_uri: str, data_root: Path, **sampling: Any) -> Path:
    """The tier's flywheel.yaml; ``sampling`` overrides keys of the app's sampling section (e.g. shards)."""
    path = write_config(base / "flywheel.yaml", tracking_uri, data_root, schedule=SCHEDULE)
    cfg = yaml.safe_load(path.read_text())
    app = cfg["applications"][0]
    app["curation"] = {**(app.get("curation") or {}), "schedule": NO_SCHEDULED_CURATION}
    app["sampling"] = {**(app.get("sampling") or {}), **sampling}
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="package")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL 15 cluster with the databases ``airflow`` and ``mlflow``; stopped and deleted after.
    Skips when the server binaries are missing."""
    if pg_bindir() is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install postgresql-{PG_VERSION}")
    with throwaway_postgres(("airflow", "mlflow")) as pg:
        yield pg


@contextlib.contextmanager
def running_topology(
    postgres: Postgres,
    base: Path,
    *,
    databases: tuple[str, str] = ("mlflow", "airflow"),
    airflow_env: Mapping[str, str] | None = None,
    sampling: Mapping[str, Any] | None = None,
    before_airflow: Callable[[Stack], None] | None = None,
    after_airflow: Callable[[Topology], None] | None = None,
) -> Iterator[Topology]:
    """mlflow server + Airflow (api-server, scheduler, dag-processor) over the PostgreSQL databases
    ``databases`` (mlflow, airflow), with ``airflow_env`` added to every Airflow process's environment.

    ``before_airflow`` starts what Airflow needs first (a broker), ``after_airflow`` what needs Airflow
    (workers); every process they start through ``flywheel_demo.services.start`` is stopped on exit.
    """
    data_root = base / "data"
    mlflow_port = free_port()
    config = tier_config(base, f"http://127.0.0.1:{mlflow_port}", data_root, **(sampling or {}))
    stack = Stack(
        project=ROOT,
        home=base / "stack",
        mlflow_port=mlflow_port,
        airflow_port=free_port(),
        parallelism=4,
        mlflow_backend_uri=postgres.uri(databases[0]),
        airflow_db_uri=postgres.uri(databases[1]),
        airflow_extra_env={
            "FLYWHEEL_CONFIG": str(config),
            "FLYWHEEL_DATA_ROOT": str(data_root),
            # Free ports instead of the defaults, which a `make demo` stack on this machine already holds.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            **(airflow_env or {}),
        },
    )
    # The flywheel runs no MLflow server-side jobs; their six job-runner processes would only compete
    # for this machine's CPUs.
    topo = Topology(
        stack=stack,
        pg=postgres,
        config=config,
        data_root=data_root,
        mlflow_env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    t0 = time.monotonic()
    try:
        if before_airflow:
            before_airflow(stack)
        topo.start_mlflow()
        init_airflow(stack)
        start_airflow(stack, AIRFLOW_COMPONENTS)
        if after_airflow:
            after_airflow(topo)
        print(f"topology up in {time.monotonic() - t0:.0f} s: mlflow {stack.mlflow_uri}, airflow {stack.airflow_url}")
        yield topo
    except BaseException:
        print(topo.logs())
        raise
    finally:
        stop_all(stack)


@pytest.fixture(scope="package")
def topology(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """mlflow server + Airflow (api-server, scheduler, dag-processor; LocalExecutor) over ``postgres``."""
    with running_topology(postgres, tmp_path_factory.mktemp("topology")) as topo:
        yield topo


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the tails of the service and task logs after a failed test of this package."""
    topo = request.getfixturevalue("topology") if "topology" in request.fixturenames else None
    yield
    if topo is not None and request.node.stash.get(_FAILED, False):
        print(topo.logs())
