"""The candidates of a ``segment_alerts`` curation rule: traces of a segment a per-segment alert fired on.

A per-segment alert rule (``alerts[].segment``) that fires names a dimension and a segment key in the alert
event log (see :class:`genai_flywheel.alerts.state.AlertStore`). Its evidence is the segment's traces of the
interval it fired in: those are what people should look at and what the next evaluation dataset should
hold. This module reads the event log, keeps the ``firing`` evaluations of the followed rules inside the
curation window, and marks every trace of the curation table that belongs to such a segment in such an
interval; the segment key of a trace is computed exactly as the monitor computed it
(:func:`genai_flywheel.segments.dimensions.dimension_keys`, with the interval's stored reference profile for
query clusters). The pooled ``other`` segment has no single identity (its members changed with the
interval's top-K) and is not followed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.metrics.segment_schema import OTHER

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import AlertRule, Application, CurationRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertedSegment:
    """One segment a followed alert rule found significantly bad in one monitor interval."""

    rule: str
    dimension: str
    segment: str
    label: str | None
    interval_start_ms: int
    interval_end_ms: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the selection summary lists what the rule followed)."""
        return asdict(self)


def followed_rules(app: Application, rule: CurationRule) -> list[AlertRule]:
    """The per-segment alert rules a ``segment_alerts`` curation rule follows (``options.alert_rules``, or
    every per-segment rule of the application)."""
    from genai_flywheel.config_options import names

    wanted = names(getattr(rule.options, "alert_rules", None), ())
    segment_rules = [a for a in app.alerts if a.segment is not None]
    return [a for a in segment_rules if not wanted or a.name in wanted]


def alerted_segments(
    app: Application, data_root: Path | str, rules: Sequence[AlertRule], start_ms: int, end_ms: int
) -> list[AlertedSegment]:
    """The firing (rule, segment, interval) events of ``rules`` whose interval overlaps [start_ms, end_ms),
    in event-log order (the curation table holds only the window's traces of an interval cut by its edge)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from genai_flywheel.alerts.state import AlertStore
    from genai_flywheel.workspace import to_ms

    names = {r.name for r in rules}
    events = AlertStore(data_root).read_events(app.name)
    if not names or not events.num_rows:
        return []
    events = events.filter(
        pc.and_(
            pc.is_in(events.column("rule"), value_set=pa.array(sorted(names))),
            pc.and_(pc.equal(events.column("evaluation"), "firing"), pc.is_valid(events.column("segment"))),
        )
    )
    found = []
    for row in events.to_pylist():
        lo, hi = to_ms(row["interval_start"]), to_ms(row["interval_end"])
        if hi <= start_ms or lo >= end_ms:
            continue
        if row["segment"] == OTHER:
            log.info(
                "rule %s fired on the pooled segment %r of %s in [%s, %s): not followed (no single identity)",
                row["rule"],
                OTHER,
                row["dimension"],
                row["interval_start"],
                row["interval_end"],
            )
            continue
        found.append(AlertedSegment(row["rule"], row["dimension"], row["segment"], row["label"], lo, hi))
    return found


def alerted_mask(
    app: Application, data_root: Path | str, table: pa.Table, alerted: Sequence[AlertedSegment]
) -> list[bool]:
    """Which rows of the curation ``table`` are traces of an alerted segment in the interval it fired in."""
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.segments.dimensions import dimension_keys
    from genai_flywheel.segments.stage import stored_profile

    mask = np.zeros(table.num_rows, dtype=bool)
    if not alerted or not table.num_rows:
        return mask.tolist()
    dims = {d.name: d for d in app.segments.dimensions}
    timestamps = table.column("timestamp_ms").to_numpy(zero_copy_only=False)
    by_interval: dict[tuple[int, int, str], set[str]] = {}
    for seg in alerted:
        if seg.dimension not in dims:
            log.warning(
                "alert rule %s names dimension %r, no longer declared under segments.dimensions: not followed",
                seg.rule,
                seg.dimension,
            )
            continue
        by_interval.setdefault((seg.interval_start_ms, seg.interval_end_ms, seg.dimension), set()).add(seg.segment)
    for (lo, hi, dim_name), segments in sorted(by_interval.items()):
        rows = np.flatnonzero((timestamps >= lo) & (timestamps < hi))
        if not rows.size:
            continue
        dim = dims[dim_name]
        assigner = None
        if dim.source == "query_cluster":
            start = datetime.fromtimestamp(lo / 1000, tz=UTC)
            assigner = stored_profile(app, data_root, start).assigner()
        keys = dimension_keys(table.take(pa.array(rows, pa.int64())), dim, assigner)
        for row, key in zip(rows.tolist(), keys, strict=True):
            if key in segments:
                mask[row] = True
    return mask.tolist()


def segment_alert_masks(
    app: Application, data_root: Path | str, rules: Sequence[CurationRule], table: pa.Table, start_ms: int, end_ms: int
) -> tuple[dict[str, list[bool]], dict[str, list[dict[str, Any]]]]:
    """Per ``segment_alerts`` rule of ``rules``: its candidate mask over the curation ``table`` of the window
    [start_ms, end_ms), and the alerted segments it followed (for the selection summary). Bound to an
    application and a data root, this is the ``segment_masks`` of
    :func:`genai_flywheel.curation.stages.select_stage`."""
    masks: dict[str, list[bool]] = {}
    followed: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        if rule.kind != "segment_alerts":
            continue
        alerted = alerted_segments(app, data_root, followed_rules(app, rule), start_ms, end_ms)
        masks[rule.name] = alerted_mask(app, data_root, table, alerted)
        followed[rule.name] = [a.to_dict() for a in alerted]
        log.info(
            "curation rule %s follows %d alerted segment intervals: %d candidate traces",
            rule.name,
            len(alerted),
            sum(masks[rule.name]),
        )
    return masks, followed
