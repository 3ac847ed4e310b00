"""HTML of the GenAI Quality page: inline CSS and the report's inline SVG charts, no script, nothing fetched.

Every value written into the page goes through :func:`html.escape`; every link is either relative (the
Airflow UI and this app) or an http(s) URL built from the configured tracking URI without credentials.
The page is meant to be embedded in the Airflow UI's iframe, so links that leave it say where they open:
Airflow pages replace the whole window (``target="_top"``), MLflow opens in a new tab.

The HTML pieces and the trend charts are the static report's (:mod:`genai_flywheel.report.fragments`,
:mod:`genai_flywheel.report.trends`): this module only chooses what the page shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flywheel_airflow.ui.collect import BUDGET_INTERVALS, AppView
from flywheel_airflow.ui.links import (
    MlflowLinks,
    airflow_dag_link,
    airflow_runs_link,
    mlflow_run_link,
    monitor_dag_id,
)
from genai_flywheel.report.charts import CHART_CSS, PALETTE, format_time, format_value
from genai_flywheel.report.data import utc
from genai_flywheel.report.fragments import (
    IMPROVEMENT_KEYS,
    Card,
    app_nav,
    cards,
    ci_text,
    condition,
    dataset_label,
    dataset_row,
    document,
    esc,
    gate_of,
    link,
    number,
    problems_html,
    section_start,
    signed,
    table,
    td,
    unit_of,
    window,
)
from genai_flywheel.report.trends import RuleLine, TrendCharts, feedback_names, scorer_names

TITLE = "GenAI Quality"
WINDOW_CHOICES = (24, 168, 720)  # chart windows offered in the header, in intervals
# Scorers cycle through green, sky blue and pink; feedback is wine, other alerted metrics black, so a
# scorer and a feedback chart side by side never share a colour.
_SCORER_COLOURS = (PALETTE[2], PALETTE[4], PALETTE[3])

CSS = (
    """
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
"""
    + CHART_CSS
    + """table { border-collapse: collapse; font-size: 0.86rem; margin: 6px 0 10px 0; }
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
)


def _time(value: datetime | None) -> str:
    return f"{format_time(utc(value))} UTC" if value is not None else "n/a"


def _empty(text: str, cls: str = "") -> str:
    klass = f"empty {cls}".strip()
    return f'<p class="{esc(klass)}">{esc(text)}</p>'


class _AppSection:
    """The HTML section of one application."""

    def __init__(self, view: AppView, mlflow: MlflowLinks, root: str) -> None:
        self.view = view
        self.mlflow = mlflow
        self.root = root  # relative path from the current page to the app's root ("" or "../")
        self.app = view.name

    # --- header -----------------------------------------------------------------------------------------
    def links(self) -> str:
        m = self.mlflow
        items = []
        if m.traces:
            items.append(link(m.traces, "Traces in MLflow", opens="tab"))
            items.append(link(m.runs, "Runs in MLflow", opens="tab"))
        elif m.experiments:
            items.append(link(m.experiments, "MLflow experiments", opens="tab"))
        items.append(link(airflow_dag_link(self.app), f"Monitor DAG {_dag(self.app)}", opens="top"))
        items.append(link(airflow_runs_link(self.app), "its runs", opens="top"))
        api = f"{self.root}api/apps/{quote(self.app, safe='')}"
        items.append(link(f"{api}/alerts", "alerts JSON"))
        items.append(link(f"{api}/metrics", "metrics JSON"))
        note = f'<p class="note mlflow-note">MLflow: {esc(m.note)}.</p>' if m.note else ""
        return '<ul class="links">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>" + note

    def cards(self) -> str:
        v = self.view
        latest = v.intervals[-1] if v.intervals else None
        traces = sum(p.value or 0.0 for p in v.metrics.get("volume", ()))
        n = len(v.intervals)
        firing = len(v.firing)
        skipped = v.budget_skipped()
        gate = _latest_gate(v.evaluations)
        items = [
            Card("intervals stored", f"{v.total_intervals:,}"),
            Card("latest interval", window(*latest) if latest else "none yet", "UTC" if latest else ""),
            Card("traces", f"{traces:,.0f}", f"in the last {n} interval(s)" if n else "no interval yet"),
            Card(
                "alerts firing",
                str(firing),
                ", ".join(f["rule"] for f in v.firing) or ("none" if v.events else "not evaluated yet"),
                "bad" if firing else ("good" if v.events else ""),
            ),
            Card(
                "judge calls skipped (budget)",
                "n/a" if skipped is None else f"{skipped:,}",
                f"last {min(BUDGET_INTERVALS, n)} interval(s)" if skipped is not None else "no score files",
                "bad" if skipped else "",
            ),
            Card("curated datasets", str(len(v.datasets))),
            Card("latest evaluation gate", gate, "", {"passed": "good", "failed": "bad"}.get(gate, "")),
        ]
        return cards(items, "cards")

    # --- charts -----------------------------------------------------------------------------------------
    def charts_html(self) -> str:
        v = self.view
        if not v.intervals:
            return _empty(
                f"No metrics yet for {self.app}: the monitor DAG {_dag(self.app)} has not stored an interval "
                f"(expected under metrics/app={self.app}/ in the data root). Charts appear after its first "
                "successful run.",
                "no-metrics",
            )
        t = TrendCharts(
            v.metrics,
            x_range=(v.intervals[0][0], v.intervals[-1][1]),
            chart_id=f"c-{self.app}",
            events=v.events,
            rules=[RuleLine(r.name, r.metric, r.op, r.threshold) for r in v.app.alerts],  # configured, in order
        )
        # One grid, the quality charts before traffic; a scorer without any value is left out.
        parts = [t.latency_chart(per_span_type=False), t.error_chart(max_types=0)]
        for i, name in enumerate(scorer_names(v.metrics)):
            parts.append(t.scorer_chart(name, _SCORER_COLOURS[i % len(_SCORER_COLOURS)], keep_empty=False))
        parts += [t.feedback_chart(name, PALETTE[5]) for name in feedback_names(v.metrics)]
        parts.append(t.volume_chart("Volume"))
        parts += [t.alerted_chart(metric, PALETTE[6]) for metric in t.uncharted_rule_metrics()]
        return f'<div class="charts">{"".join(parts)}</div>'

    # --- alerts -----------------------------------------------------------------------------------------
    def alerts_html(self) -> str:
        v = self.view
        parts = ["<h3>Alerts</h3>"]
        if v.firing:
            rows = []
            for f in v.firing:
                unit = unit_of(f["metric"] or "")
                rule = condition(f["metric"], f["op"], f["threshold"]) if f["metric"] else "n/a"
                rows.append(
                    '<tr class="firing">'
                    + td(f["rule"])
                    + td(f["severity"] or "n/a")
                    + td(rule)
                    + td(_time(f["since"]))
                    + td(window(f["interval_start"], f["interval_end"]))
                    + td(format_value(f["value"], unit), num=True)
                    + td(ci_text(f["ci_low"], f["ci_high"], unit), num=True)
                    + td(f["n"] if f["n"] is not None else "n/a", num=True)
                    + "</tr>"
                )
            parts.append(
                table(
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
                badge = {"firing": "firing", "ok": "ok"}.get(r["status"], "none")
                rows.append(
                    "<tr>"
                    + td(r["rule"])
                    + td(condition(r["metric"], r["op"], r["threshold"]))
                    + td(r["min_samples"], num=True)
                    + td(r["severity"])
                    + td(f'<span class="badge {badge}">{esc(r["status"])}</span>', raw=True)
                    + "</tr>"
                )
            parts.append(
                table(["rule", "condition", "min samples", "severity", "status"], rows,
                       "Configured alert rules", "rules")
            )  # fmt: skip
        recent = v.recent_events()
        if recent:
            rows = []
            for e in recent:
                unit = unit_of(e["metric"])
                rows.append(
                    f'<tr class="{esc(e["kind"])}">'
                    + td(window(e["interval_start"], e["interval_end"]))
                    + td(e["rule"])
                    + td(e["kind"])
                    + td(format_value(e["value"], unit), num=True)
                    + td(ci_text(e["ci_low"], e["ci_high"], unit), num=True)
                    + td(e["n"], num=True)
                    + td("yes" if e["notified"] else "no")
                    + "</tr>"
                )
            parts.append(
                table(["interval (UTC)", "rule", "event", "value", "95% CI", "n", "notified"], rows,
                       "Recent alert events, newest first", "recent-events")
            )  # fmt: skip
        return "".join(parts)

    # --- judge budget -----------------------------------------------------------------------------------
    def budget_html(self) -> str:
        judge = self.view.app.judge
        head = (
            f'<h3>Judge budget</h3><p class="note">LLM judge {esc(judge.model)}: at most '
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
                + td(window(b.interval_start, b.interval_end))
                + td(skipped, num=True)
                + td(per)
                + td("n/a" if b.scorer_errors is None else b.scorer_errors, num=True)
                + td("n/a" if b.scored is None else b.scored, num=True)
                + "</tr>"
            )
        if not rows:
            return head + _empty("No interval has been scored yet.", "no-budget")
        return head + table(
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
        rows = [dataset_row(d, quarantined=False) for d in self.view.datasets]
        return "<h3>Curated datasets</h3>" + table(
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
            gate = gate_of(run)
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
                badge += f'<br><span class="note">{esc("; ".join(failed))}</span>'
            scorers = run.get("scorers") if isinstance(run.get("scorers"), Mapping) else {}
            results = "<br>".join(
                esc(f"{name}: {_improvement(stats)}")
                for name, stats in sorted(scorers.items())
                if isinstance(stats, Mapping)
            )
            mlflow = run.get("_mlflow") or {}
            run_url = mlflow_run_link(
                self.view.app.mlflow.tracking_uri, mlflow.get("experiment_id"), mlflow.get("run_id")
            )
            rows.append(
                "<tr>"
                + td(link(run_url, run["_run"], opens="tab"), raw=True)
                + td(run.get("candidate", "n/a"))
                + td(dataset_label(run))
                + td(run.get("n_records", "n/a"), num=True)
                + td(badge, raw=True)
                + td(results or "n/a", raw=True)
                + "</tr>"
            )
        return "<h3>Development evaluations</h3>" + table(
            ["run", "candidate", "dataset", "records", "gate", "improvement over production (95% CI)"],
            rows, "Most recent evaluations first (evaluations/app=<app>/<run>/summary.json)", "evaluations",
        )  # fmt: skip

    def _app_url(self) -> str:
        return f"{self.root}apps/{quote(self.app, safe='')}"

    def render(self) -> str:
        v = self.view
        return (
            section_start(self.app, link(self._app_url(), self.app))
            + f'<p class="note">MLflow experiment {esc(v.app.mlflow.experiment)}; schedule '
            f"{esc(v.app.schedule)}.</p>"
            + self.links()
            + problems_html(v.problems)
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


def _improvement(stats: Mapping[str, Any]) -> str:
    low, high = number(stats, ("ci_low",)), number(stats, ("ci_high",))
    ci = f" [{signed(low)}, {signed(high)}]" if low is not None and high is not None else ""
    return f"{signed(number(stats, IMPROVEMENT_KEYS))}{ci} (n={stats.get('n', 'n/a')})"


def _latest_gate(evaluations: Sequence[Mapping[str, Any]]) -> str:
    if not evaluations:
        return "no evaluation"
    gate = gate_of(evaluations[0])
    if gate is None:
        return "not run"
    return "passed" if gate.get("passed") else "failed"


def _document(title: str, body: str, subtitle: str = "") -> str:
    return document(
        title,
        CSS,
        header=f"<p>{subtitle}</p>" if subtitle else "",
        main=body,
        footer="Read-only view of the genai-flywheel data root. Charts are inline SVG with 95% confidence "
        "bands; an alert fires only when the whole interval is beyond its threshold; shaded windows are "
        "intervals in which an alert was firing. Hover a chart for per-interval values.",
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
    nav = app_nav([v.name for v in views], "apps") if len(views) > 1 else ""
    sections = "".join(_AppSection(v, mlflow[v.name], root).render() for v in views)
    back = f" {link(root, 'All applications')}." if root else ""
    windows = " &middot; ".join(
        esc(n) if n == intervals else f'<a href="?intervals={n}">{n}</a>' for n in WINDOW_CHOICES
    )
    subtitle = (
        f"Monitor, alerts, judge budget, curated datasets and development evaluations; charts cover the "
        f"latest {intervals:,} interval(s) at most (show {windows}).{back}"
    )
    return _document(title, nav + sections, subtitle)


def render_message(title: str, message: str, *, hint: str = "") -> str:
    """A page holding one message (configuration problems, unknown application, not signed in)."""
    body = f'<section class="app"><p class="empty">{esc(message)}</p>'
    if hint:
        body += f'<p class="note">{hint}</p>'
    return _document(title, body + "</section>")
