"""Alert state of per-segment rules: keyed by (rule, segment), sustained and hysteresis per segment, one grouped
notification per rule and state, replay in interval order, byte-identical re-runs, the monitor's alert stage."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from genai_flywheel.alerts.payload import Notification, group_segments
from genai_flywheel.alerts.rules import AlertEvaluation
from genai_flywheel.alerts.state import AlertState, AlertStore, process_interval, update_state
from genai_flywheel.metrics.aggregate import metrics_schema
from tests.unit.alerts.test_segment_rules import FEEDBACK, SIX, T0, rule, share_row, table

DAY = timedelta(days=1)


def interval(h: int) -> tuple[Any, Any]:
    return T0 + h * SIX, T0 + (h + 1) * SIX


def topics(h: int, counts: dict[str, tuple[int, int]]) -> pa.Table:
    start, _ = interval(h)
    return table([share_row(s, k, n, start=start) for s, (k, n) in sorted(counts.items())])


def empty_metrics() -> pa.Table:
    return metrics_schema().empty_table()


GOOD = {f"c-{i}": (19, 20) for i in range(6)}


def run(tmp_path: Path, plan: list[dict[str, tuple[int, int]]], rules: list, order: list[int] | None = None):
    """Process interval h with topic counts plan[h] (in ``order``); the notifications sent per interval."""
    sent: dict[int, list[Notification]] = {}
    for h in order if order is not None else range(len(plan)):
        start, end = interval(h)
        segments = topics(h, plan[h])
        sent[h] = process_interval(tmp_path, "bot", empty_metrics(), rules, start, end, DAY, segments=segments)
    return [sent.get(h, []) for h in range(len(plan))]


def test_each_segment_fires_and_resolves_on_its_own_and_a_group_is_one_message(tmp_path: Path) -> None:
    bad = (0, 6)
    plan = [
        GOOD,
        {**GOOD, "c-1": bad, "c-2": bad},  # two topics go wrong together: one message
        {**GOOD, "c-1": bad, "c-2": bad},  # still firing: nothing (renotify after a day)
        {**GOOD, "c-2": bad},  # c-1 resolves alone
        {**GOOD, "c-3": bad},  # c-2 resolves, c-3 fires: two messages, one per state
    ]
    sent = run(tmp_path, plan, [rule()])
    summary = [[(n.state, [s.segment for s in n.segments]) for n in notes] for notes in sent]
    assert summary == [
        [],
        [("firing", ["c-1", "c-2"])],
        [],
        [("resolved", ["c-1"])],
        [("resolved", ["c-2"]), ("firing", ["c-3"])],  # in the order of the segment keys
    ]
    state = AlertStore(tmp_path).load("bot")
    assert state.firing() == ["topic_satisfaction[topic=c-3]"]
    assert state.alerts["topic_satisfaction[topic=c-2]"].status == "ok"
    events = AlertStore(tmp_path).read_events("bot").to_pylist()
    fired = [(e["segment"], e["label"], e["dimension"]) for e in events if e["kind"] == "fired"]
    assert fired == [("c-1", "Topic c-1", "topic"), ("c-2", "Topic c-2", "topic"), ("c-3", "Topic c-3", "topic")]


def test_sustained_and_hysteresis_apply_per_segment(tmp_path: Path) -> None:
    # Fire after 2 of the last 3 intervals; resolve only once back above 0.8.
    r = rule(sustained={"k": 2, "n": 3}, resolve_threshold=0.8)
    plan = [
        {**GOOD, "c-1": (0, 6), "c-2": (0, 6)},  # both pending
        {**GOOD, "c-1": (0, 6)},  # c-1: 2 of 3 -> fires; c-2 back to 19/20 (1 of 2: still quiet)
        {**GOOD, "c-1": (6, 8)},  # 0.75: no longer significant, but below resolve_threshold: keeps firing
        {**GOOD, "c-1": (19, 20)},  # past 0.8: resolves
    ]
    sent = run(tmp_path, plan, [r])
    assert [[(n.state, [s.segment for s in n.segments]) for n in notes] for notes in sent] == [
        [], [("firing", ["c-1"])], [], [("resolved", ["c-1"])]
    ]  # fmt: skip
    kinds = {
        (e["interval_start"], e["segment"]): e["kind"] for e in AlertStore(tmp_path).read_events("bot").to_pylist()
    }
    assert kinds[(T0, "c-1")] == kinds[(T0, "c-2")] == "pending"
    assert kinds[(T0 + SIX, "c-2")] == "ok" and kinds[(T0 + 2 * SIX, "c-1")] == "still_firing"


def test_a_backfill_in_any_order_replays_in_interval_order_and_a_rerun_is_byte_identical(tmp_path: Path) -> None:
    plan = [GOOD, {**GOOD, "c-1": (0, 6)}, {**GOOD, "c-1": (0, 6), "c-4": (0, 5)}, GOOD]
    rules = [rule(sustained={"k": 2, "n": 2})]
    run(tmp_path / "a", plan, rules)
    run(tmp_path / "b", plan, rules, order=[3, 1, 0, 2])
    a, b = AlertStore(tmp_path / "a"), AlertStore(tmp_path / "b")
    assert a.state_path("bot").read_bytes() == b.state_path("bot").read_bytes()
    assert pq.read_table(a.events_path("bot")).equals(pq.read_table(b.events_path("bot")))
    state_bytes, events_bytes = a.state_path("bot").read_bytes(), a.events_path("bot").read_bytes()
    (again,) = run(tmp_path / "a", plan, rules, order=[2])[2:3]
    assert [(n.state, [s.segment for s in n.segments], n.id) for n in again] == [
        ("firing", ["c-1"], again[0].id)
    ]  # c-1: 2 of 2; c-4: 1 of 2, pending
    assert a.state_path("bot").read_bytes() == state_bytes
    assert a.events_path("bot").read_bytes() == events_bytes
    records = json.loads(state_bytes)["records"]
    assert [e.get("segment") for e in records[2]["evaluations"]] == sorted(GOOD | {"c-4": 0})


def _app_level_eval(state: str) -> AlertEvaluation:
    return AlertEvaluation(
        rule="errors", metric="error_rate", op=">", threshold=0.2, severity="critical", min_samples=30,
        state=state, value=0.3, ci_low=0.25, ci_high=0.35, n=500, reason="r",
    )  # fmt: skip


def test_app_level_state_files_keep_their_form(tmp_path: Path) -> None:
    state, _, _ = update_state(AlertState.empty("bot"), [_app_level_eval("firing")], T0, T0 + SIX, DAY)
    (evaluation,) = state.to_dict()["records"][0]["evaluations"]
    assert not {"dimension", "segment", "label", "p_value"} & set(evaluation)
    assert AlertState.from_json(state.to_json()) == state


def test_an_event_log_written_before_segment_columns_is_still_read(tmp_path: Path) -> None:
    store = AlertStore(tmp_path)
    process_interval(tmp_path, "bot", empty_metrics(), [rule()], T0, T0 + SIX, DAY, segments=topics(0, GOOD))
    old = pq.read_table(store.events_path("bot")).drop_columns(["dimension", "segment", "label"])
    pq.write_table(old, store.events_path("bot"))
    events = store.read_events("bot")
    assert events.column("segment").null_count == events.num_rows == len(GOOD)


def test_grouped_payload_lists_every_segment_most_significant_first() -> None:
    plan = {**GOOD, "c-1": (1, 8), "c-2": (0, 9)}
    evaluations = []
    from genai_flywheel.alerts.segments import evaluate_segment_rule

    evaluations = [e for e in evaluate_segment_rule(rule(), topics(0, plan)) if e.state == "firing"]
    notes = [Notification.from_evaluation("bot", e, "firing", T0, T0 + SIX, T0) for e in evaluations]
    notes.append(Notification.from_evaluation("bot", _app_level_eval("firing"), "firing", T0, T0 + SIX, T0))
    grouped, app_level = group_segments(notes)
    assert app_level == notes[-1] and "segments" not in app_level.to_dict()
    payload = grouped.to_dict()
    assert payload["dimension"] == "topic" and [s["segment"] for s in payload["segments"]] == ["c-2", "c-1"]
    assert payload["value"] == 0.0 and payload["n"] == 9  # the first (most significant) segment's
    assert payload["segments"][1]["ci"]["high"] is not None and payload["segments"][1]["p_value"] < 0.05
    assert payload["title"].startswith(
        f"[WARNING] bot/topic_satisfaction FIRING in 2 topic segment(s): {FEEDBACK} < 0.65; Topic c-2 (c-2) 0 ["
    )
    assert "Topic c-1 (c-1) 0.125" in payload["title"]
    assert payload["id"] == group_segments(list(reversed(notes[:2])))[0].id  # the same message, the same id


def test_the_alert_stage_reads_the_interval_segment_table(tmp_path: Path, monkeypatch) -> None:
    import yaml

    from genai_flywheel import pipeline
    from genai_flywheel.config import parse_config
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.workspace import IntervalWorkspace, atomic_write_parquet

    data = yaml.safe_load((Path(__file__).resolve().parents[3] / "flywheel.yaml").read_text())
    app = data["applications"][0]
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(tmp_path))
    cfg = parse_config(data)
    assert any(r.segment == "topic" for r in cfg.applications[0].alerts)
    ws = IntervalWorkspace.of(tmp_path, app["name"], T0, T0 + SIX)
    metrics = pa.Table.from_pylist(
        [{"app": app["name"], "interval_start": T0, "interval_end": T0 + SIX, "metric": "volume", "value": 200.0,
          "n": 200, "ci_low": None, "ci_high": None}], schema=metrics_schema(),
    )  # fmt: skip
    atomic_write_parquet(metrics, ws.path("metrics.parquet"))
    store = MetricsStore(tmp_path)
    store.write_partition(metrics)
    segments = topics(0, {**GOOD, "c-smart": (0, 4)})
    segments = segments.set_column(0, "app", pa.array([app["name"]] * segments.num_rows))
    store.write_segments(segments, app=app["name"], interval_start=T0)
    out = pipeline.alert(app["name"], T0, T0 + SIX, config=cfg)
    grouped = [p for p in out["notifications"] if p.get("segments")]
    assert [(p["rule"], [s["segment"] for s in p["segments"]]) for p in grouped] == [
        ("topic_satisfaction", ["c-smart"])
    ]


def test_a_per_segment_rule_reads_as_firing_while_a_segment_fires(tmp_path: Path) -> None:
    from flywheel_airflow.ui.collect import alert_rules, firing_now

    from genai_flywheel.alerts.state import rule_status
    from genai_flywheel.config import parse_config

    plan = [GOOD, {**GOOD, "c-1": (0, 6)}, {**GOOD, "c-1": (0, 6), "c-2": (0, 6)}]
    run(tmp_path, plan, [rule()])
    store = AlertStore(tmp_path)
    statuses = store.load("bot").alerts
    status = rule_status(statuses, "topic_satisfaction")
    assert status is not None and (status.status, status.since) == ("firing", T0 + SIX)  # the earliest segment
    assert rule_status(statuses, "errors") is None
    assert rule_status({"topic_satisfaction[topic=c-1]": statuses["topic_satisfaction[topic=c-0]"]},
                       "topic_satisfaction").status == "ok"  # fmt: skip
    app = {
        "name": "bot", "mlflow": {"tracking_uri": "http://m", "experiment": "x"}, "alerts": [rule().model_dump()],
        "segments": {"dimensions": [{"name": "topic", "source": "query_cluster"}]},
    }  # fmt: skip
    cfg = parse_config({"applications": [app]})
    assert [r["status"] for r in alert_rules(cfg.applications[0], statuses)] == ["firing"]
    events = tuple(store.read_events("bot").to_pylist())
    now = firing_now(statuses, events)
    assert [(f["rule"], f["metric"], f["n"]) for f in now] == [
        ("topic_satisfaction[topic=c-1]", FEEDBACK, 6), ("topic_satisfaction[topic=c-2]", FEEDBACK, 6)
    ]  # fmt: skip
