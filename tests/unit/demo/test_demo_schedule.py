"""The traffic plan: timestamps, sessions, incident windows, deterministic ids."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flywheel_demo.queries import EMAIL_RE, PHONE_RE
from flywheel_demo.schedule import (
    PROFILE,
    default_end,
    diurnal_weight,
    incident_windows,
    plan_traffic,
    to_ms,
    trace_id_for,
    utc,
)

END = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
START = END - timedelta(days=3)
PLANS, WINDOWS = plan_traffic(experiment="demo", start=START, end=END, n_traces=1200, seed=7)


def test_exact_count_sorted_and_inside_the_period() -> None:
    assert len(PLANS) == 1200
    stamps = [p.timestamp_ms for p in PLANS]
    assert stamps == sorted(stamps)
    assert to_ms(START) <= stamps[0] and stamps[-1] < to_ms(END)
    assert [p.index for p in PLANS] == list(range(1200))


def test_same_arguments_same_plan_other_seed_other_plan() -> None:
    again, _ = plan_traffic(experiment="demo", start=START, end=END, n_traces=1200, seed=7)
    assert again == PLANS
    other, _ = plan_traffic(experiment="demo", start=START, end=END, n_traces=1200, seed=8)
    assert [p.query.text for p in other] != [p.query.text for p in PLANS]


def test_trace_ids_are_deterministic_unique_and_namespaced() -> None:
    ids = [p.trace_id for p in PLANS]
    assert all(re.fullmatch(r"tr-[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    other, _ = plan_traffic(experiment="demo-2", start=START, end=END, n_traces=1200, seed=7)
    assert not set(ids) & {p.trace_id for p in other}
    assert trace_id_for("ns", 3) == trace_id_for("ns", 3) != trace_id_for("ns", 4)


def test_incident_windows_three_days() -> None:
    w = incident_windows(START, END)
    assert w == WINDOWS
    assert (w.smart_sync.start, w.smart_sync.end) == (END - timedelta(days=1), END)  # the whole last day
    assert w.error_spike.end - w.error_spike.start == timedelta(hours=PROFILE.spike_hours)
    assert w.latency.end - w.latency.start == timedelta(hours=PROFILE.latency_hours)
    assert START <= w.error_spike.start and w.error_spike.end <= START + timedelta(days=1)
    assert START + timedelta(days=1) <= w.latency.start and w.latency.end <= w.smart_sync.start
    for win in (w.error_spike, w.latency):
        assert (win.start - START) % timedelta(hours=1) == timedelta(0)
        # Placed on busy hours, so the incident touches enough requests to be measured.
        assert diurnal_weight(win.start.hour) > 0.6


def test_incident_windows_one_day_and_too_short() -> None:
    end = datetime(2026, 1, 2, 12, tzinfo=UTC)
    w = incident_windows(end - timedelta(days=1), end)
    assert w.smart_sync.start == end - timedelta(hours=12)
    assert w.error_spike.end <= w.latency.start and w.latency.end <= w.smart_sync.start
    with pytest.raises(ValueError, match="shorter than 12 hours"):
        incident_windows(end - timedelta(hours=6), end)


def test_flags_follow_the_windows() -> None:
    for p in PLANS:
        assert p.incident_index == WINDOWS.smart_sync.contains_ms(p.timestamp_ms)
        assert p.in_error_spike == WINDOWS.error_spike.contains_ms(p.timestamp_ms)
        assert p.in_latency_window == WINDOWS.latency.contains_ms(p.timestamp_ms)


def test_without_incidents_the_same_traffic_is_planned_clean() -> None:
    clean, windows = plan_traffic(
        experiment="demo", start=START, end=END, n_traces=1200, seed=7, profile=replace(PROFILE, incidents=False)
    )
    assert windows == WINDOWS  # where the incidents would have been
    assert not any(p.incident_index or p.in_error_spike or p.in_latency_window for p in clean)
    # The same requests at the same times, from the same sessions and users.
    same = ("trace_id", "timestamp_ms", "query", "session_id", "user_id", "turn")
    assert [[getattr(p, f) for f in same] for p in clean] == [[getattr(p, f) for f in same] for p in PLANS]
    # Outside the error spike every request is planned alike, less the incidents' effects.
    outside = [p for p in PLANS if not p.in_error_spike]
    assert len(outside) > 1100 and sum(p.incident_index for p in outside) > 300
    for p in outside:
        slowed = p.in_latency_window and p.fault != "rate_limit"  # a rate limit fails fast either way
        chat_ms = p.chat_ms / PROFILE.latency_factor if slowed else p.chat_ms
        expected = replace(p, incident_index=False, in_latency_window=False, chat_ms=chat_ms)
        assert clean[p.index] == replace(expected, chat_ms=pytest.approx(chat_ms))
    # In the spike's hours: the background error rate.
    spike = [p for p in clean if WINDOWS.error_spike.contains_ms(p.timestamp_ms)]
    assert len(spike) >= 30 and sum(p.fault is not None for p in spike) / len(spike) < 0.15


def test_latency_regression_and_error_spike() -> None:
    ok = [p for p in PLANS if p.fault is None]
    slow = statistics.median(p.chat_ms for p in ok if p.in_latency_window)
    normal = statistics.median(p.chat_ms for p in ok if not p.in_latency_window)
    assert 2.5 < slow / normal < 6.0
    spike = [p for p in PLANS if p.in_error_spike]
    rest = [p for p in PLANS if not p.in_error_spike]
    assert len(spike) >= 30
    spike_rate = sum(p.fault is not None for p in spike) / len(spike)
    base_rate = sum(p.fault is not None for p in rest) / len(rest)
    assert spike_rate > 0.15 and base_rate < 0.05 and base_rate > 0
    assert Counter(p.fault for p in rest if p.fault).keys() == {"rate_limit", "retrieval_timeout"}
    for p in PLANS:
        if p.fault == "retrieval_timeout":
            assert p.retrieval_ms >= 5000
        if p.fault == "rate_limit":
            assert p.chat_ms < 100


def test_diurnal_volume() -> None:
    by_hour = Counter(datetime.fromtimestamp(p.timestamp_ms / 1000, tz=UTC).hour for p in PLANS)
    assert sum(by_hour[h] for h in (13, 14, 15, 16)) > 3 * sum(by_hour[h] for h in (1, 2, 3, 4))


def test_query_mix_pii_sessions_users() -> None:
    features = Counter(p.query.feature for p in PLANS)
    assert 0.10 < features["smart-sync"] / len(PLANS) < 0.20
    pii = [p for p in PLANS if p.query.has_pii]
    assert 0.01 < len(pii) / len(PLANS) < 0.08
    assert all(EMAIL_RE.search(p.query.text) or PHONE_RE.search(p.query.text) for p in pii)
    assert not any(EMAIL_RE.search(p.query.text) for p in PLANS if not p.query.has_pii)
    sessions: dict[str, list] = defaultdict(list)
    for p in PLANS:
        sessions[p.session_id].append(p)
    assert len(sessions) < len(PLANS) * 0.8  # multi-turn sessions exist
    for turns in sessions.values():
        assert len({p.user_id for p in turns}) == 1
        assert sorted(p.turn for p in turns) == list(range(len(turns)))
    users = Counter(p.user_id for p in PLANS)
    assert 20 < len(users) <= 100 and users.most_common(1)[0][1] > 3 * statistics.median(users.values())


def test_time_helpers() -> None:
    now = datetime(2026, 5, 1, 13, 47, 12, 5, tzinfo=UTC)
    assert default_end(now) == datetime(2026, 5, 1, 13, tzinfo=UTC)
    assert utc(datetime(2026, 5, 1, 13)) == datetime(2026, 5, 1, 13, tzinfo=UTC)
    with pytest.raises(ValueError, match="n_traces must be >= 1"):
        plan_traffic(experiment="x", start=START, end=END, n_traces=0, seed=1)
