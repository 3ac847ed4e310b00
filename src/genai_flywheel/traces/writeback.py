"""Write scores back onto the traces as MLflow assessments, exactly once.

MLflow never de-duplicates assessments (the same name logged twice gives two rows), and a repeated
assessment id is rejected (over HTTP as a 500 the client retries for minutes). So every score carries a
deterministic id (``a-`` + hash of trace, scorer and scorer version), and before writing we read the ids
already on the window's traces (trace infos only: fast) and write only the missing ones. A retry after a
crash half-way, or a re-run of the interval, writes nothing twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from genai_flywheel.exceptions import StoreError
from genai_flywheel.scoring.budget import BUDGET_SKIP_PREFIX
from genai_flywheel.traces.extract import MAX_PAGE, iter_traces, window_filter

log = logging.getLogger(__name__)


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
    """Ids of every assessment already on the traces of the window [start_ms, end_ms)."""
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

    outcomes: Iterable[str | None]
    if workers > 1:
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
