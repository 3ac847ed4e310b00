"""A task that fails for good notifies through the application's webhook connection, as Airflow runs the
DAGs' ``on_failure_callback`` (``dag.test()`` on a real metadata DB)."""

from __future__ import annotations

import json

import pytest

from tests.stubs.http_receiver import HttpReceiver

TOKEN = "tok-failure-0123456789"


PROBE_DAG = """
from datetime import UTC, datetime

from airflow.sdk import dag, task
from flywheel_airflow.settings import DEFAULT_ARGS
from flywheel_airflow.notifiers import TaskFailureNotifier

ARGS = {**DEFAULT_ARGS, "retries": 0}
ARGS["on_failure_callback"] = TaskFailureNotifier("demo", webhook_conn_id="flywheel_webhook")


@dag(schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), default_args=ARGS)
def flywheel_failure_probe():
    @task
    def boom() -> None:
        raise RuntimeError("the tracking server is gone")

    boom()


flywheel_failure_probe()
"""


def test_a_failed_task_posts_task_failed_to_the_webhook(
    airflow_db, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    # dag.test() runs a DAG of the configured dags folder: the probe gets one of its own.
    (tmp_path / "probe.py").write_text(PROBE_DAG)
    monkeypatch.setattr("airflow.settings.DAGS_FOLDER", str(tmp_path))
    dag = DagBag(dag_folder=str(tmp_path)).get_dag("flywheel_failure_probe")
    with HttpReceiver() as receiver, caplog.at_level("INFO"):
        conn = {"conn_type": "http", "host": f"{receiver.url}/hook", "password": TOKEN}
        monkeypatch.setenv("AIRFLOW_CONN_FLYWHEEL_WEBHOOK", json.dumps(conn))
        dag.test()
    [(_, _, headers, payload)] = receiver.requests
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert (payload["app"], payload["dag_id"], payload["task_id"], payload["try_number"]) == (
        "demo",
        "flywheel_failure_probe",
        "boom",
        1,
    )
    assert payload["run_id"] and "/dags/flywheel_failure_probe/runs/" in payload["log_url"]
    assert payload["error"] == "RuntimeError: the tracking server is gone"
    assert TOKEN not in caplog.text
