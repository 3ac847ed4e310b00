"""The worst segments of an interval and a segment's history: what the report and the GenAI Quality page show.

Read through :meth:`genai_flywheel.metrics.store.MetricsStore.read_segments` (the one reader of the segment
files) and :meth:`~genai_flywheel.metrics.store.MetricsStore.read` (the app-level value of the same interval).

**Ranking.** Only the quality *rates* are ranked: ``error_rate`` (higher is worse),
``feedback.<name>.positive_rate`` and ``scorer.<name>.pass_rate`` (lower is worse). They share one scale (a
proportion), so their gaps compare across metrics. A segment's *gap* on a metric is how far its 95 % CI
bound nearest to the app-level value of the same interval lies beyond that value on the bad side::

    lower is worse:   gap = app value - ci_high
    higher is worse:  gap = ci_low - app value

A positive gap means the whole CI is worse than the application (the segment is worse beyond sampling
noise); a small segment has a wide CI and so ranks by what its data proves, not by a noisy estimate (0 of 4
positive has a CI up to 0.49 and ranks above 40 of 60). A metric without a CI (too few samples) or without
an app-level value is not ranked. A segment's score is its largest gap; per dimension the segments are
sorted by score (descending, then by key) and the first ``limit`` are kept, significant or not.

**Baseline.** The segment's own value over the stored intervals of the ``baseline_days`` before the latest
one: the n-weighted mean of its values (for a rate, the pooled proportion). The app-level value of the
latest interval is shown beside it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from genai_flywheel.metrics.intervals import iso, to_utc

if TYPE_CHECKING:
    from genai_flywheel.metrics.store import MetricsStore

BASELINE_DAYS = 7
HISTORY_DAYS = 7
MAX_HISTORY_DAYS = 90
WORST_PER_DIMENSION = 5

_LOWER_IS_WORSE = re.compile(r"^(feedback\.[^.]+\.positive_rate|scorer\.[^.]+\.pass_rate)$")


def ranked_metric(metric: str) -> bool:
    """Whether ``metric`` is one of the quality rates the ranking compares (see the module docstring)."""
    return metric == "error_rate" or bool(_LOWER_IS_WORSE.match(metric))


def gap(metric: str, app_value: float | None, ci_low: float | None, ci_high: float | None) -> float | None:
    """How far the CI of a segment lies beyond ``app_value`` on the bad side of ``metric`` (positive: the
    whole CI is worse); None when a bound or the app-level value is missing."""
    if app_value is None:
        return None
    if metric == "error_rate":
        return None if ci_low is None else ci_low - app_value
    return None if ci_high is None else app_value - ci_high


@dataclass(frozen=True)
class MetricRow:
    """One ranked metric of a segment in the latest interval, with its baseline and the app-level value."""

    metric: str
    value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    baseline: float | None  # the segment's n-weighted mean over the baseline window
    baseline_n: int
    app_value: float | None
    gap: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class SegmentRow:
    """A segment of the latest interval with its ranked metrics, worst first."""

    dimension: str
    segment: str
    label: str
    volume: int
    examples: tuple[str, ...]
    metrics: tuple[MetricRow, ...]
    links: tuple[tuple[str, str], ...] = ()  # (text, url) into the MLflow UI

    @property
    def score(self) -> float | None:
        """The largest gap of its metrics (None: none could be ranked)."""
        gaps = [m.gap for m in self.metrics if m.gap is not None]
        return max(gaps) if gaps else None

    @property
    def worst(self) -> MetricRow | None:
        """The metric with the largest gap."""
        return self.metrics[0] if self.metrics and self.metrics[0].gap is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "dimension": self.dimension,
            "segment": self.segment,
            "label": self.label,
            "volume": self.volume,
            "score": self.score,
            "significant": (self.score or 0.0) > 0.0,
            "examples": list(self.examples),
            "metrics": [m.to_dict() for m in self.metrics],
            "links": [{"text": t, "url": u} for t, u in self.links],
        }


@dataclass(frozen=True)
class WorstSegments:
    """The worst segments of one application's latest interval with segment metrics, per dimension."""

    app: str
    interval: tuple[datetime, datetime] | None
    baseline_start: datetime | None
    dimensions: dict[str, tuple[SegmentRow, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "app": self.app,
            "interval": ({"start": iso(self.interval[0]), "end": iso(self.interval[1])} if self.interval else None),
            "baseline_start": iso(self.baseline_start) if self.baseline_start else None,
            "dimensions": {d: [r.to_dict() for r in rows] for d, rows in self.dimensions.items()},
        }


@dataclass(frozen=True)
class SegmentLinks:
    """Where an application's segments link: its MLflow experiment's Traces tab (``traces_url``, None: no
    links) and each dimension's configured source (``segments.dimensions[].source``, by name)."""

    traces_url: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def _finite(value: Any) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None


def _shown(metric: str) -> bool:
    return metric == "volume" or ranked_metric(metric)


def _pooled(
    store: MetricsStore, app: str, start: datetime, end: datetime, metrics: list[str]
) -> dict[tuple[str, str, str], tuple[float, float]]:
    """Per (dimension, segment, metric): the sums of value x n and of n over the intervals in
    ``[start, end)``, rows without a finite value or without samples left out (grouped in Arrow: a week of
    a large store holds hundreds of thousands of rows)."""
    import pyarrow.compute as pc

    table = store.read_segments(app, start, end, metrics=metrics)
    value, n = table.column("value"), pc.cast(table.column("n"), "float64")
    table = table.filter(pc.and_(pc.is_finite(value), pc.greater(n, 0.0)))
    table = table.append_column("vn", pc.multiply(table.column("value"), pc.cast(table.column("n"), "float64")))
    grouped = table.group_by(["dimension", "segment", "metric"]).aggregate([("vn", "sum"), ("n", "sum")])
    columns = [grouped.column(c).to_pylist() for c in ("dimension", "segment", "metric", "vn_sum", "n_sum")]
    return {(d, s, m): (vn, float(nn)) for d, s, m, vn, nn in zip(*columns, strict=True)}


def trace_links(
    traces_url: str | None, source: str | None, segment: str, examples: Iterable[str]
) -> tuple[tuple[str, str], ...]:
    """Links to a segment's traces in the MLflow UI's Traces tab (``traces_url``: the experiment's).

    A ``tags.<key>`` or ``model`` segment opens the trace list filtered on that tag, a ``metadata.<key>``
    segment the list filtered on that request-metadata key (the Traces tab's ``filter`` URL parameter,
    ``column::operator::value[::key]``). Query clusters and the pooled keys (``other``, ``(none)``,
    ``new``) have no filter: their example traces are linked one by one (the review's trace URL).
    """
    from genai_flywheel.metrics.segment_schema import MISSING, NEW, OTHER

    if not traces_url:
        return ()
    base = traces_url.rstrip("/")
    links: list[tuple[str, str]] = []
    if source is not None and segment not in (OTHER, MISSING, NEW):
        column: str | None = None
        if source.startswith("tags.") or source == "model":
            key = "model" if source == "model" else source.removeprefix("tags.")
            column = f"TAG::=::{segment}::{key}"
        elif source.startswith("metadata."):
            column = f"custom_metadata:{source.removeprefix('metadata.')}::=::{segment}"
        if column is not None:
            links.append(("traces in MLflow", f"{base}?{urlencode({'filter': column})}"))
    if not links:
        for trace_id in examples:
            links.append((trace_id, f"{base}?{urlencode({'selectedEvaluationId': trace_id, 'traceId': trace_id})}"))
    return tuple(links)


def latest_segment_interval(store: MetricsStore, app: str) -> datetime | None:
    """The start of the latest stored interval that has a segment file (directory listing only)."""
    for start in reversed(store.intervals(app)):
        if store.segments_path(app, start).is_file():
            return start
    return None


def worst_segments(
    store: MetricsStore,
    app: str,
    *,
    baseline_days: int = BASELINE_DAYS,
    limit: int = WORST_PER_DIMENSION,
    traces_url: str | None = None,
    sources: Mapping[str, str] | None = None,
) -> WorstSegments:
    """The ``limit`` worst segments per dimension of the latest interval of ``app`` with segment metrics,
    ranked as the module docstring says; ``traces_url`` and the dimensions' ``sources`` give their links."""
    latest = latest_segment_interval(store, app)
    if latest is None:
        return WorstSegments(app, None, None)
    after = latest + timedelta(microseconds=1000)
    current = [r for r in store.read_segments(app, latest, after).to_pylist() if _shown(r["metric"])]
    if not current:
        return WorstSegments(app, None, None)
    interval = (to_utc(current[0]["interval_start"]), to_utc(current[0]["interval_end"]))
    ranked = sorted({r["metric"] for r in current if ranked_metric(r["metric"])})
    app_values = {r["metric"]: _finite(r["value"]) for r in store.read(app, latest, after, metrics=ranked).to_pylist()}
    baseline_start = latest - timedelta(days=baseline_days)
    pooled = _pooled(store, app, baseline_start, latest, ranked) if ranked else {}
    by_segment: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in current:
        by_segment.setdefault((r["dimension"], r["segment"]), []).append(r)
    per_dimension: dict[str, list[SegmentRow]] = {}
    for (dimension, segment), rows in by_segment.items():
        volume_row = next((r for r in rows if r["metric"] == "volume"), None)
        metrics = []
        for r in rows:
            if not ranked_metric(r["metric"]):
                continue
            low, high = _finite(r["ci_low"]), _finite(r["ci_high"])
            app_value = app_values.get(r["metric"])
            acc = pooled.get((dimension, segment, r["metric"]))  # (sum of value x n, sum of n)
            metrics.append(
                MetricRow(
                    metric=r["metric"],
                    value=_finite(r["value"]),
                    n=int(r["n"] or 0),
                    ci_low=low,
                    ci_high=high,
                    baseline=acc[0] / acc[1] if acc else None,
                    baseline_n=int(acc[1]) if acc else 0,
                    app_value=app_value,
                    gap=gap(r["metric"], app_value, low, high),
                )
            )
        metrics.sort(key=lambda m: (m.gap is None, -(m.gap or 0.0), m.metric))
        examples = tuple(volume_row["examples"] or ()) if volume_row else ()
        source = (sources or {}).get(dimension)
        per_dimension.setdefault(dimension, []).append(
            SegmentRow(
                dimension=dimension,
                segment=segment,
                label=(rows[0]["label"] or segment),
                volume=int(_finite(volume_row["value"]) or 0) if volume_row else 0,
                examples=examples,
                metrics=tuple(metrics),
                links=trace_links(traces_url, source, segment, examples),
            )
        )
    out = {}
    for dimension in sorted(per_dimension):
        rows = [r for r in per_dimension[dimension] if r.score is not None]
        rows.sort(key=lambda r: (-(r.score or 0.0), r.segment))
        out[dimension] = tuple(rows[:limit])
    return WorstSegments(app, interval, baseline_start, out)


@dataclass(frozen=True)
class HistoryPoint:
    """One interval's value of one metric of a segment."""

    interval_start: datetime
    interval_end: datetime
    metric: str
    value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "interval_start": iso(self.interval_start),
            "interval_end": iso(self.interval_end),
            "metric": self.metric,
            "value": self.value,
            "n": self.n,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


def segment_history(
    store: MetricsStore,
    app: str,
    dimension: str,
    segment: str,
    *,
    days: int = HISTORY_DAYS,
    metrics: list[str] | None = None,
    end: datetime | None = None,
) -> tuple[str | None, list[HistoryPoint]]:
    """The label and the value, n and CI per interval of one segment over the ``days`` before ``end``
    (default: the end of the latest stored interval), ascending; ``metrics`` limits the metrics (default:
    volume and the ranked quality rates)."""
    if end is None:
        starts = store.intervals(app)
        if not starts:
            return None, []
        end = starts[-1] + timedelta(microseconds=1000)
    start = end - timedelta(days=days)
    table = store.read_segments(app, start, end, dimension=dimension, segment=segment, metrics=metrics)
    rows = table.to_pylist()
    label = rows[-1]["label"] if rows else None
    points = [
        HistoryPoint(
            to_utc(r["interval_start"]),
            to_utc(r["interval_end"]),
            r["metric"],
            _finite(r["value"]),
            int(r["n"] or 0),
            _finite(r["ci_low"]),
            _finite(r["ci_high"]),
        )
        for r in rows
        if metrics is not None or r["metric"] == "volume" or ranked_metric(r["metric"])
    ]
    return label, points


HistoryRow = tuple[datetime, datetime, dict[str, HistoryPoint]]


def history_table(points: Iterable[HistoryPoint]) -> tuple[list[str], list[HistoryRow]]:
    """The metrics (columns, volume first) and one row per interval (ascending) of a segment's history."""
    rows: dict[datetime, HistoryRow] = {}
    names: set[str] = set()
    for p in points:
        names.add(p.metric)
        rows.setdefault(p.interval_start, (p.interval_start, p.interval_end, {}))[2][p.metric] = p
    columns = sorted(names, key=lambda m: (m != "volume", m))
    return columns, [rows[k] for k in sorted(rows)]
