"""CI-aware rule evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from genai_flywheel.alerts.rules import evaluate_rules
from genai_flywheel.config import AlertRule
from genai_flywheel.exceptions import DataContractError
from genai_flywheel.metrics import stats
from genai_flywheel.metrics.aggregate import metrics_schema

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def metrics_table(rows: list[dict[str, Any]], start: datetime = T0) -> pa.Table:
    schema = metrics_schema()
    full = [
        {"app": "bot", "interval_start": start, "interval_end": start + timedelta(hours=1),
         "ci_low": None, "ci_high": None, **row}
        for row in rows
    ]  # fmt: skip
    return pa.Table.from_arrays(
        [pa.array([r[name] for r in full], schema.field(name).type) for name in schema.names], schema=schema
    )


def rate_row(metric: str, successes: int, n: int) -> dict[str, Any]:
    low, high = stats.wilson_interval(successes, n)
    return {"metric": metric, "value": successes / n, "n": n, "ci_low": low, "ci_high": high}


def rule(metric: str, op: str, threshold: float, min_samples: int = 30) -> AlertRule:
    return AlertRule(name="r", metric=metric, op=op, threshold=threshold, min_samples=min_samples)


def test_small_sample_does_not_fire_although_the_estimate_is_beyond_the_threshold() -> None:
    # 12 errors in 40 traces: 30 % > 20 %, but the 95 % CI [0.18, 0.46] still reaches 20 %.
    [ev] = evaluate_rules(metrics_table([rate_row("error_rate", 12, 40)]), [rule("error_rate", ">", 0.2)])
    assert ev.state == "ok"
    assert ev.value == pytest.approx(0.3) and ev.ci_low < 0.2
    assert "estimate" in ev.reason


def test_large_sample_with_the_same_rate_fires() -> None:
    [ev] = evaluate_rules(metrics_table([rate_row("error_rate", 300, 1000)]), [rule("error_rate", ">", 0.2)])
    assert ev.state == "firing" and ev.ci_low > 0.2 and ev.n == 1000


def test_less_than_rules_use_the_upper_bound() -> None:
    table = metrics_table([rate_row("scorer.rel.pass_rate", 60, 100), rate_row("feedback.t.positive_rate", 7, 10)])
    rules = [
        AlertRule(name="quality", metric="scorer.rel.pass_rate", op="<", threshold=0.8),
        AlertRule(name="users", metric="feedback.t.positive_rate", op="<=", threshold=0.8, min_samples=5),
    ]
    quality, users = evaluate_rules(table, rules)
    assert quality.state == "firing" and quality.ci_high < 0.8
    assert users.state == "ok" and users.ci_high > 0.8  # 0.7 < 0.8 but only 10 answers


def test_below_min_samples_is_insufficient_data() -> None:
    [ev] = evaluate_rules(metrics_table([rate_row("error_rate", 20, 20)]), [rule("error_rate", ">", 0.1)])
    assert ev.state == "insufficient_data" and "min_samples=30" in ev.reason


def test_missing_metric_and_null_value_are_insufficient_data() -> None:
    table = metrics_table([{"metric": "latency_p50_ms", "value": None, "n": 0}])
    missing, empty = evaluate_rules(table, [rule("latncy_p95_ms", ">", 1.0), rule("latency_p50_ms", ">", 1.0)])
    assert missing.state == "insufficient_data" and "latncy_p95_ms" in missing.reason and missing.n == 0
    assert empty.state == "insufficient_data" and "no value" in empty.reason
    [nothing] = evaluate_rules(metrics_schema().empty_table(), [rule("volume", "<", 1.0, min_samples=1)])
    assert nothing.state == "insufficient_data"


def test_estimate_without_ci_is_not_judged_on_its_point_value() -> None:
    # p99 over 100 traces has no distribution-free CI (needs n >= 368): no alert on a lucky outlier.
    table = metrics_table([{"metric": "latency_p99_ms", "value": 9000.0, "n": 100}])
    [ev] = evaluate_rules(table, [rule("latency_p99_ms", ">", 5000.0)])
    assert ev.state == "insufficient_data" and "no 95% CI" in ev.reason


def test_exact_metrics_fall_back_to_the_point_estimate() -> None:
    table = metrics_table(
        [{"metric": "volume", "value": 12.0, "n": 12}, {"metric": "cost_usd", "value": 51.0, "n": 900}]
    )
    low_volume, cost = evaluate_rules(table, [rule("volume", "<", 100.0, min_samples=1), rule("cost_usd", ">=", 50.0)])
    assert low_volume.state == "firing" and "exact" in low_volume.reason
    assert cost.state == "firing"
    [fine] = evaluate_rules(table, [rule("cost_usd", ">", 60.0)])
    assert fine.state == "ok"


def test_evaluation_carries_the_rule() -> None:
    r = AlertRule(name="slow", metric="volume", op=">", threshold=5, min_samples=1, severity="critical")
    [ev] = evaluate_rules(metrics_table([{"metric": "volume", "value": 10.0, "n": 10}]), [r])
    assert (ev.rule, ev.metric, ev.op, ev.threshold, ev.severity, ev.min_samples) == (
        "slow", "volume", ">", 5.0, "critical", 1,
    )  # fmt: skip


def test_several_intervals_or_duplicates_are_rejected() -> None:
    two = pa.concat_tables(
        [metrics_table([{"metric": "volume", "value": 1.0, "n": 1}], T0 + timedelta(hours=h)) for h in range(2)]
    )
    with pytest.raises(DataContractError, match="one interval at a time"):
        evaluate_rules(two, [rule("volume", ">", 0.0)])
    dup = metrics_table([{"metric": "volume", "value": 1.0, "n": 1}] * 2)
    with pytest.raises(DataContractError, match="twice"):
        evaluate_rules(dup, [rule("volume", ">", 0.0)])
