"""Paired statistics of a development evaluation: candidate vs production on the same records.

The tests themselves come from ``scipy.stats``; what is ours is how a pair becomes evidence:

* Outcome of one record: ``win`` / ``loss`` / ``tie`` of the *improvement* (candidate minus production,
  sign-flipped for scorers where lower is better); ``|improvement| <= epsilon`` is a tie, so float noise of
  a judge or a 0.1 + 0.2 rounding never counts as a win.
* Mean improvement with a 95 % **paired t interval** (over every pair, ties included).
* Significance: the **Wilcoxon signed-rank test**, two-sided, normal approximation with the tie correction of
  the variance and a continuity correction; tied pairs (as above) are dropped first (Wilcoxon's original
  method) and ``|d|`` values equal to 12 decimals share one rank. It is
  ``scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True, method="approx")`` on those ranks.
  The normal approximation is the usual choice from about n >= 10 non-tied pairs; below that the p-value is
  only indicative (a gate on it should then also require ``min_improvement``).
* Also reported: the exact two-sided **sign test** p-value (wins vs losses under Binomial(n, 1/2),
  ``scipy.stats.binomtest``), which needs no assumption about the distribution of the differences.

scipy is imported inside the functions (``scipy.stats`` takes about a second to import).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from genai_flywheel.metrics.stats import CONFIDENCE, mean_ci

DEFAULT_EPSILON = 1e-6
WIN, LOSS, TIE = "win", "loss", "tie"
# |d| values closer than this are one rank group: scores like 0.1 + 0.2 and 0.3 must tie for ranking.
_RANK_DIGITS = 12


def outcome(improvement: float, epsilon: float = DEFAULT_EPSILON) -> str:
    """``win`` / ``loss`` / ``tie`` of one oriented difference (positive = candidate better)."""
    if epsilon < 0 or math.isnan(epsilon):
        raise ValueError(f"tie epsilon must be >= 0, got {epsilon!r}")
    if improvement > epsilon:
        return WIN
    if improvement < -epsilon:
        return LOSS
    return TIE


@dataclass(frozen=True)
class WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test (normal approximation)."""

    n: int  # non-tied pairs used
    w_plus: float  # rank sum of positive differences
    w_minus: float  # rank sum of negative differences
    z: float  # signed: positive when positive differences dominate
    p_value: float


def wilcoxon_signed_rank(
    differences: Sequence[float], *, epsilon: float = DEFAULT_EPSILON, correction: bool = True
) -> WilcoxonResult:
    """Wilcoxon signed-rank test of ``differences`` against a zero median (see the module docstring).

    With no non-tied difference there is no evidence either way: ``p_value`` is 1.0 and ``z`` 0.
    """
    from scipy.stats import rankdata, wilcoxon

    kept = [float(d) for d in differences if outcome(float(d), epsilon) != TIE]
    n = len(kept)
    if n == 0:
        return WilcoxonResult(n=0, w_plus=0.0, w_minus=0.0, z=0.0, p_value=1.0)
    ranks = rankdata([round(abs(d), _RANK_DIGITS) for d in kept]).tolist()
    w_plus = math.fsum(r for r, d in zip(ranks, kept, strict=True) if d > 0)
    w_minus = math.fsum(r for r, d in zip(ranks, kept, strict=True) if d < 0)
    # scipy ranks |x| itself: handing it our signed ranks rather than the raw differences makes it use our
    # tie groups, and keeps a difference that rounds to 0 (possible with epsilon 0) in the test.
    signed_ranks = [math.copysign(r, d) for r, d in zip(ranks, kept, strict=True)]
    test = wilcoxon(signed_ranks, zero_method="wilcox", correction=correction, method="approx")
    # scipy's z is that of min(W+, W-), never positive; ours points the way the differences lean.
    z_abs = abs(float(test.zstatistic))
    z = z_abs if w_plus >= n * (n + 1) / 4.0 else -z_abs
    return WilcoxonResult(n=n, w_plus=w_plus, w_minus=w_minus, z=z, p_value=float(test.pvalue))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign-test p-value of ``wins`` vs ``losses`` (ties excluded); 1.0 when both are 0."""
    from scipy.stats import binomtest

    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def paired_t_interval(
    differences: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) of the paired differences with a Student t interval; bounds are None for n < 2."""
    if not differences:
        return None, None, None
    mean, (low, high) = mean_ci([float(d) for d in differences], confidence)
    return mean, low, high


@dataclass(frozen=True)
class PairedStats:
    """Candidate vs production on the records where both have a numeric score."""

    n: int
    wins: int
    losses: int
    ties: int
    candidate_mean: float | None
    production_mean: float | None
    mean_diff: float | None  # candidate - production, in the scorer's own direction
    improvement: float | None  # mean_diff oriented so that positive means the candidate is better
    ci_low: float | None  # paired t interval of ``improvement``
    ci_high: float | None
    p_value: float | None  # Wilcoxon signed-rank, two-sided
    wilcoxon_n: int
    wilcoxon_w_plus: float | None
    z: float | None
    sign_test_p: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (no NaN: missing values are None)."""
        return asdict(self)


def paired_stats(
    candidate: Sequence[float],
    production: Sequence[float],
    *,
    higher_is_better: bool = True,
    epsilon: float = DEFAULT_EPSILON,
    confidence: float = CONFIDENCE,
) -> PairedStats:
    """Paired comparison of two equally long score lists (same records, same order)."""
    if len(candidate) != len(production):
        raise ValueError(f"paired scores need equal lengths: {len(candidate)} candidate, {len(production)} production")
    n = len(candidate)
    if n == 0:
        return PairedStats(0, 0, 0, 0, None, None, None, None, None, None, None, 0, None, None, None)
    sign = 1.0 if higher_is_better else -1.0
    diffs = [float(c) - float(p) for c, p in zip(candidate, production, strict=True)]
    improvements = [sign * d for d in diffs]
    outcomes = [outcome(d, epsilon) for d in improvements]
    wins, losses, ties = outcomes.count(WIN), outcomes.count(LOSS), outcomes.count(TIE)
    mean_imp, low, high = paired_t_interval(improvements, confidence)
    test = wilcoxon_signed_rank(improvements, epsilon=epsilon)
    return PairedStats(
        n=n,
        wins=wins,
        losses=losses,
        ties=ties,
        candidate_mean=math.fsum(float(c) for c in candidate) / n,
        production_mean=math.fsum(float(p) for p in production) / n,
        mean_diff=math.fsum(diffs) / n,
        improvement=mean_imp,
        ci_low=low,
        ci_high=high,
        p_value=test.p_value,
        wilcoxon_n=test.n,
        wilcoxon_w_plus=test.w_plus,
        z=test.z,
        sign_test_p=sign_test(wins, losses),
    )
