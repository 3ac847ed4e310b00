"""The demo's planted incidents in the report: windows parsed from the simulator's ground truth, hatched on
every chart, and matched against the alerts raised in them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel_demo.incidents import parse_incidents, report_extras
from genai_flywheel.exceptions import DataContractError
from genai_flywheel.report import render_report
from tests.unit.report.report_helpers import APP, table_rows, write_report_store

GROUND_TRUTH = {
    "incidents": [
        # Covers the spike: the latency rule fires in it.
        {"name": "chat <latency> x4", "kind": "latency",
         "start": "2026-01-05T02:00:00Z", "end": "2026-01-05T04:00:00Z"},
        # Nothing fires here.
        {"name": "silent & unseen", "kind": "quality",
         "start": "2026-01-05T05:00:00Z", "end": "2026-01-05T06:00:00Z"},
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = write_report_store(tmp_path_factory.mktemp("data"))
    out = render_report(root, [APP], root / "report.html", **report_extras(GROUND_TRUTH, [APP]))
    return out.read_text(encoding="utf-8")


def test_incident_detection_table_rows(page: str) -> None:
    rows = table_rows(page, "incidents")
    assert [(r[0], r[3], r[6]) for r in rows] == [
        ("chat &lt;latency&gt; x4", "latency-p95", "yes"),
        ("silent &amp; unseen", "none", "no"),
    ]
    assert rows[0][5] == "1 h"  # incident 02:00, first firing interval ends 03:00
    assert "No rule fired outside the planted windows." in page
    incident_rects = re.findall(r'class="annotation-window"', page)
    charts = re.findall(r"<svg .*?</svg>", page, re.S)
    assert charts and len(incident_rects) == 2 * len(charts)  # both windows hatched on every chart
    assert "Planted incident windows from the simulator&#x27;s ground truth are hatched." in page


def test_without_ground_truth_the_report_has_no_incident_section(tmp_path: Path) -> None:
    assert report_extras(None, [APP]) == {}
    root = write_report_store(tmp_path / "data")
    html = render_report(root, [APP], tmp_path / "r.html", **report_extras(None, [APP])).read_text()
    assert "Planted incidents" not in html and "annotation-window" not in html


def test_a_ground_truth_without_incidents_is_refused() -> None:
    with pytest.raises(DataContractError, match="incidents"):
        report_extras({"windows": []}, [APP])


def test_parse_incidents_shapes() -> None:
    windows = [
        {"name": "b", "start": 1767582000000, "end": 1767585600000},  # epoch ms
        {"name": "a", "start_ms": 1767582000000, "end_ms": 1767585600000, "app": "other"},
        {"name": "c", "start": datetime(2026, 1, 5, 1, tzinfo=UTC), "end": "2026-01-05T02:00:00+00:00"},
    ]
    got = parse_incidents(windows, APP)
    assert [(i.name, i.start.hour, i.end.hour) for i in got] == [("c", 1, 2), ("b", 3, 4)]
    assert parse_incidents({"app": "other", "incidents": windows}, APP) == []
    assert parse_incidents(None, APP) == []
    with pytest.raises(DataContractError, match="not after its start"):
        parse_incidents([{"name": "x", "start": "2026-01-05T02:00:00Z", "end": "2026-01-05T01:00:00Z"}], APP)
    with pytest.raises(DataContractError, match="not a time"):
        parse_incidents([{"name": "x", "start": "yesterday", "end": "2026-01-05T01:00:00Z"}], APP)


def test_simulator_ground_truth_keyed_by_name_is_accepted() -> None:
    truth = {
        "incidents": {
            "error_spike": {
                "kind": "errors",
                "start": "2026-11-20T10:00:00Z",
                "end": "2026-11-20T12:00:00Z",
                "trace_ids": ["tr-1"],
            }
        }
    }
    (incident,) = parse_incidents(truth, "support-assistant")
    assert incident.name == "error_spike" and incident.kind == "errors"
    assert incident.end - incident.start == timedelta(hours=2)
