"""Evaluate alert rules against one interval's metrics, honouring the confidence interval.

A rule ``metric op threshold`` (``op`` one of ``>``, ``>=``, ``<``, ``<=``) is in one of three states:

* ``insufficient_data`` when the metric is missing from the interval, its value is null (no data), its
  sample size ``n`` is below the rule's ``min_samples``, or it is a statistical estimate whose CI is null
  (too few samples for an interval at all, e.g. ``latency_p99_ms`` below n = 368);
* ``firing`` when the **whole** 95 % CI lies beyond the threshold: for ``>`` / ``>=`` the lower bound
  satisfies the comparison, for ``<`` / ``<=`` the upper bound does. A point estimate beyond the threshold
  with a CI that still reaches it is noise, not an alert;
* ``ok`` otherwise.

Metrics that are exact counts or sums (``volume``, ``tokens_total``, ``cost_usd``, ``scorer.<name>.errors``,
see :func:`~genai_flywheel.metrics.aggregate.is_estimate`) have no CI: for them the point estimate is
compared directly. Their ``n`` is the count behind them (``volume`` has n = volume), so a rule such as
``volume < 100`` should use ``min_samples: 1`` or it can never fire on a low-volume interval.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.metrics.aggregate import is_estimate

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import AlertRule

EvaluationState = Literal["firing", "ok", "insufficient_data"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class AlertEvaluation:
    """The outcome of one rule on one interval's metrics."""

    rule: str
    metric: str
    op: str
    threshold: float
    severity: str
    min_samples: int
    state: EvaluationState
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats stay floats; no NaN)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertEvaluation:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _fmt(x: float | None) -> str:
    return "null" if x is None else f"{x:.6g}"


def _metric_rows(metrics: pa.Table) -> dict[str, dict[str, Any]]:
    missing = [
        c
        for c in ("app", "interval_start", "metric", "value", "n", "ci_low", "ci_high")
        if c not in metrics.column_names
    ]
    if missing:
        raise DataContractError(f"the metrics table lacks column(s) {missing}; pass the output of aggregate()")
    intervals = {(r["app"], r["interval_start"]) for r in metrics.select(["app", "interval_start"]).to_pylist()}
    if len(intervals) > 1:
        shown = sorted((a, str(s)) for a, s in intervals)
        raise DataContractError(
            f"the metrics table holds {len(intervals)} (app, interval) pairs {shown[:3]}...; evaluate one "
            "interval at a time, e.g. MetricsStore.read(app, start, end) for a single interval"
        )
    rows: dict[str, dict[str, Any]] = {}
    for row in metrics.select(["metric", "value", "n", "ci_low", "ci_high"]).to_pylist():
        if row["metric"] in rows:
            raise DataContractError(f"metric {row['metric']!r} appears twice in one interval; aggregate once")
        rows[row["metric"]] = row
    return rows


def evaluate_rule(rule: AlertRule, row: dict[str, Any] | None) -> AlertEvaluation:
    """Evaluate one rule against its metric's row (``None`` when the metric is absent)."""
    base = {
        "rule": rule.name,
        "metric": rule.metric,
        "op": rule.op,
        "threshold": float(rule.threshold),
        "severity": rule.severity,
        "min_samples": int(rule.min_samples),
    }
    if rule.op not in _OPS:
        raise DataContractError(f"rule {rule.name!r}: operator {rule.op!r} is not one of {sorted(_OPS)}")
    if row is None:
        return AlertEvaluation(
            **base, state="insufficient_data", value=None, ci_low=None, ci_high=None, n=0,
            reason=f"metric {rule.metric!r} was not computed for this interval (no data, or a misspelt name)",
        )  # fmt: skip
    value, low, high, n = _num(row["value"]), _num(row["ci_low"]), _num(row["ci_high"]), int(row["n"] or 0)

    def result(state: EvaluationState, reason: str) -> AlertEvaluation:
        return AlertEvaluation(**base, state=state, value=value, ci_low=low, ci_high=high, n=n, reason=reason)

    compare = _OPS[rule.op]
    condition = f"{rule.metric} {rule.op} {_fmt(rule.threshold)}"
    if value is None:
        return result("insufficient_data", f"{rule.metric} has no value in this interval (n={n})")
    if n < rule.min_samples:
        return result("insufficient_data", f"n={n} < min_samples={rule.min_samples}; not judged")
    if low is None or high is None:
        if is_estimate(rule.metric):
            return result(
                "insufficient_data",
                f"{rule.metric}={_fmt(value)} has no 95% CI at n={n} (too few samples for this statistic)",
            )
        # Exact counts and sums have no sampling error: the value itself is compared.
        if compare(value, rule.threshold):
            return result("firing", f"{condition}: value {_fmt(value)} (exact, no CI)")
        return result("ok", f"not {condition}: value {_fmt(value)} (exact, no CI)")
    # The bound nearest the threshold must satisfy the condition: the whole CI is beyond it.
    bound = low if rule.op in (">", ">=") else high
    ci = f"95% CI [{_fmt(low)}, {_fmt(high)}], n={n}"
    if compare(bound, rule.threshold):
        return result("firing", f"{condition}: value {_fmt(value)}, whole {ci} beyond the threshold")
    if compare(value, rule.threshold):
        return result("ok", f"{condition} by the estimate {_fmt(value)} only; {ci} reaches the threshold")
    return result("ok", f"not {condition}: value {_fmt(value)}, {ci}")


def evaluate_rules(metrics: pa.Table, rules: Sequence[AlertRule]) -> list[AlertEvaluation]:
    """Evaluate ``rules`` (in the given order) against one interval's metrics table (``METRICS_SCHEMA``).

    Raises DataContractError if ``metrics`` spans several intervals or apps.
    """
    rows = _metric_rows(metrics)
    return [evaluate_rule(rule, rows.get(rule.metric)) for rule in rules]
