"""Every DAG file imports cleanly under Airflow, fast, with the tags, retries and wiring we rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("mlflow", "pandas", "great_expectations", "pyarrow")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_one_monitor_dag_per_application(dagbag) -> None:
    from genai_flywheel.config import load_config

    apps = [a.name for a in load_config().applications]
    assert {f"flywheel_monitor_{a}" for a in apps} <= set(dagbag.dag_ids)


def test_every_dag_is_tagged_and_retries(dagbag) -> None:
    assert dagbag.dags
    for dag_id, dag in dagbag.dags.items():
        assert "genai-flywheel" in dag.tags, dag_id
        for t in dag.tasks:
            if t.task_id in ("validate", "gate"):
                continue  # a broken contract or a failed gate does not heal by retrying
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
            assert t.retry_exponential_backoff, f"{dag_id}.{t.task_id} retries without backoff"


def test_monitor_stages_in_order(dagbag) -> None:
    dag = next(d for i, d in dagbag.dags.items() if i.startswith("flywheel_monitor_"))
    # reference after write_back: a cold-start profile reads the interval's own scores (see pipeline.reference)
    order = ["extract", "validate", "sample", "score", "write_back", "reference", "aggregate", "store", "alert"]
    for up, down in zip(order, order[1:], strict=False):
        assert down in dag.get_task(up).downstream_task_ids, f"{up} -> {down}"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False


def test_extraction_and_scoring_are_mapped_so_slices_and_shards_run_and_retry_alone(dagbag) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from genai_flywheel.config import load_config

    dag = next(d for i, d in dagbag.dags.items() if i.startswith("flywheel_monitor_"))
    app = load_config().app(dag.dag_id.removeprefix("flywheel_monitor_"))
    extract, score = dag.get_task("extract"), dag.get_task("score")
    assert isinstance(extract, MappedOperator) and isinstance(score, MappedOperator)
    assert extract.op_kwargs_expand_input.value["slice_index"] == list(range(app.extract.slices))
    assert extract.retries >= 1 and score.retries >= 1


def test_dag_files_import_no_heavy_library() -> None:
    """Parsing stays fast: no DAG file pulls mlflow, pandas, pyarrow or great_expectations."""
    code = (
        "import sys, runpy, glob\n"
        f"sys.path.insert(0, {str(ROOT / 'plugins')!r})\n"
        f"for f in sorted(glob.glob({str(ROOT / 'dags' / '*.py')!r})): runpy.run_path(f)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_library_imports_no_airflow() -> None:
    """src/genai_flywheel never imports Airflow: every module imported, then sys.modules checked."""
    code = (
        "import importlib, pkgutil, sys, genai_flywheel\n"
        "for m in pkgutil.walk_packages(genai_flywheel.__path__, 'genai_flywheel.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_curation_sends_selected_traces_to_review_when_queues_are_declared(dagbag) -> None:
    from genai_flywheel.config import load_config

    for app in load_config().applications:
        dag = dagbag.dags[f"flywheel_curate_{app.name}"]
        if app.review.queues:
            assert "enqueue_review" in dag.get_task("select").downstream_task_ids
        else:
            assert "enqueue_review" not in dag.task_ids


def test_one_review_dag_per_application_with_review_queues(dagbag) -> None:
    from genai_flywheel.config import load_config

    for app in load_config().applications:
        dag = dagbag.dags.get(f"flywheel_review_{app.name}")
        assert (dag is not None) == bool(app.review.queues)
        if dag is not None:
            assert dag.task_ids == ["collect"] and dag.max_active_runs == 1


def test_every_task_notifies_its_applications_channels_when_it_fails(dagbag) -> None:
    from flywheel_airflow.notifiers import TaskFailureNotifier

    for dag_id, dag in dagbag.dags.items():
        app = next(t.removeprefix("app:") for t in dag.tags if t.startswith("app:"))
        for t in dag.tasks:
            callbacks = t.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            notifiers = [c for c in callbacks if isinstance(c, TaskFailureNotifier)]
            assert [n.app for n in notifiers] == [app], f"{dag_id}.{t.task_id} does not notify its failure"
