"""Paired statistics against textbook values, hand computations and exact sums."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import pytest

from genai_flywheel.evaluation.stats import (
    LOSS,
    TIE,
    WIN,
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


def _two_sided_normal_p(z: float) -> float:
    """2 (1 - Phi(|z|)) by the complementary error function."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def test_wilcoxon_darwin_textbook() -> None:
    result = wilcoxon_signed_rank(DARWIN)
    assert result.n == 15
    assert result.w_plus == 96 and result.w_minus == 24
    # By hand: no tied |d|, so E[W+] = 15 * 16 / 4 = 60 and Var[W+] = 15 * 16 * 31 / 24 = 310;
    # z = (96 - 60 - 0.5) / sqrt(310) with the continuity correction.
    z = 35.5 / math.sqrt(310.0)
    assert result.z == pytest.approx(z, rel=1e-12)  # positive: positive differences dominate
    assert result.p_value == pytest.approx(_two_sided_normal_p(z), rel=1e-12)
    assert result.p_value == pytest.approx(0.043772323763041174, rel=1e-9)
    assert result.z == pytest.approx(2.01626451157708, rel=1e-9)


def test_wilcoxon_without_continuity_correction() -> None:
    result = wilcoxon_signed_rank(DARWIN, correction=False)
    assert result.z == pytest.approx(36.0 / math.sqrt(310.0), rel=1e-12)
    assert result.p_value == pytest.approx(_two_sided_normal_p(36.0 / math.sqrt(310.0)), rel=1e-12)
    assert result.p_value == pytest.approx(0.04088813291185591, rel=1e-9)


def test_wilcoxon_tie_correction_and_zeros() -> None:
    result = wilcoxon_signed_rank(TIED)
    assert result.n == 11  # two zeros dropped
    # By hand: |d| = 1 (x4) share ranks 1-4 (2.5 each), 2 (x3) ranks 5-7 (6), 3 (x3) ranks 8-10 (9), 4 rank 11.
    # W- = 2.5 + 6 = 8.5, W+ = 66 - 8.5 = 57.5; E[W+] = 11 * 12 / 4 = 33;
    # Var[W+] = 11 * 12 * 23 / 24 - ((4^3 - 4) + 2 * (3^3 - 3)) / 48 = 126.5 - 2.25 = 124.25.
    assert result.w_minus == 8.5 and result.w_plus == 57.5
    assert result.z == pytest.approx(24.0 / math.sqrt(124.25), rel=1e-12)
    assert result.p_value == pytest.approx(_two_sided_normal_p(24.0 / math.sqrt(124.25)), rel=1e-12)
    assert result.p_value == pytest.approx(0.031311271341603136, rel=1e-9)
    uncorrected = wilcoxon_signed_rank(TIED, correction=False)
    assert uncorrected.p_value == pytest.approx(_two_sided_normal_p(24.5 / math.sqrt(124.25)), rel=1e-12)
    assert uncorrected.p_value == pytest.approx(0.027952641457061594, rel=1e-9)


def test_wilcoxon_continuity_correction_stops_at_zero() -> None:
    # W+ = 1 + 2 = 3 = E[W+] = 3 * 4 / 4: no evidence either way, corrected or not.
    for correction in (True, False):
        result = wilcoxon_signed_rank([1.0, 2.0, -3.0], correction=correction)
        assert result.z == 0.0 and result.p_value == 1.0
    # |d| ranks 1.5, 1.5, 3, 4: W+ = 1.5 + 4 = 5.5 against E = 5. The correction uses the 0.5 up (z = 0)
    # rather than overshooting to -0.5; without it z = 0.5 / sqrt(4 * 5 * 9 / 24 - (2^3 - 2) / 48).
    result = wilcoxon_signed_rank([1.0, -1.0, -2.0, 3.0])
    assert result.w_plus == 5.5 and result.z == 0.0 and result.p_value == 1.0
    uncorrected = wilcoxon_signed_rank([1.0, -1.0, -2.0, 3.0], correction=False)
    assert uncorrected.z == pytest.approx(0.5 / math.sqrt(7.375), rel=1e-12)
    # Two tie groups: ranks 1.5, 1.5, 3.5, 3.5, 5; W+ = 10, E = 7.5, Var = 13.75 - 2 * (2^3 - 2) / 48 = 13.5.
    result = wilcoxon_signed_rank([1.0, -1.0, 2.0, -2.0, 3.0])
    assert result.w_plus == 10.0 and result.z == pytest.approx(2.0 / math.sqrt(13.5), rel=1e-12)


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


def test_zero_epsilon_keeps_float_noise_in_the_test() -> None:
    # With epsilon 0 a difference of 5.6e-17 is a win: it stays in the test with the smallest rank even
    # though |d| rounds to 0 for ranking. Ranks 1, 2, 3, 4: W+ = 1 + 2 + 3 = 6 against E = 5, Var = 7.5.
    noise = 0.1 + 0.2 - 0.3
    assert noise > 0
    result = wilcoxon_signed_rank([noise, 1.0, 2.0, -3.0, 0.0], epsilon=0.0)
    assert result.n == 4 and result.w_plus == 6.0 and result.w_minus == 4.0
    assert result.z == pytest.approx(0.5 / math.sqrt(7.5), rel=1e-12)
    assert wilcoxon_signed_rank([noise, 1.0, 2.0, -3.0, 0.0]).n == 3  # the default epsilon calls it a tie


def test_paired_t_interval_darwin() -> None:
    mean, low, high = paired_t_interval(DARWIN)
    assert mean == pytest.approx(20.933333333333334)
    # mean -/+ t(0.975, 14) * sd / sqrt(n), with the table's t(0.975, 14) = 2.1447866879 and the standard
    # library's sample standard deviation.
    half = 2.1447866879 * statistics.stdev(DARWIN) / math.sqrt(15)
    assert low == pytest.approx(314 / 15 - half, rel=1e-6) and high == pytest.approx(314 / 15 + half, rel=1e-9)
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
    # 12 wins, 3 losses: 2 * (C(15,0) + C(15,1) + C(15,2) + C(15,3)) / 2^15 = 2 * 576 / 32768.
    assert sign_test(12, 3) == pytest.approx(1152 / 32768, rel=1e-12)
    assert sign_test(0, 6) == pytest.approx(2 / 64, rel=1e-12)
    assert sign_test(1, 0) == 1.0  # one win alone is no evidence: 2 * 1/2 = 1


def test_sign_test_matches_exact_binomial_sums() -> None:
    # min(1, 2 P(B <= min(wins, losses))) for B ~ Binomial(n, 1/2), in exact arithmetic.
    for n in range(1, 61):
        for wins in range(n + 1):
            k = min(wins, n - wins)
            expected = min(Fraction(1), 2 * Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n))
            assert sign_test(wins, n - wins) == pytest.approx(float(expected), rel=1e-12, abs=0), (wins, n)


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
