"""The few distribution functions the metrics need, in pure Python (scipy is not a dependency).

* :func:`normal_cdf`, :func:`normal_ppf`: standard normal; the quantile is Acklam's rational approximation
  polished by one Halley step on ``math.erfc``, so it is accurate to ~1e-15.
* :func:`betainc`: the regularized incomplete beta function I_x(a, b) by Lentz's continued fraction; it
  gives the Student t and binomial distributions exactly (to ~1e-14) rather than by a rough formula.
* :func:`student_t_cdf`, :func:`student_t_ppf`: Student t for any real ``df > 0``; the quantile is
  found by safeguarded Newton iterations on the cdf.
* :func:`binom_cdf`: P(X <= k) for X ~ Binomial(n, p).
* :func:`wilson_interval`: the Wilson score interval of a proportion; ``n`` may be fractional (a Kish
  effective sample size).
* :func:`quantile`, :func:`quantile_ci`: a sample percentile and its distribution-free confidence interval
  from binomial order statistics (``None`` bounds when the sample is too small for the requested level).
* :func:`mean_ci`, :func:`weighted_mean_ci`, :func:`kish_effective_n`: Student t intervals of a mean; the
  weighted one is the ratio estimator with the weighted variance over the Kish effective sample size.

Every function is deterministic and returns ``nan`` (estimates) or ``None`` (interval bounds) rather than
raising when there is too little data, so an empty window never crashes a task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Confidence level of every interval the metrics report.
CONFIDENCE = 0.95

_SQRT2 = math.sqrt(2.0)
_EPS = 1e-15
_TINY = 1e-300

Interval = tuple[float | None, float | None]


def normal_cdf(x: float) -> float:
    """Standard normal cumulative distribution function."""
    return 0.5 * math.erfc(-x / _SQRT2)


def normal_ppf(p: float) -> float:
    """Standard normal quantile: the ``x`` with ``normal_cdf(x) == p``; ``±inf`` at 0 and 1."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"normal_ppf needs a probability in [0, 1], got {p!r}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    # Acklam's rational approximation (relative error < 1.15e-9) ...
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    p_low = 0.02425
    if p < p_low:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    elif p <= 1.0 - p_low:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        )
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    # ... refined by one Halley step against erfc, which brings it to full double precision.
    e = 0.5 * math.erfc(-x / _SQRT2) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz method)."""
    # Convergence takes O(sqrt(max(a, b))) terms; the cap is generous so it is never the limit in practice.
    max_iter = 1000 + 20 * int(math.sqrt(max(a, b)))
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for ``a, b > 0`` and ``0 <= x <= 1``."""
    if a <= 0.0 or b <= 0.0:
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a!r}, b={b!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got x={x!r}")
    if x == 0.0:
        return 0.0
    if x == 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast only left of the mode; use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """Student t cumulative distribution function with ``df > 0`` degrees of freedom (may be fractional)."""
    if df <= 0.0 or math.isnan(df):
        raise ValueError(f"student_t_cdf needs df > 0, got {df!r}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def _student_t_pdf(t: float, df: float) -> float:
    log_pdf = (
        math.lgamma((df + 1.0) / 2.0)
        - math.lgamma(df / 2.0)
        - 0.5 * math.log(df * math.pi)
        - (df + 1.0) / 2.0 * math.log1p(t * t / df)
    )
    return math.exp(log_pdf)


def student_t_ppf(p: float, df: float) -> float:
    """Student t quantile: the ``t`` with ``student_t_cdf(t, df) == p``."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"student_t_ppf needs a probability in [0, 1], got {p!r}")
    if df <= 0.0 or math.isnan(df):
        raise ValueError(f"student_t_ppf needs df > 0, got {df!r}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    if df > 1e7:
        # Indistinguishable from the normal at double precision, and the beta fraction would be slow.
        return normal_ppf(p)
    # Bracket the root, then Newton steps that fall back to bisection whenever they leave the bracket.
    lo, hi = 0.0, max(1.0, normal_ppf(p))
    while student_t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    x = (lo + hi) / 2.0
    for _ in range(200):
        f = student_t_cdf(x, df) - p
        if f == 0.0:
            return x
        if f < 0.0:
            lo = x
        else:
            hi = x
        pdf = _student_t_pdf(x, df)
        step = f / pdf if pdf > 0.0 else math.inf
        nxt = x - step
        if not lo < nxt < hi:
            nxt = (lo + hi) / 2.0
        if abs(nxt - x) <= 1e-15 * max(1.0, abs(x)):
            return nxt
        x = nxt
    return x


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if n < 0:
        raise ValueError(f"binom_cdf needs n >= 0, got n={n!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"binom_cdf needs 0 <= p <= 1, got p={p!r}")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    return betainc(n - k, k + 1, 1.0 - p)


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
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan
    return float(np.quantile(arr, q))


def order_statistic_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` with P(X_(l) <= xi_q < X_(u)) >= ``confidence``, split evenly by tail.

    ``l`` is the largest rank with P(B <= l - 1) <= alpha/2 and ``u`` the smallest with P(B >= u) <= alpha/2,
    where B ~ Binomial(n, q). ``None`` when no such ranks exist within 1..n (the sample is too small: e.g.
    at 95 % the median needs n >= 6, p90 n >= 36, p95 n >= 72 and p99 n >= 368).
    """
    if n <= 0 or not 0.0 < q < 1.0:
        return None
    half_alpha = (1.0 - confidence) / 2.0
    # Largest k in [-1, n-1] with F(k) <= alpha/2 (F is increasing in k); l = k + 1.
    lo, hi = -1, n - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if binom_cdf(mid, n, q) <= half_alpha:
            lo = mid
        else:
            hi = mid - 1
    lower_rank = lo + 1
    # Smallest k in [0, n] with F(k) >= 1 - alpha/2; u = k + 1.
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if binom_cdf(mid, n, q) >= 1.0 - half_alpha:
            hi = mid
        else:
            lo = mid + 1
    upper_rank = lo + 1
    if lower_rank < 1 or upper_rank > n:
        return None
    return lower_rank, upper_rank


def quantile_ci(values: np.ndarray | Sequence[float], q: float, confidence: float = CONFIDENCE) -> Interval:
    """Distribution-free confidence interval of the ``q`` quantile from binomial order statistics.

    ``(None, None)`` when the sample is too small for the requested confidence (see
    :func:`order_statistic_ranks`).
    """
    import numpy as np

    arr = np.sort(np.asarray(values, dtype=np.float64))
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
    mean = math.fsum(arr.tolist()) / n
    if n < 2:
        return mean, (None, None)
    sd = math.sqrt(math.fsum(((arr - mean) ** 2).tolist()) / (n - 1))
    half = student_t_ppf(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)


def kish_effective_n(weights: np.ndarray | Sequence[float]) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2; 0 for no weights."""
    import numpy as np

    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return 0.0
    sw2 = math.fsum((w * w).tolist())
    return math.fsum(w.tolist()) ** 2 / sw2 if sw2 > 0 else 0.0


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
    sw = math.fsum(w.tolist())
    mean = math.fsum((w * y).tolist()) / sw
    n_eff = kish_effective_n(w)
    if n_eff < 2.0 - 1e-9:
        return mean, (None, None), n_eff
    variance = math.fsum((w * (y - mean) ** 2).tolist()) / sw * n_eff / (n_eff - 1.0)
    half = student_t_ppf(0.5 + confidence / 2.0, n_eff - 1.0) * math.sqrt(variance / n_eff)
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
    import numpy as np
    from scipy.stats import norm

    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if v.size != w.size:
        raise ValueError(f"values and weights differ in length: {v.size} != {w.size}")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if v.size == 0:
        return math.nan, (None, None)
    order = np.lexsort((w, v))
    v, w = v[order], w[order]
    cdf = np.cumsum(w) / math.fsum(w.tolist())

    def at(p: float) -> float:
        return float(v[min(int(np.searchsorted(cdf, p, side="left")), v.size - 1)])

    half = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0)) * math.sqrt(q * (1.0 - q) / kish_effective_n(w))
    if q - half <= 0.0 or q + half >= 1.0:
        return at(q), (None, None)
    return at(q), (at(q - half), at(q + half))
