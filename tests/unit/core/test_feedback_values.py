"""One conversion of feedback values to numbers, with the monitor's and curation's vocabularies."""

from __future__ import annotations

import math
from enum import Enum

import pytest

from genai_flywheel.curation.assessments import to_number
from genai_flywheel.scoring.runner import to_numeric


class Rating(Enum):
    YES = "yes"
    NO = "no"


@pytest.mark.parametrize(
    ("value", "monitor", "curation"),
    [
        (True, 1.0, 1.0),
        (False, 0.0, 0.0),
        (3, 3.0, 3.0),
        (0.25, 0.25, 0.25),
        (math.inf, None, None),
        (" YES ", 1.0, 1.0),
        ("Fail", 0.0, 0.0),
        (Rating.NO, 0.0, 0.0),
        ("thumbs_up", None, 1.0),  # people's words: curation only
        ("incorrect", None, 0.0),
        ("4", None, 4.0),  # a number as text: curation only (a judge answering "4" is not a score)
        ("nan", None, None),
        ("maybe", None, None),
        (None, None, None),
        ([1], None, None),
    ],
)
def test_the_monitor_and_curation_share_one_conversion_with_their_own_words(value, monitor, curation) -> None:
    assert to_numeric(value) == monitor
    assert to_number(value) == curation
