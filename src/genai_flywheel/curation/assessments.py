"""Reading the ``assessments`` column of a trace table: latest value per name, numbers, polarity.

A trace may carry several assessments of one name (a scorer re-run, a user changing their vote); the latest
by ``create_time_ms`` wins, with ``assessment_id`` breaking ties so the choice is deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from genai_flywheel.feedback_values import as_number

HUMAN = "HUMAN"

_TRUE_WORDS = frozenset({"yes", "true", "positive", "pass", "passed", "thumbs_up", "good", "correct"})
_FALSE_WORDS = frozenset({"no", "false", "negative", "fail", "failed", "thumbs_down", "bad", "incorrect"})


@dataclass(frozen=True)
class Assessment:
    """One decoded assessment (the latest of its name and kind on a trace)."""

    name: str
    kind: str
    value: Any
    source_type: str | None
    rationale: str | None
    create_time_ms: int
    assessment_id: str | None = None  # MLflow's id (lineage of a value copied into a record or an example)


@dataclass(frozen=True)
class TraceAssessments:
    """The latest feedback and expectation of each name on one trace."""

    feedback: dict[str, Assessment] = field(default_factory=dict)
    expectations: dict[str, Assessment] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """The latest feedback value named ``name`` (None when absent)."""
        found = self.feedback.get(name)
        return None if found is None else found.value

    def numeric(self, name: str) -> float | None:
        """The latest feedback value named ``name`` as a number (see :func:`to_number`)."""
        return to_number(self.value(name))

    def polarity(self, name: str) -> int | None:
        """+1 / -1 for positive / negative feedback named ``name``, None when absent or not a verdict."""
        return polarity(self.value(name))


def decode_value(text: str | None) -> Any:
    """An assessment value from its JSON text; a non-JSON string is returned as is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def to_number(value: Any) -> float | None:
    """A feedback value as a number: bool -> 1/0, yes/no-like words -> 1/0, finite numbers (also written as
    text) as floats."""
    return as_number(value, true_words=_TRUE_WORDS, false_words=_FALSE_WORDS, numeric_text=True)


def polarity(value: Any) -> int | None:
    """+1 for a positive verdict (True, 1, 'positive', 'yes', ...), -1 for a negative one, else None."""
    if isinstance(value, bool):
        return 1 if value else -1
    if isinstance(value, int) and value in (0, 1):
        return 1 if value else -1
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE_WORDS:
            return 1
        if word in _FALSE_WORDS:
            return -1
    return None


def parse_assessments(cell: list[dict[str, Any]] | None) -> TraceAssessments:
    """Decode one ``assessments`` cell (a list of ``ASSESSMENT_TYPE`` dicts) into latest-per-name maps.

    Assessments that carry an ``error`` and no value (a scorer that failed) are ignored.
    """
    if not cell:
        return TraceAssessments()
    ordered = sorted(
        (a for a in cell if a and a.get("name")),
        key=lambda a: (a.get("create_time_ms") or 0, a.get("assessment_id") or ""),
    )
    feedback: dict[str, Assessment] = {}
    expectations: dict[str, Assessment] = {}
    for raw in ordered:
        if raw.get("value") is None and raw.get("error"):
            continue
        kind = (raw.get("kind") or "feedback").lower()
        item = Assessment(
            name=raw["name"],
            kind=kind,
            value=decode_value(raw.get("value")),
            source_type=(raw.get("source_type") or None),
            rationale=raw.get("rationale") or None,
            create_time_ms=int(raw.get("create_time_ms") or 0),
            assessment_id=raw.get("assessment_id") or None,
        )
        (expectations if kind == "expectation" else feedback)[item.name] = item
    return TraceAssessments(feedback=feedback, expectations=expectations)
