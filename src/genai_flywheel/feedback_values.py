"""Feedback values as numbers: the one conversion behind the monitor's scores and curation's labels.

A Feedback value may be a bool, a number, an enum (MLflow's ``CategoricalRating``) or a word. The monitor
(``scoring.runner.to_numeric``) reads a scorer's own pass/fail words only; curation, evaluation and review
(``curation.assessments.to_number``) also read the words people and apps log as feedback (thumbs_up, good,
incorrect, ...) and numbers sent as text. Both are this function with their own vocabulary, so the two can
differ only where they are meant to.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from enum import Enum
from typing import Any


def as_number(
    value: Any, *, true_words: Collection[str], false_words: Collection[str], numeric_text: bool
) -> float | None:
    """``value`` as a number: bool -> 1/0, a word of ``true_words``/``false_words`` (any case) -> 1/0, a finite
    int or float as a float, a number written as text when ``numeric_text``; else None. An enum counts as
    its value."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in true_words:
            return 1.0
        if word in false_words:
            return 0.0
        if numeric_text:
            try:
                number = float(word)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None
