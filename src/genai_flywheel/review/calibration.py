"""How well each automated scorer agrees with the reviewers, with confidence intervals.

For a scorer and the traces that have both its value and a reviewer's answer:

``agreement``    share of traces where the scorer's pass/fail equals the reviewer's verdict (the
                 ``correct_schema``), with a Wilson interval
``kappa``        Cohen's kappa of the same pairs (agreement beyond chance), with the large-sample interval
                 ``kappa +- z * sqrt(po (1 - po) / (n (1 - pe)^2))`` clipped to [-1, 1]
``correlation``  Spearman's rho between the scorer's value and a numeric rating (a ``numeric`` label
                 schema), with a Fisher-z interval using the Bonett-Wright standard error
                 ``sqrt(1 + rho^2 / 2) / sqrt(n - 3)``

Which labels, and how weighted. A review queue holds two kinds of items (see :mod:`.queue`):

* the **calibration sample**, drawn at random and stratified, each item with its inclusion weight (eligible
  traces of its stratum / picked ones, in the run's ``review_queue.json``). Its statistics are the ones
  named ``calibration.<scorer>.<statistic>``: weighted, so they estimate the agreement on the application's
  traffic. Agreement is the weighted share ``sum(w * agree) / sum(w)`` with the Wilson interval on Kish's
  effective n ``(sum w)^2 / sum w^2`` (as the monitor's pass rates); kappa comes from the weighted confusion
  matrix, its interval with the effective n in place of n; the correlation is the weighted Pearson
  correlation (``numpy.cov`` with ``aweights``) of the values' ranks (``scipy.stats.rankdata``; with equal
  weights exactly Spearman's rho), its interval with the effective n. ``n`` stays the number of labels.
  Weights are relative within a queue (its ``calibration_rate`` is a common factor), so samples of several
  curation runs of a queue pool as they are.
* items the **curation rules** chose (worst first) and items attached by hand: not a probability sample.
  Weighting cannot make them stand for the traffic, so they are left out of the statistics above and
  reported separately, unweighted, as ``calibration.<scorer>.<statistic>_flagged``: how the scorer does on
  the traces the rules flagged.

Each is a row of the long metrics format (``metric, value, n, ci_low, ci_high``), for the collection
interval and, with the suffix ``_rolling``, for the rolling window, so alert rules can fire when a scorer
drifts away from people.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import to_number
from genai_flywheel.metrics.stats import CONFIDENCE, fsum, kish_effective_n, wilson_interval

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.config import Application, Review, ScorerSpec
    from genai_flywheel.review.labels import LabelRow

PREFIX = "calibration"


@dataclass(frozen=True)
class Stat:
    """One statistic with its sample size and confidence interval (``None`` where undefined)."""

    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def _weights(n: int, weights: Sequence[float] | None) -> np.ndarray:
    """``weights`` as an array (all ones when None), checked to pair with ``n`` observations."""
    import numpy as np

    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"need {n} finite non-negative weights, got {list(weights)[:5]} ({w.size} in all)")
    return w


def accuracy(agree: Sequence[bool], confidence: float = CONFIDENCE, weights: Sequence[float] | None = None) -> Stat:
    """The (weighted) share of ``True`` in ``agree`` with its Wilson interval on Kish's effective n."""
    n = len(agree)
    w = _weights(n, weights)
    total = fsum(w)
    if n == 0 or total <= 0:
        return Stat(None, n)
    share = fsum(w[[bool(a) for a in agree]]) / total
    n_eff = kish_effective_n(w)
    low, high = wilson_interval(share * n_eff, n_eff, confidence)
    return Stat(share, n, low, high)


def cohen_kappa(
    a: Sequence[str], b: Sequence[str], confidence: float = CONFIDENCE, weights: Sequence[float] | None = None
) -> Stat:
    """Cohen's kappa of two raters' categorical labels, from the (weighted) confusion matrix; the interval
    is the large-sample one (see module) with Kish's effective n.

    Undefined (``None``) with fewer than two pairs or when chance agreement is 1 (both raters used a single
    label throughout: nothing to measure).
    """
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs paired labels, got {len(a)} and {len(b)}")
    n = len(a)
    w = _weights(n, weights)
    if n < 2 or w.sum() <= 0:
        return Stat(None, n)
    labels = sorted(set(a) | set(b))
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)))
    np.add.at(confusion, ([index[x] for x in a], [index[y] for y in b]), w)
    confusion /= confusion.sum()
    po = float(np.trace(confusion))
    pe = float(confusion.sum(axis=1) @ confusion.sum(axis=0))
    if pe >= 1.0 - 1e-12:
        return Stat(None, n)
    kappa = (po - pe) / (1.0 - pe)
    se = math.sqrt(max(po * (1.0 - po), 0.0) / (kish_effective_n(w) * (1.0 - pe) ** 2))
    half = _z(confidence) * se
    return Stat(kappa, n, max(-1.0, kappa - half), min(1.0, kappa + half))


def correlation(
    x: Sequence[float],
    y: Sequence[float],
    method: str = "spearman",
    confidence: float = CONFIDENCE,
    weights: Sequence[float] | None = None,
) -> Stat:
    """Spearman's rho (or Pearson's r) with a Fisher-z interval; undefined below 4 pairs (an effective n
    of 4 when weighted) or for a constant. With ``weights``: the weighted Pearson correlation of the ranks
    (of the values for Pearson) and the effective n in the interval (see module)."""
    import numpy as np
    from scipy.stats import pearsonr, rankdata, spearmanr

    if len(x) != len(y):
        raise ValueError(f"correlation needs paired values, got {len(x)} and {len(y)}")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"correlation method must be 'spearman' or 'pearson', got {method!r}")
    n = len(x)
    w = _weights(n, weights)
    n_eff = kish_effective_n(w) if weights is not None else float(n)
    if n < 4 or n_eff <= 3.0 or len(set(x)) < 2 or len(set(y)) < 2:
        return Stat(None, n)
    if weights is None:
        r = float((spearmanr(x, y) if method == "spearman" else pearsonr(x, y))[0])
    else:
        xs, ys = (rankdata(x), rankdata(y)) if method == "spearman" else (np.asarray(x), np.asarray(y))
        cov = np.cov(xs, ys, aweights=w)
        r = float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1])) if cov[0, 0] > 0 and cov[1, 1] > 0 else math.nan
    if math.isnan(r):
        return Stat(None, n)
    if abs(r) >= 1.0:
        return Stat(r, n, r, r)
    se = (math.sqrt(1.0 + r * r / 2.0) if method == "spearman" else 1.0) / math.sqrt(n_eff - 3)
    z = math.atanh(r)
    half = _z(confidence) * se
    return Stat(r, n, math.tanh(z - half), math.tanh(z + half))


def metric_name(scorer: str, statistic: str, suffix: str = "") -> str:
    """``calibration.<scorer>.<statistic>`` (``suffix`` appended, e.g. ``_rolling``)."""
    return f"{PREFIX}.{scorer}.{statistic}{suffix}"


ROLLING = "_rolling"
FLAGGED = "_flagged"  # statistics over the items the curation rules chose (not a probability sample)


@dataclass(frozen=True)
class ScorerPairs:
    """The paired observations of one scorer: verdicts (scorer passed, reviewer said correct) and ratings
    (scorer value, reviewer's numeric rating), with the trace ids and the items' weights in the same order."""

    verdict_ids: list[str]
    passed: list[bool]
    correct: list[bool]
    rating_ids: list[str]
    values: list[float]
    ratings: list[float]
    verdict_weights: list[float] = field(default_factory=list)
    rating_weights: list[float] = field(default_factory=list)


def _threshold(spec: ScorerSpec) -> float:
    return spec.threshold if spec.threshold is not None else 0.5


def _rating_schema(review: Review) -> str | None:
    return next((s.name for s in review.label_schemas if s.input == "numeric"), None)


def scorer_pairs(app: Application, scorer: ScorerSpec, rows: Sequence[LabelRow]) -> ScorerPairs:
    """The pairs of ``scorer`` in ``rows``: pass means value >= the scorer's threshold (0.5 when unset); an
    item's weight is its calibration weight, 1 for any other item."""
    rating = _rating_schema(app.review)
    pairs = ScorerPairs([], [], [], [], [], [])
    for row in rows:
        value = row.scores.get(scorer.name)
        if value is None:
            continue
        weight = row.weight if row.sampled and row.weight is not None else 1.0
        if row.correct is not None:
            pairs.verdict_ids.append(row.trace_id)
            pairs.passed.append(value >= _threshold(scorer))
            pairs.correct.append(row.correct)
            pairs.verdict_weights.append(weight)
        number = to_number(row.labels.get(rating)) if rating else None
        if number is not None:
            pairs.rating_ids.append(row.trace_id)
            pairs.values.append(value)
            pairs.ratings.append(number)
            pairs.rating_weights.append(weight)
    return pairs


def scorer_stats(pairs: ScorerPairs, min_labels: int, *, weighted: bool = False) -> dict[str, Stat]:
    """``agreement``/``kappa`` (with at least ``min_labels`` verdicts) and ``correlation`` (ratings), with
    the pairs' weights when ``weighted``."""
    out: dict[str, Stat] = {}
    if len(pairs.passed) >= min_labels:
        weights = pairs.verdict_weights if weighted else None
        out["agreement"] = accuracy([p == c for p, c in zip(pairs.passed, pairs.correct, strict=True)], weights=weights)
        out["kappa"] = cohen_kappa(
            ["pass" if p else "fail" for p in pairs.passed],
            ["pass" if c else "fail" for c in pairs.correct],
            weights=weights,
        )
    if len(pairs.values) >= min_labels:
        out["correlation"] = correlation(
            pairs.values, pairs.ratings, weights=pairs.rating_weights if weighted else None
        )
    return out


def calibration_metrics(
    app: Application,
    interval_rows: Sequence[LabelRow],
    window_rows: Sequence[LabelRow],
    interval_start: datetime,
    interval_end: datetime,
) -> pa.Table:
    """The calibration metrics of one collection interval, in the long metrics format.

    ``calibration.labels`` counts the interval's reviewed traces and ``calibration.sample_labels`` those of
    the calibration sample; per scorer with enough labels, ``calibration.<scorer>.<statistic>`` over the
    calibration sample (weighted) and ``..._flagged`` over the other items (unweighted), each for the
    interval's labels and, suffixed ``_rolling``, for the window's (see the module docstring).
    """
    import pyarrow as pa

    from genai_flywheel.metrics.aggregate import metrics_schema

    rows: list[dict[str, Any]] = []

    def add(metric: str, stat: Stat) -> None:
        rows.append(
            {
                "app": app.name,
                "interval_start": interval_start,
                "interval_end": interval_end,
                "metric": metric,
                "value": stat.value,
                "n": stat.n,
                "ci_low": stat.ci_low,
                "ci_high": stat.ci_high,
            }
        )

    for suffix, labelled in (("", interval_rows), (ROLLING, window_rows)):
        sampled = sum(1 for r in labelled if r.sampled)
        add(f"{PREFIX}.labels{suffix}", Stat(float(len(labelled)), len(labelled)))
        add(f"{PREFIX}.sample_labels{suffix}", Stat(float(sampled), sampled))
    for scorer in app.scorers:
        for suffix, labelled in (("", interval_rows), (ROLLING, window_rows)):
            for scope, weighted in (("", True), (FLAGGED, False)):
                chosen = [r for r in labelled if r.sampled == weighted]
                stats = scorer_stats(scorer_pairs(app, scorer, chosen), app.review.min_labels, weighted=weighted)
                for statistic, stat in stats.items():
                    add(metric_name(scorer.name, statistic + scope, suffix), stat)
    return pa.Table.from_pylist(rows, schema=metrics_schema())


def disagreements(app: Application, rows: Sequence[LabelRow]) -> list[dict[str, Any]]:
    """Traces where a scorer's pass/fail contradicts the reviewer's verdict (for the report to link), with
    why each was queued (``source``: a curation rule, ``calibration``, or None when unknown)."""
    source = {r.trace_id: r.source for r in rows}
    out = []
    for scorer in app.scorers:
        pairs = scorer_pairs(app, scorer, rows)
        for trace_id, passed, correct in zip(pairs.verdict_ids, pairs.passed, pairs.correct, strict=True):
            if passed != correct:
                out.append(
                    {
                        "scorer": scorer.name,
                        "trace_id": trace_id,
                        "scorer_passed": passed,
                        "correct": correct,
                        "source": source[trace_id],
                    }
                )
    return out
