"""Paired statistics against textbook values (reference values computed once with scipy 1.17)."""

from __future__ import annotations

import math

import pytest

from genai_flywheel.evaluation.stats import (
    LOSS,
    TIE,
    WIN,
    average_ranks,
    outcome,
    paired_stats,
    paired_t_interval,
    sign_test,
    wilcoxon_signed_rank,
)

# Darwin's Zea mays data (Fisher, The Design of Experiments): cross- minus self-fertilised heights, in
# eighths of an inch. The textbook signed-rank statistic is T = W- = 24 (W+ = 96), n = 15.
DARWIN = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
# Tied |d| values and zero differences: zeros dropped (Wilcoxon), ties share their average rank.
TIED = [1, 1, 1, -1, 2, 2, -2, 3, 3, 3, 0, 0, 4]


def test_wilcoxon_darwin_textbook() -> None:
    result = wilcoxon_signed_rank(DARWIN)
    assert result.n == 15
    assert result.w_plus == 96 and result.w_minus == 24
    # scipy.stats.wilcoxon(DARWIN, correction=True, method="approx").pvalue
    assert result.p_value == pytest.approx(0.043772323763041174, rel=1e-9)
    assert result.z == pytest.approx(2.01626451157708, rel=1e-9)  # positive: positive differences dominate


def test_wilcoxon_without_continuity_correction() -> None:
    result = wilcoxon_signed_rank(DARWIN, correction=False)
    # scipy.stats.wilcoxon(DARWIN, correction=False, method="approx").pvalue
    assert result.p_value == pytest.approx(0.04088813291185591, rel=1e-9)


def test_wilcoxon_tie_correction_and_zeros() -> None:
    result = wilcoxon_signed_rank(TIED)
    assert result.n == 11  # two zeros dropped
    assert result.w_minus == 8.5
    # scipy.stats.wilcoxon(TIED, zero_method="wilcox", correction=True/False, method="approx").pvalue
    assert result.p_value == pytest.approx(0.031311271341603136, rel=1e-9)
    assert wilcoxon_signed_rank(TIED, correction=False).p_value == pytest.approx(0.027952641457061594, rel=1e-9)


def test_wilcoxon_is_symmetric_in_sign() -> None:
    plus = wilcoxon_signed_rank(DARWIN)
    minus = wilcoxon_signed_rank([-d for d in DARWIN])
    assert minus.p_value == pytest.approx(plus.p_value)
    assert minus.z == pytest.approx(-plus.z)


def test_wilcoxon_all_ties_gives_no_evidence() -> None:
    result = wilcoxon_signed_rank([0.0, 1e-9, -1e-9])
    assert result.n == 0 and result.p_value == 1.0 and result.z == 0.0


def test_float_noise_ranks_as_a_tie() -> None:
    # 0.1 + 0.2 != 0.3 in floating point; both must share one rank.
    result = wilcoxon_signed_rank([0.1 + 0.2, -0.3, 0.5])
    assert result.w_plus == 1.5 + 3 and result.w_minus == 1.5


def test_average_ranks() -> None:
    ranks, groups = average_ranks([3.0, 1.0, 3.0, 2.0])
    assert ranks == [3.5, 1.0, 3.5, 2.0]
    assert sorted(groups) == [1, 1, 2]


def test_paired_t_interval_darwin() -> None:
    mean, low, high = paired_t_interval(DARWIN)
    assert mean == pytest.approx(20.933333333333334)
    # mean -/+ t(0.975, 14) * sd / sqrt(n), scipy.stats.t.ppf
    assert low == pytest.approx(0.031193318392979563, rel=1e-6)
    assert high == pytest.approx(41.83547334827369, rel=1e-9)


def test_paired_t_interval_needs_two_values() -> None:
    assert paired_t_interval([]) == (None, None, None)
    assert paired_t_interval([0.4]) == (0.4, None, None)


def test_outcome_uses_epsilon() -> None:
    assert outcome(0.2) == WIN
    assert outcome(-0.2) == LOSS
    assert outcome(1e-9) == TIE
    assert outcome(0.05, epsilon=0.1) == TIE
    with pytest.raises(ValueError, match="epsilon"):
        outcome(0.1, epsilon=-1)


def test_sign_test_exact() -> None:
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024)
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 0) == 1.0


def test_paired_stats_counts_and_direction() -> None:
    candidate = [0.9, 0.8, 0.5, 0.7, 0.2]
    production = [0.1, 0.2, 0.5, 0.9, 0.2]
    stats = paired_stats(candidate, production)
    assert (stats.wins, stats.losses, stats.ties) == (2, 1, 2)
    assert stats.mean_diff == pytest.approx((0.8 + 0.6 + 0 - 0.2 + 0) / 5)
    assert stats.improvement == pytest.approx(stats.mean_diff)
    assert stats.ci_low < stats.improvement < stats.ci_high
    assert stats.wilcoxon_n == 3
    # The same numbers for a lower-is-better scorer flip wins and losses and the improvement's sign.
    lower = paired_stats(candidate, production, higher_is_better=False)
    assert (lower.wins, lower.losses, lower.ties) == (1, 2, 2)
    assert lower.improvement == pytest.approx(-stats.improvement)
    assert lower.mean_diff == pytest.approx(stats.mean_diff)
    assert lower.p_value == pytest.approx(stats.p_value)


def test_paired_stats_significant_improvement() -> None:
    production = [0.2] * 12
    candidate = [0.2 + 0.05 * (i + 1) for i in range(12)]
    stats = paired_stats(candidate, production)
    assert stats.wins == 12 and stats.p_value < 0.01 and stats.ci_low > 0


def test_paired_stats_empty_and_mismatched() -> None:
    empty = paired_stats([], [])
    assert empty.n == 0 and empty.p_value is None and empty.improvement is None
    assert all(v is None or not (isinstance(v, float) and math.isnan(v)) for v in empty.to_dict().values())
    with pytest.raises(ValueError, match="equal lengths"):
        paired_stats([1.0], [1.0, 2.0])
