"""HTML of the GenAI Quality page: inline CSS and the report's inline SVG charts, no script, nothing fetched.

Every value written into the page goes through :func:`html.escape`; every link is either relative (the
Airflow UI and this app) or an http(s) URL built from the configured tracking URI without credentials.
The page is meant to be embedded in the Airflow UI's iframe, so links that leave it say where they open:
Airflow pages replace the whole window (``target="_top"``), MLflow opens in a new tab.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit

from flywheel_airflow.ui.collect import BUDGET_INTERVALS, AppView, utc
from flywheel_airflow.ui.links import (
    MlflowLinks,
    airflow_dag_link,
    airflow_runs_link,
    mlflow_run_link,
    monitor_dag_id,
)
from genai_flywheel.metrics.aggregate import is_estimate
from genai_flywheel.report.charts import (
    PALETTE,
    Series,
    Shade,
    Threshold,
    Unit,
    format_time,
    format_value,
    time_series_svg,
)

TITLE = "GenAI Quality"
WINDOW_CHOICES = (24, 168, 720)  # chart windows offered in the header, in intervals
# Scorers cycle through green, sky blue and pink; feedback is wine, other alerted metrics black, so a
# scorer and a feedback chart side by side never share a colour.
_SCORER_COLOURS = (PALETTE[2], PALETTE[4], PALETTE[3])

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0; color: #1a1a1a; background: #f6f7f9; line-height: 1.45; font-size: 15px; }
header.top { background: #14213d; color: #fff; padding: 14px 24px; }
header.top h1 { margin: 0; font-size: 1.45rem; }
header.top p { margin: 4px 0 0 0; color: #dfe6f3; font-size: 0.9rem; }
header.top a { color: #ffd98e; }
nav.apps ul { list-style: none; display: flex; flex-wrap: wrap; gap: 8px 18px; padding: 0;
  margin: 8px 0 0 0; }
main { padding: 4px 24px 32px 24px; }
section.app { background: #fff; border: 1px solid #d9dde3; border-radius: 6px; padding: 6px 20px 18px 20px;
  margin-top: 18px; }
h2 { font-size: 1.35rem; margin: 10px 0 4px 0; }
h3 { font-size: 1.1rem; margin: 20px 0 8px 0; border-bottom: 1px solid #e3e6ea; padding-bottom: 4px; }
ul.links { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 0; margin: 4px 0; }
a { color: #0b5cad; }
dl.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
dl.cards div { background: #f1f4f8; border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 14px;
  min-width: 150px; }
dl.cards div.bad { background: #fde3d6; border-color: #f0b499; }
dl.cards div.good { background: #dff2e8; border-color: #a9d9bf; }
dl.cards dt { font-size: 0.78rem; color: #4a5563; margin: 0; }
dl.cards dd { font-size: 1.3rem; font-weight: 600; margin: 2px 0 0 0; }
dl.cards dd small { font-size: 0.78rem; font-weight: 400; color: #4a5563; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
figure.chart-box { margin: 0; border: 1px solid #e3e6ea; border-radius: 4px; padding: 4px; background: #fff; }
svg.chart { max-width: 100%; height: auto; display: block; font-family: inherit; }
svg .chart-title { font-size: 14px; font-weight: 600; fill: #1a1a1a; }
svg .legend-text { font-size: 11px; fill: #333; }
svg .axis text { fill: #333; }
svg .axis-label { font-size: 11px; fill: #333; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .incident-label { font-size: 10px; fill: #444; }
svg .no-data { font-size: 12px; fill: #666; }
svg rect.hover:hover { fill-opacity: 0.07; }
table { border-collapse: collapse; font-size: 0.86rem; margin: 6px 0 10px 0; }
caption { text-align: left; color: #4a5563; font-size: 0.85rem; padding-bottom: 4px; }
th, td { border: 1px solid #d9dde3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.firing td { background: #fde3d6; }
tr.resolved td { background: #dff2e8; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8rem; font-weight: 600; }
.badge.pass, .badge.ok { background: #dff2e8; color: #0b5d3b; }
.badge.fail, .badge.firing { background: #fde3d6; color: #8a2c00; }
.badge.none { background: #eceff3; color: #4a5563; }
.note { color: #4a5563; font-size: 0.9rem; }
.empty { color: #4a5563; background: #f6f7f9; border: 1px dashed #c9ced6; border-radius: 6px;
  padding: 10px 14px; }
.problems { color: #8a2c00; }
footer { padding: 8px 24px 24px 24px; color: #4a5563; font-size: 0.82rem; }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _href(url: str) -> str:
    """``url`` escaped for an attribute, refusing anything but relative and http(s) URLs."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("", "http", "https"):
        raise ValueError(f"refusing to link {url!r}: only relative and http(s) URLs are linked")
    return escape(url, quote=True)


def _link(url: str | None, text: str, *, top: bool = False, external: bool = False) -> str:
    if not url:
        return _e(text)
    target = ' target="_top"' if top else (' target="_blank" rel="noopener noreferrer"' if external else "")
    return f'<a href="{_href(url)}"{target}>{_e(text)}</a>'


def unit_of(metric: str) -> Unit:
    """The display unit of a metric name (see genai_flywheel.metrics.aggregate for the names)."""
    if metric.endswith("_ms"):
        return "ms"
    if metric == "cost_usd":
        return "usd"
    if metric.endswith("rate") or metric.startswith("error_rate"):
        return "rate"
    return "score" if is_estimate(metric) else "count"


def _time(value: datetime | None) -> str:
    return f"{format_time(utc(value))} UTC" if value is not None else "n/a"


def _window(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "n/a"
    return f"{format_time(utc(start))} to {format_time(utc(end))}"


def _td(value: Any, *, num: bool = False, raw: bool = False) -> str:
    cls = ' class="num"' if num else ""
    return f"<td{cls}>{value if raw else _e(value)}</td>"


def _table(headers: Sequence[str], rows: Sequence[str], caption: str, cls: str) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return (
        f'<table class="{_e(cls)}"><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _empty(text: str, cls: str = "") -> str:
    klass = f"empty {cls}".strip()
    return f'<p class="{_e(klass)}">{_e(text)}</p>'


def _ci(low: float | None, high: float | None, unit: Unit) -> str:
    if low is None or high is None:
        return "n/a"
    return f"{format_value(low, unit)} to {format_value(high, unit)}"


class _AppSection:
    """The HTML section of one application."""

    def __init__(self, view: AppView, mlflow: MlflowLinks, root: str) -> None:
        self.view = view
        self.mlflow = mlflow
        self.root = root  # relative path from the current page to the app's root ("" or "../")
        self.app = view.name
        self.charts = 0
        self.charted: set[str] = set()
        self.x_range = (view.intervals[0][0], view.intervals[-1][1]) if view.intervals else None

    # --- header -----------------------------------------------------------------------------------------
    def links(self) -> str:
        m = self.mlflow
        items = []
        if m.traces:
            items.append(_link(m.traces, "Traces in MLflow", external=True))
            items.append(_link(m.runs, "Runs in MLflow", external=True))
        elif m.experiments:
            items.append(_link(m.experiments, "MLflow experiments", external=True))
        items.append(_link(airflow_dag_link(self.app), f"Monitor DAG {_dag(self.app)}", top=True))
        items.append(_link(airflow_runs_link(self.app), "its runs", top=True))
        api = f"{self.root}api/apps/{quote(self.app, safe='')}"
        items.append(_link(f"{api}/alerts", "alerts JSON"))
        items.append(_link(f"{api}/metrics", "metrics JSON"))
        note = f'<p class="note mlflow-note">MLflow: {_e(m.note)}.</p>' if m.note else ""
        return '<ul class="links">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>" + note

    def cards(self) -> str:
        v = self.view
        latest = v.intervals[-1] if v.intervals else None
        traces = sum(p.value or 0.0 for p in v.metrics.get("volume", ()))
        n = len(v.intervals)
        firing = len(v.firing)
        skipped = v.budget_skipped()
        gate = _latest_gate(v.evaluations)
        cards = [
            ("intervals stored", f"{v.total_intervals:,}", "", ""),
            ("latest interval", _window(*latest) if latest else "none yet", "UTC" if latest else "", ""),
            ("traces", f"{traces:,.0f}", f"in the last {n} interval(s)" if n else "no interval yet", ""),
            (
                "alerts firing",
                str(firing),
                ", ".join(f["rule"] for f in v.firing) or ("none" if v.events else "not evaluated yet"),
                "bad" if firing else ("good" if v.events else ""),
            ),
            (
                "judge calls skipped (budget)",
                "n/a" if skipped is None else f"{skipped:,}",
                f"last {min(BUDGET_INTERVALS, n)} interval(s)" if skipped is not None else "no score files",
                "bad" if skipped else "",
            ),
            ("curated datasets", str(len(v.datasets)), "", ""),
            ("latest evaluation gate", gate, "", {"passed": "good", "failed": "bad"}.get(gate, "")),
        ]
        items = "".join(
            f'<div class="{_e(cls)}"><dt>{_e(label)}</dt><dd>{_e(value)}'
            + (f" <small>{_e(sub)}</small>" if sub else "")
            + "</dd></div>"
            for label, value, sub, cls in cards
        )
        return f'<dl class="cards">{items}</dl>'

    # --- charts -----------------------------------------------------------------------------------------
    def _shades(self, metrics: set[str]) -> list[Shade]:
        return [
            Shade(e["interval_start"], e["interval_end"], "alert", e["rule"])
            for e in self.view.events
            if e["metric"] in metrics and e["status"] == "firing"
        ]

    def _thresholds(self, metrics: set[str]) -> list[Threshold]:
        return [
            Threshold(float(r.threshold), f"{r.name}: {r.op} {format_value(r.threshold, unit_of(r.metric))}")
            for r in self.view.app.alerts
            if r.metric in metrics
        ]

    def _series(self, metric: str, label: str, colour: str, band: bool = False, dashed: bool = False) -> Series:
        return Series(label, self.view.metrics.get(metric, ()), colour, band, dashed, metric)

    def _chart(self, title: str, y_label: str, unit: Unit, series: list[Series]) -> str:
        assert self.x_range is not None  # charts are drawn only when intervals exist
        metrics = {s.metric for s in series if s.metric}
        self.charted |= metrics
        self.charts += 1
        svg = time_series_svg(
            chart_id=f"c-{self.app}-{self.charts}",
            title=title,
            y_label=y_label,
            unit=unit,
            series=series,
            x_range=self.x_range,
            shades=self._shades(metrics),
            thresholds=self._thresholds(metrics),
        )
        return f'<figure class="chart-box">{svg}</figure>'

    def charts_html(self) -> str:
        v = self.view
        if not v.intervals:
            return _empty(
                f"No metrics yet for {self.app}: the monitor DAG {_dag(self.app)} has not stored an interval "
                f"(expected under metrics/app={self.app}/ in the data root). Charts appear after its first "
                "successful run.",
                "no-metrics",
            )
        m = v.metrics
        parts = ['<div class="charts">']
        parts.append(
            self._chart(
                "Latency p95", "latency p95 (ms)", "ms",
                [self._series("latency_p95_ms", "end-to-end p95", PALETTE[0], band=True)],
            )
        )  # fmt: skip
        parts.append(
            self._chart(
                "Error rate", "error rate (%)", "rate",
                [self._series("error_rate", "failed traces", PALETTE[0], band=True)],
            )
        )  # fmt: skip
        scorers = sorted(
            {x.split(".", 1)[1].rsplit(".", 1)[0] for x in m if x.startswith("scorer.") and x.count(".") >= 2}
        )
        for i, name in enumerate(scorers):
            colour = _SCORER_COLOURS[i % len(_SCORER_COLOURS)]
            rate = f"scorer.{name}.pass_rate"
            if any(p.value is not None for p in m.get(rate, ())):
                parts.append(
                    self._chart(f"Scorer {name}: pass rate", "pass rate (%)", "rate",
                                [self._series(rate, f"{name} pass rate", colour, band=True)])
                )  # fmt: skip
            elif any(p.value is not None for p in m.get(f"scorer.{name}.mean", ())):
                parts.append(
                    self._chart(f"Scorer {name}: mean score", "mean score", "score",
                                [self._series(f"scorer.{name}.mean", f"{name} mean", colour, band=True)])
                )  # fmt: skip
        feedback = sorted(
            x[len("feedback.") : -len(".positive_rate")]
            for x in m
            if x.startswith("feedback.") and x.endswith(".positive_rate")
        )
        for name in feedback:
            parts.append(
                self._chart(f"Feedback {name}: positive rate", "positive feedback (%)", "rate",
                            [self._series(f"feedback.{name}.positive_rate", f"{name} positive", PALETTE[5],
                                          band=True)])
            )  # fmt: skip
        parts.append(
            self._chart(
                "Volume", "traces per interval (count)", "count",
                [self._series("volume", "traces", PALETTE[0]),
                 self._series("sampled", "sampled for scoring", PALETTE[1], dashed=True)],
            )
        )  # fmt: skip
        # Every alerted metric gets a chart, so each firing window is visible somewhere.
        for metric in sorted({r.metric for r in v.app.alerts} - self.charted):
            unit = unit_of(metric)
            parts.append(
                self._chart(f"Alerted metric {metric}", metric, unit,
                            [self._series(metric, metric, PALETTE[6], band=is_estimate(metric))])
            )  # fmt: skip
        parts.append("</div>")
        return "".join(parts)

    # --- alerts -----------------------------------------------------------------------------------------
    def alerts_html(self) -> str:
        v = self.view
        parts = ["<h3>Alerts</h3>"]
        if v.firing:
            rows = []
            for f in v.firing:
                unit = unit_of(f["metric"] or "")
                condition = f"{f['metric']} {f['op']} {format_value(f['threshold'], unit)}" if f["metric"] else "n/a"
                rows.append(
                    '<tr class="firing">'
                    + _td(f["rule"])
                    + _td(f["severity"] or "n/a")
                    + _td(condition)
                    + _td(_time(f["since"]))
                    + _td(_window(f["interval_start"], f["interval_end"]))
                    + _td(format_value(f["value"], unit), num=True)
                    + _td(_ci(f["ci_low"], f["ci_high"], unit), num=True)
                    + _td(f["n"] if f["n"] is not None else "n/a", num=True)
                    + "</tr>"
                )
            parts.append(
                _table(
                    ["rule", "severity", "condition", "firing since", "latest interval (UTC)", "value",
                     "95% CI", "n"],
                    rows, "Alerts firing now (the whole 95% CI is beyond the threshold)", "firing-now",
                )
            )  # fmt: skip
        elif v.events:
            parts.append(_empty("No alert is firing.", "no-firing"))
        else:
            parts.append(
                _empty(
                    f"No alert rule has been evaluated yet for {self.app} (no alerts/app={self.app}/events.parquet).",
                    "no-alerts",
                )
            )
        if v.rules:
            rows = []
            for r in v.rules:
                unit = unit_of(r["metric"])
                badge = {"firing": "firing", "ok": "ok"}.get(r["status"], "none")
                rows.append(
                    "<tr>"
                    + _td(r["rule"])
                    + _td(f"{r['metric']} {r['op']} {format_value(r['threshold'], unit)}")
                    + _td(r["min_samples"], num=True)
                    + _td(r["severity"])
                    + _td(f'<span class="badge {badge}">{_e(r["status"])}</span>', raw=True)
                    + "</tr>"
                )
            parts.append(
                _table(["rule", "condition", "min samples", "severity", "status"], rows,
                       "Configured alert rules", "rules")
            )  # fmt: skip
        recent = v.recent_events()
        if recent:
            rows = []
            for e in recent:
                unit = unit_of(e["metric"])
                rows.append(
                    f'<tr class="{_e(e["kind"])}">'
                    + _td(_window(e["interval_start"], e["interval_end"]))
                    + _td(e["rule"])
                    + _td(e["kind"])
                    + _td(format_value(e["value"], unit), num=True)
                    + _td(_ci(e["ci_low"], e["ci_high"], unit), num=True)
                    + _td(e["n"], num=True)
                    + _td("yes" if e["notified"] else "no")
                    + "</tr>"
                )
            parts.append(
                _table(["interval (UTC)", "rule", "event", "value", "95% CI", "n", "notified"], rows,
                       "Recent alert events, newest first", "recent-events")
            )  # fmt: skip
        return "".join(parts)

    # --- judge budget -----------------------------------------------------------------------------------
    def budget_html(self) -> str:
        judge = self.view.app.judge
        head = (
            f'<h3>Judge budget</h3><p class="note">LLM judge {_e(judge.model)}: at most '
            f"${judge.max_cost_per_run_usd:,.2f} per monitor run, split over the scoring shards; a judge "
            "call beyond it is skipped and recorded with the error "
            "&ldquo;skipped: judge budget&hellip;&rdquo;.</p>"
        )
        if not judge.conn_id:
            head += (
                '<p class="note">judge.conn_id is not set for this application: LLM judges are not run at '
                "all (skipped, not budget-limited).</p>"
            )
        rows = []
        for b in self.view.budget:
            skipped = "n/a (no run files)" if b.skipped is None else f"{b.skipped:,}"
            per = ", ".join(f"{k}: {n}" for k, n in sorted(b.by_scorer.items())) or "none"
            rows.append(
                f'<tr class="{"firing" if b.skipped else ""}">'
                + _td(_window(b.interval_start, b.interval_end))
                + _td(skipped, num=True)
                + _td(per)
                + _td("n/a" if b.scorer_errors is None else b.scorer_errors, num=True)
                + _td("n/a" if b.scored is None else b.scored, num=True)
                + "</tr>"
            )
        if not rows:
            return head + _empty("No interval has been scored yet.", "no-budget")
        return head + _table(
            ["interval (UTC)", "judge calls skipped (budget)", "by scorer", "scorer errors (all reasons)",
             "scores"],
            rows, f"Most recent {len(rows)} interval(s), newest first (from runs/app={self.app}/.../scores)",
            "budget",
        )  # fmt: skip

    # --- datasets and evaluations -----------------------------------------------------------------------
    def datasets_html(self) -> str:
        if not self.view.datasets:
            return "<h3>Curated datasets</h3>" + _empty(
                "No curated dataset yet: the curation DAG has not committed a version for this application.",
                "no-datasets",
            )
        rows = []
        for d in self.view.datasets:
            per_rule = d.get("per_rule") if isinstance(d.get("per_rule"), Mapping) else {}
            window = "n/a"
            if isinstance(d.get("interval_start_ms"), int) and isinstance(d.get("interval_end_ms"), int):
                window = _window(_from_ms(d["interval_start_ms"]), _from_ms(d["interval_end_ms"]))
            rows.append(
                "<tr>"
                + _td(d.get("dataset"))
                + _td(f"v{d.get('version')}")
                + _td(d.get("records", "n/a"), num=True)
                + _td(d.get("added", "n/a"), num=True)
                + _td(d.get("updated", "n/a"), num=True)
                + _td(", ".join(f"{k}: {n}" for k, n in sorted(per_rule.items())) or "n/a")
                + _td(window)
                + _td(str(d.get("digest", "n/a"))[:19])
                + "</tr>"
            )
        return "<h3>Curated datasets</h3>" + _table(
            ["dataset", "latest version", "records", "added", "updated", "records per rule",
             "source window (UTC)", "digest"],
            rows, "Newest committed version of each dataset (datasets/<name>/v<N>/manifest.json)", "datasets",
        )  # fmt: skip

    def evaluations_html(self) -> str:
        if not self.view.evaluations:
            return "<h3>Development evaluations</h3>" + _empty(
                "No development evaluation yet for this application.", "no-evaluations"
            )
        rows = []
        for run in self.view.evaluations:
            dataset, version = _dataset_of(run)
            gate = run.get("gate") if isinstance(run.get("gate"), Mapping) else None
            if gate is None:
                badge = '<span class="badge none">not run</span>'
            elif gate.get("passed"):
                badge = '<span class="badge pass">passed</span>'
            else:
                badge = '<span class="badge fail">failed</span>'
            failed = [
                str(c.get("message") or c.get("gate"))
                for c in (gate or {}).get("checks") or []
                if isinstance(c, Mapping) and not c.get("passed")
            ]
            if failed:
                badge += f'<br><span class="note">{_e("; ".join(failed))}</span>'
            scorers = run.get("scorers") if isinstance(run.get("scorers"), Mapping) else {}
            results = "<br>".join(
                _e(f"{name}: {_improvement(stats)}")
                for name, stats in sorted(scorers.items())
                if isinstance(stats, Mapping)
            )
            mlflow = run.get("_mlflow") or {}
            run_url = mlflow_run_link(
                self.view.app.mlflow.tracking_uri, mlflow.get("experiment_id"), mlflow.get("run_id")
            )
            label = f"{dataset} v{version}" if version is not None else str(dataset)
            rows.append(
                "<tr>"
                + _td(_link(run_url, str(run["_run"]), external=True), raw=True)
                + _td(run.get("candidate", "n/a"))
                + _td(label)
                + _td(run.get("n_records", "n/a"), num=True)
                + _td(badge, raw=True)
                + _td(results or "n/a", raw=True)
                + "</tr>"
            )
        return "<h3>Development evaluations</h3>" + _table(
            ["run", "candidate", "dataset", "records", "gate", "improvement over production (95% CI)"],
            rows, "Most recent evaluations first (evaluations/app=<app>/<run>/summary.json)", "evaluations",
        )  # fmt: skip

    def _app_url(self) -> str:
        return f"{self.root}apps/{quote(self.app, safe='')}"

    def render(self) -> str:
        v = self.view
        problems = ""
        if v.problems:
            items = "".join(f"<li>{_e(p)}</li>" for p in v.problems)
            problems = f'<div class="problems"><p>Files that could not be read:</p><ul>{items}</ul></div>'
        return (
            f'<section class="app" id="app-{_e(self.app)}" aria-labelledby="app-{_e(self.app)}-h">'
            f'<h2 id="app-{_e(self.app)}-h">{_link(self._app_url(), self.app)}</h2>'
            f'<p class="note">MLflow experiment {_e(v.app.mlflow.experiment)}; schedule '
            f"{_e(v.app.schedule)}.</p>"
            + self.links()
            + problems
            + self.cards()
            + self.alerts_html()
            + "<h3>Trends</h3>"
            + self.charts_html()
            + self.budget_html()
            + self.datasets_html()
            + self.evaluations_html()
            + "</section>"
        )


def _dag(app: str) -> str:
    return monitor_dag_id(app)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _dataset_of(run: Mapping[str, Any]) -> tuple[str, Any]:
    """(name, version) of an evaluation's dataset: the compare stage writes a dict, older runs strings."""
    dataset = run.get("dataset")
    if isinstance(dataset, Mapping):
        return str(dataset.get("name", "n/a")), dataset.get("version")
    return str(dataset if dataset is not None else "n/a"), run.get("version")


def _improvement(stats: Mapping[str, Any]) -> str:
    value = stats.get("improvement")
    low, high = stats.get("ci_low"), stats.get("ci_high")

    def num(x: Any) -> str:
        return f"{x:+.3f}" if isinstance(x, int | float) and not isinstance(x, bool) else "n/a"

    ci = f" [{num(low)}, {num(high)}]" if low is not None and high is not None else ""
    return f"{num(value)}{ci} (n={stats.get('n', 'n/a')})"


def _latest_gate(evaluations: Sequence[Mapping[str, Any]]) -> str:
    if not evaluations:
        return "no evaluation"
    gate = evaluations[0].get("gate")
    if not isinstance(gate, Mapping):
        return "not run"
    return "passed" if gate.get("passed") else "failed"


def _document(title: str, body: str, subtitle: str = "") -> str:
    sub = f"<p>{subtitle}</p>" if subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><h1>{_e(title)}</h1>{sub}</header><main>{body}</main>'
        "<footer>Read-only view of the genai-flywheel data root. Charts are inline SVG with 95% confidence "
        "bands; an alert fires only when the whole interval is beyond its threshold; shaded windows are "
        "intervals in which an alert was firing. Hover a chart for per-interval values.</footer>"
        "</body></html>\n"
    )


def render_page(
    views: Sequence[AppView],
    mlflow: Mapping[str, MlflowLinks],
    *,
    intervals: int,
    root: str = "",
    title: str = TITLE,
) -> str:
    """The page for ``views`` (one section per application). ``root`` is the relative path from the
    current URL to the app's root (``""`` on ``/flywheel/``, ``"../"`` on ``/flywheel/apps/<app>``)."""
    nav = ""
    if len(views) > 1:
        items = "".join(f'<li><a href="#app-{_e(v.name)}">{_e(v.name)}</a></li>' for v in views)
        nav = f'<nav class="apps" aria-label="Applications"><ul>{items}</ul></nav>'
    sections = "".join(_AppSection(v, mlflow[v.name], root).render() for v in views)
    back = f' <a href="{_href(root or "./")}">All applications</a>.' if root else ""
    windows = " &middot; ".join(
        _e(n) if n == intervals else f'<a href="?intervals={n}">{n}</a>' for n in WINDOW_CHOICES
    )
    subtitle = (
        f"Monitor, alerts, judge budget, curated datasets and development evaluations; charts cover the "
        f"latest {intervals:,} interval(s) at most (show {windows}).{back}"
    )
    return _document(title, nav + sections, subtitle)


def render_message(title: str, message: str, *, hint: str = "") -> str:
    """A page holding one message (configuration problems, unknown application, not signed in)."""
    body = f'<section class="app"><p class="empty">{_e(message)}</p>'
    if hint:
        body += f'<p class="note">{hint}</p>'
    return _document(title, body + "</section>")
