"""The report's worst segments and segment histories on a synthetic store with segment metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genai_flywheel.report import render_report
from genai_flywheel.report.segments import SegmentLinks
from tests.unit.report.report_helpers import table_rows
from tests.unit.report.segment_helpers import APP, FEEDBACK, SOURCES, N, write_segment_store

pytestmark = pytest.mark.unit

TRACES = "http://mlflow.test/#/experiments/3/traces"


def _text(cell: str) -> str:
    return re.sub(r"<[^>]+>", "", cell)


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = write_segment_store(tmp_path_factory.mktemp("report-segments"))
    out = render_report(root, [APP], root / "report.html", segment_links={APP: SegmentLinks(TRACES, SOURCES)})
    return out.read_text(encoding="utf-8")


def test_report_lists_the_worst_segments_worst_first_with_ci_baseline_and_links(html: str) -> None:
    tables = re.findall(r'<table class="worst-segments">.*?</table>', html, re.S)
    assert len(tables) == 2
    version, topic = (table_rows(t, "worst-segments") for t in tables)
    assert [r[1] for r in version] == ["1.4.0", "1.3.9"]
    assert [r[1] for r in topic] == ["c-sync", "c-bill", "other"]
    assert [_text(c) for c in version[0][:10]] == [
        "1.4.0", "1.4.0", "50", "error_rate", "20.0%", "12.0% to 30.0%", "50", "3.0% (350)", "3.0%", "+9.0 pp",
    ]  # fmt: skip
    assert [_text(c) for c in topic[0][3:10]] == [
        FEEDBACK, "0.0%", "0.0% to 49.0%", "4", "92.0% (28)", "92.0%", "+43.0 pp",
    ]  # fmt: skip
    assert f'href="{TRACES}?filter=TAG%3A%3A%3D%3A%3A1.4.0%3A%3Aapp_version"' in tables[0]
    assert f'href="{TRACES}?selectedEvaluationId=tr-c-sync-0&amp;traceId=tr-c-sync-0"' in tables[1]


def test_report_shows_each_worst_segments_history(html: str) -> None:
    details = re.findall(r'<details class="segment-history">.*?</details>', html, re.S)
    assert len(details) == 5
    sync = next(d for d in details if "(c-sync)" in d)
    assert "<summary>topic: smart sync (c-sync)</summary>" in sync
    rows = table_rows(sync, "segment-history")
    assert len(rows) == N
    assert rows[-1][3] == "0.0% [0.0% to 49.0%] n=4"


def test_report_without_segment_files_has_no_segment_section(tmp_path: Path) -> None:
    from tests.unit.report.report_helpers import APP as PLAIN, write_report_store

    root = write_report_store(tmp_path)
    out = render_report(root, [PLAIN], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Worst segments" not in out


def test_drift_metrics_have_their_own_chart_group(html: str) -> None:
    assert "<h4>Drift against the reference window</h4>" in html
    assert re.findall(r'<title id="[^"]+-title">(Drift[^<]*)</title>', html) == ["Drift: PSI of the traffic mix"]
    assert "Alerted metric drift" not in html
