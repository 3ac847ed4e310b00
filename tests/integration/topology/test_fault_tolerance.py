"""Fault tolerance of the monitor against a crashed MLflow server, on the production topology.

The mlflow server's whole process group is SIGKILLed while a monitor run writes its scores back to the
traces; a task fails and goes up for retry; the server is started again on the same port; the retries
finish the run. The interval must end exactly as an undisturbed run ends: every score on its trace once
(none lost, none twice) and a metrics partition byte-identical to the one the same interval gets when
computed in-process, afterwards, into another data root.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.topology.conftest import END, EXPERIMENT, INTERVAL, TERMINAL, Topology

pytestmark = pytest.mark.timeout(1200)  # stack start-up included when this file runs first

# A day of traffic the topology test does not monitor, and its busiest interval (12:00-18:00 UTC).
FAULT_END = END - timedelta(days=1)
START = FAULT_END - timedelta(hours=12)
STOP = START + INTERVAL
RUN_ID = "fault-tolerance"
KILL_AT = "write_back"  # the task that writes the assessments
LATER = ("aggregate", "store", "alert")  # still talk to MLflow (store) or come after it
MIN_OUTAGE_S = 10


def _states(topology: Topology, dag_id: str) -> dict[str, list[dict]]:
    by_task: dict[str, list[dict]] = {}
    for ti in topology.task_instances(dag_id, RUN_ID):
        by_task.setdefault(ti["task_id"], []).append(ti)
    return by_task


def _run_state(topology: Topology, dag_id: str) -> str:
    return next(r["state"] for r in topology.api_runs(dag_id) if r["dag_run_id"] == RUN_ID)


def test_killed_mlflow_server_costs_a_retry_not_a_lost_or_duplicated_score(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flywheel_demo.simulate import simulate
    from genai_flywheel.config import load_config
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.workspace import IntervalWorkspace

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    simulate(topology.mlflow_uri, EXPERIMENT, days=1, traces_per_day=120, end=FAULT_END, seed=23, progress=False)
    timings["simulate"] = time.monotonic() - t0

    monitor = topology.dag_id("monitor")
    topology.wait_dag(monitor)
    topology.cli("dags", "unpause", monitor)
    # A run of exactly this interval, under a known id (a backfill of another test may still be active).
    topology.trigger_interval(monitor, RUN_ID, START, STOP)

    # Kill the server while write_back writes: as soon as the first of its assessments is on the server,
    # so that some are written and the rest are not (the case exactly-once is about). When the writes were
    # missed between two polls, kill it anyway once a later task started: the store task needs MLflow too.
    t = time.monotonic()
    killed_during = None
    while killed_during is None:
        assert time.monotonic() - t < 600, f"{KILL_AT} did not start within 600 s: {_states(topology, monitor)}"
        states = {task: tis[0]["state"] for task, tis in _states(topology, monitor).items()}
        assert states.get("alert") != "success", f"the run finished before the kill: {states}"
        if states.get(KILL_AT) == "running":
            written = sum(len(a) for a in topology.code_assessments(START, STOP).values())
            if written:
                killed_during = f"{KILL_AT}, {written} assessments written"
        elif started := [task for task in LATER if states.get(task) not in (None, "scheduled", "queued")]:
            killed_during = started[0]
        if killed_during is None:
            time.sleep(0.3)
    timings["run until the kill"] = time.monotonic() - t
    topology.kill_mlflow()
    killed_at = time.monotonic()

    # The outage must fail a task, which Airflow then schedules for a retry.
    retried: list[str] = []
    while not retried:
        assert time.monotonic() - killed_at < 300, f"no task failed for the outage: {_states(topology, monitor)}"
        retried = [
            f"{task}[{ti['map_index']}]" if ti["map_index"] >= 0 else task
            for task, tis in _states(topology, monitor).items()
            for ti in tis
            if ti["state"] == "up_for_retry"
        ]
        time.sleep(0.5)
    timings["kill until up_for_retry"] = time.monotonic() - killed_at
    time.sleep(max(0.0, MIN_OUTAGE_S - (time.monotonic() - killed_at)))
    timings["mlflow restart"] = topology.start_mlflow()
    timings["outage"] = time.monotonic() - killed_at

    t = time.monotonic()
    while (state := _run_state(topology, monitor)) not in TERMINAL:
        assert time.monotonic() - t < 600, f"the run did not finish after the restart: {_states(topology, monitor)}"
        time.sleep(3)
    timings["restart until the run finished"] = time.monotonic() - t
    final = _states(topology, monitor)
    assert state == "success", f"the run ended {state}: {final}"
    tries = {task: max(ti["try_number"] for ti in tis) for task, tis in final.items()}
    assert any(n >= 2 for n in tries.values()), f"no task was retried: {tries}"

    # Exactly once, read from the server before anything else could heal a loss.
    counts = topology.check_exactly_once(START, STOP)
    ws = IntervalWorkspace.of(topology.data_root, topology.app, START, STOP)
    last_write_back = json.loads(ws.path("writeback.json").read_text())

    # The same interval computed in-process, undisturbed, into another data root, against the same store.
    from genai_flywheel.pipeline import run_monitor_interval

    t = time.monotonic()
    other_root = tmp_path / "expected"
    # With the reference profiles the disturbed run used: a profile is learned once per refresh period from
    # what MLflow held then (an earlier backfill's run may have learned it before later write-backs).
    shutil.copytree(Path(topology.data_root) / "segments", other_root / "segments")
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(other_root))
    expected = run_monitor_interval(topology.app, START, STOP, config=load_config(topology.config))
    timings["in-process run"] = time.monotonic() - t
    assert expected["write_back"]["written"] == 0, f"the disturbed run left scores unwritten: {expected}"
    assert expected["write_back"]["already_present"] == counts["assessments"]
    disturbed = MetricsStore(topology.data_root).partition_path(topology.app, START)
    undisturbed = MetricsStore(other_root).partition_path(topology.app, START)
    assert disturbed.read_bytes() == undisturbed.read_bytes(), f"{disturbed} differs from {undisturbed}"

    timings["test"] = time.monotonic() - t0
    print("fault-tolerance timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(
        f"killed during {killed_during}; up for retry: {retried}; tries: {tries}; "
        f"write-back of the last attempt: {last_write_back}; interval: {counts}"
    )
