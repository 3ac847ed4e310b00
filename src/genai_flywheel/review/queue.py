"""Which traces a review queue gets after a curation run, and the idempotent writer.

A queue (``review.queues`` in ``flywheel.yaml``) takes, in this order:

1. the traces its curation ``rules`` selected in the run (in the rules' own ranking: worst first), then
2. a calibration sample of the run's window: each trace has a permanent number ``u = sha256(seed|queue|t)``;
   traces with ``u < calibration_rate`` are eligible, grouped by the application's sampling strata and
   taken round-robin across strata (smallest ``u`` first) up to ``calibration_cap``. Each calibration item
   carries its weight (eligible traces of its stratum / picked ones) so statistics can be reweighted.

Left out: traces already attached to the queue (in any status) and traces a person already answered one of
the queue's questions on (a ``HUMAN`` assessment named after one of its label schemas). At most ``cap`` new
items are added per run, the calibration sample's kept within it (the rules' traces fill the rest). The
stage records a run's plan (``review_queue.json``) before adding, and a re-run of the same curation run
re-adds that plan (attaching is idempotent), so a retry adds nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import HUMAN
from genai_flywheel.review.schemas import mlflow_queue_name, queue_key
from genai_flywheel.traces.sampling import assign_strata, unit_hash

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import ReviewQueueSpec, Sampling
    from genai_flywheel.review.backend import ReviewBackend

log = logging.getLogger(__name__)

CALIBRATION = "calibration"
QUEUE_FILE = "review_queue.json"  # a curation run's review-queue plan, in its run folder


@dataclass(frozen=True)
class Candidate:
    """A trace proposed for review, with where it came from (a curation rule or ``calibration``)."""

    trace_id: str
    source: str
    stratum: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class QueueResult:
    """What one queue write did."""

    queue: str
    queue_id: str
    added: list[Candidate]
    already_queued: int
    already_reviewed: int
    over_cap: int

    def summary(self) -> dict[str, Any]:
        """Counts (JSON-able) for the task's return value."""
        per_source: dict[str, int] = {}
        for c in self.added:
            per_source[c.source] = per_source.get(c.source, 0) + 1
        return {
            "queue": self.queue,
            "queue_id": self.queue_id,
            "added": len(self.added),
            "added_per_source": per_source,
            "already_queued": self.already_queued,
            "already_reviewed": self.already_reviewed,
            "over_cap": self.over_cap,
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per added item (for the run's ``review_queue.parquet``)."""
        return [{"queue": self.queue, "queue_id": self.queue_id, **asdict(c)} for c in self.added]


def reviewed_traces(traces: pa.Table, schemas: Iterable[str]) -> set[str]:
    """Trace ids with a HUMAN assessment named after one of ``schemas`` in the ``assessments`` column."""
    names = set(schemas)
    if "assessments" not in traces.column_names:
        return set()
    out = set()
    for trace_id, assessments in zip(
        traces.column("trace_id").to_pylist(), traces.column("assessments").to_pylist(), strict=True
    ):
        if any(a.get("source_type") == HUMAN and a.get("name") in names for a in assessments or ()):
            out.add(trace_id)
    return out


def rule_candidates(selected: pa.Table, rules: Sequence[str]) -> list[Candidate]:
    """The traces the curation ``rules`` selected, in selection order (rule priority, then rank)."""
    if not rules or selected.num_rows == 0:
        return []
    wanted = set(rules)
    return [
        Candidate(trace_id, rule)
        for trace_id, rule in zip(
            selected.column("trace_id").to_pylist(), selected.column("rule").to_pylist(), strict=True
        )
        if rule in wanted
    ]


def calibration_candidates(
    traces: pa.Table, spec: ReviewQueueSpec, sampling: Sampling, exclude: set[str], *, app: str
) -> list[Candidate]:
    """The stratified calibration sample of ``traces`` (see the module docstring), ``exclude`` left out."""
    if spec.calibration_rate <= 0 or spec.calibration_cap <= 0 or traces.num_rows == 0:
        return []
    seed = f"{sampling.seed}|review|{app}|{spec.name}"
    eligible: dict[str, list[tuple[float, str]]] = {}
    for trace_id, stratum in zip(traces.column("trace_id").to_pylist(), assign_strata(traces, sampling), strict=True):
        u = unit_hash(seed, trace_id)
        if u < spec.calibration_rate and trace_id not in exclude:
            eligible.setdefault(stratum, []).append((u, trace_id))
    queues = {name: sorted(rows) for name, rows in sorted(eligible.items())}
    picked: dict[str, list[str]] = {name: [] for name in queues}
    depth, total = 0, 0
    while total < spec.calibration_cap and any(depth < len(q) for q in queues.values()):
        for name, rows in queues.items():
            if depth < len(rows) and total < spec.calibration_cap:
                picked[name].append(rows[depth][1])
                total += 1
        depth += 1
    out = []
    for name, ids in picked.items():
        for trace_id in ids:
            out.append(Candidate(trace_id, CALIBRATION, name, len(queues[name]) / len(ids)))
    return sorted(out, key=lambda c: unit_hash(seed, c.trace_id))


def enqueue(
    backend: ReviewBackend,
    app: str,
    spec: ReviewQueueSpec,
    schema_ids: Sequence[str],
    *,
    selected: pa.Table,
    traces: pa.Table,
    sampling: Sampling,
    add: bool = True,
) -> QueueResult:
    """Create the queue if needed and choose this run's new items (capped); add them unless ``add`` is
    false (the stage records its plan first and adds after, so a retried run re-adds the same items)."""
    name = mlflow_queue_name(app, spec.name)
    queue_id = backend.ensure_queue(name, schema_ids, spec.users, queue_key(spec.name))
    queued = {item.trace_id for item in backend.queue_items(queue_id)}
    reviewed = reviewed_traces(traces, spec.schemas)
    seen: set[str] = set()
    fresh: list[Candidate] = []
    already_queued = already_reviewed = 0
    for candidate in rule_candidates(selected, spec.rules):
        if candidate.trace_id in seen:
            continue
        seen.add(candidate.trace_id)
        if candidate.trace_id in queued:
            already_queued += 1
        elif candidate.trace_id in reviewed:
            already_reviewed += 1
        else:
            fresh.append(candidate)
    # Calibration leaves out what the rules chose: a random sample must not lean towards bad traces. Its items
    # are kept within the cap and the rules' traces fill the rest: rules that always fill the cap would
    # otherwise starve the only unbiased labels the judges are calibrated on.
    calibration = calibration_candidates(traces, spec, sampling, seen | queued | reviewed, app=app)[: spec.cap]
    added = fresh[: spec.cap - len(calibration)] + calibration
    fresh.extend(calibration)
    if add:
        backend.add_items(queue_id, [c.trace_id for c in added])
    log.info(
        "review queue %s: %d added, %d already queued, %d already reviewed, %d over the cap of %d",
        name,
        len(added),
        already_queued,
        already_reviewed,
        len(fresh) - len(added),
        spec.cap,
    )
    return QueueResult(name, queue_id, added, already_queued, already_reviewed, len(fresh) - len(added))
