"""Gates: pass/fail per declared threshold, messages naming values, rule scoping, enforcement."""

from __future__ import annotations

import pytest

from genai_flywheel.config import Gate
from genai_flywheel.evaluation.gate import GateResult, enforce, evaluate_gates, parse_gates
from genai_flywheel.exceptions import ConfigError, GateFailedError


def _stats(**kw: float | int | None) -> dict:
    base = {"n": 20, "candidate_mean": 0.8, "production_mean": 0.5, "improvement": 0.3, "ci_low": 0.2,
            "ci_high": 0.4, "p_value": 0.001, "wins": 15, "losses": 2, "ties": 3}  # fmt: skip
    base.update(kw)
    return base


def _summary(**overrides: dict) -> dict:
    return {
        "n_records": 20,
        "candidate_errors": 0,
        "scorers": {"relevance": _stats(), **overrides},
        "rules": {"smart-sync": {"relevance": _stats(n=8, improvement=0.6, p_value=0.01)}},
    }


def test_all_thresholds_met() -> None:
    gates = [Gate(scorer="relevance", min_mean=0.7, min_improvement=0.1, max_p_value=0.05)]
    result = evaluate_gates(_summary(), gates)
    assert result.passed
    assert [c.criterion for c in result.checks] == [
        "min_mean", "min_improvement", "max_p_value", "max_candidate_error_rate",
    ]  # fmt: skip
    assert all(c.passed for c in result.checks)


def test_failures_name_values_and_thresholds() -> None:
    summary = _summary(relevance=_stats(candidate_mean=0.55, improvement=0.02, p_value=0.4))
    result = evaluate_gates(summary, [Gate(scorer="relevance", min_mean=0.7, min_improvement=0.1, max_p_value=0.05)])
    assert not result.passed and len(result.failed) == 3
    messages = " | ".join(c.message for c in result.failed)
    assert "candidate mean 0.55 < min_mean 0.7" in messages
    assert "improvement over production 0.02" in messages and "< min_improvement 0.1" in messages
    assert "p-value 0.4 > max_p_value 0.05" in messages
    with pytest.raises(GateFailedError) as err:
        enforce(summary, [Gate(scorer="relevance", min_improvement=0.1)])
    assert "1 of 2 gate check(s) failed" in str(err.value)
    assert "improvement over production 0.02" in str(err.value)


def test_significant_regression_does_not_pass_the_p_value_gate() -> None:
    summary = _summary(relevance=_stats(improvement=-0.3, p_value=0.001))
    result = evaluate_gates(summary, [Gate(scorer="relevance", max_p_value=0.05)])
    assert not result.passed
    assert "not an improvement" in result.failed[0].message


def test_unmeasured_scorer_fails() -> None:
    result = evaluate_gates(_summary(), [Gate(scorer="groundedness", min_mean=0.5)])
    assert not result.passed
    assert "scorer 'groundedness' is not in the comparison; scored: ['relevance']" in result.failed[0].message
    no_pairs = evaluate_gates(_summary(relevance=_stats(n=0)), [Gate(scorer="relevance", min_mean=0.1)])
    assert not no_pairs.passed and "no record has both" in no_pairs.failed[0].message


def test_rule_scoped_gate_from_params_dict() -> None:
    gate = {"scorer": "relevance", "min_improvement": 0.5, "max_p_value": 0.05, "rule": "smart-sync"}
    result = evaluate_gates(_summary(), [gate])
    assert result.passed
    assert result.checks[0].gate == "relevance[rule=smart-sync]"
    missing = evaluate_gates(_summary(), [{**gate, "rule": "other"}])
    assert not missing.passed and "no records of rule 'other'" in missing.failed[0].message


def test_candidate_errors_fail_the_gate() -> None:
    summary = {**_summary(), "candidate_errors": 2}
    result = evaluate_gates(summary, [Gate(scorer="relevance", min_improvement=0.1)])
    assert not result.passed
    assert "2 of 20 records failed to predict" in result.failed[0].message
    lenient = evaluate_gates(summary, [Gate(scorer="relevance")], max_candidate_error_rate=0.2)
    assert lenient.passed
    assert evaluate_gates(summary, []).passed  # no gates declared: nothing to enforce


def test_parse_gates_rejects_bad_dicts() -> None:
    with pytest.raises(ConfigError, match=r"gates\[0\].*max_p_value"):
        parse_gates([{"scorer": "relevance", "max_p_value": 2.0}])
    with pytest.raises(ConfigError, match="min_improvment"):
        parse_gates([{"scorer": "relevance", "min_improvment": 0.1}])
    specs = parse_gates([Gate(scorer="relevance"), {"scorer": "pii", "rule": "r"}])
    assert [s.label for s in specs] == ["relevance", "pii[rule=r]"]
    assert specs[1].to_dict() == {"scorer": "pii", "rule": "r"}


def test_enforce_returns_passing_result() -> None:
    result = enforce(_summary(), [Gate(scorer="relevance", min_improvement=0.1)])
    assert isinstance(result, GateResult) and result.passed
    assert enforce(result) is result
    assert result.to_dict()["passed"] is True
