"""Completed review items -> one label row per reviewed trace, beside the automated scores of that trace.

A reviewer answers in the MLflow review UI; MLflow stores each answer as an assessment named after the label
schema, with a ``HUMAN`` source (``source_id`` = the reviewer), and the queue item becomes ``complete``.
Per reviewed trace the latest human answer of each schema is kept, with its assessment id for lineage, and
the trace's automated assessments named after the application's scorers (CODE or LLM_JUDGE sources), and
why the trace was queued (a curation rule, or the calibration sample with the item's weight) from the
curation runs' ``review_queue.json``.

Label rows (:func:`labels_schema`) are stored per collection interval under
``review/labels/app=<app>/interval=<label>/labels.parquet`` (replaced whole on a re-run), so the rolling
calibration window reads the intervals it spans.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import HUMAN, to_number
from genai_flywheel.review.backend import COMPLETE
from genai_flywheel.review.queue import CALIBRATION, QUEUE_FILE
from genai_flywheel.review.schemas import mlflow_queue_name

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import Application
    from genai_flywheel.review.backend import ReviewBackend, TraceAssessment

LABELS_FILE = "labels.parquet"


def labels_schema() -> pa.Schema:
    """One row per reviewed trace (and queue)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("trace_id", pa.string(), nullable=False),
            pa.field("queue", pa.string(), nullable=False),
            pa.field("reviewer", pa.string()),
            pa.field("completed_time_ms", pa.int64(), nullable=False),
            pa.field("correct", pa.bool_()),  # the verdict of review.correct_schema (None: not answered)
            pa.field("correction", pa.string()),  # review.correction_schema's text (None: none given)
            pa.field("labels", pa.string(), nullable=False),  # JSON {schema: value} of every human answer
            pa.field("label_ids", pa.string(), nullable=False),  # JSON {schema: assessment_id} (lineage)
            pa.field("scores", pa.string(), nullable=False),  # JSON {scorer: number} of automated scores
            pa.field("source", pa.string()),  # why it was queued: a curation rule or "calibration" (None: unknown)
            pa.field("weight", pa.float64()),  # a calibration item's inclusion weight (None otherwise)
        ]
    )


@dataclass(frozen=True)
class LabelRow:
    """A reviewed trace: the human answers and the automated scores of the same trace."""

    trace_id: str
    queue: str
    reviewer: str | None
    completed_time_ms: int
    correct: bool | None
    correction: str | None
    labels: dict[str, Any]
    label_ids: dict[str, str]
    scores: dict[str, float]
    source: str | None = None
    weight: float | None = None

    @property
    def sampled(self) -> bool:
        """True for an item of the random calibration sample (with its weight): a probability sample."""
        return self.source == CALIBRATION and self.weight is not None

    def to_row(self) -> dict[str, Any]:
        """The row as stored (JSON text for the maps, keys sorted so bytes repeat)."""
        row = dict(self.__dict__)
        for key in ("labels", "label_ids", "scores"):
            row[key] = json.dumps(row[key], sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LabelRow:
        """The inverse of :meth:`to_row` (a partition written before ``source``/``weight`` existed reads as
        items of unknown origin)."""
        decoded = {k: json.loads(row[k]) for k in ("labels", "label_ids", "scores")}
        return cls(**{**row, **decoded})


def _latest(assessments: Iterable[TraceAssessment]) -> dict[str, TraceAssessment]:
    out: dict[str, TraceAssessment] = {}
    for a in sorted(assessments, key=lambda a: (a.create_time_ms, a.assessment_id)):
        out[a.name] = a
    return out


@dataclass(frozen=True)
class Origin:
    """Why a trace was queued: the curation rule or ``calibration`` (with the item's inclusion weight)."""

    source: str
    weight: float | None = None


def queue_origins(data_root: Path | str, app: str) -> dict[tuple[str, str], Origin]:
    """(MLflow queue, trace id) -> :class:`Origin`, from the plans (``review_queue.json``) of ``app``'s
    curation runs. A trace is queued once per queue, so plans do not overlap; should two name the same
    item, the first plan in folder-name order wins (deterministic)."""
    from genai_flywheel.workspace import read_stage_json

    out: dict[tuple[str, str], Origin] = {}
    for plan in sorted((Path(data_root) / "curation" / f"app={app}").glob(f"*/{QUEUE_FILE}")):
        for item in read_stage_json(plan, "curation enqueue_review").get("items", []):
            weight = item.get("weight") if item.get("source") == CALIBRATION else None
            out.setdefault((item["queue"], item["trace_id"]), Origin(item["source"], weight))
    return out


def label_row(
    app: Application,
    queue: str,
    trace_id: str,
    reviewer: str | None,
    completed_ms: int,
    assessments: list[TraceAssessment],
    origin: Origin | None = None,
) -> LabelRow:
    """The label row of one reviewed trace from its assessments (``origin``: why it was queued)."""
    review = app.review
    schemas = {s.name for s in review.label_schemas}
    human = _latest(a for a in assessments if a.source_type == HUMAN and a.name in schemas)
    scorers = {s.name for s in app.scorers}
    auto = _latest(a for a in assessments if a.source_type != HUMAN and a.name in scorers and a.kind == "feedback")
    correct = None
    if review.correct_schema and review.correct_schema in human:
        value = human[review.correct_schema].value
        correct = str(value) == review.correct_value if not isinstance(value, bool) else value
    correction = None
    if review.correction_schema and review.correction_schema in human:
        text = human[review.correction_schema].value
        correction = str(text).strip() or None if text is not None else None
    scores = {name: n for name, a in auto.items() if (n := to_number(a.value)) is not None}
    return LabelRow(
        trace_id=trace_id,
        queue=queue,
        reviewer=reviewer,
        completed_time_ms=completed_ms,
        correct=correct,
        correction=correction,
        labels={name: a.value for name, a in human.items()},
        label_ids={name: a.assessment_id for name, a in human.items()},
        scores=scores,
        source=origin.source if origin else None,
        weight=origin.weight if origin else None,
    )


def collect_labels(
    backend: ReviewBackend,
    app: Application,
    start_ms: int,
    end_ms: int,
    origins: Mapping[tuple[str, str], Origin] | None = None,
) -> list[LabelRow]:
    """The label rows of the items of ``app``'s queues completed in ``[start_ms, end_ms)``, by trace id;
    ``origins`` (see :func:`queue_origins`) says why each was queued."""
    from genai_flywheel.review.schemas import ensure_schemas, queue_key

    rows = []
    ids = ensure_schemas(backend, app.review, sorted({s for q in app.review.queues for s in q.schemas}))
    for spec in app.review.queues:
        name = mlflow_queue_name(app.name, spec.name)
        queue_id = backend.ensure_queue(name, [ids[s] for s in spec.schemas], spec.users, queue_key(spec.name))
        for item in backend.queue_items(queue_id, status=COMPLETE):
            done = item.completed_time_ms or 0
            if start_ms <= done < end_ms:
                found = backend.assessments(item.trace_id)
                origin = (origins or {}).get((name, item.trace_id))
                rows.append(label_row(app, name, item.trace_id, item.completed_by, done, found, origin))
    return sorted(rows, key=lambda r: (r.trace_id, r.queue))


def labels_table(rows: Iterable[LabelRow]) -> pa.Table:
    """The rows as a :func:`labels_schema` table."""
    import pyarrow as pa

    return pa.Table.from_pylist([r.to_row() for r in rows], schema=labels_schema())


class LabelStore:
    """Label partitions per (application, collection interval) under ``root/review/labels``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, app: str, interval_start: datetime) -> Path:
        """The partition file of ``app``'s labels collected in the interval starting at ``interval_start``."""
        from genai_flywheel.metrics.intervals import interval_label
        from genai_flywheel.metrics.store import check_name

        return (
            self.root
            / "review"
            / "labels"
            / f"app={check_name(app)}"
            / f"interval={interval_label(interval_start)}"
            / LABELS_FILE
        )

    def write(self, app: str, interval_start: datetime, rows: Iterable[LabelRow]) -> Path:
        """Replace the interval's partition (an empty one too: a re-run that finds nothing clears it)."""
        from genai_flywheel.workspace import atomic_write_parquet

        return atomic_write_parquet(labels_table(rows), self.path(app, interval_start))

    def read(self, app: str, start: datetime, end: datetime) -> list[LabelRow]:
        """The rows of the intervals starting in ``[start, end)``; a trace reviewed twice keeps its latest row."""
        from genai_flywheel.metrics.intervals import parse_interval_label, to_utc
        from genai_flywheel.metrics.store import check_name
        from genai_flywheel.workspace import read_parquet

        base = self.root / "review" / "labels" / f"app={check_name(app)}"
        latest: dict[tuple[str, str], LabelRow] = {}
        if not base.is_dir():
            return []
        for child in sorted(base.iterdir()):
            begun = parse_interval_label(child.name.removeprefix("interval="))
            part = child / LABELS_FILE
            if begun is None or not part.is_file() or not to_utc(start) <= begun < to_utc(end):
                continue
            for row in read_parquet(part).to_pylist():
                label = LabelRow.from_row(row)
                key = (label.trace_id, label.queue)
                if key not in latest or latest[key].completed_time_ms <= label.completed_time_ms:
                    latest[key] = label
        return sorted(latest.values(), key=lambda r: (r.trace_id, r.queue))
