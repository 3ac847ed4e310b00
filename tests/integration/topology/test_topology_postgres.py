"""The production topology without containers: PostgreSQL, an ``mlflow server`` over it and Airflow over it
(LocalExecutor), driven as an operator would. One simulated day of traffic goes to MLflow over HTTP; the
monitor DAG is backfilled over its four intervals by the real scheduler; the curation DAG is triggered and
its dataset Asset triggers the development evaluation."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from tests.integration.topology.conftest import END, EXPERIMENT, INTERVAL, TERMINAL, Topology, logical_date

pytestmark = pytest.mark.timeout(1200)  # stack start-up included; the waits below have their own bounds

DAY_START = END - timedelta(days=1)
STARTS = [DAY_START + i * INTERVAL for i in range(4)]


def test_backfill_curation_and_asset_triggered_evaluation(topology: Topology) -> None:
    from flywheel_demo.simulate import simulate
    from genai_flywheel.loop import run_folder
    from genai_flywheel.metrics import MetricsStore

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    sim = simulate(topology.mlflow_uri, EXPERIMENT, days=1, traces_per_day=120, end=END, seed=11, progress=False)
    assert sim.n_traces == 120
    timings["simulate"] = time.monotonic() - t0

    # The monitor over the day's four intervals, through `airflow backfill create` and the scheduler.
    t = time.monotonic()
    monitor = topology.dag_id("monitor")
    topology.wait_dag(monitor)
    topology.cli("dags", "unpause", monitor)
    topology.cli(
        "backfill",
        "create",
        "--dag-id",
        monitor,
        "--from-date",
        STARTS[0].isoformat(),
        "--to-date",
        STARTS[-1].isoformat(),
        "--max-active-runs",
        "2",
        "--reprocess-behavior",
        "failed",
    )
    runs = topology.wait_runs(monitor, lambda r: logical_date(r) in STARTS, 4, timeout_s=900)
    timings["monitor backfill"] = time.monotonic() - t
    assert sorted(logical_date(r) for r in runs) == STARTS
    assert {r["run_id"]: r["state"] for r in runs} == {r["run_id"]: "success" for r in runs}

    stored = MetricsStore(topology.data_root).intervals(topology.app)
    assert set(STARTS) <= set(stored), f"metrics partitions missing: {sorted(set(STARTS) - set(stored))}"
    counts = [topology.check_exactly_once(s, s + INTERVAL) for s in STARTS]
    assert sum(c["traces"] for c in counts) == sim.n_traces

    # Curation, triggered for the simulated day; its dataset Asset triggers the development evaluation.
    t = time.monotonic()
    curate, evaluate = topology.dag_id("curate"), topology.dag_id("evaluate")
    topology.wait_dag(curate)
    topology.wait_dag(evaluate)
    topology.cli("dags", "unpause", evaluate)
    topology.cli("dags", "unpause", curate)
    run_id = "topology-curation"
    topology.cli("dags", "trigger", curate, "--conf", json.dumps({"window_end": END.isoformat()}), "-r", run_id)
    (curation,) = topology.wait_runs(curate, lambda r: r["run_id"] == run_id, 1, timeout_s=600)
    assert curation["state"] == "success", curation
    timings["curation"] = time.monotonic() - t
    _check_review_queue(topology, run_id)

    t = time.monotonic()
    evaluations = topology.wait_runs(evaluate, lambda r: r["run_type"] == "asset_triggered", 1, timeout_s=600, api=True)
    timings["evaluation"] = time.monotonic() - t
    done = [r for r in evaluations if r["state"] in TERMINAL]
    assert done, evaluations
    run = done[0]
    # The gate may pass or fail (a verdict on the candidate): every task before it must have succeeded.
    tasks = {ti["task_id"]: ti["state"] for ti in topology.task_instances(evaluate, run["dag_run_id"])}
    assert {k: v for k, v in tasks.items() if k != "gate"} == dict.fromkeys(
        ("load", "run_candidate", "compare", "log"), "success"
    ), tasks
    assert tasks["gate"] in TERMINAL
    summary = run_folder(topology.data_root, "evaluations", topology.app, run["dag_run_id"]) / "summary.json"
    assert summary.is_file(), f"{summary} is missing"
    assert json.loads(summary.read_text()), "summary.json is empty"

    timings["test"] = time.monotonic() - t0
    print("topology timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"per interval: {counts}; evaluation gate: {tasks['gate']}")


def _check_review_queue(topology: Topology, curation_run: str) -> None:
    """The curation run's enqueue_review task made the review queue on the mlflow server (PostgreSQL) and
    attached items; an answer given through MLflow's API is read back as a label."""
    from genai_flywheel.config import load_config
    from genai_flywheel.loop import run_folder
    from genai_flywheel.review.labels import collect_labels
    from genai_flywheel.review.stages import QUEUE_FILE, mlflow_backend
    from genai_flywheel.workspace import read_stage_json

    app = load_config(topology.config).app(topology.app)
    plan = read_stage_json(run_folder(topology.data_root, "curation", topology.app, curation_run) / QUEUE_FILE, "")
    backend = mlflow_backend(app)
    queue_id = plan["queues"][0]["queue_id"]
    items = backend.queue_items(queue_id)
    assert plan["added"] > 0 and len(items) == plan["added"], (plan["queues"], len(items))
    trace_id = items[0].trace_id
    backend.answer(queue_id, trace_id, "reviewer", {app.review.correct_schema: ("feedback", "incorrect")})
    (label,) = [r for r in collect_labels(backend, app, 0, 2**62) if r.trace_id == trace_id]
    assert label.correct is False and label.reviewer == "reviewer"
