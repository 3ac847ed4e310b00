"""The SQL-store half of ``genai_flywheel.mlflow_compat``'s contract tests, on a real SQLite store (the
signatures and columns are checked in ``tests/unit/core/test_mlflow_compat.py``)."""

from __future__ import annotations

from genai_flywheel import mlflow_compat


def test_the_batched_insert_runs_against_a_real_store_and_reports_a_missing_trace(sqlite_tracking_uri: str) -> None:
    """``insert_feedbacks`` opens a write session, validates trace access, enqueues rollups, locks the trace
    rows (``SqlAlchemyStore._validate_trace_accessible`` / ``_apply_trace_row_lock``) and reports a feedback
    whose trace is missing instead of writing it; ``trace_assessment_ids`` queries the SQL models and
    ``trace_infos`` reads trace infos by id."""
    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSource, Feedback

    MlflowClient(sqlite_tracking_uri).create_experiment("compat")  # the store and its tables exist
    store = mlflow_compat.sql_store(mlflow_compat.tracing_client(sqlite_tracking_uri))
    assert store is not None, "a sqlite:// tracking URI is served by SqlAlchemyStore"
    fb = Feedback(name="relevance", value=1.0, source=AssessmentSource(source_type="CODE", source_id="x"))
    fb.trace_id, fb.assessment_id = "tr-missing", "a-1"
    assert mlflow_compat.insert_feedbacks(store, [fb]) == ["tr-missing/relevance: trace 'tr-missing' not found"]
    assert mlflow_compat.trace_assessment_ids(store, ["tr-missing"]) == set()
    assert mlflow_compat.trace_infos(sqlite_tracking_uri, ["tr-missing"]) == []
