"""benchmarks/alerting_week.py's pure parts: the schedule's intervals, matching alert events against the
planted incidents, the printed tables and the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from benchmarks import alerting_week as week

DAY = datetime(2026, 11, 19, tzinfo=UTC)
H = timedelta(hours=1)
INTERVALS = week.schedule_intervals("0 */6 * * *", DAY, DAY + 24 * H)
TRUTH = {
    "incidents": {
        "error_spike": {"kind": "errors", "start": (DAY + 4 * H).isoformat(), "end": (DAY + 6 * H).isoformat()},
        "smart_sync_wrong_answers": {
            "kind": "quality",
            "start": (DAY + 12 * H).isoformat(),
            "end": (DAY + 24 * H).isoformat(),
        },
    }
}


def event(
    hour: int, rule: str, evaluation: str = "firing", segment: str | None = None, label: str | None = None
) -> dict[str, Any]:
    start = DAY + hour * H
    return {
        "dimension": "topic" if segment else None,
        "label": label,
        "interval_start": start,
        "interval_end": start + 6 * H,
        "rule": rule,
        "evaluation": evaluation,
        "segment": segment,
        "metric": "m",
        "value": 0.5,
        "ci_low": 0.4,
        "ci_high": 0.6,
        "n": 40,
        "op": "<",
        "threshold": 0.8,
    }


def test_intervals_of_the_schedule_inside_the_period() -> None:
    assert INTERVALS == [(DAY + h * H, DAY + (h + 6) * H) for h in (0, 6, 12, 18)]
    # A period that does not start or end on a tick keeps only the whole intervals inside it.
    assert week.schedule_intervals("0 */6 * * *", DAY + H, DAY + 20 * H) == INTERVALS[1:3]


def test_an_incident_alerted_late_and_one_on_time_and_the_false_alerts() -> None:
    events = [
        event(0, "error_rate"),  # the spike's first (and only) interval: on time
        event(0, "latency_p95", "ok"),
        event(6, "error_rate"),  # still firing after the spike: a false alert
        event(12, "user_satisfaction", "insufficient_data"),
        event(18, "user_satisfaction"),  # Smart Sync: one interval late
        event(18, "relevance_pass_rate", segment="c3", label="how do I turn on smart sync on my phone and laptop?"),
    ]
    out = week.match_alerts(TRUTH, INTERVALS, events, "support-assistant")
    by_name = {d["incident"]: d for d in out["incidents"]}
    spike, smart = by_name["error_spike"], by_name["smart_sync_wrong_answers"]
    assert (spike["first_interval"], spike["first_alert"], spike["late"]) == (DAY.isoformat(), DAY.isoformat(), 0)
    assert spike["rules"] == ["error_rate"]
    assert smart["first_interval"] == (DAY + 12 * H).isoformat()
    assert (smart["first_alert"], smart["late"]) == ((DAY + 18 * H).isoformat(), 1)
    # A per-segment alert is named with its segment.
    assert smart["rules"] == [
        'relevance_pass_rate[topic=c3 "how do I turn on smart sync on my phone "]',
        "user_satisfaction",
    ]
    # Every rule's evaluation in the incident's first interval, firing or not.
    assert [(e["rule"], e["evaluation"], e["n"]) for e in smart["first_interval_evaluations"]] == [
        ("user_satisfaction", "insufficient_data", 40)
    ]
    assert [e["rule"] for e in spike["first_interval_evaluations"]] == ["error_rate", "latency_p95"]
    assert [(a["interval_start"], a["rule"]) for a in out["false_alerts"]] == [
        ((DAY + 6 * H).isoformat(), "error_rate")
    ]
    assert out["false_alert_counts"] == {"app": 1, "segment": 0, "by_rule": {"error_rate": 1}}


def test_a_missed_incident_and_per_segment_false_alerts_on_a_clean_week() -> None:
    missed = week.match_alerts(TRUTH, INTERVALS, [event(0, "latency_p95", "ok")], "support-assistant")
    assert all(d["first_alert"] is None and d["late"] is None and d["rules"] == [] for d in missed["incidents"])
    clean = {"incidents": {}}
    events = [
        event(6, "error_rate"),
        event(6, "relevance_pass_rate", segment="billing", label="billing"),
        event(12, "x", "ok"),
    ]
    out = week.match_alerts(clean, INTERVALS, events, "support-assistant")
    assert out["incidents"] == []
    assert out["false_alert_counts"] == {
        "app": 1,
        "segment": 1,
        "by_rule": {"error_rate": 1, "relevance_pass_rate": 1},
    }
    assert [(a["dimension"], a["segment"]) for a in out["false_alerts"]] == [(None, None), ("topic", "billing")]
    assert week.alert_label(events[1]) == "relevance_pass_rate[topic=billing]"  # a label that says no more


def test_report_tables_and_summary() -> None:
    w = {
        "seed": 31,
        "incidents_planted": True,
        "n_intervals": 4,
        "load_seconds": 3.0,
        "monitor_seconds": 20.0,
        "seconds_per_interval": 5.0,
        **week.match_alerts(TRUTH, INTERVALS, [event(0, "error_rate"), event(6, "error_rate")], "support-assistant"),
    }
    text = week.format_report([w])
    assert "error_spike" in text and "missed" in text and "error_rate x1" in text and "5.0 s/interval" in text
    assert week.summarize([w]) == {
        "incidents": 2,
        "alerted_in_first_interval": 1,
        "late": 0,
        "missed": 1,
        "false_alerts_app": 1,
        "false_alerts_segment": 0,
    }


def test_command_line() -> None:
    args = week.parse_args([])
    assert (args.seeds, args.days, args.per_day, args.clean) == (week.DEFAULT_SEEDS, 7, 800, False)
    assert week.parse_args(["--seeds", "4, 5", "--clean"]).seeds == (4, 5)
    for argv in (["--seeds", "a"], ["--seeds", ""], ["--days", "0"], ["--per-day", "0"]):
        with pytest.raises(SystemExit):
            week.parse_args(argv)


def test_default_seeds_are_seeds_no_test_simulates_with() -> None:
    import re

    pattern = re.compile(r"\b(?:seed|SEED)\s*=\s*(\d+)")
    used = {
        int(n)
        for path in (week.ROOT / "tests").rglob("*.py")
        if path.name != "test_alerting_week.py"
        for n in pattern.findall(path.read_text())
    }
    assert {7, 11} <= used  # the scan finds the simulator seeds the tests use
    assert not used & set(week.DEFAULT_SEEDS)
