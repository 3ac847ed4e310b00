"""Distribution functions against published values and exact computations."""

from __future__ import annotations

import itertools
import math
import random
import re
import statistics
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
    # The cdf from the standard library: Phi(x) = erfc(-x / sqrt 2) / 2. (Upper-tail probabilities near 1
    # cannot carry more digits than 1 - p does, so test up to 3.)
    for x in (-6.0, -5.0, -1.3, 0.2, 2.7):
        assert stats.normal_ppf(0.5 * math.erfc(-x / math.sqrt(2.0))) == pytest.approx(x, rel=1e-9)
    assert stats.normal_ppf(0.0) == -math.inf and stats.normal_ppf(1.0) == math.inf
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match=re.escape(f"normal_ppf needs a probability in [0, 1], got {bad!r}")):
            stats.normal_ppf(bad)


def _half_width_over_se(values: list[float], confidence: float) -> float:
    """The t critical value :func:`stats.mean_ci` used: half its interval over the standard error, where
    the standard error comes from the standard library (``statistics.stdev``), not from the module."""
    _, (low, high) = stats.mean_ci(values, confidence)
    return (high - low) / 2.0 / (statistics.stdev(values) / math.sqrt(len(values)))


@pytest.mark.parametrize(
    ("confidence", "df", "expected"),
    # Student t critical values t(0.5 + confidence / 2, df), as published in t tables (to ~1e-11).
    [
        (0.95, 1, 12.706204736174707),
        (0.95, 2, 4.302652729749464),
        (0.95, 10, 2.2281388519649385),
        (0.95, 30, 2.0422724563012373),
        (0.99, 5, 4.032142983557536),
        (0.8, 3, 1.6377443536962102),
    ],
)
def test_mean_ci_uses_the_published_t_quantile(confidence: float, df: int, expected: float) -> None:
    values = [float(i * i % 7) for i in range(df + 1)]  # n = df + 1 values, not all equal
    assert _half_width_over_se(values, confidence) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.98, 0.999])
def test_mean_ci_matches_the_closed_form_t_quantiles(confidence: float) -> None:
    p = 0.5 + confidence / 2.0
    # df = 1 is the Cauchy distribution: t_p = tan(pi (p - 1/2)).
    assert _half_width_over_se([0.0, 1.0], confidence) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
    # df = 2 has t_p = (2p - 1) / sqrt(2 p (1 - p)).
    expected = (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    assert _half_width_over_se([0.0, 1.0, 5.0], confidence) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score, no correction).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe(x: int, n: int, low: float, high: float) -> None:
    got_low, got_high = stats.wilson_interval(x, n)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(
    ("confidence", "z"),
    # Two-sided standard normal critical values z(0.5 + confidence / 2) from the normal table.
    [(0.9, 1.6448536269514722), (0.95, 1.959963984540054), (0.99, 2.5758293035489004)],
)
@pytest.mark.parametrize(("x", "n"), [(81, 263), (1, 29), (7.3, 12.6), (0.5, 1.5)])
def test_wilson_bounds_solve_the_score_equation(confidence: float, z: float, x: float, n: float) -> None:
    # The Wilson interval is the set of p with |x/n - p| <= z sqrt(p (1 - p) / n): both bounds are roots.
    low, high = stats.wilson_interval(x, n, confidence)
    for bound in (low, high):
        assert (x / n - bound) ** 2 == pytest.approx(z * z * bound * (1.0 - bound) / n, rel=1e-12)
    assert low < x / n < high


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


def _exact_ranks(cdf: list[Fraction], half_alpha: Fraction) -> tuple[int, int] | None:
    n = len(cdf) - 1
    lower = max((k + 1 for k in range(n) if cdf[k] <= half_alpha), default=0)
    upper = min(k + 1 for k in range(n + 1) if cdf[k] >= 1 - half_alpha)
    return (lower, upper) if lower >= 1 and upper <= n else None


@pytest.mark.parametrize("q", ["1/2", "1/10", "1/4", "9/10", "19/20"])
def test_order_statistic_ranks_match_exact_binomial_sums(q: str) -> None:
    # The definition in the docstring, evaluated in exact rational arithmetic for every n up to 150.
    p = Fraction(q)
    for n in range(1, 151):
        pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
        cdf = list(itertools.accumulate(pmf))
        for confidence in (0.9, 0.95, 0.99):
            expected = _exact_ranks(cdf, (1 - Fraction(str(confidence))) / 2)
            assert stats.order_statistic_ranks(n, float(p), confidence) == expected, (n, q, confidence)


def test_order_statistic_ranks_smallest_samples_and_textbook_median_table() -> None:
    # The smallest samples with a 95 % interval, as the docstring states: p90 needs 36, p95 72.
    assert stats.order_statistic_ranks(35, 0.9) is None and stats.order_statistic_ranks(36, 0.9) is not None
    assert stats.order_statistic_ranks(71, 0.95) is None and stats.order_statistic_ranks(72, 0.95) is not None
    # Median table: n = 10 -> (x(2), x(9)), n = 20 -> (x(6), x(15)) (e.g. Conover, Practical Nonparametric
    # Statistics, Table A3).
    assert stats.order_statistic_ranks(10, 0.5) == (2, 9)
    assert stats.order_statistic_ranks(20, 0.5) == (6, 15)
    # Large samples: the ranks sit near n q -/+ z sqrt(n q (1 - q)) and the search stays exact there.
    low, high = stats.order_statistic_ranks(1_000_000, 0.99)
    spread = 1.959963984540054 * math.sqrt(1_000_000 * 0.99 * 0.01)
    assert abs(low - (990_000 - spread)) <= 2 and abs(high - (990_000 + spread)) <= 2


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


def test_quantiles_are_each_quantile_and_may_reorder_the_callers_array_instead_of_copying() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(1, 5000, size=2001).astype(np.float64)
    qs = [0.5, 0.9, 0.95, 0.99]
    expected = [stats.quantile(values, q) for q in qs]
    kept = values.copy()
    assert stats.quantiles(values, qs) == expected
    assert np.array_equal(values, kept)  # without overwrite the values are left as they were
    assert stats.quantiles(values, qs, overwrite=True) == expected  # the same values, bit for bit
    assert not np.array_equal(values, kept) and np.array_equal(np.sort(values), np.sort(kept))  # reordered
    # Only a float64 array is reordered: anything else is converted, so the caller's values are untouched.
    ints = kept.astype(np.int64)
    assert stats.quantiles(ints, qs, overwrite=True) == expected and np.array_equal(ints, kept.astype(np.int64))
    assert all(math.isnan(x) for x in stats.quantiles(np.empty(0), qs, overwrite=True))


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


def test_weighted_mean_ci_hand_computed_with_fractional_df() -> None:
    # y = (0, 0, 0, 0, 1), w = (1, 1, 1, 1, 2): mean 2/6 = 1/3; Kish n_eff = 6^2 / 8 = 4.5 (df 3.5);
    # weighted variance sum w (y - mean)^2 / sum w = (4/9 + 8/9) / 6 = 2/9, times n_eff / (n_eff - 1) = 9/7
    # gives 2/7; the standard error is sqrt((2/7) / 4.5) = sqrt(4/63).
    mean, (low, high), n_eff = stats.weighted_mean_ci([0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 2.0])
    assert mean == pytest.approx(1 / 3, rel=1e-15) and n_eff == pytest.approx(4.5, rel=1e-15)
    assert (low + high) / 2 == pytest.approx(1 / 3, rel=1e-15)
    t = (high - low) / 2 / math.sqrt(4 / 63)
    # t(0.975, 3.5) lies between the table's t(0.975, 4) = 2.776445105 and t(0.975, 3) = 3.182446305; its
    # value 2.94008863798273 is where scipy (Boost) and a continued fraction of the incomplete beta
    # function agree to 1e-15.
    assert 2.776445105 < t < 3.182446305
    assert t == pytest.approx(2.94008863798273, rel=1e-12)


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


def test_fsum_is_math_fsum_without_a_list_of_floats() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=10_001) * 10.0 ** rng.integers(-8, 8, size=10_001)
    assert stats.fsum(values) == math.fsum(values.tolist())
    assert stats.fsum(values[::3]) == math.fsum(values[::3].tolist())  # a strided view
    assert stats.fsum(np.arange(5, dtype=np.int64)) == 10.0 and stats.fsum(np.empty(0)) == 0.0
    # The same whatever the order: what makes a mean independent of the order batches come in.
    assert stats.fsum(values[::-1]) == stats.fsum(values)


def test_exact_sum_batch_by_batch_is_fsum_of_every_value_in_any_order() -> None:
    rng = np.random.default_rng(11)
    integral = [rng.integers(0, 50_000, size=n).astype(float) for n in (0, 1, 17, 5_000)]
    # Past 2**53 the integer total is not a float: it is rounded once, at the end, as fsum rounds.
    large = [np.array([2.0**50, 2.0**50, 1.0, 3.0]) for _ in range(10)]
    fractional = [rng.random(300) * 1e-3, np.array([0.1, 0.2, 0.3]), np.array([2.0**62, 1.0])]
    for batches in (integral, large, integral + fractional, fractional + large + integral):
        for order in (batches, batches[::-1]):
            acc = stats.ExactSum()
            for batch in order:
                acc.add(batch)
            values = np.concatenate(order)
            assert acc.value() == math.fsum(values.tolist()) and acc.count == values.size
    # Integral values are summed as integers: nothing is kept, whatever the number of values.
    acc = stats.ExactSum()
    for start in range(0, 1_000_000, 100_000):
        acc.add(np.arange(start, start + 100_000, dtype=float))
    assert acc.value() == float(sum(range(1_000_000)))
    assert stats.ExactSum().value() == 0.0


def test_exact_sum_holds_fractional_values_of_any_magnitude_as_one_number() -> None:
    # Dollar amounts, subnormals, values near the float64 limits and cancelling signs: the sum is math.fsum's,
    # and the state stays one integer (the costs of a million traces are not kept).
    rng = np.random.default_rng(5)
    extremes = np.array([5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308, 0.1, -0.3] * 3)
    for values in (
        rng.random(20_000) * 0.004,
        rng.normal(size=5_000) * 10.0 ** rng.integers(-300, 300, size=5_000),
        extremes,
        np.concatenate([rng.random(100) * 1e-3, [1e16, -1e16]]),
    ):
        for batches in (np.array_split(values, 7), np.array_split(values[::-1], 3)):
            acc = stats.ExactSum()
            for batch in batches:
                acc.add(batch)
            assert acc.value() == math.fsum(values.tolist()) and acc.count == values.size
            assert isinstance(acc._units, int) and not acc._nonfinite
    # Non-finite values sum as math.fsum sums them; inf and -inf together have no sum.
    for values in ([1.0, math.inf], [math.nan, 1.0], [math.inf, math.inf, 2.0], [-math.inf, 0.25]):
        acc = stats.ExactSum()
        acc.add(np.array(values))
        expected = math.fsum(values)
        assert acc.value() == expected or (math.isnan(expected) and math.isnan(acc.value()))
    acc = stats.ExactSum()
    acc.add(np.array([math.inf]))
    acc.add(np.array([-math.inf]))
    with pytest.raises(ValueError):
        acc.value()


def test_quantile_ci_is_the_same_for_sorted_and_unsorted_values() -> None:
    values = np.random.default_rng(3).exponential(100.0, size=2_000)
    for q in (0.5, 0.9, 0.99):
        assert stats.quantile_ci(values, q) == stats.quantile_ci(np.sort(values), q)
