from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from genai_flywheel.metrics.aggregate import metrics_schema
from genai_flywheel.metrics.store import MetricsStore
from genai_flywheel.report.data import AppData
from genai_flywheel.review.report import calibration_section, mlflow_trace_url
from genai_flywheel.review.stages import calibration_store_root

START = datetime(2026, 1, 1, tzinfo=UTC)


def _data(app: str = "demo") -> AppData:
    return AppData(app=app, intervals=(), metrics={}, events=())


def test_the_section_shows_the_newest_calibration_and_links_the_disagreeing_traces(tmp_path) -> None:
    for hours, value in ((0, 0.9), (6, 0.42)):
        row = {
            "app": "demo",
            "interval_start": START + timedelta(hours=hours),
            "interval_end": START + timedelta(hours=hours + 6),
            "n": 24,
        }
        rows = [{**row, "metric": "calibration.relevance.agreement", "value": value, "ci_low": 0.25, "ci_high": 0.61}]
        MetricsStore(calibration_store_root(tmp_path)).write_partition(pa.Table.from_pylist(rows, metrics_schema()))
    run = tmp_path / "review" / "app=demo" / "run1"
    run.mkdir(parents=True)
    disagreeing = [{"scorer": "relevance", "trace_id": "tr-<1>", "scorer_passed": True, "correct": False}]
    (run / "disagreements.json").write_text(json.dumps({"traces": disagreeing}))
    html = calibration_section(tmp_path, mlflow_trace_url("http://mlflow:5000/", "7"))(_data())
    assert "calibration.relevance.agreement" in html and "0.42" in html and "0.25..0.61" in html
    assert "0.90" not in html  # only the newest interval
    assert 'href="http://mlflow:5000/#/experiments/7/traces?selectedEvaluationId=tr-%3C1%3E&amp;traceId=' in html
    assert "tr-&lt;1&gt;" in html and "scorer passed, reviewer: incorrect" in html


def test_no_section_without_calibration_metrics(tmp_path) -> None:
    assert calibration_section(tmp_path)(_data()) == ""
