"""Per-segment alert rules: p-values per segment (agreeing with the Wilson CI), Benjamini-Hochberg across the
segments of a dimension, thin segments left out of the family, exact counts, estimates, baselines."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from scipy.stats import false_discovery_control, norm

from genai_flywheel.alerts.segments import bh_reject, evaluate_segment_rule, threshold_p_value
from genai_flywheel.config import AlertRule
from genai_flywheel.metrics.segment_schema import segments_schema
from genai_flywheel.metrics.stats import wilson_interval

T0 = datetime(2026, 11, 20, tzinfo=UTC)
SIX = timedelta(hours=6)
FEEDBACK = "feedback.user_feedback.positive_rate"


def seg_row(
    segment: str, metric: str, value: float | None, n: int, low: float | None = None, high: float | None = None,
    *, dimension: str = "topic", start: datetime = T0,
) -> dict[str, Any]:  # fmt: skip
    return {
        "app": "bot", "interval_start": start, "interval_end": start + SIX, "dimension": dimension,
        "segment": segment, "label": f"Topic {segment}", "metric": metric, "value": value, "n": n,
        "ci_low": low, "ci_high": high, "examples": None,
    }  # fmt: skip


def share_row(segment: str, successes: int, n: int, metric: str = FEEDBACK, **kw: Any) -> dict[str, Any]:
    low, high = wilson_interval(successes, n)
    return seg_row(segment, metric, successes / n, n, low, high, **kw)


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=segments_schema())


def rule(**kw: Any) -> AlertRule:
    base = {"name": "topic_satisfaction", "segment": "topic", "metric": FEEDBACK, "op": "<", "threshold": 0.65}
    return AlertRule.model_validate({**base, "min_samples": 4, **kw})


def states(evaluations: list) -> dict[str, str]:
    return {e.segment: e.state for e in evaluations}


# --- p-values ---------------------------------------------------------------------------------------------


def test_the_score_p_value_agrees_with_the_wilson_ci() -> None:
    """A segment's 95 % Wilson CI lies wholly beyond the threshold exactly when its one-sided p < 0.025."""
    rng = random.Random(7)
    checked = 0
    for _ in range(2000):
        n = rng.randint(1, 300)
        k = rng.randint(0, n)
        p0 = rng.uniform(0.01, 0.99)
        low, high = wilson_interval(k, n)
        for op, beyond in ((">", low > p0), ("<", high < p0)):
            row = {"value": k / n, "n": n, "ci_low": low, "ci_high": high}
            p, _ = threshold_p_value(rule(op=op, threshold=p0), row)
            assert p is not None
            if abs(p - 0.025) > 1e-9:  # exactly on the boundary, rounding decides
                assert (p < 0.025) == beyond, (k, n, p0, op, p, low, high)
                checked += beyond
    assert checked > 100  # both outcomes were exercised


def test_estimates_use_the_standard_error_of_their_ci_and_counts_compare_exactly() -> None:
    latency = rule(metric="latency_p95_ms", op=">", threshold=2500)
    p, how = threshold_p_value(latency, {"value": 2900.0, "n": 100, "ci_low": 2700.0, "ci_high": 3092.0})
    assert p == pytest.approx(norm.sf(4.0), rel=0.01) and "z-test on the 95% CI" in how  # z = 400 / (392 / 3.92)
    assert threshold_p_value(latency, {"value": 2900.0, "n": 5, "ci_low": None, "ci_high": None})[0] is None
    volume = rule(metric="volume", op="<", threshold=10, min_samples=1)
    assert threshold_p_value(volume, {"value": 3.0, "n": 3, "ci_low": None, "ci_high": None})[0] == 0.0
    assert threshold_p_value(volume, {"value": 30.0, "n": 30, "ci_low": None, "ci_high": None})[0] == 1.0


# --- Benjamini-Hochberg --------------------------------------------------------------------------------


def test_bh_decision_on_a_hand_example_equals_scipys() -> None:
    # m = 10, fdr 0.05: the step-up line is k * 0.005. p(1) = 0.001 <= 0.005 and p(2) = 0.008 <= 0.01, but no
    # later p(k) is below k * 0.005: the two smallest are rejected.
    p = [0.205, 0.001, 0.039, 0.041, 0.008, 0.042, 0.06, 0.074, 0.212, 0.216]
    assert bh_reject(p, 0.05) == [False, True, False, False, True, False, False, False, False, False]
    assert bh_reject(p, 0.05) == [bool(q <= 0.05) for q in false_discovery_control(p)]
    # Step-up: p(5) = 0.05 <= 5/5 * 0.05 rejects all five, though 0.02 > 1/5 * 0.05 alone would not.
    assert bh_reject([0.05, 0.02, 0.03, 0.04, 0.01], 0.05) == [True] * 5
    assert bh_reject([], 0.05) == []


def test_null_segments_do_not_all_fire() -> None:
    rng = random.Random(11)
    families_with_an_alarm = 0
    for _ in range(400):
        p = [rng.random() for _ in range(50)]
        rejected = bh_reject(p, 0.05)
        assert sum(rejected) < 50
        families_with_an_alarm += any(rejected)
    # Under the global null BH's false-discovery rate equals its family-wise error: about 5 % of families.
    assert families_with_an_alarm <= 0.09 * 400
    assert not any(bh_reject([(i + 0.5) / 50 for i in range(50)], 0.05))


def test_a_clearly_bad_segment_fires_alone() -> None:
    good = [share_row(f"c-{i}", 18 + i % 3, 20 + i % 4) for i in range(9)]
    rows = [*good, share_row("c-smart", 0, 4), share_row("other", 30, 33)]
    evaluations = evaluate_segment_rule(rule(), table(rows))
    assert [e.segment for e in evaluations] == sorted(r["segment"] for r in rows)
    assert {s for s, st in states(evaluations).items() if st == "firing"} == {"c-smart"}
    smart = next(e for e in evaluations if e.segment == "c-smart")
    assert (smart.dimension, smart.label, smart.n, smart.value) == ("topic", "Topic c-smart", 4, 0.0)
    assert smart.ci_high == pytest.approx(0.49, abs=0.001) and smart.p_value < 0.05 / 11
    assert "rejected by Benjamini-Hochberg at fdr=0.05 over 11 tested segment(s)" in smart.reason
    assert all(e.clears for e in evaluations if e.state == "ok")


def test_fifty_clean_segments_stay_quiet() -> None:
    rng = random.Random(3)
    rows = []
    for i in range(50):  # true positive rate 0.92, as on a clean day; 5 to 40 rated answers each
        n = rng.randint(5, 40)
        rows.append(share_row(f"c-{i:02d}", sum(rng.random() < 0.92 for _ in range(n)), n))
    assert set(states(evaluate_segment_rule(rule(), table(rows))).values()) == {"ok"}


def test_thin_segments_are_not_judged_and_not_counted_in_the_family() -> None:
    # p = 0.013 for 1 of 8 below 0.5: with 2 tested segments BH rejects it (<= 0.025); had the four thin
    # segments joined the family (m = 6, p(1) must be <= 0.0083) it would not fire.
    rows = [share_row("c-bad", 1, 8), share_row("c-good", 19, 20)]
    rows += [share_row(f"c-thin{i}", 3, 3) for i in range(4)]
    evaluations = evaluate_segment_rule(rule(threshold=0.5, min_samples=4), table(rows))
    assert states(evaluations) == {
        "c-bad": "firing", "c-good": "ok", **{f"c-thin{i}": "insufficient_data" for i in range(4)}
    }  # fmt: skip
    assert "over 2 tested segment(s)" in evaluations[0].reason
    thin = next(e for e in evaluations if e.segment == "c-thin0")
    assert "n=3 < min_samples=4" in thin.reason and thin.p_value is None and thin.clears is None


def test_segments_without_the_metric_or_a_ci_are_insufficient_data() -> None:
    rows = [
        seg_row("c-a", "volume", 12.0, 12),  # no feedback row at all
        seg_row("c-b", FEEDBACK, None, 0),
        seg_row("c-c", "latency_p95_ms", 3000.0, 40),  # no CI below n = 72
        share_row("c-d", 5, 10, dimension="model"),  # another dimension: not this rule's
    ]
    out = evaluate_segment_rule(rule(metric="latency_p95_ms", op=">", threshold=2500), table(rows))
    assert states(out) == {"c-a": "insufficient_data", "c-b": "insufficient_data", "c-c": "insufficient_data"}
    assert "no 95% CI at n=40" in out[2].reason


def test_exact_volume_per_segment_compares_the_value() -> None:
    rows = [seg_row("v1", "volume", 2.0, 2), seg_row("v2", "volume", 50.0, 50)]
    out = evaluate_segment_rule(rule(metric="volume", op="<", threshold=5, min_samples=1), table(rows))
    assert states(out) == {"v1": "firing", "v2": "ok"}


def test_a_segment_is_tested_against_its_own_baseline() -> None:
    base = rule(kind="baseline", metric="error_rate", op=">", min_samples=30, baseline={"min_effect": 0.02})
    base = base.model_copy(update={"threshold": 1.0})
    history = {
        "v1": [share_row("v1", 10, 500, "error_rate")] * 7,  # 2 % for a week
        "v2": [share_row("v2", 60, 500, "error_rate")] * 7,  # 12 % for a week: its normal
        "v3": [share_row("v3", 10, 500, "error_rate")] * 2,  # too short a baseline
    }
    rows = [share_row(s, 48, 400, "error_rate") for s in ("v1", "v2", "v3", "v4")]  # 12 % now, everywhere
    out = evaluate_segment_rule(base, table(rows), history)
    assert states(out) == {"v1": "firing", "v2": "ok", "v3": "insufficient_data", "v4": "insufficient_data"}
    assert "baseline 0.02" in out[0].reason and "over 2 tested segment(s)" in out[0].reason
    assert "min_intervals=3" in out[2].reason
    # Significant but smaller than min_effect: ok.
    small = base.model_copy(update={"baseline": base.baseline.model_copy(update={"min_effect": 0.5})})
    assert states(evaluate_segment_rule(small, table(rows), history))["v1"] == "ok"
