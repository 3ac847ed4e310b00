"""Smoke test of benchmarks/alerting_week.py on a tiny setting (1 day, 200 traces, one seed): the real bulk
load, the whole monitor over each 6-hour interval, and the matching of its alert events against the
simulator's ground truth, with and without planted incidents. Asserts the report's structure and that the
matching agrees with the stored alert events, never a timing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from benchmarks import alerting_week as week

SEED, DAYS, PER_DAY = 31, 1, 200
INCIDENTS = {"smart_sync_wrong_answers", "error_spike", "chat_latency_regression"}


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, tuple[dict, Path]]:
    workdir = tmp_path_factory.mktemp("week")
    return {
        planted: (week.run_week(SEED, days=DAYS, per_day=PER_DAY, incidents=planted, workdir=workdir), workdir)
        for planted in (True, False)
    }


def _firing(workdir: Path, kind: str) -> list[tuple[str, str]]:
    from genai_flywheel.report.data import load_events

    events = load_events(workdir / f"seed-{SEED}-{kind}" / "data", "support-assistant")
    return [(e["interval_start"].isoformat(), e["rule"]) for e in events if e["evaluation"] == "firing"]


def test_every_planted_incident_is_matched_against_the_alerts(weeks: dict[bool, tuple[dict, Path]]) -> None:
    w, workdir = weeks[True]
    assert (w["seed"], w["n_traces"], w["n_intervals"], w["schedule"]) == (SEED, DAYS * PER_DAY, 4, "0 */6 * * *")
    assert {d["incident"] for d in w["incidents"]} == INCIDENTS
    six_hours = timedelta(hours=6)
    firing = _firing(workdir, "incidents")
    for d in w["incidents"]:
        start = datetime.fromisoformat(d["start"])
        first = datetime.fromisoformat(d["first_interval"])
        assert first <= start < first + six_hours  # the interval holding the incident's start
        if d["first_alert"] is None:
            assert d["late"] is None and d["rules"] == [] and d["rules_during_incident"] == []
        else:
            assert d["late"] == (datetime.fromisoformat(d["first_alert"]) - first) // six_hours >= 0
            assert d["rules"] and set(d["rules"]) <= set(d["rules_during_incident"])
            assert all((d["first_alert"], rule.split("[")[0]) in firing for rule in d["rules"])
    # The Smart Sync wrong answers are alerted on this seed, in one of the incident's own intervals.
    smart = next(d for d in w["incidents"] if d["incident"] == "smart_sync_wrong_answers")
    assert smart["late"] is not None
    counts = w["false_alert_counts"]
    assert counts["app"] + counts["segment"] == len(w["false_alerts"]) == sum(counts["by_rule"].values())
    json.dumps(w)  # what --json writes


def test_a_clean_week_has_no_incident_and_counts_every_firing_as_false(weeks: dict[bool, tuple[dict, Path]]) -> None:
    w, workdir = weeks[False]
    assert w["incidents"] == [] and w["incidents_planted"] is False
    assert (w["n_traces"], w["n_intervals"]) == (DAYS * PER_DAY, 4)
    assert [(a["interval_start"], a["rule"]) for a in w["false_alerts"]] == _firing(workdir, "clean")
    # The same traffic, less the incidents: no Smart Sync wrong answer, so no satisfaction alert.
    assert "user_satisfaction" not in w["false_alert_counts"]["by_rule"]
