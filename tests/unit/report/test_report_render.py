"""The HTML report and summarize() on a small metrics store with alert events, built through the real APIs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.report import render_report, summarize
from genai_flywheel.report.data import Annotation, AppData
from genai_flywheel.report.fragments import esc
from tests.unit.report.report_helpers import APP, N_INTERVALS, table_rows, write_report_store

# Windows a caller marks (a deployment, an outage) and a section of its own, given each application's data.
ANNOTATIONS = {
    APP: [
        Annotation("deploy <v2> & rollback", datetime(2026, 1, 5, 2, tzinfo=UTC), datetime(2026, 1, 5, 4, tzinfo=UTC)),
        Annotation("maintenance", datetime(2026, 1, 5, 5, tzinfo=UTC), datetime(2026, 1, 5, 6, tzinfo=UTC)),
    ],
    "other": [Annotation("elsewhere", datetime(2026, 1, 5, 1, tzinfo=UTC), datetime(2026, 1, 5, 2, tzinfo=UTC))],
}


def _events_section(data: AppData) -> str:
    return f'<h3 id="extra">{esc(data.app)}: {len(data.events)} alert events</h3>'


EXTRAS: dict[str, Any] = {
    "annotations": ANNOTATIONS,
    "extra_sections": [_events_section],
    "notes": ["Deployments are <hatched>."],
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report_store(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def page(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("out") / "report.html"
    render_report(
        data_root,
        [APP],
        out,
        title="<script>alert(1)</script> & co",
        **EXTRAS,
        links={
            "MLflow UI": "http://127.0.0.1:5000/#/experiments?a=1&b=2",
            "Airflow <UI>": "http://127.0.0.1:8080",
        },
    )
    return out.read_text(encoding="utf-8")


def _svgs(page: str) -> dict[str, str]:
    """Every chart SVG by its <title>."""
    return {
        re.search(r"<title id=\"[^\"]+-title\">([^<]*)</title>", svg).group(1): svg  # type: ignore[union-attr]
        for svg in re.findall(r"<svg .*?</svg>", page, re.S)
    }


def test_one_svg_per_chart_with_titles_and_axis_labels(page: str) -> None:
    charts = _svgs(page)
    assert sorted(charts) == [
        "Error rate",
        "Feedback user_feedback: positive rate",
        "Latency p95",
        "Scorer relevance: pass rate",
        "Traffic",
    ]
    for svg in charts.values():
        assert 'role="img"' in svg and "interval (UTC)" in svg and 'class="legend"' in svg
    assert "latency p95 (ms)" in charts["Latency p95"]
    assert "pass rate (%)" in charts["Scorer relevance: pass rate"]
    # The per-span-type line is on the latency chart.
    assert "LLM spans p95" in charts["Latency p95"]


def test_ci_band_drawn_and_broken_where_the_ci_is_missing(page: str) -> None:
    latency = _svgs(page)["Latency p95"]
    bands = re.findall(r'<path class="ci-band" d="([^"]+)"', latency)
    # Two CI-bearing series (end to end has a band; the LLM span line has none): one band, closed, covering
    # intervals 0..4 only because interval 5 has no CI.
    assert len(bands) == 1 and bands[0].endswith("Z")
    assert bands[0].count("L") + 1 == 2 * (N_INTERVALS - 1)
    assert "95% CI" in latency
    assert 'class="ci-band"' not in _svgs(page)["Traffic"]  # counts have no CI


def test_alert_windows_and_threshold_only_on_the_alerted_metric(page: str) -> None:
    charts = _svgs(page)
    latency = charts["Latency p95"]
    windows = re.findall(r'<rect class="alert-window"[^>]*><title>([^<]*)</title>', latency)
    # The two firing intervals are merged into one window.
    assert windows == ["alert latency-p95 firing: 2026-01-05 02:00 to 2026-01-05 04:00 UTC"]
    assert 'class="threshold"' in latency and "latency-p95: &gt; 3,000 ms" in latency
    assert "alert-window" not in charts["Traffic"]
    assert "alert-window" not in charts["Error rate"]  # its rule never fired
    assert 'class="threshold"' in charts["Error rate"]


def test_alert_event_table_has_fired_still_firing_resolved(page: str) -> None:
    rows = table_rows(page, "alert-events")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("2026-01-05 02:00 to 2026-01-05 03:00", "latency-p95", "fired", "firing"),
        ("2026-01-05 03:00 to 2026-01-05 04:00", "latency-p95", "still_firing", "firing"),
        ("2026-01-05 04:00 to 2026-01-05 05:00", "latency-p95", "resolved", "ok"),
    ]
    fired = rows[0]
    assert fired[4:7] == ["5,000 ms", "4,000 ms to 6,000 ms", "100"]
    assert fired[8] == "yes"  # notified
    assert '<tr class="state-fired">' in page


def test_annotated_windows_hatched_on_every_chart_and_extra_sections_placed(page: str) -> None:
    rects = re.findall(r'<rect class="annotation-window"[^>]*><title>([^<]*)</title>', page)
    # Both windows of this application on every chart, none of another application's.
    assert len(rects) == 2 * len(_svgs(page))
    assert rects[0] == "deploy &lt;v2&gt; &amp; rollback: 2026-01-05 02:00 to 2026-01-05 04:00 UTC"
    assert "elsewhere" not in page
    # The caller's section gets the application's loaded data and sits after the alerts.
    assert '<h3 id="extra">support: 12 alert events</h3>' in page
    assert page.index("<h3>Alerts</h3>") < page.index('id="extra"')
    assert "Deployments are &lt;hatched&gt;." in page


def test_without_annotations_nothing_is_hatched(data_root: Path, tmp_path: Path) -> None:
    html = render_report(data_root, [APP], tmp_path / "plain.html").read_text()
    assert "annotation-window" not in html and 'id="extra"' not in html


def test_text_is_escaped_and_nothing_external_is_loaded(page: str) -> None:
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "Airflow &lt;UI&gt;" in page
    assert 'href="http://127.0.0.1:5000/#/experiments?a=1&amp;b=2"' in page
    assert not re.search(r"\ssrc=|<link|@import|url\((?!#)", page)
    urls = set(re.findall(r"https?://[^\s\"'<)]+", page))
    assert urls == {"http://www.w3.org/2000/svg", "http://127.0.0.1:5000/#/experiments?a=1&amp;b=2",
                    "http://127.0.0.1:8080"}  # fmt: skip


def test_same_inputs_give_the_same_bytes(data_root: Path, tmp_path: Path, page: str) -> None:
    kwargs: dict[str, Any] = {
        "title": "<script>alert(1)</script> & co",
        **EXTRAS,
        "links": {
            "MLflow UI": "http://127.0.0.1:5000/#/experiments?a=1&b=2",
            "Airflow <UI>": "http://127.0.0.1:8080",
        },
    }
    a = render_report(data_root, [APP], tmp_path / "a.html", **kwargs)
    b = render_report(data_root, [APP], tmp_path / "b.html", **kwargs)
    assert a.read_bytes() == b.read_bytes() == page.encode("utf-8")
    stamped = render_report(
        data_root, [APP], tmp_path / "c.html", generated_at=datetime(2026, 2, 1, 12, tzinfo=UTC)
    ).read_text()
    assert "Generated 2026-02-01 12:00 UTC." in stamped


def test_summarize_counts(data_root: Path) -> None:
    s = summarize(data_root, APP)
    assert s["intervals"] == N_INTERVALS
    assert s["first_interval_start"] == "2026-01-05T00:00:00Z" and s["last_interval_end"] == "2026-01-05T06:00:00Z"
    assert s["traces"] == 100 * N_INTERVALS
    assert s["error_traces"] == 2 * N_INTERVALS
    assert (s["sampled"], s["scored"], s["scorer_errors"]) == (
        20 * N_INTERVALS,
        20 * N_INTERVALS,
        N_INTERVALS,
    )
    assert s["scored_by_scorer"] == {"relevance": 20 * N_INTERVALS}
    assert s["feedback_by_name"] == {"user_feedback": 12 * N_INTERVALS}
    assert s["cost_usd"] == pytest.approx(0.25 * N_INTERVALS)
    assert s["alerts_raised"] == 1
    assert s["alerts_fired_by_rule"] == {"errors-high": 0, "latency-p95": 1}
    assert s["firing_intervals_by_rule"] == {"errors-high": 0, "latency-p95": 2}
    assert s["firing_now"] == []
    json.dumps(s)  # JSON-ready for the CLI


def test_headline_numbers_in_page(page: str) -> None:
    headline = re.search(r'<dl class="headline">.*?</dl>', page, re.S).group(0)  # type: ignore[union-attr]
    cards = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)(?: <small>|</dd>)", headline))
    assert cards["intervals processed"] == "6"
    assert cards["traces"] == "600"
    assert cards["sampled / scored"] == "120 / 120"
    assert cards["alerts raised"] == "1"


def test_unknown_app_renders_an_empty_section(data_root: Path, tmp_path: Path) -> None:
    html = render_report(data_root, ["other"], tmp_path / "r.html").read_text()
    assert "No metrics stored for other" in html
    assert "no data in these intervals" in html
    assert "No alert rule has been evaluated" in html
    assert summarize(data_root, "other")["intervals"] == 0


def test_optional_sections_render_when_their_files_exist(data_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(data_root, root)
    before = render_report(root, [APP], tmp_path / "before.html").read_text()
    assert "Curated datasets" not in before and "Development evaluations" not in before

    version = root / "datasets" / "flywheel_support_default" / "v1"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text(
        json.dumps({"app": APP, "records": 42, "added": 40, "updated": 2, "quarantined": 1,
                    "per_rule": {"smart_sync": 12, "negative_feedback": 30},
                    "digest": "sha256:0123456789abcdef"})
    )  # fmt: skip
    run = root / "evaluations" / f"app={APP}" / "run-1"
    run.mkdir(parents=True)
    stats = {"n": 12, "candidate_mean": 0.9, "production_mean": 0.4, "diff": 0.5, "ci_low": 0.3,
             "ci_high": 0.7, "p_value": 0.002, "wins": 10, "losses": 1, "ties": 1}  # fmt: skip
    check = {"gate": "relevance", "criterion": "max_p_value", "threshold": 0.001, "actual": 0.002,
             "passed": False, "message": "p-value 0.002 > 0.001"}  # fmt: skip
    (run / "summary.json").write_text(
        json.dumps({"candidate": "app:<fixed>", "dataset": "flywheel_support_default", "version": 1,
                    "scorers": {"relevance": stats},
                    "gate": {"passed": False, "checks": [check]}})
    )  # fmt: skip
    broken = root / "evaluations" / f"app={APP}" / "run-2"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")

    html = render_report(root, [APP], tmp_path / "after.html").read_text()
    assert table_rows(html, "datasets")[0][:4] == ["flywheel_support_default", "v1", "42", "40"]
    evaluation = table_rows(html, "evaluation")
    assert evaluation[0][:6] == ["all records", "relevance", "12", "0.9", "0.4", "+0.500"]
    assert evaluation[0][6] == "+0.300 to +0.700"
    assert "candidate app:&lt;fixed&gt; on flywheel_support_default v1" in html
    assert 'class="badge fail">gate failed' in html
    assert table_rows(html, "gate")[0][4] == "failed"
    assert "Improvement over production (95% CI)" in html
    assert "run-2" in html and "not readable JSON" in html  # reported, not fatal
    assert summarize(root, APP)["evaluations"] == 1


def test_bad_arguments_are_refused(data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="javascript"):
        render_report(data_root, [APP], tmp_path / "x.html", links={"x": "javascript:alert(1)"})
    with pytest.raises(ConfigError, match="at least one application"):
        render_report(data_root, [], tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()
