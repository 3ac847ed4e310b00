"""Candidate resolution: entry points, model URIs' short names, error messages, prediction unwrapping."""

from __future__ import annotations

import pytest

from genai_flywheel.evaluation.candidate import _unwrap, resolve_candidate, short_name
from genai_flywheel.exceptions import ConfigError


def test_entry_point_resolves_to_the_callable() -> None:
    candidate = resolve_candidate("genai_flywheel.evaluation.stats:sign_test")
    assert candidate.kind == "entry_point" and candidate.short_name == "sign_test"
    assert candidate.predict_fn(wins=1, losses=0) == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no candidate"),
        ("not a spec", "neither module:function nor an MLflow model URI"),
        ("genai_flywheel.no_such_module:f", "cannot import module 'genai_flywheel.no_such_module'"),
        ("genai_flywheel.evaluation.stats:nope", "has no attribute 'nope'"),
        ("genai_flywheel.evaluation.stats:DEFAULT_EPSILON", "not a callable"),
    ],
)
def test_bad_specs_explain_the_fix(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_candidate(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("flywheel_demo.app:predict_fixed", "predict_fixed"),
        ("models:/support-assistant/3", "support-assistant-3"),
        ("models:/support-assistant@champion", "support-assistant-champion"),
        ("runs:/0123456789abcdef/model", "run-01234567"),
    ],
)
def test_short_names(spec: str, expected: str) -> None:
    assert short_name(spec) == expected


def test_unwrap_single_predictions() -> None:
    import numpy as np

    assert _unwrap(["a"]) == "a"
    assert _unwrap(("a",)) == "a"
    assert _unwrap(np.array(["a"])) == "a"
    assert _unwrap(np.array([1.5, 2.5])) == [1.5, 2.5]
    assert _unwrap("plain") == "plain"
    assert _unwrap({"k": 1}) == {"k": 1}
