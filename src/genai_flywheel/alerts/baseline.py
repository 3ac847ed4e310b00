"""Baseline-relative alerting: is this interval significantly worse than its own trailing baseline?

The baseline of an interval is the same metric over the intervals of the last ``days`` days that start at the
same time of day (``same_hour``: daily seasonality), read from the metrics store. The test is one-sided in
the direction the rule calls worse (``op``: ``>`` means higher is worse):

* shares whose ``n`` counts unweighted traces (``error_rate``, ``error_rate.<type>``,
  ``feedback.<name>.positive_rate``, ``judge.error_rate``, a segment's ``share``): the baseline intervals
  are pooled (successes and trials added up) and compared with a two-proportion z-test;
* every other estimate (means, percentiles, weighted pass rates): each value's standard error is taken from
  its 95 % CI (half its width over 1.96), the baseline is the inverse-variance weighted mean of its
  intervals, and the difference is compared with its combined standard error (a z-test).

The rule fires when the one-sided p-value is below ``alpha`` and the worsening is at least ``min_effect``
(in the metric's unit), so a tiny, significant drift on a huge volume does not page anyone.

A per-segment rule (:mod:`genai_flywheel.alerts.segments`) compares each segment with the same segment's rows
in the baseline intervals' segment tables (:func:`read_segment_history`).

A baseline sees the partitions stored when the alert stage runs: in an out-of-order backfill, re-run the
alert stage of an interval once its baseline intervals are stored to judge it on the complete baseline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from genai_flywheel.metrics.intervals import to_utc

if TYPE_CHECKING:
    from pathlib import Path

    from genai_flywheel.config import AlertRule, Baseline

_COUNT_SHARE = re.compile(r"^(error_rate(\..+)?|feedback\..+\.positive_rate|judge\.error_rate|share)$")
_Z = 1.959963984540054  # the 97.5 % normal quantile: every stored CI is a 95 % interval


@dataclass(frozen=True)
class BaselineTest:
    """The comparison of one interval's estimate with its baseline."""

    baseline: float | None  # the pooled baseline estimate
    intervals: int  # baseline intervals with a value
    effect: float | None  # current - baseline, signed so that positive is worse
    p_value: float | None  # one-sided
    reason: str


def baseline_starts(interval_start: datetime, spec: Baseline, stored: list[datetime]) -> list[datetime]:
    """The stored interval starts that make up the baseline of ``interval_start``."""
    start = to_utc(interval_start)
    lo = start - timedelta(days=spec.days)
    chosen = [s for s in stored if lo <= s < start]
    if spec.same_hour:
        chosen = [s for s in chosen if s.time() == start.time()]
    return chosen


def read_history(root: Path | str, app: str, metric: str, interval_start: datetime, spec: Baseline) -> list[dict]:
    """The baseline rows (``value``, ``n``, ``ci_low``, ``ci_high``) of ``metric`` from the metrics store."""
    from genai_flywheel.metrics.store import MetricsStore

    store = MetricsStore(root)
    starts = baseline_starts(interval_start, spec, store.intervals(app))
    if not starts:
        return []
    table = store.read(app, min(starts), max(starts) + timedelta(seconds=1), metrics=[metric])
    wanted = set(starts)
    return [r for r in table.to_pylist() if to_utc(r["interval_start"]) in wanted]


def read_segment_history(
    root: Path | str, app: str, rule: AlertRule, interval_start: datetime
) -> dict[str, list[dict]]:
    """The baseline rows of a per-segment rule's metric, per segment of its dimension (segment key -> rows)."""
    from genai_flywheel.metrics.store import MetricsStore

    store = MetricsStore(root)
    starts = baseline_starts(interval_start, rule.baseline_spec, store.intervals(app))
    if not starts:
        return {}
    table = store.read_segments(
        app, min(starts), max(starts) + timedelta(seconds=1), dimension=rule.segment, metrics=[rule.metric]
    )
    wanted = set(starts)
    history: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        if to_utc(row["interval_start"]) in wanted:
            history.setdefault(row["segment"], []).append(row)
    return history


def is_count_share(metric: str) -> bool:
    """True when ``metric`` is a share of unweighted traces: its ``n`` counts the trials, ``value * n`` the
    successes (so a pooled or score test applies), and its CI is a Wilson interval."""
    return bool(_COUNT_SHARE.match(metric))


def ci_se(row: dict[str, Any]) -> float | None:
    """The standard error behind a row's 95 % CI (half its width over 1.96); None without a CI."""
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is None or high is None:
        return None
    return (float(high) - float(low)) / (2.0 * _Z)


def compare(rule: AlertRule, row: dict[str, Any], history: list[dict[str, Any]]) -> BaselineTest:
    """Test ``row`` (this interval) against ``history`` (its baseline rows) in the rule's worse direction."""
    from scipy.stats import norm

    sign = 1.0 if rule.op in (">", ">=") else -1.0
    usable = [h for h in history if h.get("value") is not None and (h.get("n") or 0) > 0]
    value, n = row.get("value"), int(row.get("n") or 0)
    if value is None or n == 0:
        return BaselineTest(None, len(usable), None, None, f"{rule.metric} has no value in this interval")
    if is_count_share(rule.metric):
        trials = sum(int(h["n"]) for h in usable)
        successes = math.fsum(float(h["value"]) * int(h["n"]) for h in usable)
        if trials == 0:
            return BaselineTest(None, 0, None, None, "the baseline holds no trials")
        base = successes / trials
        pooled = (successes + float(value) * n) / (trials + n)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / trials))
        how = f"two-proportion z-test against {trials} baseline traces"
    else:
        errors = [(float(h["value"]), ci_se(h)) for h in usable]
        errors = [(v, e) for v, e in errors if e is not None and e > 0]
        se_now = ci_se(row)
        if not errors or se_now is None or se_now <= 0:
            return BaselineTest(None, len(usable), None, None, f"{rule.metric} has no CI here or in its baseline")
        weights = [1.0 / (e * e) for _, e in errors]
        base = math.fsum(w * v for w, (v, _) in zip(weights, errors, strict=True)) / math.fsum(weights)
        se = math.sqrt(se_now**2 + 1.0 / math.fsum(weights))
        how = f"z-test on the CIs of {len(errors)} baseline intervals"
    effect = sign * (float(value) - base)
    p_value = 1.0 if se == 0 and effect <= 0 else (0.0 if se == 0 else float(norm.sf(effect / se)))
    return BaselineTest(base, len(usable), effect, p_value, how)
