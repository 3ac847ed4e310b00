"""HTML pieces shared by the static report (:mod:`.render`) and the Airflow UI's GenAI Quality page.

The markup lives in the Jinja2 macros of ``templates/fragments.html.j2`` (links that refuse unsafe URL
schemes, table cells and tables, headline cards, the application section); this module holds what they
and the page templates compute with: the URL check (:func:`href`), the texts of values (metric units,
rule conditions, confidence intervals and time windows from :mod:`.texts`, re-exported here; dataset
manifests and evaluation summaries), and Python entry points to the macros (:func:`link`, :func:`td`,
:func:`table`, :func:`cards`, :func:`dataset_row`). What the two pages do differently on purpose is an
argument, not a second copy: the URL schemes a link may use (the report is a local file and may link other
local files, the page served inside Airflow must not), the CSS, the class of table captions and card lists,
which columns a table has.

Every text written into HTML is escaped with :func:`esc` (the standard library's :func:`html.escape`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from markupsafe import Markup

from genai_flywheel.report.templating import esc as esc, macro  # esc: re-exported, the pages' one escaping
from genai_flywheel.report.texts import (  # re-exported: the pages import them from here
    WEB_SCHEMES as WEB_SCHEMES,
    ci_text as ci_text,
    condition as condition,
    href as href,
    signed as signed,
    unit_of as unit_of,
    window as window,
)

# Keys under which an evaluation summary has held the candidate - production mean difference, newest first.
IMPROVEMENT_KEYS = ("improvement", "diff", "mean_diff")

Opens = Literal["here", "top", "tab"]


class Card(NamedTuple):
    """One headline number: ``label``, ``value``, an optional smaller ``sub`` text and a CSS class."""

    label: str
    value: str
    sub: str = ""
    cls: str = ""


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


# --- texts of values (the rest are in .texts) --------------------------------------------------------------
def number(stats: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    """The first of ``keys`` in ``stats`` holding a number (booleans are not numbers), as a float."""
    for key in keys:
        value = stats.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


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
