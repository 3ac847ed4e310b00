"""The monitor's time-series charts of one application, built once for the static report and the GenAI
Quality page of the Airflow UI.

Both pages chart the same metrics (names from :mod:`genai_flywheel.metrics.aggregate`) with the same
titles, units, y-axis labels, 95 % CI bands, shaded alert windows and dashed rule thresholds. What each
page chooses on purpose is an argument of :class:`TrendCharts` or of its chart methods: which charts and in
which order, their colours, the chart id prefix, where the rules drawn as thresholds come from (the report
reads them from the alert event log, the page from the configuration) and the annotated windows
(the report's only, supplied by its caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genai_flywheel.metrics.aggregate import is_estimate
from genai_flywheel.report.charts import PALETTE, Point, Series, Shade, Threshold, Unit, format_value, time_series_svg
from genai_flywheel.report.data import Annotation, families
from genai_flywheel.report.fragments import unit_of

Metrics = Mapping[str, tuple[Point, ...]]


@dataclass(frozen=True)
class RuleLine:
    """An alert rule as the charts show it: a dashed line at ``threshold`` on every chart of ``metric``."""

    name: str
    metric: str
    op: str
    threshold: float


def y_label(unit: Unit, what: str) -> str:
    """The y-axis label of a chart of ``what``, naming the unit: ``latency p95 (ms)``."""
    return {
        "ms": f"{what} (ms)",
        "rate": f"{what} (%)",
        "count": f"{what} (count)",
        "usd": f"{what} (USD)",
        "score": f"{what} (score)",
    }[unit]


def scorer_names(metrics: Metrics) -> list[str]:
    """The scorers with any ``scorer.<name>.<stat>`` metric, sorted (a name may contain dots)."""
    return sorted(
        {m.split(".", 1)[1].rsplit(".", 1)[0] for m in metrics if m.startswith("scorer.") and m.count(".") >= 2}
    )


def feedback_names(metrics: Metrics) -> list[str]:
    """The feedback names with a ``feedback.<name>.positive_rate`` metric, sorted."""
    return families(metrics, "feedback.", ".positive_rate")


def drift_metrics(metrics: Metrics) -> list[str]:
    """The drift metrics (``drift.<dimension>.psi|new_share|new_clusters``, ``drift.scorer.<name>.psi``),
    sorted: grouped by dimension, then the scorers."""
    return sorted(m for m in metrics if m.startswith("drift."))


def _drift_kind(metric: str) -> str:
    """``scorer`` for a score drift, else the stat of a dimension's drift (``psi``, ``new_share``, ...)."""
    return "scorer" if metric.startswith("drift.scorer.") else metric.rsplit(".", 1)[-1]


def span_types(metrics: Metrics) -> list[str]:
    """The span types with a ``span.<type>.latency_p95_ms`` metric, sorted."""
    return families(metrics, "span.", ".latency_p95_ms")


def error_types(metrics: Metrics) -> list[str]:
    """The ``error_rate.<exception type>`` metrics, most frequent first by their summed rate (the name
    breaks ties, so the order is deterministic)."""
    names = [m for m in metrics if m.startswith("error_rate.")]
    return sorted(names, key=lambda m: (-sum(p.value or 0.0 for p in metrics[m]), m))


class TrendCharts:
    """Builds the time-series figures of one application over ``x_range``.

    Each chart shades the windows in which an alert on one of its metrics was firing (from ``events``,
    the alert event log as :func:`~genai_flywheel.report.data.load_events` returns it), draws the threshold
    of every rule in ``rules`` on its metric and hatches the ``annotations``. Charts get the ids
    ``<chart_id>-1``, ``<chart_id>-2``, ... (unique in the page when ``chart_id`` is). :attr:`charted`
    collects the metrics drawn so far, so :meth:`uncharted_rule_metrics` can give every alerted metric a chart.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        x_range: tuple[datetime, datetime],
        chart_id: str,
        events: Sequence[Mapping[str, Any]] = (),
        rules: Sequence[RuleLine] = (),
        annotations: Sequence[Annotation] = (),
    ) -> None:
        self.metrics = metrics
        self.x_range = x_range
        self.chart_id = chart_id
        self.events = events
        self.rules = rules
        self.annotations = annotations
        self.count = 0
        self.charted: set[str] = set()

    def _shades(self, metrics: set[str]) -> list[Shade]:
        shades = [Shade(a.start, a.end, "annotation", a.name) for a in self.annotations]
        shades += [
            Shade(e["interval_start"], e["interval_end"], "alert", e["rule"])
            for e in self.events
            if e["metric"] in metrics and e["status"] == "firing"
        ]
        return shades

    def _thresholds(self, metrics: set[str]) -> list[Threshold]:
        return [
            Threshold(float(r.threshold), f"{r.name}: {r.op} {format_value(r.threshold, unit_of(r.metric))}")
            for r in self.rules
            if r.metric in metrics
        ]

    def series(self, metric: str, label: str, colour: str, *, band: bool = False, dashed: bool = False) -> Series:
        """A line of ``metric`` (no points when it was never stored)."""
        return Series(label, self.metrics.get(metric, ()), colour, band, dashed, metric)

    def has_values(self, metric: str) -> bool:
        """Whether ``metric`` has a value in any charted interval."""
        return any(p.value is not None for p in self.metrics.get(metric, ()))

    def chart(self, title: str, what: str, unit: Unit, series: list[Series]) -> str:
        """One chart as a ``<figure>``; its y axis reads :func:`y_label` of ``unit`` and ``what``."""
        metrics = {s.metric for s in series if s.metric}
        self.charted |= metrics
        self.count += 1
        svg = time_series_svg(
            chart_id=f"{self.chart_id}-{self.count}",
            title=title,
            y_label=y_label(unit, what),
            unit=unit,
            series=series,
            x_range=self.x_range,
            shades=self._shades(metrics),
            thresholds=self._thresholds(metrics),
        )
        return f'<figure class="chart-box">{svg}</figure>'

    # --- the standard charts --------------------------------------------------------------------------
    def volume_chart(self, title: str) -> str:
        """Traces per interval, and how many were sampled for scoring (dashed)."""
        return self.chart(
            title,
            "traces per interval",
            "count",
            [
                self.series("volume", "traces", PALETTE[0]),
                self.series("sampled", "sampled for scoring", PALETTE[1], dashed=True),
            ],
        )

    def latency_chart(self, *, per_span_type: bool) -> str:
        """End-to-end latency p95 with its CI; ``per_span_type`` adds a dashed line per span type."""
        lines = [self.series("latency_p95_ms", "end-to-end p95", PALETTE[0], band=True)]
        if per_span_type:
            for i, span_type in enumerate(span_types(self.metrics)):
                colour = PALETTE[(i + 1) % len(PALETTE)]
                lines.append(
                    self.series(f"span.{span_type}.latency_p95_ms", f"{span_type} spans p95", colour, dashed=True)
                )
        return self.chart("Latency p95", "latency p95", "ms", lines)

    def error_chart(self, *, max_types: int) -> str:
        """The error rate with its CI and a dashed line for each of the ``max_types`` most frequent exception
        types; the overall line reads "all errors" beside them and "failed traces" alone."""
        lines = [self.series("error_rate", "all errors" if max_types else "failed traces", PALETTE[0], band=True)]
        for i, name in enumerate(error_types(self.metrics)[:max_types]):
            colour = PALETTE[(i + 1) % len(PALETTE)]
            lines.append(self.series(name, name.removeprefix("error_rate."), colour, dashed=True))
        return self.chart("Error rate", "error rate", "rate", lines)

    def scorer_chart(self, name: str, colour: str, *, keep_empty: bool) -> str:
        """A scorer's pass rate, or its mean score when it has no pass threshold. A scorer with neither
        value gets an empty mean-score chart with ``keep_empty`` and no chart (``""``) without."""
        rate = f"scorer.{name}.pass_rate"
        if self.has_values(rate):
            return self.chart(
                f"Scorer {name}: pass rate",
                "pass rate",
                "rate",
                [self.series(rate, f"{name} pass rate", colour, band=True)],
            )
        mean = f"scorer.{name}.mean"
        if not keep_empty and not self.has_values(mean):
            return ""
        return self.chart(
            f"Scorer {name}: mean score", "mean score", "score", [self.series(mean, f"{name} mean", colour, band=True)]
        )

    def feedback_chart(self, name: str, colour: str) -> str:
        """The share of positive user feedback of one feedback name, with its CI."""
        metric = f"feedback.{name}.positive_rate"
        return self.chart(
            f"Feedback {name}: positive rate",
            "positive feedback",
            "rate",
            [self.series(metric, f"{name} positive", colour, band=True)],
        )

    def drift_charts(self) -> list[str]:
        """The drift metrics against the reference window in at most four charts, one line per dimension
        (or scorer): the mix's PSI, the share of new questions (a rate), the new clusters (a count) and the
        scores' PSI. One chart per stat keeps the page small at 20 dimensions."""
        kinds: tuple[tuple[str, str, Unit, str], ...] = (
            ("Drift: PSI of the traffic mix", "PSI", "score", "psi"),
            ("Drift: share of new questions", "new share", "rate", "new_share"),
            ("Drift: new query clusters", "new clusters", "count", "new_clusters"),
            ("Drift: PSI of the scores", "PSI", "score", "scorer"),
        )
        charts = []
        for title, what, unit, kind in kinds:
            names = [m for m in drift_metrics(self.metrics) if _drift_kind(m) == kind]
            if names:
                lines = [
                    self.series(m, m.removeprefix("drift.").rsplit(".", 1)[0], PALETTE[i % len(PALETTE)])
                    for i, m in enumerate(names)
                ]
                charts.append(self.chart(title, what, unit, lines))
        return charts

    def alerted_chart(self, metric: str, colour: str) -> str:
        """A chart of one alerted metric that no standard chart shows (a band when it is an estimate)."""
        line = self.series(metric, metric, colour, band=is_estimate(metric))
        return self.chart(f"Alerted metric {metric}", metric, unit_of(metric), [line])

    def uncharted_rule_metrics(self) -> list[str]:
        """The metrics of ``rules`` not charted yet, sorted: each gets :meth:`alerted_chart`, so every alert
        window is visible somewhere."""
        return sorted({r.metric for r in self.rules} - self.charted)
