"""HTML pieces shared by the static report (:mod:`.render`) and the Airflow UI's GenAI Quality page.

The markup lives in the Jinja2 macros of ``templates/fragments.html.j2`` (links that refuse unsafe URL
schemes, table cells and tables, headline cards, the application section); this module holds what they
and the page templates compute with: the URL check (:func:`href`), the texts of values (metric units,
rule conditions, confidence intervals, time windows, dataset manifests and evaluation summaries), and
Python entry points to the macros (:func:`link`, :func:`td`, :func:`table`, :func:`cards`,
:func:`dataset_row`). What the two pages do differently on purpose is an argument, not a second copy: the
URL schemes a link may use (the report is a local file and may link other local files, the page served
inside Airflow must not), the CSS, the class of table captions and card lists, which columns a table has.

Every text written into HTML is escaped with :func:`esc` (the standard library's :func:`html.escape`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from markupsafe import Markup

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.metrics.aggregate import is_estimate
from genai_flywheel.report.charts import Unit, format_time, format_value
from genai_flywheel.report.data import utc
from genai_flywheel.report.templating import esc as esc, macro  # esc: re-exported, the pages' one escaping

# Relative links and http(s): what a page served by a web server may link. A caller that may also link
# local files (the static report, opened from disk) adds "file" explicitly.
WEB_SCHEMES: tuple[str, ...] = ("", "http", "https")
# Keys under which an evaluation summary has held the candidate - production mean difference, newest first.
IMPROVEMENT_KEYS = ("improvement", "diff", "mean_diff")

Opens = Literal["here", "top", "tab"]


class Card(NamedTuple):
    """One headline number: ``label``, ``value``, an optional smaller ``sub`` text and a CSS class."""

    label: str
    value: str
    sub: str = ""
    cls: str = ""


def href(url: str, *, schemes: Sequence[str] = WEB_SCHEMES, what: str = "link") -> Markup:
    """``url`` escaped for an ``href`` attribute; :class:`ConfigError` when its scheme is not in ``schemes``
    (``""`` stands for a relative URL), so a ``javascript:`` or ``data:`` URL never becomes a link."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        names = ["relative"] * ("" in schemes) + [f"{s}:" for s in schemes if s]
        allowed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)
        raise ConfigError(f"{what} {url!r} has the scheme {scheme!r}, which is not linked; use a {allowed} URL")
    return Markup(escape(url, quote=True))


def link(
    url: str | None,
    text: Any,
    *,
    opens: Opens = "here",
    schemes: Sequence[str] = WEB_SCHEMES,
    what: str = "link",
) -> Markup:
    """An ``<a>`` to ``url`` (checked by :func:`href`) reading ``text``; just the text when ``url`` is empty
    (the ``link`` macro).

    ``opens``: ``"here"`` (no target), ``"top"`` (replaces the whole window when the page is in an iframe)
    or ``"tab"`` (a new tab that gets no ``opener``/``referrer``)."""
    return macro("link")(url, text, opens=opens, schemes=schemes, what=what)


def td(value: Any, *, num: bool = False, cls: str = "", raw: bool = False) -> Markup:
    """A table cell: ``value`` escaped (``raw=True``: already HTML), right-aligned numbers with ``num``."""
    return macro("td")(Markup(value) if raw else value, num=num, cls=cls)


def table(headers: Sequence[str], rows: Sequence[str], caption: str, cls: str = "", *, caption_cls: str = "") -> Markup:
    """A table with column headers, ``caption`` and ``rows`` (``<tr>`` HTML, e.g. built with :func:`td`)."""
    return macro("table")(headers, caption, cls=cls, caption_cls=caption_cls, rows=Markup("".join(rows)))


def cards(items: Iterable[Card], cls: str) -> Markup:
    """Headline numbers as a definition list of class ``cls``, one ``<div>`` per card."""
    return macro("cards")(list(items), cls)


# --- texts of values --------------------------------------------------------------------------------------
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


def number(stats: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    """The first of ``keys`` in ``stats`` holding a number (booleans are not numbers), as a float."""
    for key in keys:
        value = stats.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def signed(value: float | None) -> str:
    """A difference with its sign and three decimals (``+0.040``); ``n/a`` for None."""
    return "n/a" if value is None else f"{value:+.3f}"


def gate_of(run: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The release gate of an evaluation summary, None when it has none (or not a JSON object)."""
    gate = run.get("gate")
    return gate if isinstance(gate, Mapping) else None


def dataset_label(run: Mapping[str, Any]) -> str:
    """``<dataset> v<version>`` of an evaluation summary: the compare stage writes ``dataset`` as a dict
    with ``name`` and ``version``, older runs a name string and a top-level ``version``."""
    dataset = run.get("dataset")
    if isinstance(dataset, Mapping):
        name, version = str(dataset.get("name", "n/a")), dataset.get("version")
    else:
        name, version = str(dataset if dataset is not None else "n/a"), run.get("version")
    return f"{name} v{version}" if version is not None else name


def dataset_cells(manifest: Mapping[str, Any], *, quarantined: bool) -> list[str]:
    """The cells of a curated dataset version's manifest: dataset, version, records, added, updated,
    (``quarantined`` when asked), records per rule, source window and the digest's head."""
    per_rule = manifest.get("per_rule")
    per_rule = per_rule if isinstance(per_rule, Mapping) else {}
    source = "n/a"
    start_ms, end_ms = manifest.get("interval_start_ms"), manifest.get("interval_end_ms")
    if isinstance(start_ms, int) and isinstance(end_ms, int):
        source = window(datetime.fromtimestamp(start_ms / 1000, UTC), datetime.fromtimestamp(end_ms / 1000, UTC))
    counts = ("records", "added", "updated", "quarantined") if quarantined else ("records", "added", "updated")
    return [
        manifest.get("dataset"),
        f"v{manifest.get('version')}",
        *(manifest.get(key, "n/a") for key in counts),
        ", ".join(f"{k}: {n}" for k, n in sorted(per_rule.items())) or "n/a",
        source,
        str(manifest.get("digest", "n/a"))[:19],
    ]


def dataset_row(manifest: Mapping[str, Any], *, quarantined: bool) -> Markup:
    """A ``<tr>`` of :func:`dataset_cells`, the counts right-aligned (the ``dataset_row`` macro)."""
    return macro("dataset_row")(dataset_cells(manifest, quarantined=quarantined))
