"""The pure-Python SVG charts: gaps, bands, shading, axes, escaping, determinism."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from genai_flywheel.report.charts import (
    Interval,
    Series,
    Shade,
    Threshold,
    format_value,
    interval_plot_svg,
    time_series_svg,
)
from tests.unit.report.report_helpers import T0, H, points


def _chart(series: list[Series], **kwargs: object) -> str:
    args: dict[str, object] = {
        "chart_id": "c1",
        "title": "Pass <rate> & more",
        "y_label": "pass rate (%)",
        "unit": "rate",
        "series": series,
        "x_range": (T0, T0 + 6 * H),
    }
    args.update(kwargs)
    return time_series_svg(**args)  # type: ignore[arg-type]


def test_svg_is_well_formed_and_escaped() -> None:
    svg = _chart([Series("a & b", points([0.5, 0.6, 0.7]), band=True)])
    root = ET.fromstring(svg)  # raises on malformed XML or unescaped text
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text == "Pass <rate> & more"  # type: ignore[union-attr]
    assert "Pass &lt;rate&gt; &amp; more" in svg and "a &amp; b" in svg
    assert root.get("aria-labelledby") == "c1-title c1-desc"


def test_null_value_and_missing_interval_break_the_line() -> None:
    # Values at intervals 0,1 | null at 2 | 3 | (4 missing) | 5: runs of 2, 1, 1 points.
    line = points([0.5, 0.6, None, 0.7, 0.8, 0.9], skip={4})
    svg = _chart([Series("s", line, band=True)])
    lines = re.findall(r'class="series-line" d="([^"]+)"', svg)
    assert len(lines) == 1 and lines[0].count("L") == 1  # only the 0-1 run is a line
    assert svg.count("<circle") == 4  # every point has a dot (few points)
    bands = re.findall(r'class="ci-band" d="([^"]+)"', svg)
    assert len(bands) == 3  # one filled band for the 0-1 run, an error bar for each lone point
    assert sum(b.endswith("Z") for b in bands) == 1


def test_alert_and_annotated_windows_are_merged_and_clipped() -> None:
    shades = [
        Shade(T0 + 1 * H, T0 + 2 * H, "alert", "lat"),
        Shade(T0 + 2 * H, T0 + 3 * H, "alert", "lat"),  # adjacent: merged with the one before
        Shade(T0 - 5 * H, T0 + 1 * H, "annotation", "bug"),  # starts before the chart: clipped
        Shade(T0 + 10 * H, T0 + 11 * H, "annotation", "later"),  # outside the chart: not drawn
    ]
    svg = _chart([Series("s", points([0.5] * 6))], shades=shades)
    alerts = re.findall(r'<rect class="alert-window" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert len(alerts) == 1
    annotated = re.findall(r'<rect class="annotation-window" x="([\d.]+)"', svg)
    assert annotated == ["66.0"]  # the plot's left edge
    assert "later" not in svg
    assert "alert firing: lat" in svg and "annotated window" in svg


def test_rate_axis_is_in_percent_and_time_axis_in_utc() -> None:
    svg = _chart([Series("s", points([0.2, 0.4, 0.6]))], thresholds=[Threshold(0.5, "rule: < 50.0%")])
    y_labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert y_labels and all(label.endswith("%") for label in y_labels)
    assert "Jan 5" in svg and "01:00" in svg and "interval (UTC)" in svg
    assert 'class="threshold"' in svg


def test_hover_titles_list_values_with_ci_and_n() -> None:
    svg = _chart([Series("relevance", points([0.5]))], unit="rate")
    assert "2026-01-05 00:00 to 2026-01-05 01:00 UTC\nrelevance: 50.0% (95% CI 45.0% to 55.0%), n=50" in svg


def test_empty_series_says_no_data() -> None:
    svg = _chart([Series("s", ())])
    assert "no data in these intervals" in svg
    ET.fromstring(svg)


def test_same_input_same_output() -> None:
    series = [Series("s", points([0.1, 0.123456789, 0.3]), band=True)]
    assert _chart(series) == _chart(series)


def test_format_value_units() -> None:
    assert format_value(1234.4, "ms") == "1,234 ms"
    assert format_value(12.34, "ms") == "12.3 ms"
    assert format_value(0.1234, "rate") == "12.3%"
    assert format_value(1234.0, "count") == "1,234"
    assert format_value(1.5, "usd") == "$1.50"
    assert format_value(None, "ms") == "n/a"


def test_interval_plot_colours_by_ci_side_of_zero() -> None:
    svg = interval_plot_svg(
        chart_id="f",
        title="Improvement",
        x_label="difference",
        rows=[
            Interval("up", 0.5, 0.3, 0.7, True),
            Interval("down", -0.4, -0.6, -0.2, False),
            Interval("none", None, None, None),
        ],
    )
    ET.fromstring(svg)
    assert len(re.findall(r'class="ci-bar"', svg)) == 2
    assert 'stroke="#009E73"' in svg and 'stroke="#D55E00"' in svg
    assert "no paired scores" in svg and "+0.500" in svg and "-0.400" in svg
