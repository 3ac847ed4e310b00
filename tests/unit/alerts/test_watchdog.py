"""The watchdog: a monitor that stopped producing intervals pages someone, once per episode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from genai_flywheel.alerts.watchdog import check, freshness
from genai_flywheel.config import AlertRule
from genai_flywheel.metrics import MetricsStore
from genai_flywheel.metrics.aggregate import metrics_schema

T0 = datetime(2026, 11, 20, tzinfo=UTC)
SIX = timedelta(hours=6)
HOUR = timedelta(hours=1)
STALE = AlertRule(name="stalled", kind="stale", threshold=12, severity="critical")


def _store(root: Path, start: datetime) -> None:
    MetricsStore(root).write_partition(
        pa.Table.from_pylist(
            [{"app": "bot", "interval_start": start, "interval_end": start + SIX, "metric": "volume", "value": 5.0,
              "n": 5, "ci_low": None, "ci_high": None}],
            schema=metrics_schema(),
        )
    )  # fmt: skip


def _check(root: Path, now: datetime, renotify: timedelta = timedelta(hours=24)) -> list[tuple[str, str]]:
    notes = check(root, "bot", [STALE], SIX, now - HOUR, now, renotify)
    return [(n.rule, n.state) for n in notes]


def test_fires_when_the_newest_interval_is_too_old_and_resolves_when_the_monitor_catches_up(tmp_path: Path) -> None:
    _store(tmp_path, T0)  # ends at 06:00
    assert freshness(tmp_path, "bot", SIX, T0 + 10 * HOUR).delay_hours == pytest.approx(4.0)
    assert _check(tmp_path, T0 + 12 * HOUR) == []  # 6 h behind: fine
    assert _check(tmp_path, T0 + 19 * HOUR) == [("stalled", "firing")]  # 13 h behind
    assert _check(tmp_path, T0 + 20 * HOUR) == []  # still firing: notified once
    assert _check(tmp_path, T0 + 44 * HOUR) == [("stalled", "still_firing")]  # after renotify_after
    _store(tmp_path, T0 + 40 * HOUR)
    assert _check(tmp_path, T0 + 47 * HOUR) == [("stalled", "resolved")]


def test_a_rerun_of_a_check_returns_its_notification_again_with_the_same_id(tmp_path: Path) -> None:
    _store(tmp_path, T0)
    first = check(tmp_path, "bot", [STALE], SIX, T0 + 18 * HOUR, T0 + 19 * HOUR, timedelta(hours=24))
    again = check(tmp_path, "bot", [STALE], SIX, T0 + 18 * HOUR, T0 + 19 * HOUR, timedelta(hours=24))
    assert [n.id for n in again] == [n.id for n in first] and len(first) == 1
    assert "check the monitor DAG" in first[0].reason


def test_nothing_stored_yet_is_not_an_outage_and_other_rules_are_ignored(tmp_path: Path) -> None:
    assert _check(tmp_path, T0) == []
    threshold = AlertRule(name="errors", metric="error_rate", op=">", threshold=0.1)
    assert check(tmp_path, "bot", [threshold], SIX, T0, T0 + HOUR, SIX) == []


def test_the_monitor_alert_stage_leaves_stale_rules_to_the_watchdog(tmp_path: Path) -> None:
    from genai_flywheel.alerts.state import process_interval

    metrics = metrics_schema().empty_table()
    assert process_interval(tmp_path, "bot", metrics, [STALE], T0, T0 + SIX, SIX) == []


def test_a_stale_rule_takes_only_its_delay() -> None:
    with pytest.raises(ValueError, match="a stale rule takes only threshold"):
        AlertRule(name="s", kind="stale", threshold=12, metric="volume")
    with pytest.raises(ValueError, match="a stale rule needs threshold"):
        AlertRule(name="s", kind="stale")


def test_the_watchdog_use_case_takes_the_interval_length_from_the_monitor_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_flywheel import pipeline
    from genai_flywheel.config import load_config

    root = Path(__file__).resolve().parents[3]
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(tmp_path))
    cfg = load_config(root / "flywheel.yaml")  # a 6-hour schedule and monitor_stalled after 18 h
    app = cfg.applications[0]
    MetricsStore(tmp_path).write_partition(
        pa.Table.from_pylist(
            [{"app": app.name, "interval_start": T0, "interval_end": T0 + SIX, "metric": "volume", "value": 5.0,
              "n": 5, "ci_low": None, "ci_high": None}],
            schema=metrics_schema(),
        )
    )  # fmt: skip
    quiet = pipeline.watchdog(app.name, T0 + 23 * HOUR, T0 + 24 * HOUR, config=cfg)
    late = pipeline.watchdog(app.name, T0 + 24 * HOUR, T0 + 25 * HOUR, config=cfg)
    assert quiet["notifications"] == [] and late["firing"] == 1
    assert late["notifications"][0]["rule"] == "monitor_stalled" and late["notifications"][0]["value"] == 19.0
