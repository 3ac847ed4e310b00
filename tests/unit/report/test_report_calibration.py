"""The report's judge-calibration panel, read from the review metrics store beside the monitor's."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_flywheel.report import render_report
from genai_flywheel.report.calibration import calibration_rows, mlflow_trace_url
from tests.unit.report.report_helpers import APP, table_rows, write_calibration, write_report_store

TRACE_URL = "http://mlflow:5000/#/experiments/7/traces?selectedEvaluationId="


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = write_report_store(tmp_path_factory.mktemp("calibration"))
    write_calibration(root, APP)
    out = render_report(
        root, [APP], root / "report.html", trace_urls={APP: mlflow_trace_url("http://mlflow:5000/", "7")}
    )
    return out.read_text(encoding="utf-8")


def test_the_panel_shows_each_scorer_latest_and_rolling_with_ci_and_n(page: str) -> None:
    assert '<h3 id="calibration">Judge calibration</h3>' in page
    rows = {(r[0], r[1], r[2]): r[3:] for r in table_rows(page, "calibration")}
    sample = rows[("relevance", "agreement", "calibration sample (weighted)")]
    assert sample == [
        "2026-01-06 00:00 to 2026-01-07 00:00", "0.42", "0.25 to 0.61", "24",
        "2026-01-07 00:00", "0.55", "0.4 to 0.69", "44",
    ]  # fmt: skip
    # kappa was measured over the window only: the interval's cells say so
    assert rows[("relevance", "kappa", "calibration sample (weighted)")][1:4] == ["n/a", "n/a", "n/a"]
    assert rows[("relevance", "kappa", "calibration sample (weighted)")][5:] == ["0.12", "-0.1 to 0.34", "44"]
    flagged = rows[("relevance", "agreement", "flagged by curation rules")]
    assert flagged[1:4] == ["0.3", "0.14 to 0.53", "15"] and flagged[5:] == ["0.31", "0.15 to 0.52", "15"]
    assert list(rows)[-1][2] == "flagged by curation rules"  # the sample comes first
    assert "0.9<" not in page.split('id="calibration"')[1]  # the older review interval is not shown
    assert "Labels in the rolling window: 59 (44 from the calibration sample)" in page


def test_the_disagreeing_traces_link_to_the_mlflow_trace_ui(page: str) -> None:
    assert f'href="{TRACE_URL}tr-%3C1%3E&amp;traceId=tr-%3C1%3E" target="_blank"' in page
    assert ">tr-&lt;1&gt;</a> (scorer passed, reviewer: incorrect; queued by calibration)" in page
    assert f'href="{TRACE_URL}tr-2&amp;traceId=tr-2"' in page
    assert "(scorer failed, reviewer: correct; queued by low_judge_scores)" in page


def test_without_a_trace_url_the_traces_are_listed_unlinked(tmp_path: Path) -> None:
    write_calibration(tmp_path, APP)
    html = render_report(tmp_path, [APP], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<li>relevance: tr-&lt;1&gt; (scorer passed" in html and "selectedEvaluationId" not in html


def test_no_panel_without_reviews(tmp_path: Path) -> None:
    html = render_report(write_report_store(tmp_path), [APP], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Judge calibration" not in html


def test_rows_are_the_newest_review_interval_only() -> None:
    from datetime import UTC, datetime, timedelta

    from genai_flywheel.report.charts import Point

    day = datetime(2026, 1, 1, tzinfo=UTC)
    old = Point(day, day + timedelta(days=1), 0.9, 0.8, 0.95, 30)
    new = Point(day + timedelta(days=1), day + timedelta(days=2), 0.6, 0.5, 0.7, 40)
    rows = calibration_rows(
        {
            "calibration.relevance.agreement": (old,),  # not measured in the newest interval
            "calibration.relevance.agreement_rolling": (old, new),
            "calibration.labels": (new,),
            "calibration.relevance.accuracy": (new,),  # not a calibration statistic
        }
    )
    assert [(r.scorer, r.statistic, r.latest, r.rolling) for r in rows] == [("relevance", "agreement", None, new)]
