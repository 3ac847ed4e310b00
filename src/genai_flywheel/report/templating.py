"""The Jinja2 environment of the static report and of the Airflow UI's GenAI Quality page.

Templates ship as package data: ``genai_flywheel/report/templates/`` holds the shared macros
(``fragments.html.j2``), the document shell and the report; a caller such as the GenAI Quality page adds
its own package's ``templates/`` folder in front (:func:`environment`), so its pages extend the same shell
and import the same macros.

Autoescaping is on and every value a template prints goes through :func:`esc` (the standard library's
:func:`html.escape`, the escaping the pages have always used; ``None`` prints as nothing): only
:class:`~markupsafe.Markup` (a macro's output, an SVG chart, the CSS) is written as it is.

Template sources are compacted as they load (:class:`_Compact`): a line break and the indentation around
it disappear next to a tag, and become one space inside running text, so templates stay readable while
the pages keep their compact, deterministic bytes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup

_BREAK = re.compile(r"[ \t]*\n\s*")


def esc(value: Any) -> str:
    """``value`` as HTML text; None is the empty text (not ``"None"``)."""
    return escape("" if value is None else str(value))


def _finalize(value: Any) -> Any:
    # Markup (macro output, charts, CSS) stays as it is; everything else is text.
    return value if hasattr(value, "__html__") else Markup(esc(value))


def _join_lines(match: re.Match[str]) -> str:
    source, start, end = match.string, match.start(), match.end()
    before = source[start - 1] if start else ">"
    after = source[end : end + 2]
    return "" if before in ">}" or after.startswith(("<", "{%", "{#")) or not after else " "


class _Compact(Extension):
    """Joins a template's lines before it compiles: a break between tags vanishes, one in text is a space."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _BREAK.sub(_join_lines, source)


@lru_cache(maxsize=8)
def environment(*packages: str) -> Environment:
    """The environment loading ``templates/`` of each of ``packages`` (first wins), then the report's."""
    from genai_flywheel.report import charts, texts

    loader = ChoiceLoader([PackageLoader(p, "templates") for p in (*packages, "genai_flywheel.report")])
    env = Environment(
        loader=loader,
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        extensions=[_Compact],
        auto_reload=False,
    )
    env.globals.update(
        WEB_SCHEMES=texts.WEB_SCHEMES,
        href=texts.href,
        unit_of=texts.unit_of,
        condition=texts.condition,
        ci_text=texts.ci_text,
        window=texts.window,
        signed=texts.signed,
        format_value=charts.format_value,
        format_time=charts.format_time,
    )
    return env


def render(template: str, *packages: str, **context: Any) -> str:
    """``template`` (a name under one of the ``templates/`` folders) rendered with ``context``."""
    return environment(*packages).get_template(template).render(**context)


def macro(name: str) -> Any:
    """A macro of ``fragments.html.j2``, callable from Python (it returns :class:`~markupsafe.Markup`)."""
    return getattr(environment().get_template("fragments.html.j2").module, name)
