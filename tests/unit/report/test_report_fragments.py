"""The HTML pieces, trend charts and loaders shared by the static report and the GenAI Quality page."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.report import render_html
from genai_flywheel.report.charts import CHART_CSS, PALETTE, Point
from genai_flywheel.report.data import Annotation, AppData, load_app, load_metrics, read_evaluation, summarize
from genai_flywheel.report.fragments import (
    WEB_SCHEMES,
    Card,
    cards,
    ci_text,
    condition,
    dataset_label,
    dataset_row,
    esc,
    href,
    link,
    number,
    signed,
    table,
    td,
    unit_of,
    window,
)
from genai_flywheel.report.trends import RuleLine, TrendCharts, error_types, y_label
from tests.unit.report.report_helpers import T0, H, metrics_partition, points


def _points(*values: float | None) -> tuple[Point, ...]:
    return points(values, half_ci=None)


def test_esc_writes_none_as_nothing_and_escapes_markup() -> None:
    assert esc(None) == ""
    assert esc("<a href='x'>&</a>") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;"
    assert esc(0) == "0"


def test_links_refuse_unsafe_schemes_and_file_only_when_allowed() -> None:
    assert href("http://h/#/x?a=1&b=2") == "http://h/#/x?a=1&amp;b=2"
    assert href("../apps/x") == "../apps/x"
    with pytest.raises(ConfigError, match="'javascript'.*relative, http: or https: URL"):
        href("javascript:alert(1)")
    with pytest.raises(ConfigError, match="'file'"):
        link("file:///tmp/r.html", "report")  # the page inside Airflow never links local files
    local = link("file:///tmp/r.html", "report", schemes=(*WEB_SCHEMES, "file"), what="link 'r'")
    assert local == '<a href="file:///tmp/r.html">report</a>'
    with pytest.raises(ConfigError, match="link 'r' 'data:x'"):
        link("data:x", "r", schemes=(*WEB_SCHEMES, "file"), what="link 'r'")
    assert link(None, "<b>") == "&lt;b&gt;"
    assert link("/dags/x", "dag", opens="top") == '<a href="/dags/x" target="_top">dag</a>'
    assert link("http://m/", "m", opens="tab") == '<a href="http://m/" target="_blank" rel="noopener noreferrer">m</a>'


def test_cells_tables_and_cards_write_a_class_only_when_there_is_one() -> None:
    assert td(None) == "<td></td>"
    assert td(3, num=True, cls="verdict") == '<td class="num verdict">3</td>'
    assert td("<b>x</b>", raw=True) == "<td><b>x</b></td>"
    assert table(["a"], ["<tr></tr>"], "cap") == (
        '<table><caption>cap</caption><thead><tr><th scope="col">a</th></tr></thead><tbody><tr></tr></tbody></table>'
    )
    assert table([], [], "c", "rules", caption_cls="note").startswith('<table class="rules"><caption class="note">c<')
    html = cards([Card("traces", "1,200", "in 3 intervals"), Card("alerts", "1", cls="bad")], "cards")
    assert html == (
        '<dl class="cards"><div><dt>traces</dt><dd>1,200 <small>in 3 intervals</small></dd></div>'
        '<div class="bad"><dt>alerts</dt><dd>1</dd></div></dl>'
    )


def test_value_texts() -> None:
    assert [unit_of(m) for m in ("latency_p95_ms", "cost_usd", "error_rate.Timeout", "scorer.a.pass_rate")] == [
        "ms",
        "usd",
        "rate",
        "rate",
    ]
    assert unit_of("volume") == "count" and unit_of("scorer.a.mean") == "score"
    assert condition("latency_p95_ms", ">", 2500) == "latency_p95_ms > 2,500 ms"
    assert ci_text(0.1, None, "rate") == "n/a" and ci_text(0.1, 0.25, "rate") == "10.0% to 25.0%"
    naive = datetime(2026, 1, 5, 13)  # taken as UTC, whatever the machine's time zone
    assert window(naive, naive + H) == "2026-01-05 13:00 to 2026-01-05 14:00"
    assert window(None, naive) == "n/a"
    assert number({"improvement": True, "diff": 2}, ("improvement", "diff")) == 2.0  # a bool is no number
    assert signed(None) == "n/a" and signed(0.04) == "+0.040"


def test_dataset_label_reads_the_dict_the_compare_stage_writes_and_the_older_strings() -> None:
    assert dataset_label({"dataset": {"name": "ds", "version": 2, "digest": "x"}}) == "ds v2"
    assert dataset_label({"dataset": "ds", "version": 1}) == "ds v1"
    assert dataset_label({"dataset": None}) == "n/a"


def test_dataset_row_has_the_quarantined_column_only_when_asked() -> None:
    manifest = {
        "dataset": "ds",
        "version": 3,
        "records": 5,
        "added": 2,
        "updated": 1,
        "quarantined": 4,
        "per_rule": {"b": 1, "a": 4},
        "interval_start_ms": int(T0.timestamp() * 1000),
        "interval_end_ms": int((T0 + 2 * H).timestamp() * 1000),
        "digest": "sha256:0123456789abcdef0123",
    }
    cells = re.findall(r"<td[^>]*>(.*?)</td>", dataset_row(manifest, quarantined=True))
    assert cells == ["ds", "v3", "5", "2", "1", "4", "a: 4, b: 1", "2026-01-05 00:00 to 2026-01-05 02:00",
                     "sha256:0123456789ab"]  # fmt: skip
    without = re.findall(r"<td[^>]*>(.*?)</td>", dataset_row({"dataset": "ds", "version": 1}, quarantined=False))
    assert without == ["ds", "v1", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"]


def _trends(metrics: dict[str, tuple[Point, ...]], **kwargs: object) -> TrendCharts:
    return TrendCharts(metrics, x_range=(T0, T0 + 3 * H), chart_id="c-x", **kwargs)  # type: ignore[arg-type]


def _y_axis(svg: str) -> str:
    return re.findall(r'class="axis-label"[^>]*>([^<]*)</text>', svg)[-1]


def test_scorer_chart_falls_back_to_the_mean_and_an_empty_scorer_is_kept_only_when_asked() -> None:
    t = _trends({"scorer.a.pass_rate": _points(None, 0.5), "scorer.b.mean": _points(0.2), "scorer.c.n": _points(3)})
    assert "Scorer a: pass rate" in t.scorer_chart("a", PALETTE[2], keep_empty=False)
    mean = t.scorer_chart("b", PALETTE[2], keep_empty=False)
    assert "Scorer b: mean score" in mean and _y_axis(mean) == "mean score (score)"
    assert t.scorer_chart("c", PALETTE[2], keep_empty=False) == ""
    empty = t.scorer_chart("c", PALETTE[2], keep_empty=True)
    assert "Scorer c: mean score" in empty and "no data in these intervals" in empty
    assert re.findall(r'<svg [^>]*id="([^"]+)"', "".join([mean, empty])) == ["c-x-2", "c-x-3"]  # numbered in order


def test_error_chart_lines_and_labels() -> None:
    m = {
        "error_rate": _points(0.2, 0.3),
        "error_rate.ValueError": _points(0.05, 0.05),
        "error_rate.Timeout": _points(0.1, 0.2),
        "error_rate.KeyError": _points(0.05, 0.05),
    }
    assert error_types(m) == ["error_rate.Timeout", "error_rate.KeyError", "error_rate.ValueError"]
    t = _trends(m)
    per_type = t.error_chart(max_types=2)
    assert "all errors" in per_type and ">Timeout<" in per_type and ">KeyError<" in per_type
    assert ">ValueError<" not in per_type
    alone = t.error_chart(max_types=0)
    assert "failed traces" in alone and ">Timeout<" not in alone and _y_axis(alone) == "error rate (%)"


def test_thresholds_alert_windows_and_uncharted_rule_metrics() -> None:
    rules = [RuleLine("slow", "latency_p95_ms", ">", 2500.0), RuleLine("judge", "judge.error_rate", ">", 0.2)]
    events = [
        {"metric": "latency_p95_ms", "status": "firing", "rule": "slow", "interval_start": T0, "interval_end": T0 + H},
        {"metric": "volume", "status": "firing", "rule": "other", "interval_start": T0, "interval_end": T0 + H},
    ]
    outage = Annotation("outage", T0 + H, T0 + 2 * H, kind="latency")
    t = _trends({"latency_p95_ms": _points(3000, 100)}, rules=rules, events=events, annotations=[outage])
    latency = t.latency_chart(per_span_type=False)
    assert "slow: &gt; 2,500 ms" in latency and "alert firing: slow" in latency
    assert latency.count('class="annotation-window"') == 1
    volume = t.volume_chart("Traffic")
    assert "alert firing: other" in volume and "slow" not in volume  # shaded by the metric the rule watches
    assert t.charted == {"latency_p95_ms", "volume", "sampled"}
    assert t.uncharted_rule_metrics() == ["judge.error_rate"]
    alerted = t.alerted_chart("judge.error_rate", PALETTE[6])
    assert "Alerted metric judge.error_rate" in alerted and _y_axis(alerted) == "judge.error_rate (%)"
    assert t.uncharted_rule_metrics() == []
    assert y_label("usd", "cost") == "cost (USD)"


def test_report_document_carries_the_shared_chart_css() -> None:
    page = render_html([AppData("a", (), {}, ())])
    assert CHART_CSS in page and page.startswith("<!DOCTYPE html>\n") and page.endswith("</body></html>\n")
    assert '<section class="app" id="app-a" aria-labelledby="app-a-h"><h2 id="app-a-h">Application a</h2>' in page


def test_load_metrics_drops_non_finite_values_and_filters(tmp_path: Path) -> None:
    from genai_flywheel.metrics import MetricsStore

    store = MetricsStore(tmp_path)
    nan, inf = float("nan"), float("inf")
    store.write_partition(
        metrics_partition("a", T0, T0 + H, {"volume": (nan, 3, None, None), "x_ms": (1.0, 3, 0.5, inf)})
    )
    store.write_partition(metrics_partition("a", T0 + H, T0 + 2 * H, {"volume": (5.0, 5, None, None)}))
    intervals, metrics = load_metrics(tmp_path, "a")
    assert intervals == ((T0, T0 + H), (T0 + H, T0 + 2 * H))
    assert [p.value for p in metrics["volume"]] == [None, 5.0]
    assert (metrics["x_ms"][0].low, metrics["x_ms"][0].high) == (0.5, None)
    assert summarize(tmp_path, "a")["traces"] == 5  # a NaN volume no longer breaks the sums
    later, only = load_metrics(tmp_path, "a", start=T0 + H, metrics=["x_ms"])
    assert later == () and only == {}
    _, volume = load_metrics(tmp_path, "a", start=T0 + H, metrics=["volume"])
    assert [p.start for p in volume["volume"]] == [T0 + H]
    assert load_app(tmp_path, "a").intervals == intervals


def test_read_evaluation_adds_the_run_name_and_the_gate_file(tmp_path: Path) -> None:
    run = tmp_path / "run-7"
    run.mkdir()
    problems: list[str] = []
    assert read_evaluation(run, problems) is None  # no summary: not a finished run
    (run / "summary.json").write_text('{"candidate": "c"}')
    (run / "gate.json").write_text('{"passed": true}')
    assert read_evaluation(run, problems) == {"candidate": "c", "_run": "run-7", "gate": {"passed": True}}
    (run / "summary.json").write_text("[1]")
    assert read_evaluation(run, problems) is None
    assert problems == [f"{run / 'summary.json'}: expected a JSON object, got list"]
