"""Write scores back onto the traces as MLflow assessments, exactly once.

MLflow never de-duplicates assessments (the same name logged twice gives two rows), and a repeated
assessment id is rejected (over HTTP as a 500 the client retries for minutes). So every score carries a
deterministic id (``a-`` + hash of trace, scorer and scorer version), and before writing we read the ids
already on the window's traces (trace infos only: fast) and write only the missing ones. A retry after a
crash half-way, or a re-run of the interval, writes nothing twice.

MLflow has no batch call for assessments, and ``log_assessment`` costs one transaction per row (on SQLite
about 50-500 rows/s). Against a SQL tracking store (``sqlite://``, ``postgresql://``, ...) the rows are
written in batches of :data:`BATCH_SIZE`, one transaction each, doing per batch what the store's
``create_assessment`` does per row (see :func:`_insert_batch`); a batch the store refuses is written again
row by row through ``log_assessment``, so every error names its row. Against a tracking server (HTTP)
rows go through ``log_assessment`` on a few threads.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from genai_flywheel.exceptions import StoreError
from genai_flywheel.scoring.budget import BUDGET_SKIP_PREFIX
from genai_flywheel.traces.extract import MAX_PAGE, iter_traces, window_filter

log = logging.getLogger(__name__)

#: Assessments per transaction on a SQL store: big enough to amortise the commit, small enough that a
#: refused batch re-written row by row costs little (on SQLite each commit is an fsync: 500 rows per
#: batch spent a quarter of the write-back committing).
BATCH_SIZE = 2000

#: Writer threads against a tracking server (``log_assessment`` per row). Measured with
#: ``benchmarks/writeback_server.py`` (benchmarks/README.md has the table): an ``mlflow server`` with 2
#: workers, on SQLite or PostgreSQL, tops out at 60-95 assessments/s from 4-8 threads on; 16 and 32
#: threads gain nothing. 8 stays within MLflow's default HTTP pool of 10 connections.
HTTP_WORKERS = 8

#: MLflow's HTTP connection pool size (``pool_maxsize`` of its requests adapter, default 10).
HTTP_POOL_ENV = "MLFLOW_HTTP_POOL_MAXSIZE"


@dataclass
class WriteBackResult:
    written: int = 0
    already_present: int = 0
    not_written: int = 0  # rows that carry nothing to write (budget skips)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "already_present": self.already_present,
            "not_written": self.not_written,
            "failed": len(self.failed),
        }


def existing_assessment_ids(tracking_uri: str, experiment_id: str, start_ms: int, end_ms: int) -> set[str]:
    """Ids of every assessment already on the traces of the window [start_ms, end_ms).

    On a SQL store one query over the assessments of the window's traces (overridden ones included: their
    ids are taken too); elsewhere from the trace infos (no spans).
    """
    from mlflow.tracing.client import TracingClient

    store = sql_store(TracingClient(tracking_uri=tracking_uri))
    if store is not None:
        from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo

        with store.ManagedSessionMaker() as session:
            query = (
                session.query(SqlAssessments.assessment_id)
                .join(SqlTraceInfo, SqlTraceInfo.request_id == SqlAssessments.trace_id)
                .filter(
                    SqlTraceInfo.experiment_id == int(experiment_id),
                    SqlTraceInfo.timestamp_ms >= int(start_ms),
                    SqlTraceInfo.timestamp_ms < int(end_ms),
                )
            )
            return {aid for (aid,) in query}
    return trace_info_assessment_ids(tracking_uri, experiment_id, start_ms, end_ms)


def trace_info_assessment_ids(tracking_uri: str, experiment_id: str, start_ms: int, end_ms: int) -> set[str]:
    """:func:`existing_assessment_ids` through ``search_traces`` (any store, a tracking server too)."""
    ids: set[str] = set()
    for trace in iter_traces(
        tracking_uri, experiment_id, window_filter(start_ms, end_ms), include_spans=False, page_size=MAX_PAGE
    ):
        ids.update(a.assessment_id for a in trace.info.assessments or [])
    return ids


def to_feedback(row: dict[str, Any], run_context: dict[str, str]) -> Any:
    """The MLflow Feedback for one score row (value, or the error that kept it from being scored)."""
    from mlflow.entities import AssessmentError, AssessmentSource, Feedback

    metadata = {"scorer_version": row["scorer_version"], "stratum": row.get("stratum") or "", **run_context}
    error = None
    value = None
    if row.get("error"):
        error = AssessmentError(error_code="SCORER_ERROR", error_message=row["error"][:1000])
    else:
        value = json.loads(row["value"]) if row.get("value") is not None else None
    fb = Feedback(
        name=row["scorer"],
        value=value,
        error=error,
        rationale=row.get("rationale"),
        source=AssessmentSource(source_type=row["source_type"], source_id=f"{row['scorer']}@{row['scorer_version']}"),
        metadata={k: str(v) for k, v in metadata.items()},
    )
    fb.assessment_id = row["assessment_id"]
    fb.trace_id = row["trace_id"]
    return fb


def write_back(
    tracking_uri: str,
    scores: pa.Table,
    *,
    existing_ids: set[str],
    run_context: dict[str, str],
    workers: int = 1,
) -> WriteBackResult:
    """Log every score row whose assessment id is not in ``existing_ids``.

    Budget skips are not written (they are facts about this run's budget, not about the trace). A write
    that fails is collected; if any failed, StoreError is raised after the others were written, so the
    task's retry writes only what is still missing.
    """
    from mlflow.tracing.client import TracingClient

    client = TracingClient(tracking_uri=tracking_uri)
    result = WriteBackResult()
    todo: list[dict[str, Any]] = []
    for row in scores.to_pylist():
        if row["assessment_id"] in existing_ids:
            result.already_present += 1
        elif (row.get("error") or "").startswith(BUDGET_SKIP_PREFIX):
            result.not_written += 1
        else:
            todo.append(row)

    def _write(row: dict[str, Any]) -> str | None:
        try:
            client.log_assessment(row["trace_id"], to_feedback(row, run_context))
            return None
        except Exception as err:  # noqa: BLE001 - collected and re-raised as one StoreError below
            return f"{row['trace_id']}/{row['scorer']}: {err}"

    outcomes: list[str | None] = []
    store = sql_store(client)
    if store is not None:
        for first in range(0, len(todo), BATCH_SIZE):
            batch = todo[first : first + BATCH_SIZE]
            try:
                outcomes.extend(_insert_batch(store, [to_feedback(r, run_context) for r in batch]))
            except Exception as err:  # noqa: BLE001 - the batch was rolled back; per row names the culprit
                log.warning("batch of %d assessments refused (%s); writing it row by row", len(batch), err)
                outcomes.extend(_write(r) for r in batch)
    elif workers > 1:
        size_http_pool(workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_write, todo))
    else:
        outcomes = [_write(r) for r in todo]
    for outcome in outcomes:
        if outcome is None:
            result.written += 1
        else:
            result.failed.append(outcome)
    log.info("write-back: %s", result.as_dict())
    if result.failed:
        raise StoreError(
            f"{len(result.failed)} of {len(todo)} assessments could not be written (first: "
            f"{result.failed[0]}); the task retry writes only the missing ones"
        )
    return result


def size_http_pool(size: int, *, grow_only: bool = True) -> None:
    """Make MLflow's HTTP session keep ``size`` connections to a server (with ``grow_only``: at least).

    With more threads than pooled connections, urllib3 closes every connection it cannot put back
    ("Connection pool is full, discarding connection") and the next request opens a new one. MLflow
    reads the size from the environment once per process, when it builds its cached session, so the
    cached session is dropped here and the next request builds one with the new size.
    """
    from mlflow.environment_variables import MLFLOW_HTTP_POOL_MAXSIZE
    from mlflow.utils import request_utils

    current = MLFLOW_HTTP_POOL_MAXSIZE.get()
    if size == current or (grow_only and size < current):
        return
    os.environ[HTTP_POOL_ENV] = str(size)
    request_utils._cached_get_request_session.cache_clear()


def sql_store(client: Any) -> Any | None:
    """The ``SqlAlchemyStore`` behind a ``TracingClient``, or None (a tracking server, another store)."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:  # a trimmed MLflow (mlflow-skinny) has no SQL store
        return None
    store = client.store
    return store if isinstance(store, SqlAlchemyStore) else None


def _insert_batch(store: Any, feedbacks: list[Any]) -> list[str | None]:
    """Insert ``feedbacks`` in one transaction of ``store``; one outcome per feedback: None when written,
    else why not (its trace does not exist).

    This is MLflow 3.17's ``SqlAlchemyStore.create_assessment`` done once per batch instead of once per
    row, in the same order: validate access to the traces, invalidate the affected trace-rollup
    partitions (a no-op unless rollups are enabled) before locking the trace rows, lock them in
    request_id order, re-read their routing fields and start over if a concurrent writer moved a trace
    in between, then insert the rows (:func:`_assessment_row`) with one multi-row INSERT. The rows must
    be the ones ``log_assessment`` writes: ``tests/integration/test_writeback_batch.py`` compares them on
    SQLite and PostgreSQL. Any store error raises, and the session is rolled back: nothing of the batch
    is written.
    """
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
    from mlflow.store.tracking.utils.sql_trace_rollups import RollupFamily, enqueue_rollup_rebuild_partitions

    trace_ids = sorted({fb.trace_id for fb in feedbacks})
    columns = (SqlTraceInfo.request_id, SqlTraceInfo.experiment_id, SqlTraceInfo.timestamp_ms)

    def routing(query: Any) -> dict[str, tuple[int, int]]:
        found = query.filter(SqlTraceInfo.request_id.in_(trace_ids)).order_by(SqlTraceInfo.request_id).all()
        return {rid: (int(exp), int(ts)) for rid, exp, ts in found}

    while True:
        with store.ManagedSessionMaker(read_only=False) as session:
            for trace_id in trace_ids:
                store._validate_trace_accessible(session, trace_id)
            snapshot = routing(session.query(*columns))
            by_experiment: dict[int, list[int]] = {}
            for exp, ts in snapshot.values():
                by_experiment.setdefault(exp, []).append(ts)
            enqueue_rollup_rebuild_partitions(
                session, [(RollupFamily.ASSESSMENT, exp, ts) for exp, ts in sorted(by_experiment.items())]
            )
            if routing(store._apply_trace_row_lock(session.query(*columns))) != snapshot:
                session.rollback()
                continue
            outcomes: list[str | None] = []
            values = []
            for fb in feedbacks:
                if fb.trace_id not in snapshot:
                    outcomes.append(f"{fb.trace_id}/{fb.name}: trace {fb.trace_id!r} not found")
                    continue
                values.append(_assessment_row(fb, *snapshot[fb.trace_id]))
                outcomes.append(None)
            if values:
                session.execute(sa.insert(SqlAssessments.__table__), values)
            return outcomes


def _assessment_row(feedback: Any, experiment_id: int, trace_timestamp_ms: int) -> dict[str, Any]:
    """The ``assessments`` row of a Feedback: MLflow 3.17's ``SqlAssessments.from_mlflow_entity`` plus
    the two denormalised columns ``create_assessment`` sets, as a plain dict (building ORM objects costs
    more than the INSERT itself)."""
    from mlflow.store.tracking.utils.trace_analytics import assessment_aggregate

    if feedback.feedback is None:
        raise TypeError(f"only feedback is written in batches, got {feedback!r}")
    now = int(time.time() * 1000)
    value = feedback.feedback.value
    aggregate_value, is_numeric_value = assessment_aggregate(value)
    error = feedback.feedback.error
    return {
        "assessment_id": feedback.assessment_id,
        "trace_id": feedback.trace_id,
        "name": feedback.name,
        "assessment_type": "feedback",
        "value": json.dumps(value),
        "error": json.dumps(error.to_dictionary()) if error else None,
        "created_timestamp": feedback.create_time_ms or now,
        "last_updated_timestamp": feedback.last_update_time_ms or now,
        "experiment_id": experiment_id,
        "trace_timestamp_ms": trace_timestamp_ms,
        "aggregate_value": aggregate_value,
        "is_numeric_value": is_numeric_value,
        "source_type": feedback.source.source_type,
        "source_id": feedback.source.source_id,
        "run_id": feedback.run_id,
        "span_id": feedback.span_id,
        "rationale": feedback.rationale,
        "overrides": feedback.overrides,
        "valid": True,
        "assessment_metadata": json.dumps(feedback.metadata) if feedback.metadata else None,
    }
