"""Alert rules beyond a fixed threshold: no-data floors, hysteresis, sustained conditions, baselines."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from genai_flywheel.alerts.baseline import baseline_starts
from genai_flywheel.alerts.rules import evaluate_rule
from genai_flywheel.alerts.state import AlertState, process_interval, update_state
from genai_flywheel.config import AlertRule, Baseline
from genai_flywheel.metrics import MetricsStore
from genai_flywheel.metrics.aggregate import metrics_schema
from genai_flywheel.metrics.stats import wilson_interval

T0 = datetime(2026, 11, 20, tzinfo=UTC)
SIX = timedelta(hours=6)


def row(value: float | None, n: int, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"value": value, "n": n, "ci_low": low, "ci_high": high}


def rate(successes: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(successes, n)
    return row(successes / n, n, low, high)


def rule(**kw: Any) -> AlertRule:
    return AlertRule.model_validate({"name": "r", **kw})


# --- no data ------------------------------------------------------------------------------------------


def test_no_data_fires_on_an_empty_or_thin_interval_without_min_samples() -> None:
    floor = rule(kind="no_data", threshold=50)
    assert evaluate_rule(floor, row(0.0, 0)).state == "firing"
    assert evaluate_rule(floor, None).state == "firing"  # no metrics at all
    thin = evaluate_rule(floor, row(12.0, 12))
    assert thin.state == "firing" and "below the floor 50" in thin.reason
    assert evaluate_rule(floor, row(50.0, 50)).state == "ok"
    # The default floor is one trace: only a silent interval fires.
    assert evaluate_rule(rule(kind="no_data"), row(1.0, 1)).state == "ok"


def test_a_dead_interval_pages_through_the_alert_stage(tmp_path: Path) -> None:
    empty = metrics_schema().empty_table()
    notes = process_interval(
        tmp_path, "bot", empty, [rule(kind="no_data", severity="critical")], T0, T0 + SIX, timedelta(days=1)
    )
    assert [(n.rule, n.state) for n in notes] == [("r", "firing")]


# --- hysteresis and sustained ---------------------------------------------------------------------------


def _replay(r: AlertRule, rows: list[dict[str, Any]], order: list[int] | None = None) -> list[tuple[int, str]]:
    """Process interval i with rows[i] (in ``order``); the (interval, notification) pairs of the final replay."""
    state = AlertState.empty("bot")
    sent: dict[int, list[str]] = {}
    for i in order or list(range(len(rows))):
        state, _, notes = update_state(state, [evaluate_rule(r, rows[i])], T0 + i * SIX, T0 + (i + 1) * SIX, SIX * 100)
        sent[i] = [n.state for n in notes]
    return [(i, s) for i in sorted(sent) for s in sent[i]]


def test_hysteresis_resolves_only_past_the_resolve_threshold() -> None:
    r = rule(metric="error_rate", op=">", threshold=0.05, min_samples=30, resolve_threshold=0.03)
    rows = [rate(10, 1000), rate(80, 1000), rate(45, 1000), rate(40, 1000), rate(20, 1000), rate(45, 1000)]
    # 8% fires; 4.5% and 4% are no longer significantly above 5% but not below 3%: still firing; 2% resolves.
    assert _replay(r, rows) == [(1, "firing"), (4, "resolved")]
    plain = rule(metric="error_rate", op=">", threshold=0.05, min_samples=30)
    assert _replay(plain, rows) == [(1, "firing"), (2, "resolved")]


def test_sustained_fires_after_k_of_the_last_n_intervals_and_replays_in_interval_order() -> None:
    r = rule(metric="error_rate", op=">", threshold=0.05, min_samples=30, sustained={"k": 2, "n": 3})
    bad, good = rate(90, 1000), rate(10, 1000)
    rows = [bad, good, good, bad, good, bad, bad, good]
    # A lone bad interval only pends; two of the last three fire (interval 5: 3 and 5).
    assert _replay(r, rows) == [(5, "firing"), (7, "resolved")]
    shuffled = list(range(len(rows)))
    random.Random(4).shuffle(shuffled)
    assert _replay(r, rows, shuffled)[-1] == (7, "resolved")
    state = AlertState.empty("bot")
    for i in shuffled:
        state, events, _ = update_state(state, [evaluate_rule(r, rows[i])], T0 + i * SIX, T0 + (i + 1) * SIX, SIX)
    kinds = [e.kind for e in _events_in_order(state)]
    assert kinds == ["pending", "ok", "ok", "pending", "ok", "fired", "still_firing", "resolved"]


def _events_in_order(state: AlertState) -> list:
    from genai_flywheel.alerts.state import replay

    return replay(state, SIX)[0]


# --- baseline -------------------------------------------------------------------------------------------


def _store_history(root: Path, metric: str, rows: list[dict[str, Any]], starts: list[datetime]) -> None:
    store = MetricsStore(root)
    schema = metrics_schema()
    for start, r in zip(starts, rows, strict=True):
        store.write_partition(
            pa.Table.from_pylist(
                [{"app": "bot", "interval_start": start, "interval_end": start + SIX, "metric": metric, **r}],
                schema=schema,
            )
        )


def test_baseline_takes_the_same_hours_of_the_last_days() -> None:
    stored = [T0 - timedelta(hours=6 * k) for k in range(1, 40)]
    spec = Baseline(days=7)
    chosen = baseline_starts(T0, spec, stored)
    assert chosen and all(s.hour == 0 and T0 - timedelta(days=7) <= s < T0 for s in chosen)
    assert len(chosen) == 7
    assert len(baseline_starts(T0, Baseline(days=2, same_hour=False), stored)) == 8


def test_baseline_rule_fires_on_a_significant_worsening_of_a_share(tmp_path: Path) -> None:
    starts = [T0 - timedelta(days=d) for d in range(1, 8)]
    _store_history(tmp_path, "error_rate", [rate(10, 500)] * 7, starts)  # 2 % for a week
    r = rule(kind="baseline", metric="error_rate", op=">", min_samples=30, baseline={"min_effect": 0.01})
    now = _metrics(rate(24, 400))  # 6 %
    notes = process_interval(tmp_path, "bot", now, [r], T0, T0 + SIX, SIX)
    assert [(n.rule, n.state) for n in notes] == [("r", "firing")]
    assert "significantly higher than its baseline" in notes[0].reason and "0.02" in notes[0].reason
    # Within the noise, or worse by less than min_effect: no alert.
    assert evaluate_rule(r, rate(11, 400), [rate(10, 500)] * 7).state == "ok"
    small = rule(kind="baseline", metric="error_rate", op=">", min_samples=30, baseline={"min_effect": 0.1})
    assert evaluate_rule(small, rate(24, 400), [rate(10, 500)] * 7).state == "ok"
    # Better than the baseline is never an alert in the worse direction.
    assert evaluate_rule(r, rate(0, 400), [rate(10, 500)] * 7).state == "ok"


def test_baseline_rule_on_an_estimate_uses_its_ci_and_needs_enough_intervals() -> None:
    r = rule(kind="baseline", metric="latency_p95_ms", op=">", min_samples=30, baseline={"min_intervals": 3})
    history = [row(1000.0 + 10 * k, 500, 950.0 + 10 * k, 1060.0 + 10 * k) for k in range(5)]
    slow = evaluate_rule(r, row(1600.0, 500, 1500.0, 1700.0), history)
    assert slow.state == "firing" and "z-test on the CIs of 5 baseline intervals" in slow.reason
    assert evaluate_rule(r, row(1040.0, 500, 990.0, 1100.0), history).state == "ok"
    short = evaluate_rule(r, row(1600.0, 500, 1500.0, 1700.0), history[:2])
    assert short.state == "insufficient_data" and "min_intervals=3" in short.reason


def _metrics(r: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"app": "bot", "interval_start": T0, "interval_end": T0 + SIX, "metric": "error_rate", **r}],
        schema=metrics_schema(),
    )


# --- configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"metric": "error_rate", "op": ">", "threshold": 0.1, "sustained": {"k": 3, "n": 2}}, "sustained.k 3"),
        ({"kind": "no_data", "metric": "error_rate"}, "a no_data rule watches volume"),
        ({"metric": "error_rate", "op": ">", "threshold": 0.1, "baseline": {"days": 7}}, "kind: baseline rules"),
        ({"metric": "error_rate", "op": ">"}, "a threshold rule needs threshold"),
        ({"kind": "baseline", "metric": "error_rate"}, "a baseline rule needs op"),
        ({"metric": "error_rate", "op": ">", "threshold": 0.05, "resolve_threshold": 0.08}, "good side"),
        ({"kind": "baseline", "metric": "error_rate", "op": ">", "resolve_threshold": 0.01}, "no longer"),
    ],
)
def test_rule_config_errors_name_the_fix(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**data)


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ("latency_p96_ms", "'latency_p96_ms' is not a metric the monitor computes; use one of: volume"),
        ("scorer.relevancy.pass_rate", "names scorer 'relevancy', which is not configured"),
        ("error_rate.", "is not a metric the monitor computes"),
    ],
)
def test_config_validate_rejects_a_rule_on_an_unknown_metric(metric: str, message: str) -> None:
    from pathlib import Path

    import yaml

    from genai_flywheel.config import parse_config
    from genai_flywheel.exceptions import ConfigError

    data = yaml.safe_load((Path(__file__).resolve().parents[3] / "flywheel.yaml").read_text())
    data["applications"][0]["alerts"].append({"name": "typo", "metric": metric, "op": ">", "threshold": 1})
    n = len(data["applications"][0]["alerts"]) - 1
    with pytest.raises(ConfigError, match=rf"alerts\[{n}\]\.metric \(rule 'typo'\): .*{message}"):
        parse_config(data)
    data["applications"][0]["alerts"][-1]["metric"] = "span.CHAT_MODEL.latency_p95_ms"
    assert parse_config(data).applications[0].alerts[-1].metric == "span.CHAT_MODEL.latency_p95_ms"


def test_the_monitor_leaves_calibration_rules_to_the_review_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from genai_flywheel import pipeline
    from genai_flywheel.alerts.state import AlertStore
    from genai_flywheel.config import parse_config
    from genai_flywheel.workspace import IntervalWorkspace, atomic_write_parquet

    data = yaml.safe_load((Path(__file__).resolve().parents[3] / "flywheel.yaml").read_text())
    app = data["applications"][0]
    app["alerts"].append(
        {"name": "relevance_drift", "metric": "calibration.relevance.agreement", "op": "<", "threshold": 0.7}
    )
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(tmp_path))
    cfg = parse_config(data)
    ws = IntervalWorkspace.of(tmp_path, app["name"], T0, T0 + SIX)
    atomic_write_parquet(metrics_schema().empty_table(), ws.path("metrics.parquet"))
    pipeline.alert(app["name"], T0, T0 + SIX, config=cfg)
    rules = {r.rule for record in AlertStore(tmp_path).load(app["name"]).records for r in record.evaluations}
    assert "relevance_drift" not in rules and "error_rate" in rules
