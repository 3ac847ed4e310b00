"""The static HTML report: one self-contained file with inline CSS and inline SVG charts, no scripts.

Per application: headline numbers, time-series charts (traffic, latency p95 end to end and per span type,
error rate, each scorer's pass rate, user-feedback positive rate, and any other alerted metric) with the
95 % CI as a band, alert firing windows shaded and rule thresholds dashed, a rule summary and the table of
notable alert events; then, when present, planted incidents vs alerts, curated dataset versions and
development evaluations.

Deterministic: the same data root and arguments give the same bytes (no clock is read; pass
``generated_at`` to print a time). All text goes through :func:`html.escape`.
(The module is not called ``html.py`` so it never shadows the standard library's ``html``.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.metrics.aggregate import is_estimate
from genai_flywheel.report.charts import (
    PALETTE,
    Interval,
    Series,
    Shade,
    Threshold,
    Unit,
    format_time,
    format_value,
    interval_plot_svg,
    time_series_svg,
)
from genai_flywheel.report.data import (
    AppData,
    Incident,
    alert_counts,
    detections,
    firing_outside,
    load_app,
    parse_incidents,
    summary_of,
)

log = logging.getLogger(__name__)

_MAX_ERROR_TYPES = 4  # more lines make the error chart unreadable; the rest still count in "all errors"
_ALLOWED_SCHEMES = ("", "http", "https", "file")

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0; color: #1a1a1a; background: #f6f7f9; line-height: 1.45; }
header.top { background: #14213d; color: #ffffff; padding: 16px 28px; }
header.top h1 { margin: 0 0 6px 0; font-size: 1.6rem; }
header.top a { color: #ffd98e; }
header.top ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 18px; }
header.top .meta { margin: 6px 0 0 0; font-size: 0.9rem; color: #dfe6f3; }
main { padding: 8px 28px 40px 28px; max-width: 1800px; }
section.app { background: #ffffff; border: 1px solid #d9dde3; border-radius: 6px; padding: 8px 20px 20px 20px;
  margin-top: 20px; }
h2 { font-size: 1.4rem; margin: 12px 0 8px 0; }
h3 { font-size: 1.15rem; margin: 22px 0 8px 0; border-bottom: 1px solid #e3e6ea; padding-bottom: 4px; }
h4 { font-size: 1rem; margin: 16px 0 6px 0; }
dl.headline { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
dl.headline div { background: #f1f4f8; border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 14px;
  min-width: 130px; }
dl.headline dt { font-size: 0.8rem; color: #4a5563; margin: 0; }
dl.headline dd { font-size: 1.35rem; font-weight: 600; margin: 2px 0 0 0; }
dl.headline dd small { font-size: 0.8rem; font-weight: 400; color: #4a5563; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
figure.chart-box { margin: 0; border: 1px solid #e3e6ea; border-radius: 4px; padding: 4px; background: #fff; }
svg.chart { max-width: 100%; height: auto; display: block; font-family: inherit; }
svg .chart-title { font-size: 14px; font-weight: 600; fill: #1a1a1a; }
svg .legend-text { font-size: 11px; fill: #333333; }
svg .axis text { fill: #333333; }
svg .axis-label { font-size: 11px; fill: #333333; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .incident-label { font-size: 10px; fill: #444444; paint-order: stroke; stroke: #ffffff;
  stroke-width: 3px; }
svg .no-data { font-size: 12px; fill: #666666; }
svg .row-label, svg .row-value { font-size: 12px; fill: #1a1a1a; }
svg rect.hover:hover { fill-opacity: 0.07; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 6px 0 10px 0; }
th, td { border: 1px solid #d9dde3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.state-fired td, tr.detected-no td.verdict { background: #fde3d6; }
tr.state-resolved td { background: #dff2e8; }
tr.state-still_firing td, tr.state-insufficient_data td { background: #fff1e6; }
tr.detected-yes td.verdict { background: #dff2e8; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8rem; font-weight: 600; }
.badge.pass { background: #dff2e8; color: #0b5d3b; }
.badge.fail { background: #fde3d6; color: #8a2c00; }
.note { color: #4a5563; font-size: 0.9rem; }
.problems { color: #8a2c00; }
footer { padding: 12px 28px 30px 28px; color: #4a5563; font-size: 0.85rem; }
"""


def _e(value: Any) -> str:
    return escape(str(value))


def _unit_of(metric: str) -> Unit:
    """The display unit of a metric name (see the metric names of genai_flywheel.metrics.aggregate)."""
    if metric.endswith("_ms"):
        return "ms"
    if metric == "cost_usd":
        return "usd"
    if metric.endswith("rate") or metric.startswith("error_rate"):
        return "rate"
    if not is_estimate(metric):
        return "count"
    return "score"


def _y_label(unit: Unit, what: str) -> str:
    return {
        "ms": f"{what} (ms)",
        "rate": f"{what} (%)",
        "count": f"{what} (count)",
        "usd": f"{what} (USD)",
        "score": f"{what} (score)",
    }[unit]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = int(round(seconds / 60))
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} h" if hours else f"{mins} min"


def _window(start: datetime, end: datetime) -> str:
    return f"{format_time(start)} to {format_time(end)}"


def _table(headers: Sequence[str], rows: Sequence[str], caption: str, cls: str = "") -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    klass = f' class="{cls}"' if cls else ""
    return f'<table{klass}><caption class="note">{_e(caption)}</caption><thead><tr>{head}</tr></thead>' + (
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _td(value: Any, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{_e(value)}</td>"


class _AppPage:
    """Builds the HTML section of one application."""

    def __init__(self, data: AppData, index: int, incidents: list[Incident]) -> None:
        self.data = data
        self.index = index
        self.incidents = incidents
        self.charts = 0
        self.charted: set[str] = set()
        self.rules = alert_counts(data.events)
        if data.intervals:
            self.x_range = (data.intervals[0][0], data.intervals[-1][1])
        else:
            self.x_range = (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC))

    # --- charts -----------------------------------------------------------------------------------------
    def _shades(self, metrics: set[str]) -> list[Shade]:
        shades = [Shade(i.start, i.end, "incident", i.name) for i in self.incidents]
        for e in self.data.events:
            if e["metric"] in metrics and e["status"] == "firing":
                shades.append(Shade(e["interval_start"], e["interval_end"], "alert", e["rule"]))
        return shades

    def _thresholds(self, metrics: set[str]) -> list[Threshold]:
        out = []
        for rule, r in self.rules.items():
            if r["metric"] in metrics:
                shown = format_value(r["threshold"], _unit_of(r["metric"]))
                out.append(Threshold(float(r["threshold"]), f"{rule}: {r['op']} {shown}"))
        return out

    def chart(self, title: str, what: str, unit: Unit, series: list[Series]) -> str:
        """One chart as a figure; registers its metrics as charted."""
        metrics = {s.metric for s in series if s.metric}
        self.charted |= metrics
        self.charts += 1
        svg = time_series_svg(
            chart_id=f"chart-{self.index}-{self.charts}",
            title=title,
            y_label=_y_label(unit, what),
            unit=unit,
            series=series,
            x_range=self.x_range,
            shades=self._shades(metrics),
            thresholds=self._thresholds(metrics),
        )
        return f'<figure class="chart-box">{svg}</figure>'

    def series(self, metric: str, label: str, colour: str, band: bool = False, dashed: bool = False) -> Series:
        """A series of ``metric`` (empty when it was never stored)."""
        return Series(label, self.data.metrics.get(metric, ()), colour, band, dashed, metric)

    def monitor_charts(self) -> str:
        """Traffic, latency, errors, scorers, feedback and other alerted metrics."""
        m = self.data.metrics
        parts = ['<div class="charts">']
        parts.append(
            self.chart(
                "Traffic",
                "traces per interval",
                "count",
                [
                    self.series("volume", "traces", PALETTE[0]),
                    self.series("sampled", "sampled for scoring", PALETTE[1], dashed=True),
                ],
            )
        )
        spans = sorted(
            x[len("span.") : -len(".latency_p95_ms")]
            for x in m
            if x.startswith("span.") and x.endswith(".latency_p95_ms")
        )
        latency = [self.series("latency_p95_ms", "end to end p95", PALETTE[0], band=True)]
        for i, span_type in enumerate(spans):
            latency.append(
                self.series(
                    f"span.{span_type}.latency_p95_ms",
                    f"{span_type} spans p95",
                    PALETTE[(i + 1) % len(PALETTE)],
                    dashed=True,
                )
            )
        parts.append(self.chart("Latency p95", "latency p95", "ms", latency))
        types = [x for x in m if x.startswith("error_rate.")]
        # Most frequent exception types first, by their summed rate; name breaks ties for determinism.
        types.sort(key=lambda x: (-sum(p.value or 0.0 for p in m[x]), x))
        errors = [self.series("error_rate", "all errors", PALETTE[0], band=True)]
        for i, name in enumerate(types[:_MAX_ERROR_TYPES]):
            errors.append(
                self.series(name, name.removeprefix("error_rate."), PALETTE[(i + 1) % len(PALETTE)], dashed=True)
            )
        parts.append(self.chart("Error rate", "error rate", "rate", errors))
        parts.append("</div>")

        scorers = sorted(
            {x.split(".", 1)[1].rsplit(".", 1)[0] for x in m if x.startswith("scorer.") and x.count(".") >= 2}
        )
        if scorers:
            parts.append('<h4>Scorers</h4><div class="charts">')
            for name in scorers:
                rate = f"scorer.{name}.pass_rate"
                if any(p.value is not None for p in m.get(rate, ())):
                    parts.append(
                        self.chart(
                            f"Scorer {name}: pass rate",
                            "pass rate",
                            "rate",
                            [self.series(rate, f"{name} pass rate", PALETTE[2], band=True)],
                        )
                    )
                else:  # a scorer without a pass threshold only has a mean
                    parts.append(
                        self.chart(
                            f"Scorer {name}: mean score",
                            "mean score",
                            "score",
                            [self.series(f"scorer.{name}.mean", f"{name} mean", PALETTE[2], band=True)],
                        )
                    )
            parts.append("</div>")
        feedback = sorted(
            x[len("feedback.") : -len(".positive_rate")]
            for x in m
            if x.startswith("feedback.") and x.endswith(".positive_rate")
        )
        if feedback:
            parts.append('<h4>User feedback</h4><div class="charts">')
            for name in feedback:
                parts.append(
                    self.chart(
                        f"Feedback {name}: positive rate",
                        "positive feedback",
                        "rate",
                        [self.series(f"feedback.{name}.positive_rate", f"{name} positive", PALETTE[3], band=True)],
                    )
                )
            parts.append("</div>")
        # Every alerted metric gets a chart, so each alert window is visible somewhere.
        others = sorted({r["metric"] for r in self.rules.values()} - self.charted)
        if others:
            parts.append('<h4>Other alerted metrics</h4><div class="charts">')
            for metric in others:
                unit = _unit_of(metric)
                parts.append(
                    self.chart(
                        f"Alerted metric {metric}",
                        metric,
                        unit,
                        [self.series(metric, metric, PALETTE[0], band=is_estimate(metric))],
                    )
                )
            parts.append("</div>")
        return "".join(parts)

    # --- sections ---------------------------------------------------------------------------------------
    def headline(self, summary: dict[str, Any]) -> str:
        """The headline numbers as a definition list of cards."""
        traces = summary["traces"]
        err_share = f"{summary['error_traces'] / traces * 100:.1f}%" if traces else "n/a"
        firing = ", ".join(summary["firing_now"]) or "none"
        cards = [
            ("intervals processed", f"{summary['intervals']:,}", ""),
            ("traces", f"{traces:,}", ""),
            ("failed traces", f"{summary['error_traces']:,}", err_share),
            (
                "sampled / scored",
                f"{summary['sampled']:,} / {summary['scored']:,}",
                "traces / trace x scorer",
            ),
            ("scorer errors", f"{summary['scorer_errors']:,}", ""),
            ("quarantined rows", f"{summary['quarantined']:,}", ""),
            ("alerts raised", f"{summary['alerts_raised']:,}", f"firing now: {firing}"),
        ]
        if summary["cost_usd"]:
            cards.append(("LLM cost", f"${summary['cost_usd']:,.2f}", f"{summary['tokens_total']:,} tokens"))
        for name, n in summary["feedback_by_name"].items():
            cards.append((f"feedback {name}", f"{n:,}", "traces with feedback"))
        items = "".join(
            f"<div><dt>{_e(label)}</dt><dd>{_e(value)}" + (f" <small>{_e(sub)}</small>" if sub else "") + "</dd></div>"
            for label, value, sub in cards
        )
        period = (
            f'<p class="note">Intervals from {_e(format_time(self.data.intervals[0][0]))} to '
            f"{_e(format_time(self.data.intervals[-1][1]))} UTC.</p>"
            if self.data.intervals
            else f'<p class="note">No metrics stored for {_e(self.data.app)} (expected under '
            f"metrics/app={_e(self.data.app)}/); run the monitor DAG for it first.</p>"
        )
        return f'<dl class="headline">{items}</dl>{period}'

    def alerts(self) -> str:
        """Rule summary and notable alert events."""
        if not self.data.events:
            return (
                '<h3>Alerts</h3><p class="note">No alert rule has been evaluated for this application '
                f"(no alerts/app={_e(self.data.app)}/events.parquet).</p>"
            )
        rule_rows = []
        for rule, r in self.rules.items():
            unit = _unit_of(r["metric"])
            rule_rows.append(
                "<tr>"
                + _td(rule)
                + _td(f"{r['metric']} {r['op']} {format_value(r['threshold'], unit)}")
                + _td(r["severity"])
                + _td(r["fired"], num=True)
                + _td(r["firing_intervals"], num=True)
                + _td(r["insufficient_data"], num=True)
                + _td(r["evaluated"], num=True)
                + _td(r["status"])
                + "</tr>"
            )
        rules = _table(
            ["rule", "condition (whole 95% CI beyond)", "severity", "episodes fired", "intervals firing",
             "intervals without enough data", "intervals evaluated", "status now"],
            rule_rows,
            "Alert rules",
        )  # fmt: skip
        notable = [e for e in self.data.events if e["status"] == "firing" or e["kind"] in ("fired", "resolved")]
        rows = []
        for e in notable:
            unit = _unit_of(e["metric"])
            ci = (
                f"{format_value(e['ci_low'], unit)} to {format_value(e['ci_high'], unit)}"
                if e["ci_low"] is not None and e["ci_high"] is not None
                else "n/a"
            )
            rows.append(
                f'<tr class="state-{_e(e["kind"])}">'
                + _td(_window(e["interval_start"], e["interval_end"]))
                + _td(e["rule"])
                + _td(e["kind"], cls="state")
                + _td(e["evaluation"])
                + _td(format_value(e["value"], unit), num=True)
                + _td(ci, num=True)
                + _td(e["n"], num=True)
                + _td(e["severity"])
                + _td("yes" if e["notified"] else "no")
                + "</tr>"
            )
        events = (
            _table(
                [
                    "interval (UTC)",
                    "rule",
                    "state",
                    "evaluation",
                    "value",
                    "95% CI",
                    "n",
                    "severity",
                    "notified",
                ],
                rows,
                "Alert events: every interval in which a rule fired, kept firing or resolved",
                cls="alert-events",
            )
            if rows
            else '<p class="note">No rule fired in the recorded intervals.</p>'
        )
        return f"<h3>Alerts</h3>{rules}{events}"

    def incidents_section(self) -> str:
        """Planted incidents vs the alerts raised in their windows."""
        if not self.incidents:
            return ""
        rows = []
        for d in detections(self.incidents, self.data.events):
            inc = d.incident
            first = _window(*d.first_firing) if d.first_firing else "n/a"
            verdict = "yes" if d.detected else "no"
            rows.append(
                f'<tr class="detected-{verdict}">'
                + _td(inc.name)
                + _td(inc.kind or "n/a")
                + _td(_window(inc.start, inc.end))
                + _td(", ".join(d.rules) or "none")
                + _td(first)
                + _td(_duration(d.delay_s), num=True)
                + _td(verdict, cls="verdict")
                + "</tr>"
            )
        table = _table(
            ["planted incident", "kind", "window (UTC)", "alerts firing in the window",
             "first firing interval", "delay to detection", "detected"],
            rows,
            "Planted incident -> alerts raised in its window (a rule counts when its whole CI crossed the "
            "threshold in an interval overlapping the window; delay runs to the end of that interval)",
            cls="incidents",
        )  # fmt: skip
        outside = firing_outside(self.incidents, self.data.events)
        if outside:
            listed = ", ".join(f"{rule}: {n}" for rule, n in outside.items())
            note = f'<p class="note">Firing intervals outside every planted window: {_e(listed)}.</p>'
        else:
            note = '<p class="note">No rule fired outside the planted windows.</p>'
        return f"<h3>Planted incidents</h3>{table}{note}"

    def datasets_section(self) -> str:
        """Curated dataset versions, when the curation DAG has written any."""
        if not self.data.datasets:
            return ""
        rows = []
        for d in self.data.datasets:
            per_rule = d.get("per_rule") if isinstance(d.get("per_rule"), Mapping) else {}
            window = "n/a"
            if isinstance(d.get("interval_start_ms"), int) and isinstance(d.get("interval_end_ms"), int):
                start = datetime.fromtimestamp(d["interval_start_ms"] / 1000, UTC)
                end = datetime.fromtimestamp(d["interval_end_ms"] / 1000, UTC)
                window = _window(start, end)
            rows.append(
                "<tr>"
                + _td(d.get("dataset"))
                + _td(f"v{d.get('version')}")
                + _td(d.get("records", "n/a"), num=True)
                + _td(d.get("added", "n/a"), num=True)
                + _td(d.get("updated", "n/a"), num=True)
                + _td(d.get("quarantined", "n/a"), num=True)
                + _td(", ".join(f"{k}: {v}" for k, v in sorted(per_rule.items())) or "n/a")
                + _td(window)
                + _td(str(d.get("digest", "n/a"))[:19])
                + "</tr>"
            )
        table = _table(
            ["dataset", "version", "records", "added", "updated", "quarantined", "records per rule",
             "source window (UTC)", "digest"],
            rows,
            "Curated evaluation dataset versions (datasets/<name>/v<N>/manifest.json)",
            cls="datasets",
        )  # fmt: skip
        return f"<h3>Curated datasets</h3>{table}"

    def evaluations_section(self) -> str:
        """Development evaluations: per scorer candidate vs production, and the gate."""
        if not self.data.evaluations:
            return ""
        parts = ["<h3>Development evaluations</h3>"]
        for k, run in enumerate(self.data.evaluations):
            parts.append(self._evaluation(k, run))
        return "".join(parts)

    def _evaluation(self, k: int, run: Mapping[str, Any]) -> str:
        gate = run.get("gate") if isinstance(run.get("gate"), Mapping) else None
        badge = ""
        if gate is not None:
            word = "passed" if gate.get("passed") else "failed"
            badge = f' <span class="badge {"pass" if gate.get("passed") else "fail"}">gate {word}</span>'
        version = run.get("version")
        label = f"{run.get('dataset', 'n/a')}" + (f" v{version}" if version is not None else "")
        parts = [f"<h4>{_e(run['_run'])}: candidate {_e(run.get('candidate', 'n/a'))} on {_e(label)}{badge}</h4>"]
        if run.get("n_records") is not None:
            parts.append(
                f'<p class="note">{_e(run.get("n_records"))} records; candidate errors: '
                f"{_e(run.get('candidate_errors', 'n/a'))}.</p>"
            )
        scopes: list[tuple[str, Mapping[str, Any]]] = []
        if isinstance(run.get("scorers"), Mapping):
            scopes.append(("all records", run["scorers"]))
        if isinstance(run.get("rules"), Mapping):
            scopes += [(f"rule {r}", b) for r, b in sorted(run["rules"].items()) if isinstance(b, Mapping)]
        rows: list[str] = []
        forest: list[Interval] = []
        for scope, block in scopes:
            for scorer, stats in sorted(block.items()):
                if isinstance(stats, Mapping):
                    rows.append(_comparison_row(scope, scorer, stats))
                    forest.append(_forest_row(f"{scorer} ({scope})", stats))
        if rows:
            headers = [
                "records", "scorer", "pairs", "candidate mean", "production mean",
                "improvement (candidate - production)", "95% CI", "p-value (Wilcoxon)",
                "wins / losses / ties",
            ]  # fmt: skip
            parts.append(_table(headers, rows, "Candidate vs production on the same records", "evaluation"))
            svg = interval_plot_svg(
                chart_id=f"eval-{self.index}-{k}",
                title="Improvement over production (95% CI)",
                x_label="mean score difference, candidate - production",
                rows=forest,
            )
            parts.append(f'<figure class="chart-box">{svg}</figure>')
        checks = gate.get("checks") if gate is not None else None
        if isinstance(checks, list) and checks:
            check_rows = [_gate_row(c) for c in checks if isinstance(c, Mapping)]
            headers = ["gate", "criterion", "threshold", "actual", "result", "detail"]
            parts.append(_table(headers, check_rows, "Release gate checks", "gate"))
        return "".join(parts)

    def render(self) -> str:
        """The whole section."""
        data = self.data
        summary = summary_of(data)
        problems = ""
        if data.problems:
            items = "".join(f"<li>{_e(p)}</li>" for p in data.problems)
            problems = f'<div class="problems"><p>Files that could not be read:</p><ul>{items}</ul></div>'
        return (
            f'<section class="app" id="app-{_e(data.app)}" aria-labelledby="app-{_e(data.app)}-h">'
            f'<h2 id="app-{_e(data.app)}-h">Application {_e(data.app)}</h2>'
            + self.headline(summary)
            + "<h3>Monitor</h3>"
            + self.monitor_charts()
            + self.alerts()
            + self.incidents_section()
            + self.datasets_section()
            + self.evaluations_section()
            + problems
            + "</section>"
        )


def _comparison_row(scope: str, scorer: str, stats: Mapping[str, Any]) -> str:
    diff = _first(stats, ("improvement", "diff", "mean_diff"))
    low, high = _first(stats, ("ci_low",)), _first(stats, ("ci_high",))
    ci = f"{low:+.3f} to {high:+.3f}" if low is not None and high is not None else "n/a"
    wlt = " / ".join(str(stats.get(key, "n/a")) for key in ("wins", "losses", "ties"))
    return (
        "<tr>"
        + _td(scope)
        + _td(scorer)
        + _td(stats.get("n", "n/a"), num=True)
        + _td(format_value(_first(stats, ("candidate_mean",)), "score"), num=True)
        + _td(format_value(_first(stats, ("production_mean",)), "score"), num=True)
        + _td("n/a" if diff is None else f"{diff:+.3f}", num=True)
        + _td(ci, num=True)
        + _td(_num_text(stats.get("p_value")), num=True)
        + _td(wlt, num=True)
        + "</tr>"
    )


def _forest_row(label: str, stats: Mapping[str, Any]) -> Interval:
    diff = _first(stats, ("improvement", "diff", "mean_diff"))
    low, high = _first(stats, ("ci_low",)), _first(stats, ("ci_high",))
    good = None
    if low is not None and high is not None:
        # Green only when the whole CI is above zero, vermillion when it is wholly below.
        good = True if low > 0 else (False if high < 0 else None)
    return Interval(label, diff, low, high, good)


def _gate_row(check: Mapping[str, Any]) -> str:
    ok = bool(check.get("passed"))
    return (
        f'<tr class="state-{"resolved" if ok else "fired"}">'
        + _td(check.get("gate", "n/a"))
        + _td(check.get("criterion", "n/a"))
        + _td(_num_text(check.get("threshold")), num=True)
        + _td(_num_text(check.get("actual")), num=True)
        + _td("passed" if ok else "failed")
        + _td(check.get("message", ""))
        + "</tr>"
    )


def _first(stats: Mapping[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = stats.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _num_text(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return "n/a"


def _links_html(links: Mapping[str, str] | None) -> str:
    if not links:
        return ""
    items = []
    for label, url in links.items():
        scheme = urlsplit(str(url)).scheme.lower()
        if scheme not in _ALLOWED_SCHEMES:
            raise ConfigError(f"link {label!r} has URL {url!r} with scheme {scheme!r}; use an http(s) or file URL")
        items.append(f'<li><a href="{escape(str(url), quote=True)}">{_e(label)}</a></li>')
    return f'<nav aria-label="Related tools"><ul>{"".join(items)}</ul></nav>'


def render_html(
    apps: Sequence[AppData],
    *,
    title: str = "genai-flywheel report",
    ground_truth: Mapping[str, Any] | list[Any] | None = None,
    links: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report page for already loaded application data (see :func:`render_report`)."""
    sections = []
    toc = []
    for i, data in enumerate(apps):
        incidents = parse_incidents(ground_truth, data.app)
        sections.append(_AppPage(data, i, incidents).render())
        toc.append(f'<li><a href="#app-{_e(data.app)}">{_e(data.app)}</a></li>')
    meta = [f"Applications: {', '.join(a.app for a in apps)}."]
    if generated_at is not None:
        meta.append(f"Generated {format_time(generated_at)} UTC.")
    if ground_truth is not None:
        meta.append("Planted incident windows from the simulator's ground truth are hatched.")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><h1>{_e(title)}</h1>{_links_html(links)}'
        f'<p class="meta">{_e(" ".join(meta))}</p></header>'
        f'<main><nav aria-label="Applications"><ul>{"".join(toc)}</ul></nav>{"".join(sections)}</main>'
        "<footer>Static report of genai-flywheel: charts are inline SVG, the page loads nothing else. "
        "Bands are 95% confidence intervals; an alert fires only when the whole interval crosses its "
        "threshold. Hover a chart for per-interval values.</footer>"
        "</body></html>\n"
    )


def render_report(
    data_root: Path,
    apps: list[str],
    out: Path,
    *,
    title: str = "genai-flywheel report",
    ground_truth: dict[str, Any] | list[Any] | None = None,
    links: dict[str, str] | None = None,
    generated_at: datetime | None = None,
) -> Path:
    """Write the static HTML report of ``apps`` (data under ``data_root``) to ``out``; return ``out``.

    ``ground_truth`` is the traffic simulator's ground-truth dict (``{"incidents": [{name, kind, start,
    end, ...}]}``) or a list of ``{name, start, end}`` windows; its windows are hatched on every chart and
    matched against the alerts. ``links`` maps a label to a URL (e.g. the MLflow and Airflow UIs) shown in
    the header. ``generated_at`` is printed when given; nothing else depends on the clock, so the same
    inputs give the same bytes. The file is written atomically.
    """
    from genai_flywheel.metrics.store import atomic_write_text

    if not apps:
        raise ConfigError("render_report needs at least one application name; pass e.g. apps=['support']")
    unique = list(dict.fromkeys(apps))  # order kept, repeats dropped
    loaded = [load_app(Path(data_root), app) for app in unique]
    page = render_html(loaded, title=title, ground_truth=ground_truth, links=links, generated_at=generated_at)
    path = atomic_write_text(page, Path(out))
    log.info("wrote the report of %s (%d bytes) to %s", ", ".join(unique), len(page.encode("utf-8")), path)
    return path
