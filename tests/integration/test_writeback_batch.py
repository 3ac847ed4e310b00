"""The batched write-back on a SQL tracking store writes exactly the rows ``log_assessment`` writes.

Two copies of the same simulated traces: one receives the scores through the batched path, the other
row by row through MLflow's own ``log_assessment``. Their ``assessments`` tables (and, with trace rollups
on, their rollup rebuild queues) must be equal but for creation times. The same checks run on PostgreSQL
in ``topology/test_writeback_postgres.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from genai_flywheel import mlflow_compat
from genai_flywheel.scoring.runner import assessment_id_for
from genai_flywheel.traces import writeback
from genai_flywheel.traces.schema import SCORE_SCHEMA
from genai_flywheel.traces.score_errors import BUDGET_SKIP_PREFIX

EXPERIMENT = "wb-batch"
END = datetime(2026, 11, 20, tzinfo=UTC)
MISSING_TRACE = "tr-00000000000000000000000000000000"
RUN_CONTEXT = {"flywheel.app": "support", "flywheel.interval": "20261119T000000"}
_TIMES = {"created_timestamp", "last_updated_timestamp"}


def simulated_store(uri: str, n: int = 12) -> list[str]:
    """``n`` simulated traces in ``uri`` (deterministic ids: two stores get the same ones); their ids."""
    from mlflow import MlflowClient

    from flywheel_demo.simulate import simulate
    from genai_flywheel.traces.extract import iter_traces

    simulate(uri, EXPERIMENT, days=1, traces_per_day=n, end=END, seed=5, progress=False)
    exp = MlflowClient(uri).get_experiment_by_name(EXPERIMENT)
    return [t.info.trace_id for t in iter_traces(uri, exp.experiment_id, "", include_spans=False)]


def score_rows(trace_ids: list[str]) -> pa.Table:
    """Scores of every kind the monitor writes: numbers, booleans, errors with and without rationale,
    a budget skip (never written) and a score of a trace that does not exist (a failed write)."""
    rows: list[dict[str, Any]] = []

    def add(trace_id: str, scorer: str, value: Any, *, error: str | None = None, rationale: str | None = None):
        rows.append(
            {
                "trace_id": trace_id,
                "app": "support",
                "timestamp_ms": 0,
                "scorer": scorer,
                "scorer_version": "builtin-1",
                "source_type": "LLM_JUDGE" if scorer == "judge" else "CODE",
                "value": None if value is None else json.dumps(value),
                "numeric": None,
                "passed": None,
                "rationale": rationale,
                "error": error,
                "stratum": "errors" if scorer == "refusal" else None,
                "weight": 1.0,
                "assessment_id": assessment_id_for(trace_id, scorer, "builtin-1"),
            }
        )

    for i, tid in enumerate(trace_ids):
        add(tid, "relevance", round(i / len(trace_ids), 3), rationale=f"answer uses {i} of 9 query words")
        add(tid, "refusal", i % 3 == 0)
        add(tid, "judge", "yes" if i % 2 else "no", rationale="the answer addresses the question")
    add(trace_ids[0], "groundedness", None, error="ValueError: no retrieved context")
    add(trace_ids[1], "judge_budget", None, error=f"{BUDGET_SKIP_PREFIX}: over the run's budget")
    add(MISSING_TRACE, "relevance", 0.5)
    return pa.Table.from_pylist(rows, schema=SCORE_SCHEMA)


def assessment_rows(uri: str, ids: set[str]) -> list[dict[str, Any]]:
    """The ``assessments`` rows with ``ids``, creation times left out, in id order."""
    return [{k: v for k, v in r.items() if k not in _TIMES} for r in table_rows(uri, "assessments", ids)]


def table_rows(uri: str, table: str, ids: set[str] | None = None) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()
    if ids is not None:
        rows = [r for r in rows if r["assessment_id"] in ids]
    return sorted(rows, key=lambda r: sorted((k, str(v)) for k, v in r.items()))


def check_batched_equals_row_by_row(
    batched_uri: str, rowwise_uri: str, monkeypatch: pytest.MonkeyPatch, *, setup: Callable[[str], list[str]]
) -> None:
    """The whole comparison, for any pair of empty SQL stores (SQLite here, PostgreSQL in topology/)."""
    from mlflow.store.tracking.dbmodels.models import SqlTraceRollupRebuild
    from mlflow.tracing.client import TracingClient

    trace_ids = setup(batched_uri)
    assert setup(rowwise_uri) == trace_ids and len(trace_ids) >= 3
    scores = score_rows(trace_ids)
    ids = set(scores.column("assessment_id").to_pylist())
    assert writeback.sql_store(TracingClient(tracking_uri=batched_uri)) is not None, "a SQL store is batched"

    # Batched: log_assessment is never called (it would raise here).
    with monkeypatch.context() as m:
        m.setattr(TracingClient, "log_assessment", _refuse)
        with pytest.raises(Exception, match=rf"1 of {scores.num_rows - 1} assessments could not be written"):
            writeback.write_back(batched_uri, scores, existing_ids=set(), run_context=RUN_CONTEXT)
    # Row by row: MLflow's own call, the reference.
    with monkeypatch.context() as m:
        m.setattr(writeback, "sql_store", lambda client: None)
        with pytest.raises(Exception, match=rf"1 of {scores.num_rows - 1} assessments could not be written"):
            writeback.write_back(rowwise_uri, scores, existing_ids=set(), run_context=RUN_CONTEXT)

    batched = assessment_rows(batched_uri, ids)
    assert len(batched) == scores.num_rows - 2  # all but the budget skip and the missing trace
    assert batched == assessment_rows(rowwise_uri, ids)
    rollups = SqlTraceRollupRebuild.__tablename__
    queue = [{k: v for k, v in r.items() if "time" not in k} for r in table_rows(batched_uri, rollups)]
    assert queue == [{k: v for k, v in r.items() if "time" not in k} for r in table_rows(rowwise_uri, rollups)]

    # Through MLflow's API the batched assessments read back as what was scored.
    from mlflow import MlflowClient

    info = MlflowClient(batched_uri).get_trace(trace_ids[1]).info
    by_name = {a.name: a for a in info.assessments if a.assessment_id in ids}
    assert by_name["relevance"].feedback.value == pytest.approx(1 / len(trace_ids), abs=1e-3)
    assert by_name["judge"].source.source_type == "LLM_JUDGE"
    assert by_name["judge"].metadata["flywheel.interval"] == RUN_CONTEXT["flywheel.interval"]
    assert "judge_budget" not in by_name

    # A re-run with the ids already present writes nothing.
    scored = scores.column("trace_id").to_pylist()
    existing = writeback.existing_assessment_ids(batched_uri, scored)
    assert existing == writeback.trace_info_assessment_ids(batched_uri, scored)
    # Only the named traces are read: one trace's ids are exactly the assessments on it.
    assert ids & writeback.existing_assessment_ids(batched_uri, [trace_ids[1]]) == {
        a.assessment_id for a in info.assessments if a.assessment_id in ids
    }
    assert ids - existing == {assessment_id_for(MISSING_TRACE, "relevance", "builtin-1"), _budget_id(trace_ids)}
    valid = scores.filter(pa.compute.not_equal(scores.column("trace_id"), MISSING_TRACE))
    again = writeback.write_back(batched_uri, valid, existing_ids=existing, run_context=RUN_CONTEXT)
    assert (again.written, again.already_present, again.not_written) == (0, valid.num_rows - 1, 1)
    assert assessment_rows(batched_uri, ids) == batched


def _budget_id(trace_ids: list[str]) -> str:
    return assessment_id_for(trace_ids[1], "judge_budget", "builtin-1")


def _refuse(self: Any, trace_id: str, assessment: Any) -> Any:
    raise AssertionError("the batched path must not call log_assessment")


@pytest.mark.parametrize("rollups", [False, True], ids=["rollups-off", "rollups-on"])
def test_batched_write_back_equals_log_assessment_on_sqlite(
    tmp_path, monkeypatch: pytest.MonkeyPatch, rollups: bool
) -> None:
    monkeypatch.setenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", str(rollups).lower())
    check_batched_equals_row_by_row(
        f"sqlite:///{tmp_path / 'batched.db'}",
        f"sqlite:///{tmp_path / 'rowwise.db'}",
        monkeypatch,
        setup=simulated_store,
    )
    if rollups:  # the queue comparison above compared something
        assert table_rows(f"sqlite:///{tmp_path / 'batched.db'}", "sql_trace_rollup_rebuild_queue")


def test_a_refused_batch_is_written_row_by_row_and_names_the_culprit(
    sqlite_tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id written meanwhile by someone else makes the batch's INSERT fail: the batch is rolled back
    and written row by row, so only that row fails and its error names it."""
    from mlflow.tracing.client import TracingClient

    trace_ids = simulated_store(sqlite_tracking_uri, n=6)
    scores = score_rows(trace_ids)
    scores = scores.filter(pa.compute.not_equal(scores.column("trace_id"), MISSING_TRACE))
    first = scores.slice(0, 1).to_pylist()[0]
    TracingClient(tracking_uri=sqlite_tracking_uri).log_assessment(
        first["trace_id"], writeback.to_feedback(first, RUN_CONTEXT)
    )
    with pytest.raises(Exception, match=rf"1 of {scores.num_rows - 1} .*{first['trace_id']}/{first['scorer']}"):
        writeback.write_back(sqlite_tracking_uri, scores, existing_ids=set(), run_context=RUN_CONTEXT)
    ids = set(scores.column("assessment_id").to_pylist())
    written = assessment_rows(sqlite_tracking_uri, ids)
    assert len(written) == scores.num_rows - 1  # every row once (the budget skip is not written)
    assert len({r["assessment_id"] for r in written}) == len(written)


def test_batched_rows_fill_every_assessments_column() -> None:
    """A column a newer MLflow adds must not be left to its default silently: fail here first."""
    from mlflow.entities import AssessmentSource, Feedback
    from mlflow.store.tracking.dbmodels.models import SqlAssessments

    fb = Feedback(name="relevance", value=0.5, source=AssessmentSource(source_type="CODE", source_id="x"))
    fb.trace_id = "tr-1"
    assert set(mlflow_compat.assessment_row(fb, 1, 2)) == {c.name for c in SqlAssessments.__table__.columns}
