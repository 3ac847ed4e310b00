"""How well each automated scorer agrees with the reviewers, with confidence intervals.

For a scorer and the traces that have both its value and a reviewer's answer:

``agreement``    share of traces where the scorer's pass/fail equals the reviewer's verdict (the
                 ``correct_schema``), with a Wilson interval
``kappa``        Cohen's kappa of the same pairs (agreement beyond chance), with the large-sample interval
                 ``kappa +- z * sqrt(po (1 - po) / (n (1 - pe)^2))`` clipped to [-1, 1]
``correlation``  Spearman's rho between the scorer's value and a numeric rating (a ``numeric`` label
                 schema), with a Fisher-z interval using the Bonett-Wright standard error
                 ``sqrt(1 + rho^2 / 2) / sqrt(n - 3)``

Each is a row of the long metrics format (``metric, value, n, ci_low, ci_high``) named
``calibration.<scorer>.<statistic>``, so alert rules can fire when a scorer drifts away from people.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import to_number
from genai_flywheel.metrics.stats import CONFIDENCE, wilson_interval

if TYPE_CHECKING:
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


def accuracy(agree: Sequence[bool], confidence: float = CONFIDENCE) -> Stat:
    """The share of ``True`` in ``agree`` with its Wilson interval."""
    n = len(agree)
    if n == 0:
        return Stat(None, 0)
    hits = sum(1 for a in agree if a)
    low, high = wilson_interval(hits, n, confidence)
    return Stat(hits / n, n, low, high)


def cohen_kappa(a: Sequence[str], b: Sequence[str], confidence: float = CONFIDENCE) -> Stat:
    """Cohen's kappa of two raters' categorical labels; the interval is the large-sample one (see module).

    Undefined (``None``) with fewer than two pairs or when chance agreement is 1 (both raters used a single
    label throughout: nothing to measure).
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs paired labels, got {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        return Stat(None, n)
    labels = sorted(set(a) | set(b))
    po = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    pe = sum((a.count(label) / n) * (b.count(label) / n) for label in labels)
    if pe >= 1.0:
        return Stat(None, n)
    kappa = (po - pe) / (1.0 - pe)
    se = math.sqrt(po * (1.0 - po) / (n * (1.0 - pe) ** 2))
    half = _z(confidence) * se
    return Stat(kappa, n, max(-1.0, kappa - half), min(1.0, kappa + half))


def correlation(
    x: Sequence[float], y: Sequence[float], method: str = "spearman", confidence: float = CONFIDENCE
) -> Stat:
    """Spearman's rho (or Pearson's r) with a Fisher-z interval; undefined below 4 pairs or for a constant."""
    from scipy.stats import pearsonr, spearmanr

    if len(x) != len(y):
        raise ValueError(f"correlation needs paired values, got {len(x)} and {len(y)}")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"correlation method must be 'spearman' or 'pearson', got {method!r}")
    n = len(x)
    if n < 4 or len(set(x)) < 2 or len(set(y)) < 2:
        return Stat(None, n)
    r = float((spearmanr(x, y) if method == "spearman" else pearsonr(x, y))[0])
    if math.isnan(r):
        return Stat(None, n)
    if abs(r) >= 1.0:
        return Stat(r, n, r, r)
    se = (math.sqrt(1.0 + r * r / 2.0) if method == "spearman" else 1.0) / math.sqrt(n - 3)
    z = math.atanh(r)
    half = _z(confidence) * se
    return Stat(r, n, math.tanh(z - half), math.tanh(z + half))


def metric_name(scorer: str, statistic: str, suffix: str = "") -> str:
    """``calibration.<scorer>.<statistic>`` (``suffix`` appended, e.g. ``_rolling``)."""
    return f"{PREFIX}.{scorer}.{statistic}{suffix}"


ROLLING = "_rolling"


@dataclass(frozen=True)
class ScorerPairs:
    """The paired observations of one scorer: verdicts (scorer passed, reviewer said correct) and ratings
    (scorer value, reviewer's numeric rating), with the trace ids in the same order."""

    verdict_ids: list[str]
    passed: list[bool]
    correct: list[bool]
    rating_ids: list[str]
    values: list[float]
    ratings: list[float]


def _threshold(spec: ScorerSpec) -> float:
    return spec.threshold if spec.threshold is not None else 0.5


def _rating_schema(review: Review) -> str | None:
    return next((s.name for s in review.label_schemas if s.input == "numeric"), None)


def scorer_pairs(app: Application, scorer: ScorerSpec, rows: Sequence[LabelRow]) -> ScorerPairs:
    """The pairs of ``scorer`` in ``rows``: pass means value >= the scorer's threshold (0.5 when unset)."""
    rating = _rating_schema(app.review)
    pairs = ScorerPairs([], [], [], [], [], [])
    for row in rows:
        value = row.scores.get(scorer.name)
        if value is None:
            continue
        if row.correct is not None:
            pairs.verdict_ids.append(row.trace_id)
            pairs.passed.append(value >= _threshold(scorer))
            pairs.correct.append(row.correct)
        number = to_number(row.labels.get(rating)) if rating else None
        if number is not None:
            pairs.rating_ids.append(row.trace_id)
            pairs.values.append(value)
            pairs.ratings.append(number)
    return pairs


def scorer_stats(pairs: ScorerPairs, min_labels: int) -> dict[str, Stat]:
    """``agreement``/``kappa`` (with at least ``min_labels`` verdicts) and ``correlation`` (ratings)."""
    out: dict[str, Stat] = {}
    if len(pairs.passed) >= min_labels:
        out["agreement"] = accuracy([p == c for p, c in zip(pairs.passed, pairs.correct, strict=True)])
        out["kappa"] = cohen_kappa(
            ["pass" if p else "fail" for p in pairs.passed], ["pass" if c else "fail" for c in pairs.correct]
        )
    if len(pairs.values) >= min_labels:
        out["correlation"] = correlation(pairs.values, pairs.ratings)
    return out


def calibration_metrics(
    app: Application,
    interval_rows: Sequence[LabelRow],
    window_rows: Sequence[LabelRow],
    interval_start: datetime,
    interval_end: datetime,
) -> pa.Table:
    """The calibration metrics of one collection interval, in the long metrics format.

    ``calibration.labels`` counts the interval's reviewed traces; per scorer with enough labels,
    ``calibration.<scorer>.<statistic>`` over the interval's labels and ``..._rolling`` over the window's.
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

    add(f"{PREFIX}.labels", Stat(float(len(interval_rows)), len(interval_rows)))
    add(f"{PREFIX}.labels{ROLLING}", Stat(float(len(window_rows)), len(window_rows)))
    for scorer in app.scorers:
        for suffix, labelled in (("", interval_rows), (ROLLING, window_rows)):
            stats = scorer_stats(scorer_pairs(app, scorer, labelled), app.review.min_labels)
            for statistic, stat in stats.items():
                add(metric_name(scorer.name, statistic, suffix), stat)
    return pa.Table.from_pylist(rows, schema=metrics_schema())


def disagreements(app: Application, rows: Sequence[LabelRow]) -> list[dict[str, Any]]:
    """Traces where a scorer's pass/fail contradicts the reviewer's verdict (for the report to link)."""
    out = []
    for scorer in app.scorers:
        pairs = scorer_pairs(app, scorer, rows)
        for trace_id, passed, correct in zip(pairs.verdict_ids, pairs.passed, pairs.correct, strict=True):
            if passed != correct:
                out.append({"scorer": scorer.name, "trace_id": trace_id, "scorer_passed": passed, "correct": correct})
    return out
