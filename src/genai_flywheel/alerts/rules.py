"""Evaluate alert rules against one interval's metrics, honouring the confidence interval.

A ``kind: threshold`` rule ``metric op threshold`` (``op`` one of ``>``, ``>=``, ``<``, ``<=``) is in one of
three states:

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

A ``kind: no_data`` rule fires when ``volume`` is below its floor (``threshold``), an interval without any
trace included: no ``min_samples`` applies. A ``kind: baseline`` rule fires when the interval is
significantly worse than its trailing baseline (:mod:`genai_flywheel.alerts.baseline`): one-sided p-value
below ``alpha`` and a worsening of at least ``min_effect``; too short a baseline is ``insufficient_data``.

Every evaluation also says whether the interval *clears* a firing alert: with ``resolve_threshold`` (the
hysteresis of threshold and no_data rules), only once the estimate is back on the good side of it; without,
whenever the evaluation is ``ok``. ``sustained`` (fire after k of the last n intervals) is applied when the
evaluations are replayed in interval order (:mod:`genai_flywheel.alerts.state`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
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


_SEGMENT_FIELDS = ("dimension", "segment", "label", "p_value")


def state_key(rule: str, dimension: str | None = None, segment: str | None = None) -> str:
    """The alert state's key of a rule (``rule``) or of one segment of a per-segment rule (``rule[dim=seg]``)."""
    return rule if segment is None else f"{rule}[{dimension}={segment}]"


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
    # Added after the first state files were written: defaults keep those readable.
    kind: str = "threshold"
    clears: bool | None = None  # whether this interval resolves a firing alert (None: no evidence)
    sustain_k: int = 1
    sustain_n: int = 1
    # A per-segment rule's evaluation of one segment (genai_flywheel.alerts.segments); None for an app-level rule.
    dimension: str | None = None
    segment: str | None = None
    label: str | None = None
    p_value: float | None = None  # one-sided, the segment's entry in the false-discovery family

    @property
    def key(self) -> str:
        """What the alert state is keyed by: the rule, or the rule and the segment of a per-segment rule."""
        return state_key(self.rule, self.dimension, self.segment)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats stay floats; no NaN). The segment fields are written only when set, so
        the state files of app-level rules keep their bytes."""
        data = asdict(self)
        for name in _SEGMENT_FIELDS:
            if data[name] is None:
                del data[name]
        return data

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


def evaluate_rule(
    rule: AlertRule, row: dict[str, Any] | None, history: list[dict[str, Any]] | None = None
) -> AlertEvaluation:
    """Evaluate one rule against its metric's row (``None`` when the metric is absent); ``history`` holds the
    baseline rows of a ``kind: baseline`` rule."""
    if rule.op not in _OPS:
        raise DataContractError(f"rule {rule.name!r}: operator {rule.op!r} is not one of {sorted(_OPS)}")
    if rule.kind == "no_data":
        evaluation = _evaluate_no_data(rule, row)
    elif rule.kind == "baseline":
        evaluation = _evaluate_baseline(rule, row, history or [])
    else:
        evaluation = _evaluate_threshold(rule, row)
    return finish(rule, evaluation)


def finish(rule: AlertRule, evaluation: AlertEvaluation) -> AlertEvaluation:
    """``evaluation`` with what the state machine needs of ``rule``: its kind, whether this interval clears
    a firing alert (``resolve_threshold``), and its ``sustained`` window."""
    clears = None if evaluation.state == "insufficient_data" else evaluation.state == "ok"
    if clears is not None and rule.resolve_threshold is not None and evaluation.value is not None:
        # Hysteresis: back below the threshold is not enough, the estimate must pass the resolve threshold.
        clears = not _OPS[rule.op](evaluation.value, rule.resolve_threshold)
    sustained = rule.sustained
    return replace(
        evaluation,
        kind=rule.kind,
        clears=clears,
        sustain_k=sustained.k if sustained else 1,
        sustain_n=sustained.n if sustained else 1,
    )


def _base(rule: AlertRule) -> dict[str, Any]:
    return {
        "rule": rule.name,
        "metric": rule.metric,
        "op": rule.op,
        "threshold": float(rule.threshold),
        "severity": rule.severity,
        "min_samples": int(rule.min_samples),
    }


def _evaluate_no_data(rule: AlertRule, row: dict[str, Any] | None) -> AlertEvaluation:
    value = _num(row["value"]) if row is not None else None
    volume = value or 0.0
    state: EvaluationState = "firing" if volume < rule.threshold else "ok"
    word = "below" if state == "firing" else "not below"
    return AlertEvaluation(
        **_base(rule), state=state, value=volume, ci_low=None, ci_high=None, n=int(volume),
        reason=f"volume {_fmt(volume)} is {word} the floor {_fmt(rule.threshold)}",
    )  # fmt: skip


@dataclass(frozen=True)
class _Observed:
    """One interval's row of a rule's metric, judged worth evaluating (present, valued, enough samples)."""

    rule: AlertRule
    value: float
    low: float | None
    high: float | None
    n: int

    def result(self, state: EvaluationState, reason: str) -> AlertEvaluation:
        return AlertEvaluation(
            **_base(self.rule), state=state, value=self.value, ci_low=self.low, ci_high=self.high, n=self.n,
            reason=reason,
        )  # fmt: skip


def _observe(rule: AlertRule, row: dict[str, Any] | None) -> _Observed | AlertEvaluation:
    """The row to judge, or the ``insufficient_data`` evaluation when there is nothing to judge."""
    if row is None:
        return AlertEvaluation(
            **_base(rule), state="insufficient_data", value=None, ci_low=None, ci_high=None, n=0,
            reason=f"metric {rule.metric!r} was not computed for this interval (no data, or a misspelt name)",
        )  # fmt: skip
    value, low, high, n = _num(row["value"]), _num(row["ci_low"]), _num(row["ci_high"]), int(row["n"] or 0)
    if value is None:
        return AlertEvaluation(
            **_base(rule), state="insufficient_data", value=None, ci_low=low, ci_high=high, n=n,
            reason=f"{rule.metric} has no value in this interval (n={n})",
        )  # fmt: skip
    observed = _Observed(rule, value, low, high, n)
    if n < rule.min_samples:
        return observed.result("insufficient_data", f"n={n} < min_samples={rule.min_samples}; not judged")
    return observed


def _evaluate_baseline(rule: AlertRule, row: dict[str, Any] | None, history: list[dict[str, Any]]) -> AlertEvaluation:
    from genai_flywheel.alerts.baseline import compare

    observed = _observe(rule, row)
    if isinstance(observed, AlertEvaluation):
        return observed
    assert row is not None
    spec = rule.baseline_spec
    test = compare(rule, row, history)
    if test.p_value is None or test.baseline is None:
        return observed.result("insufficient_data", f"no baseline test: {test.reason}")
    if test.intervals < spec.min_intervals:
        return observed.result(
            "insufficient_data", f"baseline has {test.intervals} interval(s) < min_intervals={spec.min_intervals}"
        )
    worse = "higher" if rule.op in (">", ">=") else "lower"
    detail = (
        f"{rule.metric} {_fmt(observed.value)} vs baseline {_fmt(test.baseline)} over {test.intervals} "
        f"interval(s): {_fmt(abs(test.effect or 0.0))} {worse if (test.effect or 0.0) > 0 else 'better or equal'}, "
        f"one-sided p={test.p_value:.3g} ({test.reason})"
    )
    if test.p_value < spec.alpha and (test.effect or 0.0) >= spec.min_effect:
        return observed.result("firing", f"significantly {worse} than its baseline: {detail}")
    return observed.result("ok", f"not significantly {worse} by at least {_fmt(spec.min_effect)}: {detail}")


def _evaluate_threshold(rule: AlertRule, row: dict[str, Any] | None) -> AlertEvaluation:
    observed = _observe(rule, row)
    if isinstance(observed, AlertEvaluation):
        return observed
    value, low, high, n, result = observed.value, observed.low, observed.high, observed.n, observed.result
    compare = _OPS[rule.op]
    condition = f"{rule.metric} {rule.op} {_fmt(rule.threshold)}"
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


def evaluate_rules(
    metrics: pa.Table,
    rules: Sequence[AlertRule],
    history: Callable[[AlertRule], list[dict[str, Any]]] | None = None,
) -> list[AlertEvaluation]:
    """Evaluate ``rules`` (in the given order) against one interval's metrics table (``METRICS_SCHEMA``);
    ``history(rule)`` gives a baseline rule's baseline rows (none without it).

    Raises DataContractError if ``metrics`` spans several intervals or apps.
    """
    rows = _metric_rows(metrics)
    return [
        evaluate_rule(rule, rows.get(rule.metric), history(rule) if history and rule.kind == "baseline" else None)
        for rule in rules
    ]
