"""The judge-calibration panel of the report and of the GenAI Quality page: what it shows, from loaded data.

Both read the ``calibration.*`` metrics and the disagreeing traces with the report's loaders
(:func:`genai_flywheel.report.data.load_calibration`) and lay the panel out with the shared macro
``calibration`` of ``fragments.html.j2``; this module turns the loaded values into its rows:

* :func:`calibration_rows`: per scorer, statistic and kind of labels (the weighted calibration sample, or
  the traces the curation rules flagged), the newest review interval's value and its rolling-window value,
  each with its 95% CI and n;
* :func:`disagreement_rows`: the traces where a scorer contradicts a reviewer, each linked to the MLflow
  UI through :func:`mlflow_trace_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from genai_flywheel.review.calibration import FLAGGED, PREFIX, ROLLING

if TYPE_CHECKING:
    from genai_flywheel.report.charts import Point

MAX_TRACES = 50  # disagreeing traces listed; the file holds them all
STATISTICS = ("agreement", "kappa", "correlation")
SCOPES = {"": "calibration sample (weighted)", FLAGGED: "flagged by curation rules"}

TraceUrl = Callable[[str], str]


def mlflow_trace_url(mlflow_ui: str, experiment_id: str) -> TraceUrl:
    """A function giving the MLflow UI address of a trace of ``experiment_id`` (its Traces tab, opened)."""
    base = f"{mlflow_ui.rstrip('/')}/#/experiments/{quote(str(experiment_id), safe='')}/traces"

    def url(trace_id: str) -> str:
        return f"{base}?{urlencode({'selectedEvaluationId': trace_id, 'traceId': trace_id})}"

    return url


@dataclass(frozen=True)
class CalibrationRow:
    """One statistic of one scorer on one kind of labels: the newest interval's and rolling points."""

    scorer: str
    statistic: str
    labels: str  # which labels (SCOPES)
    latest: Point | None
    rolling: Point | None


def _parse(metric: str) -> tuple[str, str, str, bool] | None:
    """(scorer, statistic, scope, rolling) of ``calibration.<scorer>.<statistic>[_flagged][_rolling]``."""
    head, _, tail = metric.removeprefix(f"{PREFIX}.").rpartition(".")
    if not metric.startswith(f"{PREFIX}.") or not head:
        return None
    rolling = tail.endswith(ROLLING)
    tail = tail.removesuffix(ROLLING)
    scope = FLAGGED if tail.endswith(FLAGGED) else ""
    statistic = tail.removesuffix(FLAGGED)
    return (head, statistic, scope, rolling) if statistic in STATISTICS else None


def newest(metrics: Mapping[str, Sequence[Point]]) -> dict[str, Point]:
    """Each ``calibration.*`` metric's point of the newest review interval (a metric without one there,
    e.g. too few labels in that interval, is left out)."""
    starts = [p.start for points in metrics.values() for p in points if points]
    if not starts:
        return {}
    last = max(starts)
    return {m: points[-1] for m, points in metrics.items() if points and points[-1].start == last}


def calibration_rows(metrics: Mapping[str, Sequence[Point]]) -> list[CalibrationRow]:
    """The panel's rows for the newest review interval, by scorer, then the sample before the flagged
    traces, then statistic: the interval's point and the rolling window's (None where not measured)."""
    found: dict[tuple[str, str, str], dict[bool, Point]] = {}
    for metric, point in newest(metrics).items():
        parsed = _parse(metric)
        if parsed is None:
            continue
        scorer, statistic, scope, rolling = parsed
        found.setdefault((scorer, scope, statistic), {})[rolling] = point
    scope_order, stat_order = list(SCOPES), list(STATISTICS)
    rows = []
    for scorer, scope, statistic in sorted(
        found, key=lambda k: (k[0], scope_order.index(k[1]), stat_order.index(k[2]))
    ):
        points = found[(scorer, scope, statistic)]
        rows.append(CalibrationRow(scorer, statistic, SCOPES[scope], points.get(False), points.get(True)))
    return rows


def label_counts(metrics: Mapping[str, Sequence[Point]]) -> dict[str, float | None]:
    """The newest review interval's ``calibration.labels`` / ``sample_labels`` counts, of the interval and
    of the rolling window (None: not stored)."""
    points = newest(metrics)
    return {
        name + suffix: (p.value if (p := points.get(f"{PREFIX}.{name}{suffix}")) else None)
        for name in ("labels", "sample_labels")
        for suffix in ("", ROLLING)
    }


def disagreement_rows(
    disagreements: Sequence[Mapping[str, Any]], trace_url: TraceUrl | None, limit: int = MAX_TRACES
) -> list[dict[str, Any]]:
    """The first ``limit`` disagreeing traces: scorer, trace id, its MLflow UI address (None without
    ``trace_url``), what the scorer and the reviewer said and why the trace was queued."""
    return [
        {
            "scorer": d.get("scorer"),
            "trace_id": d.get("trace_id"),
            "url": trace_url(str(d["trace_id"])) if trace_url and d.get("trace_id") else None,
            "scorer_said": "passed" if d.get("scorer_passed") else "failed",
            "reviewer_said": "correct" if d.get("correct") else "incorrect",
            "source": d.get("source") or "unknown",
        }
        for d in disagreements[:limit]
    ]


def calibration_panel(
    metrics: Mapping[str, Sequence[Point]], disagreements: Sequence[Mapping[str, Any]], trace_url: TraceUrl | None
) -> dict[str, Any]:
    """The arguments of the ``calibration`` macro: ``rows``, ``counts``, ``traces`` and ``total`` (of the
    disagreeing traces; at most :data:`MAX_TRACES` are listed)."""
    return {
        "rows": calibration_rows(metrics),
        "counts": label_counts(metrics),
        "traces": disagreement_rows(disagreements, trace_url),
        "total": len(disagreements),
    }
