"""The texts of values the report and the GenAI Quality page print, and the URL check of their links: what
the templates call (:mod:`.templating` makes these their globals) and :mod:`.fragments` re-exports.

Kept apart from :mod:`.fragments`, whose Python entry points to the macros need the template environment,
so the environment can offer these to every template without importing the module that imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

from markupsafe import Markup

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.metrics.aggregate import is_estimate
from genai_flywheel.report.charts import Unit, format_time, format_value
from genai_flywheel.report.data import utc

# Relative links and http(s): what a page served by a web server may link. A caller that may also link
# local files (the static report, opened from disk) adds "file" explicitly.
WEB_SCHEMES: tuple[str, ...] = ("", "http", "https")


def href(url: str, *, schemes: Sequence[str] = WEB_SCHEMES, what: str = "link") -> Markup:
    """``url`` escaped for an ``href`` attribute; :class:`ConfigError` when its scheme is not in ``schemes``
    (``""`` stands for a relative URL), so a ``javascript:`` or ``data:`` URL never becomes a link."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        names = ["relative"] * ("" in schemes) + [f"{s}:" for s in schemes if s]
        allowed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)
        raise ConfigError(f"{what} {url!r} has the scheme {scheme!r}, which is not linked; use a {allowed} URL")
    return Markup(escape(url, quote=True))


def unit_of(metric: str) -> Unit:
    """The display unit of a metric name (see :mod:`genai_flywheel.metrics.aggregate` for the names)."""
    if metric.endswith("_ms"):
        return "ms"
    if metric == "cost_usd":
        return "usd"
    if metric.endswith("rate") or metric.startswith("error_rate"):
        return "rate"
    return "score" if is_estimate(metric) else "count"


def condition(metric: str, op: str, threshold: float) -> str:
    """An alert rule's condition as read: ``latency_p95_ms > 2,500 ms``."""
    return f"{metric} {op} {format_value(threshold, unit_of(metric))}"


def ci_text(low: float | None, high: float | None, unit: Unit) -> str:
    """A 95 % CI as ``low to high`` in ``unit``; ``n/a`` when a bound is missing."""
    if low is None or high is None:
        return "n/a"
    return f"{format_value(low, unit)} to {format_value(high, unit)}"


def window(start: datetime | None, end: datetime | None) -> str:
    """An interval as ``2026-01-05 13:00 to 2026-01-05 14:00`` (UTC); ``n/a`` when a bound is missing."""
    if start is None or end is None:
        return "n/a"
    return f"{format_time(utc(start))} to {format_time(utc(end))}"


def signed(value: float | None) -> str:
    """A difference with its sign and three decimals (``+0.040``); ``n/a`` for None."""
    return "n/a" if value is None else f"{value:+.3f}"
