"""Distribution functions against published values and exact computations."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest

from genai_flywheel.metrics import stats


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.975, 1.959963984540054),
        (0.025, -1.959963984540054),
        (0.5, 0.0),
        (0.95, 1.6448536269514722),
        (0.999, 3.090232306167813),
        (1e-10, -6.361340902404056),
    ],
)
def test_normal_ppf_known_values(p: float, expected: float) -> None:
    assert stats.normal_ppf(p) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_normal_ppf_inverts_cdf_and_rejects_bad_probabilities() -> None:
    # (Upper-tail probabilities near 1 cannot carry more digits than 1 - p does, so test up to 3.)
    for x in (-6.0, -5.0, -1.3, 0.2, 2.7):
        assert stats.normal_ppf(stats.normal_cdf(x)) == pytest.approx(x, rel=1e-9)
    assert stats.normal_ppf(0.0) == -math.inf and stats.normal_ppf(1.0) == math.inf
    with pytest.raises(ValueError, match="1.5"):
        stats.normal_ppf(1.5)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706204736174707),
        (0.975, 2, 4.302652729749464),
        (0.975, 10, 2.2281388519649385),
        (0.975, 30, 2.0422724563012373),
        (0.995, 5, 4.032142983557536),
        (0.9, 3, 1.6377443536962102),
        (0.025, 10, -2.2281388519649385),
    ],
)
def test_student_t_ppf_known_values(p: float, df: float, expected: float) -> None:
    assert stats.student_t_ppf(p, df) == pytest.approx(expected, rel=1e-9)


def test_student_t_cdf_and_limits() -> None:
    assert stats.student_t_cdf(0.0, 7) == 0.5
    assert stats.student_t_cdf(2.2281388519649385, 10) == pytest.approx(0.975, abs=1e-12)
    # df = 1 is the Cauchy distribution: cdf(t) = 1/2 + atan(t)/pi.
    assert stats.student_t_cdf(3.0, 1) == pytest.approx(0.5 + math.atan(3.0) / math.pi, abs=1e-12)
    # Fractional df (a Kish effective n - 1) lies between its integer neighbours.
    assert stats.student_t_ppf(0.975, 10) > stats.student_t_ppf(0.975, 10.5) > stats.student_t_ppf(0.975, 11)
    assert stats.student_t_ppf(0.975, 1e9) == pytest.approx(stats.normal_ppf(0.975), rel=1e-9)


def test_betainc_identities() -> None:
    assert stats.betainc(3.5, 3.5, 0.5) == pytest.approx(0.5, abs=1e-14)
    assert stats.betainc(1.0, 1.0, 0.3) == pytest.approx(0.3, abs=1e-14)
    assert stats.betainc(4.0, 1.0, 0.7) == pytest.approx(0.7**4, abs=1e-14)
    assert stats.betainc(2.0, 5.0, 0.0) == 0.0 and stats.betainc(2.0, 5.0, 1.0) == 1.0


def _exact_binom_cdf(k: int, n: int, p: Fraction) -> float:
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)))


@pytest.mark.parametrize(("k", "n", "p"), [(3, 10, "1/2"), (5, 20, "3/10"), (0, 7, "1/10"), (45, 100, "1/2")])
def test_binom_cdf_matches_exact_sum(k: int, n: int, p: str) -> None:
    frac = Fraction(p)
    assert stats.binom_cdf(k, n, float(frac)) == pytest.approx(_exact_binom_cdf(k, n, frac), rel=1e-11)


def test_binom_cdf_edges() -> None:
    assert stats.binom_cdf(3, 10, 0.5) == pytest.approx(176 / 1024, rel=1e-12)
    assert stats.binom_cdf(-1, 10, 0.5) == 0.0 and stats.binom_cdf(10, 10, 0.5) == 1.0


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score, no correction).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe(x: int, n: int, low: float, high: float) -> None:
    got_low, got_high = stats.wilson_interval(x, n)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


def test_wilson_interval_edges() -> None:
    assert stats.wilson_interval(0, 0) == (None, None)
    assert stats.wilson_interval(0, 20)[0] == 0.0
    assert stats.wilson_interval(20, 20)[1] == 1.0
    # Fractional (effective) n is accepted and narrows with more information.
    narrow, wide = stats.wilson_interval(37.5, 75.0), stats.wilson_interval(5.0, 10.0)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]


def test_order_statistic_ranks_known_values() -> None:
    # The classic table: the 95 % CI of the median of 100 observations is (x(40), x(61)).
    assert stats.order_statistic_ranks(100, 0.5) == (40, 61)
    assert stats.order_statistic_ranks(6, 0.5) == (1, 6)
    assert stats.order_statistic_ranks(5, 0.5) is None  # 2 * 0.5**5 > 0.05
    assert stats.order_statistic_ranks(367, 0.99) is None
    assert stats.order_statistic_ranks(368, 0.99) == (360, 368)
    assert stats.order_statistic_ranks(0, 0.5) is None


def test_quantile_ci_picks_order_statistics_and_covers() -> None:
    values = np.arange(1.0, 101.0)
    assert stats.quantile_ci(values[::-1], 0.5) == (40.0, 61.0)
    assert stats.quantile_ci([1.0, 2.0, 3.0], 0.5) == (None, None)
    # Coverage of the true median of Exp(1) (ln 2) over seeded samples is at least the nominal 95 %.
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(1000):
        low, high = stats.quantile_ci(rng.exponential(size=40), 0.5)
        hits += low <= math.log(2) <= high
    assert hits >= 940


def test_quantile_is_numpy_linear() -> None:
    assert stats.quantile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert math.isnan(stats.quantile([], 0.5))


def test_mean_ci_known_value() -> None:
    mean, (low, high) = stats.mean_ci(np.arange(1.0, 11.0))
    # t.interval(0.95, 9, loc=5.5, scale=sem([1..10])) = (3.3341494, 7.6658506)
    assert mean == 5.5
    assert low == pytest.approx(3.3341494, abs=1e-6) and high == pytest.approx(7.6658506, abs=1e-6)
    assert stats.mean_ci([4.0])[1] == (None, None)
    assert math.isnan(stats.mean_ci([])[0])


def test_kish_effective_n() -> None:
    assert stats.kish_effective_n([1, 1, 1, 1]) == pytest.approx(4.0)
    assert stats.kish_effective_n([5, 5, 5, 5]) == pytest.approx(4.0)
    assert stats.kish_effective_n([1, 3]) == pytest.approx(1.6)
    assert stats.kish_effective_n([]) == 0.0


def test_weighted_mean_ci() -> None:
    values = [random.Random(3).random() for _ in range(25)]
    plain = stats.mean_ci(values)
    mean, ci, n_eff = stats.weighted_mean_ci(values, [4.0] * 25)
    # Equal weights reduce to the ordinary t interval.
    assert mean == pytest.approx(plain[0]) and n_eff == pytest.approx(25.0)
    assert ci[0] == pytest.approx(plain[1][0]) and ci[1] == pytest.approx(plain[1][1])
    # A ratio estimator: the heavier value dominates, and unequal weights widen the interval.
    assert stats.weighted_mean_ci([0.0, 1.0], [1.0, 3.0])[0] == pytest.approx(0.75)
    skewed = stats.weighted_mean_ci(values, [1.0] * 20 + [10.0] * 5)
    assert skewed[2] < 25 and skewed[1][1] - skewed[1][0] > ci[1] - ci[0]
    assert stats.weighted_mean_ci([1.0, 0.0], [100.0, 1.0])[1] == (None, None)  # n_eff ~ 1.02
