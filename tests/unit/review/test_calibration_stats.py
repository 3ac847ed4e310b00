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
