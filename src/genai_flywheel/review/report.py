"""The report's calibration section: each scorer's agreement with the reviewers, and the disagreeing traces.

Passed to :func:`genai_flywheel.report.render_report` as one of its ``extra_sections``; it reads the
calibration metrics store and the newest review run's ``disagreements.json`` under the data root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from genai_flywheel.report.fragments import esc, link, table, td

if TYPE_CHECKING:
    from genai_flywheel.report.data import AppData

MAX_TRACES = 50  # disagreeing traces listed; the file holds them all


def mlflow_trace_url(mlflow_ui: str, experiment_id: str) -> Callable[[str], str]:
    """A function giving the MLflow UI address of a trace of ``experiment_id`` (its Traces tab, opened)."""
    base = mlflow_ui.rstrip("/")

    def url(trace_id: str) -> str:
        query = urlencode({"selectedEvaluationId": trace_id, "traceId": trace_id})
        return f"{base}/#/experiments/{experiment_id}/traces?{query}"

    return url


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def calibration_section(data_root: Path, trace_url: Callable[[str], str] | None = None) -> Callable[[AppData], str]:
    """An ``extra_sections`` callable: the newest interval's ``calibration.*`` metrics with their CIs and the
    rolling window's disagreeing traces (linked through ``trace_url``); ``""`` for an app without reviews."""
    from genai_flywheel.metrics.store import MetricsStore
    from genai_flywheel.review.stages import DISAGREEMENTS_FILE, calibration_store_root
    from genai_flywheel.workspace import read_stage_json

    def section(data: AppData) -> str:
        rows = MetricsStore(calibration_store_root(data_root)).read(data.app).to_pylist()
        if not rows:
            return ""
        newest = [r for r in rows if r["interval_start"] == rows[-1]["interval_start"]]
        # str(): the fragment helpers return Markup, which would escape the plain HTML joined to it.
        body = [
            "<tr>"
            + str(td(r["metric"]))
            + str(td(_fmt(r["value"]), num=True))
            + str(td(f"{_fmt(r['ci_low'])}..{_fmt(r['ci_high'])}" if r["ci_low"] is not None else "", num=True))
            + str(td(r["n"], num=True))
            + "</tr>"
            for r in newest
        ]
        caption = f"Scorers against the reviewers, interval from {newest[0]['interval_start']:%Y-%m-%d %H:%M} UTC"
        html = "<h3>Judge calibration</h3>" + str(table(["metric", "value", "95% CI", "n"], body, caption))
        runs = sorted(
            (Path(data_root) / "review" / f"app={data.app}").glob(f"*/{DISAGREEMENTS_FILE}"),
            key=lambda p: p.stat().st_mtime,
        )
        if runs:
            traces = read_stage_json(runs[-1], "review collect").get("traces", [])
            items = "".join(
                f"<li>{esc(d['scorer'])}: {str(link(trace_url(d['trace_id']) if trace_url else None, d['trace_id']))} "
                f"(scorer {'passed' if d['scorer_passed'] else 'failed'}, reviewer: "
                f"{'correct' if d['correct'] else 'incorrect'})</li>"
                for d in traces[:MAX_TRACES]
            )
            more = f" (first {MAX_TRACES} of {len(traces)})" if len(traces) > MAX_TRACES else ""
            html += f"<p>Traces where a scorer and a reviewer disagree{esc(more)}:</p><ul>{items}</ul>"
        return html

    return section
