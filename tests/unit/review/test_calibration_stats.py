from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from genai_flywheel.review.calibration import accuracy, cohen_kappa, correlation, metric_name


def test_accuracy_is_the_share_with_a_wilson_interval() -> None:
    stat = accuracy([True] * 8 + [False] * 2)
    assert stat.value == 0.8 and stat.n == 10
    assert stat.ci_low == pytest.approx(0.4902, abs=1e-3) and stat.ci_high == pytest.approx(0.9433, abs=1e-3)
    assert accuracy([]).value is None


def test_kappa_matches_the_textbook_example() -> None:
    # 50 items: both "yes" 20, both "no" 15, a yes/b no 5, a no/b yes 10 -> po 0.7, pe 0.5, kappa 0.4.
    a = ["yes"] * 20 + ["no"] * 15 + ["yes"] * 5 + ["no"] * 10
    b = ["yes"] * 20 + ["no"] * 15 + ["no"] * 5 + ["yes"] * 10
    stat = cohen_kappa(a, b)
    assert stat.value == pytest.approx(0.4)
    se = math.sqrt(0.7 * 0.3 / (50 * 0.25))
    assert stat.ci_low == pytest.approx(0.4 - 1.959964 * se, abs=1e-6)
    assert stat.ci_high == pytest.approx(0.4 + 1.959964 * se, abs=1e-6)


def test_kappa_edge_cases() -> None:
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]).value == pytest.approx(1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]).value is None  # one label only: chance agreement is 1
    assert cohen_kappa(["a"], ["b"]).value is None
    opposite = cohen_kappa(["a", "b"] * 10, ["b", "a"] * 10)
    assert opposite.value == pytest.approx(-1.0) and opposite.ci_low >= -1.0
    with pytest.raises(ValueError, match="paired"):
        cohen_kappa(["a"], ["a", "b"])


def test_spearman_with_a_fisher_z_interval_that_covers_the_truth() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    stat = correlation(x.tolist(), y.tolist())
    assert stat.value == pytest.approx(float(spearmanr(x, y)[0]))
    assert stat.ci_low < stat.value < stat.ci_high
    assert 0.55 < stat.ci_low and stat.ci_high < 0.8  # the population rho is about 0.68
    pearson = correlation(x.tolist(), y.tolist(), method="pearson")
    half = 1.959964 / math.sqrt(197)
    assert pearson.ci_low == pytest.approx(math.tanh(math.atanh(pearson.value) - half), abs=1e-6)


def test_correlation_is_undefined_for_few_pairs_or_a_constant() -> None:
    assert correlation([1, 2, 3], [1, 2, 3]).value is None
    assert correlation([1, 1, 1, 1], [1, 2, 3, 4]).value is None
    with pytest.raises(ValueError, match="method"):
        correlation([1, 2, 3, 4], [1, 2, 3, 4], method="kendall")


def test_metric_names() -> None:
    assert metric_name("relevance", "kappa") == "calibration.relevance.kappa"
    assert metric_name("relevance", "agreement", "_rolling") == "calibration.relevance.agreement_rolling"


Z95 = 1.959963985


def _wilson(p: float, n: float) -> tuple[float, float]:
    """The Wilson score interval written out."""
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def test_weighted_agreement_is_the_weighted_share_with_a_wilson_interval_on_kish_n() -> None:
    stat = accuracy([True, True, False, True], weights=[1, 2, 3, 4])
    # share (1 + 2 + 4) / 10 = 0.7; Kish n = 10^2 / (1 + 4 + 9 + 16) = 3.333...
    assert stat.value == pytest.approx(0.7) and stat.n == 4
    low, high = _wilson(0.7, 10 / 3)
    assert (stat.ci_low, stat.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert (round(stat.ci_low, 4), round(stat.ci_high, 4)) == (0.2409, 0.9449)
    # equal weights give the unweighted statistic
    plain, doubled = accuracy([True] * 8 + [False] * 2), accuracy([True] * 8 + [False] * 2, weights=[2.0] * 10)
    assert (doubled.value, doubled.ci_low, doubled.ci_high) == pytest.approx((plain.value, plain.ci_low, plain.ci_high))


def test_weighted_kappa_comes_from_the_weighted_confusion_matrix() -> None:
    # weights: both yes 3, both no 1, scorer yes/reviewer no 1, scorer no/reviewer yes 1 -> W = 6
    # po = 4/6; marginals yes 4/6, no 2/6 on both sides -> pe = 20/36; kappa = (24 - 20) / (36 - 20) = 0.25
    # Kish n = 36 / (9 + 1 + 1 + 1) = 3
    stat = cohen_kappa(["yes", "no", "yes", "no"], ["yes", "no", "no", "yes"], weights=[3, 1, 1, 1])
    assert stat.value == pytest.approx(0.25) and stat.n == 4
    se = math.sqrt((4 / 6) * (2 / 6) / (3 * (16 / 36) ** 2))
    assert stat.ci_low == pytest.approx(max(-1.0, 0.25 - Z95 * se))
    assert stat.ci_high == pytest.approx(min(1.0, 0.25 + Z95 * se))
    # integer weights count like repeated pairs for the estimate
    repeated = cohen_kappa(["yes"] * 3 + ["no", "yes", "no"], ["yes"] * 3 + ["no", "no", "yes"])
    assert repeated.value == pytest.approx(stat.value)
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa(["a", "b"], ["a", "b"], weights=[1.0])


def test_weighted_correlation_is_the_weighted_pearson_of_the_ranks() -> None:
    x, y, w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 1.0, 4.0, 3.0, 6.0, 5.0], [1.0, 1.0, 1.0, 1.0, 4.0, 4.0]
    stat = correlation(x, y, weights=w)
    # hand computation: the values are their own ranks; weighted means, covariance and variances
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sum(w)
    my = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    sxy = sum(wi * (xi - mx) * (yi - my) for wi, xi, yi in zip(w, x, y, strict=True))
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, x, strict=True))
    syy = sum(wi * (yi - my) ** 2 for wi, yi in zip(w, y, strict=True))
    rho = sxy / math.sqrt(sxx * syy)
    assert stat.value == pytest.approx(rho) and stat.n == 6
    n_eff = sum(w) ** 2 / sum(wi * wi for wi in w)  # 144 / 36 = 4
    half = Z95 * math.sqrt(1 + rho * rho / 2) / math.sqrt(n_eff - 3)
    assert stat.ci_low == pytest.approx(math.tanh(math.atanh(rho) - half))
    # equal weights: exactly Spearman's rho with the unweighted interval
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=30), rng.normal(size=30)
    equal, plain = correlation(a.tolist(), b.tolist(), weights=[0.5] * 30), correlation(a.tolist(), b.tolist())
    assert (equal.value, equal.ci_low, equal.ci_high) == pytest.approx((plain.value, plain.ci_low, plain.ci_high))
    assert correlation(x, y, weights=[1, 1, 1, 1, 10, 10]).value is None  # Kish n 484 / 204 < 4
