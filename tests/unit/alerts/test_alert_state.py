"""Alert state machine: notify once, re-notify, resolve, idempotent re-runs, out-of-order backfills."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_flywheel.alerts.payload import Notification
from genai_flywheel.alerts.rules import AlertEvaluation
from genai_flywheel.alerts.state import AlertState, AlertStore, process_interval, replay, update_state
from genai_flywheel.config import AlertRule
from genai_flywheel.exceptions import DataContractError, StoreError
from genai_flywheel.metrics.aggregate import metrics_schema

T0 = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def ev(state: str, rule: str = "errors", value: float = 0.3) -> AlertEvaluation:
    return AlertEvaluation(
        rule=rule, metric="error_rate", op=">", threshold=0.2, severity="critical", min_samples=30,
        state=state, value=value, ci_low=value - 0.05, ci_high=value + 0.05, n=500, reason=f"{state} reason",
    )  # fmt: skip


def run_hours(states: list[str], renotify_after: timedelta = DAY, state: AlertState | None = None):
    """Process hour h with evaluation states[h] in order; the notifications sent per hour."""
    state = state or AlertState.empty("bot")
    sent: list[list[tuple[str, str]]] = []
    for h, s in enumerate(states):
        state, _, notes = update_state(state, [ev(s)], T0 + h * HOUR, T0 + (h + 1) * HOUR, renotify_after)
        sent.append([(n.rule, n.state) for n in notes])
    return state, sent


def test_fires_once_and_does_not_repeat() -> None:
    state, sent = run_hours(["ok", "firing", "firing", "firing", "firing"])
    assert sent == [[], [("errors", "firing")], [], [], []]
    assert state.firing() == ["errors"]
    assert state.alerts["errors"].since == T0 + HOUR


def test_renotifies_after_the_interval_time_has_passed() -> None:
    _, sent = run_hours(["firing"] * 8, renotify_after=3 * HOUR)
    firing, again = [("errors", "firing")], [("errors", "still_firing")]
    assert sent == [firing, [], [], again, [], [], again, []]
    _, every = run_hours(["firing"] * 3, renotify_after=timedelta(0))
    assert every == [[("errors", "firing")], [("errors", "still_firing")], [("errors", "still_firing")]]


def test_resolves_once_and_refires_as_a_new_episode() -> None:
    state, sent = run_hours(["firing", "firing", "ok", "ok", "firing"])
    assert sent == [[("errors", "firing")], [], [("errors", "resolved")], [], [("errors", "firing")]]
    assert state.alerts["errors"].since == T0 + 4 * HOUR


def test_insufficient_data_changes_nothing() -> None:
    state, sent = run_hours(["firing", "insufficient_data", "insufficient_data", "ok"])
    assert sent == [[("errors", "firing")], [], [], [("errors", "resolved")]]
    _, quiet = run_hours(["insufficient_data", "ok"])
    assert quiet == [[], []]


def test_resolved_payload_describes_the_episode() -> None:
    state, _ = run_hours(["ok", "firing", "firing"])
    _, events, [note] = update_state(state, [ev("ok", value=0.1)], T0 + 3 * HOUR, T0 + 4 * HOUR, DAY)
    assert note.state == "resolved" and note.firing_since == T0 + HOUR and note.value == 0.1
    assert [(e.kind, e.status, e.notified) for e in events] == [("resolved", "ok", True)]


def test_rerunning_an_interval_is_idempotent() -> None:
    state, _ = run_hours(["ok", "firing"])
    again, events, notes = update_state(state, [ev("firing")], T0 + HOUR, T0 + 2 * HOUR, DAY)
    assert again.to_json() == state.to_json()
    assert [(n.state, n.id) for n in notes] == [("firing", notes[0].id)]
    _, _, notes_twice = update_state(again, [ev("firing")], T0 + HOUR, T0 + 2 * HOUR, DAY)
    assert [n.to_json() for n in notes_twice] == [n.to_json() for n in notes]  # same id: receivers dedupe
    assert len(events) == 1 and len(replay(again, DAY)[0]) == 2  # one event per (interval, rule), no duplicates


def test_rerun_with_changed_evaluations_replaces_the_record() -> None:
    state, _ = run_hours(["ok", "firing", "firing"])
    fixed, _, notes = update_state(state, [ev("ok")], T0 + HOUR, T0 + 2 * HOUR, DAY)
    assert notes == []  # hour 1 no longer fires ...
    _, all_notes = replay(fixed, DAY)
    assert [(n.state, n.interval_start) for n in all_notes] == [("firing", T0 + 2 * HOUR)]  # ... hour 2 does


def _pattern(hours: int, seed: int) -> list[list[AlertEvaluation]]:
    rng = random.Random(seed)
    choices = ["ok", "firing", "firing", "insufficient_data"]
    return [[ev(rng.choice(choices), "errors"), ev(rng.choice(choices), "latency")] for _ in range(hours)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_backfill_ends_like_in_order(seed: int) -> None:
    pattern = _pattern(48, seed)
    renotify = 5 * HOUR

    def process(order: list[int]) -> tuple[AlertState, dict[int, list[Notification]]]:
        state, per_hour = AlertState.empty("bot"), {}
        for h in order:
            state, _, notes = update_state(state, pattern[h], T0 + h * HOUR, T0 + (h + 1) * HOUR, renotify)
            per_hour[h] = notes
        return state, per_hour

    in_order, sent_in_order = process(list(range(48)))
    shuffled = list(range(48))
    random.Random(seed).shuffle(shuffled)
    backfilled, _ = process(shuffled)
    assert backfilled.to_json() == in_order.to_json()
    assert [n.to_json() for n in replay(backfilled, renotify)[1]] == [
        n.to_json() for h in range(48) for n in sent_in_order[h]
    ]
    # Re-running any interval of the backfilled state returns exactly what in-order processing sent for it.
    for h in (0, 17, 47):
        _, _, notes = update_state(backfilled, pattern[h], T0 + h * HOUR, T0 + (h + 1) * HOUR, renotify)
        assert [n.to_json() for n in notes] == [n.to_json() for n in sent_in_order[h]]
    assert sum(len(v) for v in sent_in_order.values()) > 4  # the pattern exercises the machine


def test_history_is_folded_and_old_backfills_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    pattern = _pattern(30, 9)
    folded, full = AlertState.empty("bot"), AlertState.empty("bot")
    for h in range(30):
        window = (pattern[h], T0 + h * HOUR, T0 + (h + 1) * HOUR, 4 * HOUR)
        folded, _, notes_folded = update_state(folded, *window, history=5 * HOUR)
        full, _, notes_full = update_state(full, *window, history=1000 * DAY)
        assert [n.to_json() for n in notes_folded] == [n.to_json() for n in notes_full]
    assert len(folded.records) == 6 and len(full.records) == 30
    assert folded.alerts == full.alerts and folded.baseline_until == T0 + 24 * HOUR
    same, events, notes = update_state(folded, pattern[3], T0 + 3 * HOUR, T0 + 4 * HOUR, 4 * HOUR, history=5 * HOUR)
    assert same is folded and events == [] and notes == []
    assert "older than the alert history" in caplog.text


def test_state_json_round_trip() -> None:
    state, _ = run_hours(["ok", "firing", "ok", "firing"])
    assert AlertState.from_json(state.to_json()) == state
    assert AlertState.from_json(state.to_json()).to_json() == state.to_json()


def test_update_state_validates_arguments() -> None:
    empty = AlertState.empty("bot")
    with pytest.raises(ValueError, match="after interval_start"):
        update_state(empty, [ev("ok")], T0, T0, DAY)
    with pytest.raises(DataContractError, match="twice"):
        update_state(empty, [ev("ok"), ev("firing")], T0, T0 + HOUR, DAY)


def _metrics(start: datetime, errors: int, n: int) -> pa.Table:
    from genai_flywheel.metrics import stats

    low, high = stats.wilson_interval(errors, n)
    schema = metrics_schema()
    values = {
        "app": ["bot"], "interval_start": [start], "interval_end": [start + HOUR], "metric": ["error_rate"],
        "value": [errors / n], "n": [n], "ci_low": [low], "ci_high": [high],
    }  # fmt: skip
    return pa.Table.from_arrays([pa.array(values[f.name], f.type) for f in schema], schema=schema)


def test_process_interval_persists_state_and_an_idempotent_event_log(tmp_path: Path) -> None:
    rules = [AlertRule(name="errors", metric="error_rate", op=">", threshold=0.1, min_samples=30)]
    store = AlertStore(tmp_path)
    counts = [5, 300, 300, 5]  # of 1000: ok, firing, firing, ok
    sent = []
    for h, errors in enumerate(counts):
        notes = process_interval(tmp_path, "bot", _metrics(T0 + h * HOUR, errors, 1000), rules, T0 + h * HOUR,
                                 T0 + (h + 1) * HOUR, DAY)  # fmt: skip
        sent.append([n.state for n in notes])
    assert sent == [[], ["firing"], [], ["resolved"]]
    state_bytes = store.state_path("bot").read_bytes()
    events = pq.read_table(store.events_path("bot"))
    assert events.column("kind").to_pylist() == ["ok", "fired", "still_firing", "resolved"]
    assert events.column("notified").to_pylist() == [False, True, False, True]
    # Re-running hour 1: same notification again (retry-safe), no duplicate event, identical state file.
    again = process_interval(tmp_path, "bot", _metrics(T0 + HOUR, 300, 1000), rules, T0 + HOUR, T0 + 2 * HOUR, DAY)
    assert [n.state for n in again] == ["firing"]
    assert store.state_path("bot").read_bytes() == state_bytes
    assert pq.read_table(store.events_path("bot")).equals(events)
    assert store.load("bot").firing() == []


def test_process_interval_rejects_metrics_of_another_interval(tmp_path: Path) -> None:
    rules = [AlertRule(name="errors", metric="error_rate", op=">", threshold=0.1)]
    with pytest.raises(DataContractError, match="2026-11-20T01:00:00Z"):
        process_interval(tmp_path, "bot", _metrics(T0, 5, 1000), rules, T0 + HOUR, T0 + 2 * HOUR, DAY)
    assert not AlertStore(tmp_path).state_path("bot").exists()


def test_folded_events_are_kept_in_the_log(tmp_path: Path) -> None:
    rules = [AlertRule(name="errors", metric="error_rate", op=">", threshold=0.1, min_samples=30)]
    for h in range(6):
        process_interval(tmp_path, "bot", _metrics(T0 + h * HOUR, 300, 1000), rules, T0 + h * HOUR,
                         T0 + (h + 1) * HOUR, DAY, history=2 * HOUR)  # fmt: skip
    store = AlertStore(tmp_path)
    assert len(store.load("bot").records) == 3
    events = store.read_events("bot")
    assert events.num_rows == 6 and events.column("kind").to_pylist() == ["fired"] + ["still_firing"] * 5


def test_store_load_errors_name_the_file(tmp_path: Path) -> None:
    store = AlertStore(tmp_path)
    assert store.load("bot") == AlertState.empty("bot")
    store.state_path("bot").parent.mkdir(parents=True)
    store.state_path("bot").write_text("{not json")
    with pytest.raises(StoreError, match="state.json"):
        store.load("bot")
