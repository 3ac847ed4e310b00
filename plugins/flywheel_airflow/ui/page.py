"""The GenAI Quality page: inline CSS and the report's inline SVG charts, no script, nothing fetched.

The HTML is the Jinja2 templates of ``templates/`` (``page.html.j2``, ``page_app.html.j2``,
``message.html.j2``), which extend the static report's document shell and import its macros
(:mod:`genai_flywheel.report.templating`): every value is escaped by the environment, and every link is
either relative (the Airflow UI and this app) or an http(s) URL built from the configured tracking URI
without credentials. The page is meant to be embedded in the Airflow UI's iframe, so links that leave it
say where they open: Airflow pages replace the whole window (``target="_top"``), MLflow opens in a new tab.

This module only chooses what the page shows; the trend charts are the report's
(:mod:`genai_flywheel.report.trends`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from markupsafe import Markup

from flywheel_airflow.ui.collect import BUDGET_INTERVALS, AppView, BudgetRow
from flywheel_airflow.ui.links import (
    MlflowLinks,
    airflow_dag_link,
    airflow_runs_link,
    mlflow_run_link,
    monitor_dag_id,
)
from genai_flywheel.report.charts import CHART_CSS, PALETTE, format_time
from genai_flywheel.report.data import utc
from genai_flywheel.report.fragments import (
    IMPROVEMENT_KEYS,
    Card,
    Opens,
    dataset_cells,
    dataset_label,
    gate_of,
    number,
    signed,
    window,
)
from genai_flywheel.report.segments import HistoryPoint, history_table
from genai_flywheel.report.templating import render
from genai_flywheel.report.trends import RuleLine, TrendCharts, feedback_names, scorer_names

_TEMPLATES = "flywheel_airflow.ui"  # this package's templates/, in front of the report's

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


class HintLink(NamedTuple):
    """A link after a message's hint: where it goes, what it reads, where it opens."""

    url: str
    text: str
    opens: Opens = "here"


class _AppSection:
    """What the section of one application shows (``page_app.html.j2`` lays it out)."""

    def __init__(self, view: AppView, mlflow: MlflowLinks, root: str) -> None:
        self.view = view
        self.mlflow = mlflow
        self.root = root  # relative path from the current page to the app's root ("" or "../")
        self.app = view.name
        self.dag = monitor_dag_id(self.app)
        self.app_url = f"{root}apps/{quote(self.app, safe='')}"
        self.api = f"{root}api/apps/{quote(self.app, safe='')}"

    def history_url(self, dimension: str, segment: str) -> str:
        """The page of one segment's history."""
        return f"{self.app_url}/segments/history?{urlencode({'dimension': dimension, 'segment': segment})}"

    def links(self) -> list[tuple[str | None, str, Opens]]:
        """The links under the heading: MLflow (traces and runs, else the experiments list), the monitor
        DAG and its runs in Airflow, this application's JSON."""
        m = self.mlflow
        items: list[tuple[str | None, str, Opens]] = []
        if m.traces:
            items += [(m.traces, "Traces in MLflow", "tab"), (m.runs, "Runs in MLflow", "tab")]
        elif m.experiments:
            items.append((m.experiments, "MLflow experiments", "tab"))
        items += [
            (airflow_dag_link(self.app), f"Monitor DAG {self.dag}", "top"),
            (airflow_runs_link(self.app), "its runs", "top"),
        ]
        items += [(f"{self.api}/alerts", "alerts JSON", "here"), (f"{self.api}/metrics", "metrics JSON", "here")]
        return items

    def cards(self) -> list[Card]:
        """The headline numbers."""
        v = self.view
        latest = v.intervals[-1] if v.intervals else None
        traces = sum(p.value or 0.0 for p in v.metrics.get("volume", ()))
        n = len(v.intervals)
        firing = len(v.firing)
        skipped = v.budget_skipped()
        gate = _latest_gate(v.evaluations)
        return [
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

    def charts(self) -> list[Markup]:
        """The trend charts, quality before traffic; a scorer without any value is left out."""
        v = self.view
        t = TrendCharts(
            v.metrics,
            x_range=(v.intervals[0][0], v.intervals[-1][1]),
            chart_id=f"c-{self.app}",
            events=v.events,
            rules=[RuleLine(r.name, r.metric, r.op, r.threshold) for r in v.app.alerts],  # configured, in order
        )
        parts = [t.latency_chart(per_span_type=False), t.error_chart(max_types=0)]
        for i, name in enumerate(scorer_names(v.metrics)):
            parts.append(t.scorer_chart(name, _SCORER_COLOURS[i % len(_SCORER_COLOURS)], keep_empty=False))
        parts += [t.feedback_chart(name, PALETTE[5]) for name in feedback_names(v.metrics)]
        parts += t.drift_charts()
        parts.append(t.volume_chart("Volume"))
        parts += [t.alerted_chart(metric, PALETTE[6]) for metric in t.uncharted_rule_metrics()]
        return [Markup(p) for p in parts]

    @staticmethod
    def time(value: datetime | None) -> str:
        """A time as ``2026-01-05 08:00 UTC``; ``n/a`` for None."""
        return f"{format_time(utc(value))} UTC" if value is not None else "n/a"

    @staticmethod
    def per_scorer(row: BudgetRow) -> str:
        """A budget row's skipped judge calls per scorer: ``relevance_to_query: 3``; ``none``."""
        return ", ".join(f"{k}: {n}" for k, n in sorted(row.by_scorer.items())) or "none"

    def calibration(self) -> dict[str, Any]:
        """The judge-calibration panel (macro ``calibration``): the newest review interval's statistics and
        the disagreeing traces, linked to the MLflow UI when the experiment id is known."""
        from genai_flywheel.report.calibration import calibration_panel, mlflow_trace_url

        m = self.mlflow
        trace_url = mlflow_trace_url(m.ui, m.experiment_id) if m.ui and m.experiment_id else None
        return calibration_panel(self.view.calibration, self.view.disagreements, trace_url)

    def dataset_cells(self) -> list[list[str]]:
        """The cells of each dataset's newest version (no quarantined count)."""
        return [dataset_cells(d, quarantined=False) for d in self.view.datasets]

    def evaluations(self) -> list[dict[str, Any]]:
        """Each evaluation: its MLflow run, candidate, dataset, records, gate (None: not run) with the
        failed checks' messages, and the improvement per scorer."""
        rows = []
        for run in self.view.evaluations:
            gate = gate_of(run)
            failed = [
                str(c.get("message") or c.get("gate"))
                for c in (gate or {}).get("checks") or []
                if isinstance(c, Mapping) and not c.get("passed")
            ]
            scorers = run.get("scorers") if isinstance(run.get("scorers"), Mapping) else {}
            mlflow = run.get("_mlflow") or {}
            rows.append(
                {
                    "url": mlflow_run_link(
                        self.view.app.mlflow.tracking_uri, mlflow.get("experiment_id"), mlflow.get("run_id")
                    ),
                    "run": run["_run"],
                    "candidate": run.get("candidate", "n/a"),
                    "dataset": dataset_label(run),
                    "n_records": run.get("n_records", "n/a"),
                    "gate": None if gate is None else bool(gate.get("passed")),
                    "failed": failed,
                    "results": [
                        f"{name}: {_improvement(stats)}"
                        for name, stats in sorted(scorers.items())
                        if isinstance(stats, Mapping)
                    ],
                }
            )
        return rows


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
    return render(
        "page.html.j2",
        _TEMPLATES,
        title=title,
        css=Markup(CSS),
        intervals=intervals,
        window_choices=WINDOW_CHOICES,
        root=root,
        sections=[_AppSection(v, mlflow[v.name], root) for v in views],
    )


HISTORY_DAY_CHOICES = (1, 7, 30, 90)


def render_history(found: Mapping[str, Any], points: Sequence[HistoryPoint], *, root: str) -> str:
    """The page of one segment's history (``found``: the history JSON of the app's API without its points).
    ``root`` is the relative path from that page to the app's root."""
    app = quote(str(found["app"]), safe="")

    def query(days: int) -> str:
        return urlencode({"dimension": found["dimension"], "segment": found["segment"], "days": days})

    columns, rows = history_table(points)
    return render(
        "segment_history.html.j2",
        _TEMPLATES,
        title=f"{TITLE}: segment history",
        css=Markup(CSS),
        found=found,
        columns=columns,
        rows=rows,
        day_choices=HISTORY_DAY_CHOICES,
        query=query,
        app_url=f"{root}apps/{app}",
        json_url=f"{root}api/apps/{app}/segments/history?{query(int(found['days']))}",
    )


def render_message(title: str, message: str, *, hint: str = "", hint_link: HintLink | None = None) -> str:
    """A page holding one message (configuration problems, unknown application, not signed in), with an
    optional ``hint`` (text) and ``hint_link`` after it."""
    return render(
        "message.html.j2", _TEMPLATES, title=title, css=Markup(CSS), message=message, hint=hint, hint_link=hint_link
    )
