"""The static HTML report: one self-contained file with inline CSS and inline SVG charts, no scripts.

Per application: headline numbers, time-series charts (traffic, latency p95 end to end and per span type,
error rate, each scorer's pass rate, user-feedback positive rate, and any other alerted metric) with the
95 % CI as a band, alert firing windows shaded and rule thresholds dashed, a rule summary and the table of
notable alert events; the judge calibration against the reviewers (with the disagreeing traces, linked to
the MLflow UI when the caller gives ``trace_urls``); then any sections the caller adds (``extra_sections``),
curated dataset versions and development evaluations. Windows the caller annotates (``annotations``: a
deployment, an outage) are hatched on every chart of their application.

Deterministic: the same data root and arguments give the same bytes (no clock is read; pass
``generated_at`` to print a time). The HTML is the Jinja2 templates ``report.html.j2`` and
``report_app.html.j2`` (package data, autoescaped: all text goes through :func:`html.escape`); this module
gathers what they show. A caller's extra sections are HTML it built itself (trusted markup, inserted as
it is). The macros and the monitor charts are shared with the Airflow UI's GenAI Quality
page (``fragments.html.j2``, :mod:`.trends`).
(The module is not called ``html.py`` so it never shadows the standard library's ``html``.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.report.calibration import TraceUrl, calibration_panel
from genai_flywheel.report.charts import CHART_CSS, PALETTE, Interval, format_time, format_value, interval_plot_svg
from genai_flywheel.report.data import Annotation, AppData, alert_counts, load_app, summary_of
from genai_flywheel.report.fragments import (
    IMPROVEMENT_KEYS,
    WEB_SCHEMES,
    Card,
    dataset_cells,
    dataset_label,
    gate_of,
    number,
    signed,
)
from genai_flywheel.report.segments import SegmentLinks, history_table
from genai_flywheel.report.templating import render
from genai_flywheel.report.trends import RuleLine, TrendCharts, feedback_names, scorer_names

log = logging.getLogger(__name__)

_MAX_ERROR_TYPES = 4  # more lines make the error chart unreadable; the rest still count in "all errors"
# The report is a file opened from disk: it may link other local files (e.g. an exported dataset's page).
_LINK_SCHEMES = (*WEB_SCHEMES, "file")
# A section a caller adds to every application: given its loaded data, an HTML fragment (or "").
ExtraSection = Callable[[AppData], str]

_CSS = (
    """
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
"""
    + CHART_CSS
    + """table { border-collapse: collapse; font-size: 0.88rem; margin: 6px 0 10px 0; }
th, td { border: 1px solid #d9dde3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.state-fired td { background: #fde3d6; }
tr.state-resolved td { background: #dff2e8; }
tr.state-still_firing td, tr.state-insufficient_data td { background: #fff1e6; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8rem; font-weight: 600; }
.badge.pass { background: #dff2e8; color: #0b5d3b; }
.badge.fail { background: #fde3d6; color: #8a2c00; }
.note { color: #4a5563; font-size: 0.9rem; }
.problems { color: #8a2c00; }
footer { padding: 12px 28px 30px 28px; color: #4a5563; font-size: 0.85rem; }
"""
)


class _AppPage:
    """What the section of one application shows (``report_app.html.j2`` lays it out)."""

    def __init__(
        self,
        data: AppData,
        index: int,
        annotations: Sequence[Annotation] = (),
        extra_sections: Sequence[ExtraSection] = (),
        trace_url: TraceUrl | None = None,
    ) -> None:
        self.data = data
        self.index = index
        self.extra_sections = extra_sections
        self.trace_url = trace_url
        self.rules = alert_counts(data.events)
        if data.intervals:
            x_range = (data.intervals[0][0], data.intervals[-1][1])
        else:
            x_range = (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC))
        self.trends = TrendCharts(
            data.metrics,
            x_range=x_range,
            chart_id=f"chart-{index}",
            events=data.events,
            rules=[RuleLine(rule, r["metric"], r["op"], r["threshold"]) for rule, r in self.rules.items()],
            annotations=annotations,
        )

    @property
    def app(self) -> str:
        return self.data.app

    def monitor_charts(self) -> tuple[list[Markup], list[tuple[str, list[Markup]]]]:
        """Traffic, latency (end to end and per span type) and errors (all and per exception type), then
        the groups of scorers, feedback and other alerted metrics as ``(heading, charts)``."""
        t = self.trends
        main = [
            t.volume_chart("Traffic"),
            t.latency_chart(per_span_type=True),
            t.error_chart(max_types=_MAX_ERROR_TYPES),
        ]
        groups = [
            # Every scorer is listed, even one without any score in these intervals (an empty chart).
            ("Scorers", [t.scorer_chart(name, PALETTE[2], keep_empty=True) for name in scorer_names(t.metrics)]),
            ("User feedback", [t.feedback_chart(name, PALETTE[3]) for name in feedback_names(t.metrics)]),
            ("Drift against the reference window", t.drift_charts()),
        ]
        # Last, so it holds exactly the alerted metrics no chart above shows.
        groups.append(("Other alerted metrics", [t.alerted_chart(m, PALETTE[0]) for m in t.uncharted_rule_metrics()]))
        return [Markup(c) for c in main], [(h, [Markup(c) for c in charts]) for h, charts in groups]

    def headline_cards(self) -> list[Card]:
        """The headline numbers."""
        summary = summary_of(self.data)
        traces = summary["traces"]
        err_share = f"{summary['error_traces'] / traces * 100:.1f}%" if traces else "n/a"
        firing = ", ".join(summary["firing_now"]) or "none"
        items = [
            Card("intervals processed", f"{summary['intervals']:,}"),
            Card("traces", f"{traces:,}"),
            Card("failed traces", f"{summary['error_traces']:,}", err_share),
            Card("sampled / scored", f"{summary['sampled']:,} / {summary['scored']:,}", "traces / trace x scorer"),
            Card("scorer errors", f"{summary['scorer_errors']:,}"),
            Card("quarantined rows", f"{summary['quarantined']:,}"),
            Card("alerts raised", f"{summary['alerts_raised']:,}", f"firing now: {firing}"),
        ]
        if summary["cost_usd"]:
            items.append(Card("LLM cost", f"${summary['cost_usd']:,.2f}", f"{summary['tokens_total']:,} tokens"))
        for name, n in summary["feedback_by_name"].items():
            items.append(Card(f"feedback {name}", f"{n:,}", "traces with feedback"))
        return items

    def notable_events(self) -> list[Mapping[str, Any]]:
        """The alert events in which a rule fired, kept firing or resolved."""
        return [e for e in self.data.events if e["status"] == "firing" or e["kind"] in ("fired", "resolved")]

    def calibration(self) -> dict[str, Any]:
        """The judge-calibration panel (macro ``calibration``)."""
        return calibration_panel(self.data.calibration, self.data.disagreements, self.trace_url)

    def segment_history(self, dimension: str, segment: str) -> tuple[list[str], list[Any]]:
        """The columns (metrics) and rows (intervals) of a worst segment's history."""
        return history_table(self.data.segment_history.get((dimension, segment), ()))

    def extra_html(self) -> list[Markup]:
        """The caller's sections for this application, in order; each is HTML the caller built (its text
        already escaped), so it is written as it is."""
        return [Markup(section(self.data)) for section in self.extra_sections]

    def dataset_cells(self) -> list[list[str]]:
        """The cells of each curated dataset version, with its quarantined count."""
        return [dataset_cells(d, quarantined=True) for d in self.data.datasets]

    def evaluations(self) -> list[dict[str, Any]]:
        """Each development evaluation: heading, candidate vs production per scorer (with a forest plot of
        the improvements) and the gate's checks."""
        return [self._evaluation(k, run) for k, run in enumerate(self.data.evaluations)]

    def _evaluation(self, k: int, run: Mapping[str, Any]) -> dict[str, Any]:
        gate = gate_of(run)
        scopes: list[tuple[str, Mapping[str, Any]]] = []
        if isinstance(run.get("scorers"), Mapping):
            scopes.append(("all records", run["scorers"]))
        if isinstance(run.get("rules"), Mapping):
            scopes += [(f"rule {r}", b) for r, b in sorted(run["rules"].items()) if isinstance(b, Mapping)]
        comparisons: list[list[str]] = []
        forest: list[Interval] = []
        for scope, block in scopes:
            for scorer, stats in sorted(block.items()):
                if isinstance(stats, Mapping):
                    comparisons.append(_comparison_cells(scope, scorer, stats))
                    forest.append(_forest_row(f"{scorer} ({scope})", stats))
        svg = ""
        if comparisons:
            svg = interval_plot_svg(
                chart_id=f"eval-{self.index}-{k}",
                title="Improvement over production (95% CI)",
                x_label="mean score difference, candidate - production",
                rows=forest,
            )
        checks = gate.get("checks") if gate is not None else None
        return {
            "run": run["_run"],
            "candidate": run.get("candidate", "n/a"),
            "dataset": dataset_label(run),
            "gate_passed": None if gate is None else bool(gate.get("passed")),
            "n_records": run.get("n_records"),
            "candidate_errors": run.get("candidate_errors", "n/a"),
            "comparisons": comparisons,
            "forest": Markup(svg),
            "checks": [_gate_check(c) for c in checks if isinstance(c, Mapping)] if isinstance(checks, list) else [],
        }


def _comparison_cells(scope: str, scorer: str, stats: Mapping[str, Any]) -> list[str]:
    diff = number(stats, IMPROVEMENT_KEYS)
    low, high = number(stats, ("ci_low",)), number(stats, ("ci_high",))
    ci = f"{signed(low)} to {signed(high)}" if low is not None and high is not None else "n/a"
    wlt = " / ".join(str(stats.get(key, "n/a")) for key in ("wins", "losses", "ties"))
    return [
        scope,
        scorer,
        stats.get("n", "n/a"),
        format_value(number(stats, ("candidate_mean",)), "score"),
        format_value(number(stats, ("production_mean",)), "score"),
        signed(diff),
        ci,
        _num_text(stats.get("p_value")),
        wlt,
    ]


def _forest_row(label: str, stats: Mapping[str, Any]) -> Interval:
    diff = number(stats, IMPROVEMENT_KEYS)
    low, high = number(stats, ("ci_low",)), number(stats, ("ci_high",))
    good = None
    if low is not None and high is not None:
        # Green only when the whole CI is above zero, vermillion when it is wholly below.
        good = True if low > 0 else (False if high < 0 else None)
    return Interval(label, diff, low, high, good)


def _gate_check(check: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "passed": bool(check.get("passed")),
        "gate": check.get("gate", "n/a"),
        "criterion": check.get("criterion", "n/a"),
        "threshold": _num_text(check.get("threshold")),
        "actual": _num_text(check.get("actual")),
        "detail": check.get("message", ""),
    }


def _num_text(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return "n/a"


def render_html(
    apps: Sequence[AppData],
    *,
    title: str = "genai-flywheel report",
    annotations: Mapping[str, Sequence[Annotation]] | None = None,
    extra_sections: Sequence[ExtraSection] = (),
    notes: Sequence[str] = (),
    links: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
    trace_urls: Mapping[str, TraceUrl] | None = None,
) -> str:
    """The report page for already loaded application data (see :func:`render_report`)."""
    marked = annotations or {}
    urls = trace_urls or {}
    pages = [
        _AppPage(data, i, marked.get(data.app, ()), extra_sections, urls.get(data.app)) for i, data in enumerate(apps)
    ]
    meta = [f"Applications: {', '.join(a.app for a in apps)}."]
    if generated_at is not None:
        meta.append(f"Generated {format_time(generated_at)} UTC.")
    meta += notes
    return render(
        "report.html.j2",
        title=title,
        css=Markup(_CSS),
        links=[(label, str(url), f"link {label!r}") for label, url in (links or {}).items()],
        link_schemes=_LINK_SCHEMES,
        meta=" ".join(meta),
        pages=pages,
    )


def render_report(
    data_root: Path,
    apps: list[str],
    out: Path,
    *,
    title: str = "genai-flywheel report",
    annotations: Mapping[str, Sequence[Annotation]] | None = None,
    extra_sections: Sequence[ExtraSection] = (),
    notes: Sequence[str] = (),
    links: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
    trace_urls: Mapping[str, TraceUrl] | None = None,
    segment_links: Mapping[str, SegmentLinks] | None = None,
) -> Path:
    """Write the static HTML report of ``apps`` (data under ``data_root``) to ``out``; return ``out``.

    ``annotations`` maps an application name to the windows hatched and labelled on each of its charts.
    Each of ``extra_sections`` is called with an application's loaded :class:`~.data.AppData` and returns
    an HTML fragment placed after the alerts, or ``""``. The fragment is trusted markup, written as it is:
    build it from code, with its text escaped (e.g. with :func:`.fragments.esc`, the macros of
    ``fragments.html.j2`` or a template of the caller's package rendered by :func:`.templating.render`).
    ``notes`` are sentences added to the header (escaped). ``links`` maps a label to a URL (e.g. the MLflow
    and Airflow UIs) shown in the header. ``generated_at`` is printed when given; nothing else depends on the
    clock, so the same inputs give the same bytes. ``trace_urls`` maps an application name to a function
    giving a trace's MLflow UI address (:func:`genai_flywheel.report.calibration.mlflow_trace_url`): the judge
    calibration's disagreeing traces link there (plain trace ids without it). ``segment_links`` maps an
    application name to where its worst segments link (its MLflow Traces tab and its dimensions' sources).
    The file is written atomically.
    """
    from genai_flywheel.workspace import atomic_write_text

    if not apps:
        raise ConfigError("render_report needs at least one application name; pass e.g. apps=['support']")
    unique = list(dict.fromkeys(apps))  # order kept, repeats dropped
    loaded = [load_app(Path(data_root), app, segment_links=(segment_links or {}).get(app)) for app in unique]
    page = render_html(
        loaded,
        title=title,
        annotations=annotations,
        extra_sections=extra_sections,
        notes=notes,
        links=links,
        generated_at=generated_at,
        trace_urls=trace_urls,
    )
    path = atomic_write_text(page, Path(out))
    log.info("wrote the report of %s (%d bytes) to %s", ", ".join(unique), len(page.encode("utf-8")), path)
    return path
