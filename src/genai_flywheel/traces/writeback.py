"""Write scores back onto the traces as MLflow assessments, exactly once.

MLflow never de-duplicates assessments (the same name logged twice gives two rows), and a repeated
assessment id is rejected (over HTTP as a 500 the client retries for minutes). So every score carries a
deterministic id (``a-`` + hash of trace, scorer and scorer version), and before writing we read the ids
already on the window's traces (trace infos only: fast) and write only the missing ones. A retry after a
crash half-way, or a re-run of the interval, writes nothing twice.

MLflow has no batch call for assessments, and ``log_assessment`` costs one transaction per row (on SQLite
about 50-500 rows/s). Against a SQL tracking store (``sqlite://``, ``postgresql://``, ...) the rows are
written in batches of :data:`BATCH_SIZE`, one transaction each, doing per batch what the store's
``create_assessment`` does per row (see :func:`genai_flywheel.mlflow_compat.insert_feedbacks`); a batch
the store refuses is written again row by row through ``log_assessment``, so every error names its row.
Against a tracking server (HTTP) rows go through ``log_assessment`` on a few threads.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from genai_flywheel.exceptions import StoreError
from genai_flywheel.mlflow_compat import (
    insert_feedbacks,
    size_http_pool,
    sql_store,
    trace_assessment_ids,
    trace_infos,
    tracing_client,
)
from genai_flywheel.traces.score_errors import BUDGET_SKIP_PREFIX

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


@dataclass
class WriteBackResult:
    written: int = 0
    already_present: int = 0
    not_written: int = 0  # rows that carry nothing to write (budget skips)
    failed: list[str] = field(default_factory=list)
    attempted: int = 0  # rows there was something to write for

    def add(self, other: WriteBackResult) -> None:
        """Count another batch's result in this one."""
        self.written += other.written
        self.already_present += other.already_present
        self.not_written += other.not_written
        self.failed.extend(other.failed)
        self.attempted += other.attempted

    def raise_for_failures(self) -> None:
        """StoreError naming the first failed write, if any (the task retry writes only the missing ones)."""
        if self.failed:
            raise StoreError(
                f"{len(self.failed)} of {self.attempted} assessments could not be written (first: "
                f"{self.failed[0]}); the task retry writes only the missing ones"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "already_present": self.already_present,
            "not_written": self.not_written,
            "failed": len(self.failed),
        }


def existing_assessment_ids(tracking_uri: str, trace_ids: list[str]) -> set[str]:
    """Ids of every assessment already on the traces ``trace_ids`` (the scored ones: a window's other
    traces are never read, so the check grows with the sample, not the window).

    On a SQL store one query per 500 traces over their assessments (overridden ones included: their ids are
    taken too); elsewhere from the trace infos (no spans), 500 per call.
    """
    store = sql_store(tracing_client(tracking_uri))
    if store is not None:
        return trace_assessment_ids(store, sorted(set(trace_ids)))
    return trace_info_assessment_ids(tracking_uri, trace_ids)


def trace_info_assessment_ids(tracking_uri: str, trace_ids: list[str]) -> set[str]:
    """:func:`existing_assessment_ids` through the trace infos (any store, a tracking server too)."""
    try:
        infos = trace_infos(tracking_uri, sorted(set(trace_ids)))
    except Exception as err:  # MLflow raises many kinds; the task retries on StoreError
        raise StoreError(f"reading the trace infos of {len(trace_ids)} traces failed on {tracking_uri}: {err}") from err
    return {a.assessment_id for info in infos for a in info.assessments or []}


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
    raise_on_failure: bool = True,
) -> WriteBackResult:
    """Log every score row whose assessment id is not in ``existing_ids``.

    Budget skips are not written (they are facts about this run's budget, not about the trace). A write
    that fails is collected; if any failed, StoreError is raised after the others were written, so the
    task's retry writes only what is still missing (with ``raise_on_failure=False`` the caller raises, e.g.
    after its other batches, through ``result.raise_for_failures()``).
    """
    client = tracing_client(tracking_uri)
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
        except Exception as err:  # collected and re-raised as one StoreError below
            return f"{row['trace_id']}/{row['scorer']}: {err}"

    outcomes: list[str | None] = []
    store = sql_store(client)
    if store is not None:
        for first in range(0, len(todo), BATCH_SIZE):
            batch = todo[first : first + BATCH_SIZE]
            try:
                outcomes.extend(insert_feedbacks(store, [to_feedback(r, run_context) for r in batch]))
            except Exception as err:  # the batch was rolled back; per row names the culprit
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
    result.attempted = len(todo)
    log.info("write-back: %s", result.as_dict())
    if raise_on_failure:
        result.raise_for_failures()
    return result
