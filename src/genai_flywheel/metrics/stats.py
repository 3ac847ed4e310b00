"""The interval estimates the metrics report, on top of ``scipy.stats``.

The distributions themselves (normal, Student t, binomial) come from scipy; what is ours is how the
metrics use them:

* :func:`fsum`, :class:`ExactSum`: correctly rounded sums, whole or batch by batch.
* :func:`normal_ppf`: scipy's standard normal quantile, refusing a probability outside [0, 1].
* :func:`wilson_interval`: the Wilson score interval of a proportion; ``n`` may be fractional (a Kish
  effective sample size), which scipy's ``binomtest(...).proportion_ci`` does not accept.
* :func:`quantile`, :func:`quantile_ci`: a sample percentile and its distribution-free confidence interval
  from binomial order statistics (``None`` bounds when the sample is too small for the requested level).
* :func:`mean_ci`, :func:`weighted_mean_ci`, :func:`kish_effective_n`: Student t intervals of a mean; the
  weighted one is the ratio estimator with the weighted variance over the Kish effective sample size.
* :func:`weighted_quantile_ci`: the quantile of a weighted sample with Woodruff's interval.

Every function is deterministic and returns ``nan`` (estimates) or ``None`` (interval bounds) rather than
raising when there is too little data, so an empty window never crashes a task. numpy and scipy are
imported inside the functions: this module is imported with the metrics package, which the Airflow UI
plugin loads, and ``scipy.stats`` alone takes about a second to import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Confidence level of every interval the metrics report.
CONFIDENCE = 0.95

Interval = tuple[float | None, float | None]


def normal_ppf(p: float) -> float:
    """Standard normal quantile (``scipy.stats.norm.ppf``): the ``x`` with P(Z <= x) = ``p``; ``±inf`` at 0
    and 1. A probability outside [0, 1] is an error rather than scipy's ``nan``."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"normal_ppf needs a probability in [0, 1], got {p!r}")
    from scipy.stats import norm

    return float(norm.ppf(p))


def _t_quantile(confidence: float, df: float) -> float:
    """The two-sided Student t critical value: the ``0.5 + confidence / 2`` quantile with ``df`` (may be
    fractional) degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2.0, df))


def fsum(values: np.ndarray | Sequence[float]) -> float:
    """The correctly rounded sum of ``values`` (``math.fsum``: the same whatever their order), read straight
    from a float64 buffer: no list of Python floats (32 bytes a value, 32 MB per million) is built."""
    import numpy as np

    arr = np.ascontiguousarray(values, dtype=np.float64)
    return math.fsum(memoryview(arr.reshape(-1))) if arr.size else 0.0


class ExactSum:
    """The correctly rounded sum of values added batch by batch: what :func:`fsum` gives over all of them.

    Every finite float64 is an integer multiple of 2^-1126 (53 significant bits above the smallest exponent),
    so the running total is held exactly as one Python integer in those units, whatever the window's size
    and whatever the values (token counts, milliseconds, dollar amounts); it is rounded once, by
    :meth:`value`. Non-finite values are kept apart and summed as ``math.fsum`` sums them. The result does not
    depend on the order of the batches.
    """

    # float64 = mantissa * 2**exponent with 0.5 <= |mantissa| < 1 and exponent >= -1073; the mantissa times
    # 2**53 is an integer, so a value is that integer times 2**(exponent + 1073) units of 2**-1126.
    _UNIT_EXPONENT = 1126
    # Each mantissa is split into 27-bit halves summed in float64 per exponent: exact for up to 2**25 values.
    _CHUNK = 1 << 25

    def __init__(self) -> None:
        self.count = 0
        self._units = 0  # the exact sum of the finite values, in units of 2**-1126
        self._nonfinite: dict[str, float] = {}  # one of each kind met (inf, -inf, nan): inf + inf is inf

    def add(self, values: np.ndarray | Sequence[float]) -> None:
        """Add a batch of values (float64; NaN is a value here: filter missing ones out first)."""
        import numpy as np

        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if not arr.size:
            return
        self.count += int(arr.size)
        finite = np.isfinite(arr)
        if not finite.all():
            self._nonfinite.update((repr(v), v) for v in np.unique(arr[~finite]).tolist())
            arr = arr[finite]
        for start in range(0, arr.size, self._CHUNK):
            self._units += self._units_of(arr[start : start + self._CHUNK])

    @classmethod
    def _units_of(cls, arr: np.ndarray) -> int:
        import numpy as np

        mantissa, exponent = np.frexp(arr)
        integer = (mantissa * 2.0**53).astype(np.int64)  # exact: the mantissa holds 53 bits
        high, low = integer >> 27, integer & ((1 << 27) - 1)  # integer == high * 2**27 + low, low >= 0
        shifts, group = np.unique(exponent.astype(np.int64) + (cls._UNIT_EXPONENT - 53), return_inverse=True)
        # Per exponent, the halves' sums stay below 2**53 in float64 (at most 2**25 values of < 2**27): exact.
        high_sums = np.bincount(group, weights=high, minlength=shifts.size)
        low_sums = np.bincount(group, weights=low, minlength=shifts.size)
        total = 0
        for shift, high_sum, low_sum in zip(shifts.tolist(), high_sums.tolist(), low_sums.tolist(), strict=True):
            total += ((int(high_sum) << 27) + int(low_sum)) << shift
        return total

    def value(self) -> float:
        """The correctly rounded sum of every value added (0.0 for none)."""
        # Python divides integers with correct rounding: the exact total, rounded once, as math.fsum rounds.
        finite = self._units / (1 << self._UNIT_EXPONENT) if self._units else 0.0
        return math.fsum([finite, *self._nonfinite.values()]) if self._nonfinite else finite


def wilson_interval(successes: float, n: float, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion ``successes / n``; ``(None, None)`` when ``n <= 0``.

    ``n`` may be fractional (a Kish effective sample size), in which case ``successes`` is ``p * n``.
    """
    if n <= 0 or math.isnan(n):
        return None, None
    if not 0.0 <= successes <= n * (1.0 + 1e-12):
        raise ValueError(f"wilson_interval needs 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    z = normal_ppf(0.5 + confidence / 2.0)
    p = min(successes / n, 1.0)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    # The closed form misses 0 and 1 by a rounding error at p = 0 or 1, and can leave [0, 1] by one.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def quantile(values: np.ndarray | Sequence[float], q: float) -> float:
    """The ``q`` sample quantile (linear interpolation, numpy's default); ``nan`` for no values."""
    return quantiles(values, (q,))[0]


def quantiles(values: np.ndarray | Sequence[float], qs: Sequence[float], *, overwrite: bool = False) -> list[float]:
    """The ``qs`` sample quantiles of ``values``, as :func:`quantile` gives each; ``nan`` for no values.

    With ``overwrite`` a float64 array is reordered in place instead of copied (numpy partitions it): for a
    caller that owns the values, e.g. a window's latencies, and sorts them next. The values found are the
    same either way: a quantile depends on the values, not on their order.
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return [math.nan] * len(qs)
    found = np.quantile(arr, list(qs), overwrite_input=overwrite and arr is values)
    return [float(x) for x in found]


def order_statistic_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` with P(X_(l) <= xi_q < X_(u)) >= ``confidence``, split evenly by tail.

    ``l`` is the largest rank with P(B <= l - 1) <= alpha/2 and ``u`` the smallest with P(B >= u) <= alpha/2,
    where B ~ Binomial(n, q). ``None`` when no such ranks exist within 1..n (the sample is too small: e.g.
    at 95 % the median needs n >= 6, p90 n >= 36, p95 n >= 72 and p99 n >= 368).
    """
    from scipy.stats import binom

    if n <= 0 or not 0.0 < q < 1.0:
        return None
    half_alpha = (1.0 - confidence) / 2.0
    # ppf(a) is the smallest k with F(k) >= a. l - 1 is the largest k with F(k) <= alpha/2: ppf's k itself
    # when F hits alpha/2 exactly, else the one below it. (Unfrozen calls: freezing costs a millisecond.)
    k = float(binom.ppf(half_alpha, n, q))
    lower_rank = int(k) + (1 if binom.cdf(k, n, q) <= half_alpha else 0)
    # u - 1 is the smallest k with F(k) >= 1 - alpha/2, i.e. P(B >= u) <= alpha/2.
    upper_rank = int(binom.ppf(1.0 - half_alpha, n, q)) + 1
    if lower_rank < 1 or upper_rank > n:
        return None
    return lower_rank, upper_rank


def quantile_ci(values: np.ndarray | Sequence[float], q: float, confidence: float = CONFIDENCE) -> Interval:
    """Distribution-free confidence interval of the ``q`` quantile from binomial order statistics.

    ``(None, None)`` when the sample is too small for the requested confidence (see
    :func:`order_statistic_ranks`).
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if arr.size > 1 and not bool((arr[:-1] <= arr[1:]).all()):  # sorted already as a rule: no copy then
        arr = np.sort(arr)
    ranks = order_statistic_ranks(int(arr.size), q, confidence)
    if ranks is None:
        return None, None
    lower_rank, upper_rank = ranks
    return float(arr[lower_rank - 1]), float(arr[upper_rank - 1])


def mean_ci(values: np.ndarray | Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, Interval]:
    """Sample mean and its Student t interval; ``(nan, (None, None))`` without values, no CI for n < 2."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    n = int(arr.size)
    if n == 0:
        return math.nan, (None, None)
    mean = fsum(arr) / n
    if n < 2:
        return mean, (None, None)
    sd = math.sqrt(fsum((arr - mean) ** 2) / (n - 1))
    half = _t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)


def kish_effective_n(weights: np.ndarray | Sequence[float]) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2; 0 for no weights."""
    import numpy as np

    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return 0.0
    sw2 = fsum(w * w)
    return fsum(w) ** 2 / sw2 if sw2 > 0 else 0.0


def weighted_mean_ci(
    values: np.ndarray | Sequence[float],
    weights: np.ndarray | Sequence[float],
    confidence: float = CONFIDENCE,
) -> tuple[float, Interval, float]:
    """Weighted (ratio) mean sum(w y) / sum(w), its t interval, and the Kish effective n.

    The variance is the weighted variance of ``values`` with a ``n_eff / (n_eff - 1)`` correction, divided by
    the Kish effective sample size; the t quantile uses ``n_eff - 1`` degrees of freedom. With equal weights
    this is exactly :func:`mean_ci`. No interval when ``n_eff < 2`` (one dominant weight tells too little).
    """
    import numpy as np

    y = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if y.shape != w.shape:
        raise ValueError(f"weighted_mean_ci needs as many weights as values, got {w.size} and {y.size}")
    if y.size == 0:
        return math.nan, (None, None), 0.0
    sw = fsum(w)
    mean = fsum(w * y) / sw
    n_eff = kish_effective_n(w)
    if n_eff < 2.0 - 1e-9:
        return mean, (None, None), n_eff
    # w (y - mean)^2 in one temporary array, squared and weighted in place.
    deviations = y - mean
    deviations *= deviations
    deviations *= w
    variance = fsum(deviations) / sw * n_eff / (n_eff - 1.0)
    half = _t_quantile(confidence, n_eff - 1.0) * math.sqrt(variance / n_eff)
    return mean, (mean - half, mean + half), n_eff


def weighted_quantile_ci(
    values: np.ndarray | Sequence[float],
    weights: np.ndarray | Sequence[float],
    q: float,
    confidence: float = CONFIDENCE,
) -> tuple[float, Interval]:
    """The ``q`` quantile of a weighted sample (weights = 1 / inclusion probability) with Woodruff's CI.

    The estimate is the smallest value whose weighted empirical CDF reaches ``q``. Woodruff (1952) turns a
    CI of the CDF at the quantile, ``q +- z * sqrt(q (1 - q) / n_eff)`` on the Kish effective sample size,
    into a CI of the quantile through the same weighted CDF. The CI is null when that band reaches 0 or 1
    (too few samples to bound it), as :func:`quantile_ci` is. Equal weights give the plain sample quantile's
    lower value (no interpolation).
    """
    return weighted_quantiles_ci(values, weights, (q,), confidence)[0]


def weighted_quantiles_ci(
    values: np.ndarray | Sequence[float],
    weights: np.ndarray | Sequence[float],
    qs: Sequence[float],
    confidence: float = CONFIDENCE,
) -> list[tuple[float, Interval]]:
    """:func:`weighted_quantile_ci` for each of ``qs``: one weighted CDF for all of them, and no sorted copy
    of values that come sorted by (value, weight) already."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if v.size != w.size:
        raise ValueError(f"values and weights differ in length: {v.size} != {w.size}")
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be in (0, 1), got {q!r}")
    if v.size == 0:
        return [(math.nan, (None, None)) for _ in qs]
    ordered = bool(np.all((v[1:] > v[:-1]) | ((v[1:] == v[:-1]) & (w[1:] >= w[:-1]))))
    if not ordered:
        order = np.lexsort((w, v))
        v, w = v[order], w[order]
    cdf = np.cumsum(w) / fsum(w)
    n_eff = kish_effective_n(w)
    z = normal_ppf(1.0 - (1.0 - confidence) / 2.0)

    def at(p: float) -> float:
        return float(v[min(int(np.searchsorted(cdf, p, side="left")), v.size - 1)])

    out: list[tuple[float, Interval]] = []
    for q in qs:
        half = z * math.sqrt(q * (1.0 - q) / n_eff)
        bounded = 0.0 < q - half and q + half < 1.0  # else too few samples to bound it
        out.append((at(q), (at(q - half), at(q + half)) if bounded else (None, None)))
    return out
