"""The production topology's executor: Airflow's CeleryExecutor with a real Redis broker, the PostgreSQL
result backend and two ``airflow celery worker`` processes, as docker-compose.yml runs it.

The monitor DAG runs one interval of simulated traffic (written to MLflow over HTTP, backfilled through
the scheduler); its mapped task instances must have run on both workers, and the metrics partition must
be byte-identical to the one the same stages produce in one process over the same interval.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from genai_flywheel.services import Stack, start

from tests.integration.conftest import ROOT
from tests.integration.topology.conftest import (
    END,
    EXPERIMENT,
    INTERVAL,
    Postgres,
    Topology,
    free_port,
    running_topology,
)

pytestmark = pytest.mark.timeout(900)  # stack start-up included; the waits below have their own bounds

WORKERS = ("worker-a", "worker-b")
# Two task slots per worker, four shards: the scheduler queues the four mapped score instances at once and
# one worker can hold only two of them (Airflow's Celery prefetch multiplier is 1).
CONCURRENCY = 2
SHARDS = 4
DAY_START = END - timedelta(days=1)
RUN_ID = "celery-spread"


def _redis(stack: Stack, port: int) -> None:
    """Start a throw-away ``redis-server`` on 127.0.0.1:port (no persistence) and wait for its PING."""
    import redis

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not found: install Debian's redis-server package (see .ci/run)")
    folder = stack.home / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    start(stack, "redis", [*argv, "--dir", str(folder)], stack.airflow_env())
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"redis-server did not answer PING on port {port} within 30 s")


def _workers(topo: Topology) -> None:
    """Start the Celery workers; wait until both answer the broker (``airflow celery list-workers``)."""
    stack = topo.stack
    for name in WORKERS:
        env = stack.airflow_env(
            {
                "FLYWHEEL_CELERY_WORKER": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.topology.worker_name.worker_name",
                "PYTHONPATH": f"{ROOT}:{stack.airflow_env()['PYTHONPATH']}",
            }
        )
        argv = [stack.bin("airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h"]
        # The task logs are read from the shared log folder: no log server (and no port clash between the two).
        argv += ["--concurrency", str(CONCURRENCY), "--skip-serve-logs", "--pid", str(stack.pids / f"{name}.celery")]
        start(stack, f"celery-{name}", argv, env)
    deadline = time.monotonic() + 240
    seen: set[str] = set()
    while time.monotonic() < deadline:
        out = topo.cli("celery", "list-workers", "-o", "json", check=False).stdout
        lines = [line for line in out.splitlines() if line.startswith("[")]
        seen = {w["worker_name"].split("@")[0] for w in json.loads(lines[-1])} if lines else set()
        if seen >= set(WORKERS):
            return
        time.sleep(3)
    raise AssertionError(f"Celery workers registered within 240 s: {sorted(seen)}, expected {list(WORKERS)}")


@pytest.fixture(scope="module")
def celery_topology(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """The topology with the CeleryExecutor: its own MLflow and Airflow databases, Redis, two workers."""
    postgres.create_databases(("mlflow_celery", "airflow_celery"))
    redis_port = free_port()
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.uri("airflow_celery"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CONCURRENCY),
    }
    with running_topology(
        postgres,
        tmp_path_factory.mktemp("celery"),
        databases=("mlflow_celery", "airflow_celery"),
        airflow_env=env,
        sampling={"shards": SHARDS},
        before_airflow=lambda stack: _redis(stack, redis_port),
        after_airflow=_workers,
    ) as topo:
        yield topo


def test_monitor_spreads_over_two_celery_workers_with_the_local_partition(
    celery_topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_flywheel.demo.simulate import simulate

    from genai_flywheel.config import load_config
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.pipeline import run_monitor_interval

    topo = celery_topology
    t0 = time.monotonic()
    simulate(topo.mlflow_uri, EXPERIMENT, days=1, traces_per_day=160, end=END, seed=11, progress=False)
    # The day's busiest interval, so that every one of the shards has sampled traces to score.
    starts = [DAY_START + i * INTERVAL for i in range(4)]
    start_at = max(starts, key=lambda s: len(topo.code_assessments(s, s + INTERVAL)))
    end_at = start_at + INTERVAL

    monitor = topo.dag_id("monitor")
    topo.wait_dag(monitor)
    topo.cli("dags", "unpause", monitor)
    topo.trigger_interval(monitor, RUN_ID, start_at, end_at)
    (run,) = topo.wait_runs(monitor, lambda r: r["dag_run_id"] == RUN_ID, 1, timeout_s=600, api=True)
    assert run["state"] == "success", run
    elapsed = time.monotonic() - t0

    instances = topo.task_instances(monitor, RUN_ID)
    assert {ti["state"] for ti in instances} == {"success"}, {ti["task_id"]: ti["state"] for ti in instances}
    # Every task instance ran on one of the two workers; the mapped ones (score over shards and, where the
    # DAG maps it, extract over time slices) on both.
    assert {ti["hostname"] for ti in instances} <= set(WORKERS), [(ti["task_id"], ti["hostname"]) for ti in instances]
    mapped = [ti for ti in instances if ti["map_index"] >= 0]
    assert len([ti for ti in mapped if ti["task_id"] == "score"]) == SHARDS, mapped
    assert {ti["hostname"] for ti in mapped} == set(WORKERS), [(ti["task_id"], ti["hostname"]) for ti in mapped]
    topo.check_exactly_once(start_at, end_at)

    # The same interval in this process, into another data root: the same partition, byte for byte.
    reference = tmp_path / "reference"
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(reference))
    expected = run_monitor_interval(topo.app, start_at, end_at, config=load_config(topo.config))
    assert expected["write_back"]["written"] == 0, f"the Celery run left scores unwritten: {expected}"
    celery_part = MetricsStore(topo.data_root).partition_path(topo.app, start_at)
    local_part = MetricsStore(reference).partition_path(topo.app, start_at)
    assert celery_part.read_bytes() == local_part.read_bytes(), f"{celery_part} differs from {local_part}"
    print(
        f"celery monitor run {elapsed:.0f} s; task instances per worker: "
        + json.dumps({w: sorted(ti["task_id"] for ti in instances if ti["hostname"] == w) for w in WORKERS})
    )
