"""Inline SVG charts generated in pure Python: no matplotlib, no JavaScript, nothing to download.

Two chart kinds:

* :func:`time_series_svg`: one or more metric series over monitor intervals, each point drawn at its
  interval's midpoint, an optional 95 % CI band, shaded alert (firing) windows and hatched annotated windows,
  dashed threshold lines, and an invisible hover column per interval whose ``<title>`` shows the values.
* :func:`interval_plot_svg`: horizontal estimate-with-CI bars around zero (a forest plot), for the
  candidate-vs-production differences of a development evaluation.

Every number written into the SVG is formatted with a fixed precision and every label is escaped, so
the same input gives the same bytes. Element ids are prefixed with the caller's ``chart_id`` because ids
of inline SVGs share the HTML document's namespace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Literal

Unit = Literal["ms", "rate", "count", "score", "usd"]
ShadeKind = Literal["alert", "annotation"]

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies. Vermillion (#D55E00) is
# kept for alert shading only, so a series is never confused with an alert.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#882255", "#000000")
ALERT_COLOUR = "#D55E00"
ANNOTATION_COLOUR = "#6b6b6b"
THRESHOLD_COLOUR = "#333333"

# The style of the classes these charts carry, for the <style> of a page that inlines them (the static
# report and the GenAI Quality page include it as it is, so a chart looks the same on both).
CHART_CSS = """\
figure.chart-box { margin: 0; border: 1px solid #e3e6ea; border-radius: 4px; padding: 4px; background: #fff; }
svg.chart { max-width: 100%; height: auto; display: block; font-family: inherit; }
svg .chart-title { font-size: 14px; font-weight: 600; fill: #1a1a1a; }
svg .legend-text { font-size: 11px; fill: #333333; }
svg .axis text { fill: #333333; }
svg .axis-label { font-size: 11px; fill: #333333; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .annotation-label { font-size: 10px; fill: #444444; paint-order: stroke; stroke: #ffffff;
  stroke-width: 3px; }
svg .no-data { font-size: 12px; fill: #666666; }
svg .row-label, svg .row-value { font-size: 12px; fill: #1a1a1a; }
svg rect.hover:hover { fill-opacity: 0.07; }
"""

WIDTH = 560
HEIGHT = 250
_MARGIN_LEFT = 66
_MARGIN_RIGHT = 14
_MARGIN_BOTTOM = 46
_CHAR_W = 6.2  # approximate width of one 11px sans-serif character, to lay out the legend
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Candidate x-tick steps in seconds; the smallest one giving at most ~one tick per 75 px is used.
_TIME_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000)
_DOT_LIMIT = 48  # draw a dot per point up to this many points; beyond that the line alone reads better


@dataclass(frozen=True)
class Point:
    """One interval's value of a metric (``low``/``high``: its 95 % CI, None when not available)."""

    start: datetime
    end: datetime
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


@dataclass(frozen=True)
class Series:
    """A line of a chart; ``band`` draws its CI as a shaded band."""

    label: str
    points: tuple[Point, ...]
    colour: str = PALETTE[0]
    band: bool = False
    dashed: bool = False
    metric: str = ""  # the stored metric drawn, when there is one (alert windows are matched on it)


@dataclass(frozen=True)
class Shade:
    """An x window shaded on a chart: an alert's firing intervals or a window the caller annotates."""

    start: datetime
    end: datetime
    kind: ShadeKind
    label: str


@dataclass(frozen=True)
class Threshold:
    """A horizontal dashed line, e.g. an alert rule's threshold."""

    value: float
    label: str


@dataclass(frozen=True)
class Interval:
    """A row of :func:`interval_plot_svg`: an estimate with its CI."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    good: bool | None = None  # colours the row: True green, False vermillion, None blue


@dataclass
class _Legend:
    items: list[tuple[str, str]] = field(default_factory=list)  # (swatch svg at 0,0, label)


def _num(x: float) -> str:
    """A coordinate with one decimal (fixed text, so the output bytes are stable)."""
    text = f"{x:.1f}"
    return "0.0" if text == "-0.0" else text


def _known(value: float | None) -> float:
    """``value``, known not to be None at this point (narrows the type for the checker)."""
    if value is None:
        raise ValueError("internal error: a null value reached the drawing code; _segments filters them")
    return value


def _ts(value: datetime) -> float:
    return value.astimezone(UTC).timestamp()


def format_value(value: float | None, unit: Unit) -> str:
    """A value as a reader sees it: ``1,234 ms``, ``12.3%``, ``1,234``, ``0.873``, ``$1.23``; None ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ms":
        return f"{value:,.0f} ms" if abs(value) >= 100 else f"{value:,.1f} ms"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if unit == "usd":
        return f"${value:,.2f}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def format_time(value: datetime) -> str:
    """``2026-01-05 13:00`` (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _nice_step(raw: float) -> float:
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    exponent = math.floor(math.log10(raw))
    base = 10.0**exponent
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= mult * base * (1 + 1e-9):
            return mult * base
    return 10.0 * base


def _y_domain(values: list[float], unit: Unit) -> tuple[float, float, float]:
    """(low, high, tick step) of the y axis for ``values`` (non-empty)."""
    lo, hi = min(values), max(values)
    if unit in ("ms", "count", "usd"):
        lo = min(0.0, lo)  # magnitudes read honestly only from zero
    span = hi - lo
    if span <= 0:
        span = abs(hi) * 0.1 or (0.1 if unit in ("rate", "score") else 1.0)
    if unit in ("rate", "score"):
        lo, hi = lo - span * 0.08, hi + span * 0.08
    else:
        hi = hi + span * 0.05
    if unit == "rate":
        lo, hi = max(0.0, lo), min(1.0, hi)
        if hi <= lo:
            lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)
    step = _nice_step((hi - lo) / 4)
    lo_tick = math.floor(lo / step + 1e-9) * step
    hi_tick = math.ceil(hi / step - 1e-9) * step
    if unit == "rate":
        lo_tick, hi_tick = max(0.0, lo_tick), min(1.0, hi_tick)
    if hi_tick <= lo_tick:
        hi_tick = lo_tick + step
    return lo_tick, hi_tick, step


def _y_tick_label(value: float, unit: Unit, step: float) -> str:
    if unit == "rate":
        pct_step = step * 100
        decimals = 0 if pct_step >= 1 else (1 if pct_step >= 0.1 else 2)
        return f"{value * 100:.{decimals}f}%"
    decimals = 0 if step >= 1 else min(4, max(1, -math.floor(math.log10(step))))
    text = f"{value:,.{decimals}f}"
    return f"${text}" if unit == "usd" else text


def _time_ticks(t0: float, t1: float, plot_width: float) -> tuple[list[float], int]:
    max_ticks = max(2, int(plot_width // 75))
    step = _TIME_STEPS[-1]
    for candidate in _TIME_STEPS:
        if (t1 - t0) / candidate <= max_ticks:
            step = candidate
            break
    first = math.ceil(t0 / step) * step
    ticks = []
    t = first
    while t <= t1 + 1e-6:
        ticks.append(float(t))
        t += step
    return ticks, step


def _time_tick_label(t: float, step: int) -> str:
    moment = datetime.fromtimestamp(t, UTC)
    # Month names from a fixed table: strftime('%b') follows the process locale.
    day = f"{_MONTHS[moment.month - 1]} {moment.day}"
    if step >= 86400 or (moment.hour == 0 and moment.minute == 0):
        return day
    return moment.strftime("%H:%M")


def _legend_svg(legend: _Legend, width: float, top: float, chart_id: str) -> tuple[str, int]:
    """Legend items laid out left to right, wrapping; returns the SVG and the number of rows."""
    parts: list[str] = []
    x, row = float(_MARGIN_LEFT), 0
    for swatch, label in legend.items:
        item_width = 22 + len(label) * _CHAR_W + 14
        if x + item_width > width - _MARGIN_RIGHT and x > _MARGIN_LEFT:
            x, row = float(_MARGIN_LEFT), row + 1
        y = top + row * 16
        parts.append(
            f'<g class="legend-item" transform="translate({_num(x)},{_num(y)})">{swatch}'
            f'<text x="22" y="4" class="legend-text">{escape(label)}</text></g>'
        )
        x += item_width
    body = "".join(parts)
    return f'<g class="legend" id="{chart_id}-legend">{body}</g>', (row + 1 if parts else 0)


def _line_swatch(colour: str, dashed: bool) -> str:
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return f'<line x1="0" y1="0" x2="18" y2="0" stroke="{colour}" stroke-width="2.5"{dash}/>'


def _segments(points: Sequence[Point]) -> list[list[Point]]:
    """Runs of consecutive points with a value over contiguous intervals (a gap breaks the line)."""
    runs: list[list[Point]] = []
    current: list[Point] = []
    for p in points:
        if p.value is None:
            if current:
                runs.append(current)
            current = []
            continue
        if current and current[-1].end != p.start:
            runs.append(current)
            current = []
        current.append(p)
    if current:
        runs.append(current)
    return runs


def _merge_windows(shades: Sequence[Shade]) -> list[Shade]:
    """Adjacent or overlapping windows of the same kind and label merged into one rectangle."""
    merged: list[Shade] = []
    for s in sorted(shades, key=lambda s: (s.kind, s.label, s.start, s.end)):
        last = merged[-1] if merged else None
        if last and last.kind == s.kind and last.label == s.label and s.start <= last.end:
            merged[-1] = Shade(last.start, max(last.end, s.end), s.kind, s.label)
        else:
            merged.append(s)
    return merged


def time_series_svg(
    *,
    chart_id: str,
    title: str,
    y_label: str,
    unit: Unit,
    series: Sequence[Series],
    x_range: tuple[datetime, datetime],
    shades: Sequence[Shade] = (),
    thresholds: Sequence[Threshold] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """An accessible inline SVG line chart of ``series`` over the UTC time window ``x_range``.

    ``chart_id`` must be unique in the page (it prefixes element ids). ``y_label`` should name the unit,
    e.g. ``"latency (ms)"``. Points are drawn at interval midpoints; a null value or a gap between
    intervals breaks the line. Series with ``band=True`` show their 95 % CI as a shaded band (class
    ``ci-band``). ``shades`` are clipped to ``x_range``; alert windows get class ``alert-window``,
    annotated windows ``annotation-window``.
    """
    chart_id = escape(chart_id)  # written into attributes: a caller may derive it from a name
    t0, t1 = _ts(x_range[0]), _ts(x_range[1])
    if t1 <= t0:
        t1 = t0 + 3600.0
    legend = _Legend()
    any_band = False
    for s in series:
        legend.items.append((_line_swatch(s.colour, s.dashed), s.label))
        if s.band and any(p.low is not None and p.high is not None for p in s.points):
            any_band = True
    band_colour = next((s.colour for s in series if s.band), PALETTE[0])
    if any_band:
        legend.items.append(
            (f'<rect x="0" y="-5" width="18" height="10" fill="{band_colour}" fill-opacity="0.2"/>', "95% CI")
        )
    visible = [s for s in _merge_windows(shades) if _ts(s.end) > t0 and _ts(s.start) < t1]
    alert_labels = sorted({s.label for s in visible if s.kind == "alert"})
    for label in alert_labels:
        legend.items.append(
            (
                f'<rect x="0" y="-5" width="18" height="10" fill="{ALERT_COLOUR}" fill-opacity="0.22"/>',
                f"alert firing: {label}",
            )
        )
    if any(s.kind == "annotation" for s in visible):
        legend.items.append(
            (
                f'<rect x="0" y="-5" width="18" height="10" fill="url(#{chart_id}-hatch)" '
                f'stroke="{ANNOTATION_COLOUR}" stroke-width="0.8"/>',
                "annotated window",
            )
        )
    for th in thresholds:
        legend.items.append(
            (
                f'<line x1="0" y1="0" x2="18" y2="0" stroke="{THRESHOLD_COLOUR}" stroke-width="1.2" '
                'stroke-dasharray="2 2"/>',
                th.label,
            )
        )
    legend_svg, rows = _legend_svg(legend, width, 38.0, chart_id)
    top = 38 + max(rows, 1) * 16
    bottom = height - _MARGIN_BOTTOM
    left, right = float(_MARGIN_LEFT), float(width - _MARGIN_RIGHT)
    plot_w, plot_h = right - left, bottom - top

    def x_of(t: float) -> float:
        return left + (min(max(t, t0), t1) - t0) / (t1 - t0) * plot_w

    values: list[float] = []
    for s in series:
        for p in s.points:
            for v in (p.value, p.low if s.band else None, p.high if s.band else None):
                if v is not None and math.isfinite(v):
                    values.append(v)
    values += [th.value for th in thresholds if math.isfinite(th.value)]
    has_data = any(p.value is not None for s in series for p in s.points)

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(series, unit, x_range, visible))}</desc>',
        f'<defs><pattern id="{chart_id}-hatch" patternUnits="userSpaceOnUse" width="8" height="8" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f2f2f2"/>'
        f'<line x1="0" y1="0" x2="0" y2="8" stroke="{ANNOTATION_COLOUR}" stroke-width="1.5" '
        'stroke-opacity="0.35"/></pattern></defs>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_MARGIN_LEFT}" y="20" class="chart-title">{escape(title)}</text>',
        legend_svg,
    ]

    # Windows first, so lines are drawn over them. Annotation labels are staggered over three rows so the
    # names of overlapping or adjacent windows stay readable.
    annotation_rows = {
        (w.start, w.label): k % 3
        for k, w in enumerate(sorted((w for w in visible if w.kind == "annotation"), key=lambda w: (w.start, w.label)))
    }
    ordered = sorted(visible, key=lambda w: (w.kind != "annotation", w.start, w.label))
    labels: list[str] = []
    for s in ordered:  # annotations below alerts, labels above both
        xa, xb = x_of(_ts(s.start)), x_of(_ts(s.end))
        if s.kind == "annotation":
            out.append(
                f'<rect class="annotation-window" x="{_num(xa)}" y="{_num(top)}" '
                f'width="{_num(max(xb - xa, 1))}" '
                f'height="{_num(plot_h)}" fill="url(#{chart_id}-hatch)" fill-opacity="0.7">'
                f"<title>{escape(s.label)}: {format_time(s.start)} to {format_time(s.end)} "
                "UTC</title></rect>"
            )
            labels.append(
                f'<text class="annotation-label" x="{_num(xa + 3)}" '
                f'y="{_num(top + 11 + 11 * annotation_rows[(s.start, s.label)])}">'
                f"{escape(s.label)}</text>"
            )
        else:
            out.append(
                f'<rect class="alert-window" x="{_num(xa)}" y="{_num(top)}" width="{_num(max(xb - xa, 1))}" '
                f'height="{_num(plot_h)}" fill="{ALERT_COLOUR}" fill-opacity="0.16">'
                f"<title>alert {escape(s.label)} firing: {format_time(s.start)} to {format_time(s.end)} "
                "UTC</title></rect>"
            )
            out.append(f'<path class="alert-marker" d="M{_num(xa)},{_num(top)} l5,0 l-5,8 z" fill="{ALERT_COLOUR}"/>')
    out.extend(labels)

    # Axes and grid.
    out.append('<g class="axis x-axis" font-size="11">')
    ticks, step = _time_ticks(t0, t1, plot_w)
    for t in ticks:
        x = x_of(t)
        out.append(
            f'<line x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" y2="{_num(bottom)}" class="grid"/>'
            f'<text x="{_num(x)}" y="{_num(bottom + 15)}" text-anchor="middle">'
            f"{escape(_time_tick_label(t, step))}</text>"
        )
    out.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{_num(height - 8)}" text-anchor="middle" class="axis-label">'
        "interval (UTC)</text></g>"
    )
    out.append('<g class="axis y-axis" font-size="11">')
    if values:
        y_lo, y_hi, y_step = _y_domain(values, unit)
    else:
        y_lo, y_hi, y_step = (0.0, 1.0, 0.25)

    def y_of(v: float) -> float:
        return bottom - (min(max(v, y_lo), y_hi) - y_lo) / (y_hi - y_lo) * plot_h

    k = 0
    while True:
        v = y_lo + k * y_step
        if v > y_hi + y_step * 1e-6 or k > 50:
            break
        y = y_of(v)
        out.append(
            f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(right)}" y2="{_num(y)}" class="grid"/>'
            f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end">'
            f"{escape(_y_tick_label(v, unit, y_step))}</text>"
        )
        k += 1
    cy = top + plot_h / 2
    out.append(
        f'<text class="axis-label" x="14" y="{_num(cy)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_num(cy)})">{escape(y_label)}</text></g>'
    )
    out.append(
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(plot_w)}" height="{_num(plot_h)}" '
        'fill="none" stroke="#888888" stroke-width="1"/>'
    )

    def mid(p: Point) -> float:
        return x_of((_ts(p.start) + _ts(p.end)) / 2)

    # CI bands, then lines, then dots.
    for s in series:
        if not s.band:
            continue
        for run in _segments(s.points):
            for sub in _segments_with_ci(run):
                xs = [mid(p) for p in sub]
                highs = [y_of(_known(p.high)) for p in sub]
                lows = [y_of(_known(p.low)) for p in sub]
                if len(sub) == 1:
                    # A lone interval has no band to fill: its CI is drawn as a thick error bar.
                    out.append(
                        f'<path class="ci-band" d="M{_num(xs[0])},{_num(highs[0])} L{_num(xs[0])},'
                        f'{_num(lows[0])}" stroke="{s.colour}" stroke-opacity="0.35" stroke-width="6"/>'
                    )
                    continue
                upper = " L".join(f"{_num(x)},{_num(y)}" for x, y in zip(xs, highs, strict=True))
                lower = " L".join(f"{_num(x)},{_num(y)}" for x, y in zip(reversed(xs), reversed(lows), strict=True))
                out.append(
                    f'<path class="ci-band" d="M{upper} L{lower} Z" fill="{s.colour}" fill-opacity="0.2" '
                    'stroke="none"/>'
                )
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        n_points = sum(1 for p in s.points if p.value is not None)
        for run in _segments(s.points):
            if len(run) > 1:
                d = " L".join(f"{_num(mid(p))},{_num(y_of(_known(p.value)))}" for p in run)
                out.append(
                    f'<path class="series-line" d="M{d}" fill="none" stroke="{s.colour}" stroke-width="2" '
                    f'stroke-linejoin="round"{dash}/>'
                )
            if len(run) == 1 or n_points <= _DOT_LIMIT:
                for p in run:
                    out.append(
                        f'<circle cx="{_num(mid(p))}" cy="{_num(y_of(_known(p.value)))}" r="2.6" fill="{s.colour}"/>'
                    )
    for th in thresholds:
        y = y_of(th.value)
        out.append(
            f'<line class="threshold" x1="{_num(left)}" y1="{_num(y)}" x2="{_num(right)}" y2="{_num(y)}" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-width="1.2" stroke-dasharray="2 2">'
            f"<title>{escape(th.label)}</title></line>"
        )
    if not has_data:
        out.append(
            f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h / 2)}" text-anchor="middle" '
            'class="no-data">no data in these intervals</text>'
        )

    # Hover columns: one per interval, its <title> lists every series' value with CI and n.
    by_interval: dict[tuple[datetime, datetime], list[str]] = {}
    for s in series:
        for p in s.points:
            text = f"{s.label}: {format_value(p.value, unit)}"
            if p.low is not None and p.high is not None:
                text += f" (95% CI {format_value(p.low, unit)} to {format_value(p.high, unit)})"
            text += f", n={p.n}"
            by_interval.setdefault((p.start, p.end), []).append(text)
    for (start, end), texts in sorted(by_interval.items()):
        xa, xb = x_of(_ts(start)), x_of(_ts(end))
        if xb - xa <= 0:
            continue
        tip = f"{format_time(start)} to {format_time(end)} UTC\n" + "\n".join(texts)
        out.append(
            f'<rect class="hover" x="{_num(xa)}" y="{_num(top)}" width="{_num(xb - xa)}" '
            f'height="{_num(plot_h)}" fill="#000000" fill-opacity="0"><title>{escape(tip)}</title></rect>'
        )
    out.append("</svg>")
    return "".join(out)


def _segments_with_ci(run: Sequence[Point]) -> list[list[Point]]:
    """Sub-runs of ``run`` whose points all carry both CI bounds."""
    subs: list[list[Point]] = []
    current: list[Point] = []
    for p in run:
        if p.low is None or p.high is None:
            if current:
                subs.append(current)
            current = []
        else:
            current.append(p)
    if current:
        subs.append(current)
    return subs


def _describe(series: Sequence[Series], unit: Unit, x_range: tuple[datetime, datetime], shades: Sequence[Shade]) -> str:
    """A one-paragraph text alternative of a time-series chart for screen readers."""
    parts = [f"From {format_time(x_range[0])} to {format_time(x_range[1])} UTC."]
    for s in series:
        vals = [p.value for p in s.points if p.value is not None]
        if not vals:
            parts.append(f"{s.label}: no data.")
            continue
        latest = next(p for p in reversed(s.points) if p.value is not None)
        parts.append(
            f"{s.label}: {len(vals)} intervals, min {format_value(min(vals), unit)}, max "
            f"{format_value(max(vals), unit)}, latest {format_value(latest.value, unit)}."
        )
    alerts = sum(1 for s in shades if s.kind == "alert")
    annotations = sum(1 for s in shades if s.kind == "annotation")
    if alerts:
        parts.append(f"{alerts} alert firing window(s) shaded.")
    if annotations:
        parts.append(f"{annotations} annotated window(s) hatched.")
    return " ".join(parts)


def interval_plot_svg(
    *,
    chart_id: str,
    title: str,
    x_label: str,
    rows: Sequence[Interval],
    width: int = WIDTH,
) -> str:
    """A forest plot: one row per estimate with its 95 % CI as a bar, and a zero line.

    Used for "improvement over production" per scorer; rows without a value say so in text.
    """
    chart_id = escape(chart_id)  # written into attributes: a caller may derive it from a name
    row_h = 26
    label_w = 170.0
    top, bottom_pad = 34.0, 40.0
    height = int(top + bottom_pad + max(len(rows), 1) * row_h)
    left, right = label_w, float(width - _MARGIN_RIGHT - 60)
    values = [0.0]
    for r in rows:
        values += [v for v in (r.value, r.low, r.high) if v is not None and math.isfinite(v)]
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    lo, hi = lo - span * 0.1, hi + span * 0.1
    step = _nice_step((hi - lo) / 4)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    bottom = top + max(len(rows), 1) * row_h
    desc = "; ".join(
        f"{r.label}: {format_value(r.value, 'score')} (95% CI {format_value(r.low, 'score')} to "
        f"{format_value(r.high, 'score')})"
        for r in rows
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart forest" id="{chart_id}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc or "no scorers")}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="20" class="chart-title">{escape(title)}</text>',
        '<g class="axis x-axis" font-size="11">',
    ]
    k = 0
    while k <= 50:
        v = lo + k * step
        if v > hi + step * 1e-6:
            break
        x = x_of(v)
        label = f"{v:+.{0 if step >= 1 else min(4, max(1, -math.floor(math.log10(step))))}f}"
        out.append(
            f'<line x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" y2="{_num(bottom)}" class="grid"/>'
            f'<text x="{_num(x)}" y="{_num(bottom + 14)}" text-anchor="middle">{escape(label)}</text>'
        )
        k += 1
    out.append(
        f'<text x="{_num((left + right) / 2)}" y="{_num(bottom + 32)}" text-anchor="middle" '
        f'class="axis-label">{escape(x_label)}</text></g>'
    )
    out.append(
        f'<line x1="{_num(x_of(0))}" y1="{_num(top)}" x2="{_num(x_of(0))}" y2="{_num(bottom)}" '
        'stroke="#333333" stroke-width="1.2"/>'
    )
    for i, r in enumerate(rows):
        y = top + i * row_h + row_h / 2
        colour = PALETTE[0] if r.good is None else ("#009E73" if r.good else ALERT_COLOUR)
        out.append(
            f'<text x="{_num(label_w - 8)}" y="{_num(y + 4)}" text-anchor="end" class="row-label">'
            f"{escape(r.label)}</text>"
        )
        if r.value is None:
            out.append(f'<text x="{_num(left + 4)}" y="{_num(y + 4)}" class="no-data">no paired scores</text>')
            continue
        if r.low is not None and r.high is not None:
            out.append(
                f'<line class="ci-bar" x1="{_num(x_of(r.low))}" y1="{_num(y)}" x2="{_num(x_of(r.high))}" '
                f'y2="{_num(y)}" stroke="{colour}" stroke-width="3"/>'
            )
        out.append(f'<circle cx="{_num(x_of(r.value))}" cy="{_num(y)}" r="4.5" fill="{colour}"/>')
        out.append(
            f'<text x="{_num(right + 6)}" y="{_num(y + 4)}" class="row-value">{escape(f"{r.value:+.3f}")}</text>'
        )
    out.append("</svg>")
    return "".join(out)
