"""Per-segment alert rules: one rule over every segment of a dimension, the false discoveries held at ``fdr``.

A rule with ``segment: <dimension>`` applies its ``metric op threshold`` (``kind: threshold``) or its
baseline test (``kind: baseline``) to each segment of that dimension in the interval's segment table
(:mod:`genai_flywheel.metrics.segment_schema`: the top-K values, ``other``, ``(none)`` and ``new`` alike). Testing
50 segments at 5 % each would page someone on most clean intervals, so the segments of one rule in one
interval form one family of tests and the Benjamini-Hochberg procedure keeps the expected share of false
alarms among the segments that fire at ``fdr`` (default 0.05):

1. **The family.** A segment enters it when its row has a value and ``n >= min_samples`` (and, for a
   baseline rule, a baseline of at least ``baseline.min_intervals`` intervals with a CI or trials). The
   others are ``insufficient_data`` and are *not* counted in the family: a thin segment cannot fire, and it
   does not make the others harder to fire either.
2. **One one-sided p-value per segment**, of H0 "the metric is on the good side of the threshold":

   * shares of unweighted traces (``error_rate``, ``share``, ``feedback.<name>.positive_rate``): the score
     test of a proportion, ``z = (p_hat - threshold) / sqrt(threshold (1 - threshold) / n)``. It is the test
     the Wilson interval inverts, so a segment whose 95 % Wilson CI lies wholly beyond the threshold has
     p < 0.025, and p < 0.025 means its CI lies beyond the threshold: the segment's CI and its p-value agree;
   * other estimates (latency percentiles, weighted scorer pass rates and means): a z-test with the standard
     error taken from the row's 95 % CI (:func:`genai_flywheel.alerts.baseline.ci_se`); a row without a CI is
     ``insufficient_data``;
   * exact counts (``volume``): the value is compared directly (p = 0 when the condition holds, else 1);
   * ``kind: baseline``: the one-sided p-value of the segment against its own trailing baseline (the same
     segment's rows in the baseline intervals, :func:`genai_flywheel.alerts.baseline.compare`).

3. **Benjamini-Hochberg** (``scipy.stats.false_discovery_control``): with the m p-values of the family
   sorted, p_(1) <= ... <= p_(m), the segments up to the largest rank r with p_(r) <= r / m * fdr fire
   (equivalently: the BH-adjusted p-value is at most ``fdr``). A baseline rule's segment fires only if its
   worsening is also at least ``baseline.min_effect``; ``fdr`` takes the place of ``baseline.alpha``.

A family of one segment fires at one-sided p <= ``fdr``: looser than an app-level threshold rule, which wants
the whole 95 % CI beyond the threshold (p < 0.025). Each segment's evaluation is then an ordinary
:class:`~genai_flywheel.alerts.rules.AlertEvaluation` that names its dimension and segment: the alert state
keys it by (rule, segment), so every segment fires and resolves on its own, with ``sustained`` and
``resolve_threshold`` as for any rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from genai_flywheel.alerts.baseline import ci_se, compare, is_count_share
from genai_flywheel.alerts.rules import _OPS, AlertEvaluation, _fmt, _observe, _Observed, finish
from genai_flywheel.metric_names import is_estimate

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import AlertRule

#: The baseline rows of a per-segment baseline rule, per segment key.
SegmentHistory = dict[str, list[dict[str, Any]]]


def _worse(op: str) -> float:
    """+1 when higher is worse (``>``, ``>=``), -1 when lower is."""
    return 1.0 if op in (">", ">=") else -1.0


def threshold_p_value(rule: AlertRule, row: dict[str, Any]) -> tuple[float | None, str]:
    """One-sided p-value of H0 "``row``'s metric is on the good side of ``rule.threshold``", and how it was
    tested; None (with the reason) when the row cannot be tested."""
    from scipy.stats import norm

    value, n, threshold = float(row["value"]), int(row["n"] or 0), float(rule.threshold)
    bad = _OPS[rule.op](value, threshold)
    if is_count_share(rule.metric):
        if not 0.0 < threshold < 1.0:
            # H0 is a point (p = 0 or p = 1): one observation on the other side of it rejects it for sure.
            return (0.0 if bad else 1.0), f"exact at threshold {_fmt(threshold)}"
        z = (value - threshold) / math.sqrt(threshold * (1.0 - threshold) / n)
        return float(norm.sf(_worse(rule.op) * z)), f"score test, n={n}"
    if not is_estimate(rule.metric):
        return (0.0 if bad else 1.0), "exact count, no sampling error"
    se = ci_se(row)
    if se is None:
        return None, f"{rule.metric} has no 95% CI at n={n} (too few samples for this statistic)"
    if se <= 0:
        return (0.0 if bad else 1.0), "zero-width CI"
    z = (value - threshold) / se
    return float(norm.sf(_worse(rule.op) * z)), "z-test on the 95% CI"


def bh_reject(p_values: Sequence[float], fdr: float) -> list[bool]:
    """Which of ``p_values`` the Benjamini-Hochberg procedure rejects at false-discovery rate ``fdr``."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    adjusted = false_discovery_control(list(p_values), method="bh")
    return [bool(q <= fdr) for q in adjusted]


def _segment_rows(table: pa.Table, rule: AlertRule) -> list[tuple[str, str | None, dict[str, Any] | None]]:
    """(segment, label, the rule metric's row or None) of every segment of the rule's dimension, by key."""
    rows: dict[str, dict[str, Any] | None] = {}
    labels: dict[str, str | None] = {}
    columns = ["dimension", "segment", "label", "metric", "value", "n", "ci_low", "ci_high"]
    for row in table.select(columns).to_pylist():
        if row["dimension"] != rule.segment:
            continue
        segment = row["segment"]
        rows.setdefault(segment, None)
        if row["metric"] == rule.metric:
            rows[segment] = row
        if row["label"] is not None and (segment not in labels or row["metric"] == rule.metric):
            labels[segment] = row["label"]
    return [(segment, labels.get(segment), rows[segment]) for segment in sorted(rows)]


def evaluate_segment_rule(
    rule: AlertRule, table: pa.Table, history: SegmentHistory | None = None
) -> list[AlertEvaluation]:
    """Evaluate a per-segment ``rule`` on one interval's segment table (``segments_schema``): one evaluation per
    segment of its dimension, sorted by segment key; ``history`` holds a baseline rule's baseline rows."""
    if rule.segment is None:
        raise ValueError(f"rule {rule.name!r} has no segment: dimension; evaluate it with evaluate_rule")
    tested: list[tuple[int, _Observed, float, str, float | None]] = []  # index, row, p, how, effect
    results: list[AlertEvaluation] = []
    for segment, label, row in _segment_rows(table, rule):
        observed = _observe(rule, row)
        tags = {"dimension": rule.segment, "segment": segment, "label": label}
        if isinstance(observed, AlertEvaluation):
            results.append(replace(observed, **tags))
            continue
        assert row is not None
        effect: float | None = None
        if rule.kind == "baseline":
            test = compare(rule, row, (history or {}).get(segment, []))
            p_value, how, effect = test.p_value, test.reason, test.effect
            if p_value is not None and test.intervals < rule.baseline_spec.min_intervals:
                p_value = None
                how = f"baseline has {test.intervals} interval(s) < min_intervals={rule.baseline_spec.min_intervals}"
            elif p_value is not None:
                how = f"baseline {_fmt(test.baseline)}, {how}"
        else:
            p_value, how = threshold_p_value(rule, row)
        if p_value is None:
            results.append(replace(observed.result("insufficient_data", f"not tested: {how}"), **tags))
            continue
        results.append(replace(observed.result("ok", ""), p_value=p_value, **tags))
        tested.append((len(results) - 1, observed, p_value, how, effect))
    rejected = bh_reject([p for _, _, p, _, _ in tested], rule.fdr)
    family = f"Benjamini-Hochberg at fdr={_fmt(rule.fdr)} over {len(tested)} tested segment(s)"
    for (index, observed, p_value, how, effect), reject in zip(tested, rejected, strict=True):
        ci = "" if observed.low is None else f", 95% CI [{_fmt(observed.low)}, {_fmt(observed.high)}]"
        condition = (
            f"{rule.metric} worse than its baseline" if rule.kind == "baseline" else
            f"{rule.metric} {rule.op} {_fmt(rule.threshold)}"
        )  # fmt: skip
        detail = f"value {_fmt(observed.value)}{ci}, n={observed.n}; one-sided p={p_value:.3g} ({how})"
        small = effect is not None and effect < rule.baseline_spec.min_effect
        if reject and not small:
            state, reason = "firing", f"{condition}: {detail}; rejected by {family}"
        elif reject:
            state, reason = "ok", f"{condition} by less than min_effect {_fmt(rule.baseline_spec.min_effect)}: {detail}"
        else:
            state, reason = "ok", f"not shown {condition}: {detail}; not rejected by {family}"
        results[index] = replace(results[index], state=state, reason=reason)
    return [finish(rule, r) for r in results]


def evaluate_segment_rules(
    table: pa.Table,
    rules: Sequence[AlertRule],
    history: Callable[[AlertRule], SegmentHistory] | None = None,
) -> list[AlertEvaluation]:
    """Evaluate per-segment ``rules`` on one interval's segment table; ``history(rule)`` gives a baseline
    rule's baseline rows per segment (none without it)."""
    out: list[AlertEvaluation] = []
    for rule in rules:
        past = history(rule) if history is not None and rule.kind == "baseline" else None
        out += evaluate_segment_rule(rule, table, past)
    return out
