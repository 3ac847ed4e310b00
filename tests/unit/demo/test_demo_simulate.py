"""The simulator's pure parts: running plans through the app, span layout and encoding, ground truth."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel_demo.app import CHAT_USAGE_KEY
from flywheel_demo.schedule import PROFILE, plan_traffic
from flywheel_demo.simulate import (
    _Apps,
    ground_truth,
    layout,
    run_plan,
    simulate,
    span_dicts,
    write_ground_truth,
)
from genai_flywheel.exceptions import SimulationError

END = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
START = END - timedelta(days=3)
PLANS, WINDOWS = plan_traffic(experiment="demo", start=START, end=END, n_traces=600, seed=11)
APPS = _Apps()
OUTCOMES = [run_plan(p, APPS) for p in PLANS]


def truth() -> dict:
    return ground_truth(OUTCOMES, WINDOWS, experiment="demo", seed=11, days=3, traces_per_day=200, start=START, end=END)


def test_wrong_answers_exactly_for_smart_sync_during_the_incident() -> None:
    for o in OUTCOMES:
        expect_bad = o.plan.query.feature == "smart-sync" and o.plan.incident_index and o.plan.fault is None
        assert (o.quality == "bad") == expect_bad, o.plan.query.text
        if o.quality == "bad":
            assert "supported" in o.answer
    assert sum(o.quality == "bad" for o in OUTCOMES) > 10


def test_errors_come_from_the_planned_faults() -> None:
    for o in OUTCOMES:
        expected = {None: None, "retrieval_timeout": "TimeoutError", "rate_limit": "RateLimitError"}
        assert o.error_type == expected[o.plan.fault]
        assert (o.answer is None) == (o.plan.fault is not None)


def test_feedback_is_mostly_negative_on_wrong_answers() -> None:
    bad = [o.feedback for o in OUTCOMES if o.quality == "bad" and o.feedback is not None]
    good = [o.feedback for o in OUTCOMES if o.quality == "good" and o.feedback is not None]
    assert bad.count(False) / len(bad) > 0.6
    assert good.count(True) / len(good) > 0.8
    given = sum(o.feedback is not None for o in OUTCOMES if o.quality != "error")
    assert 0.2 < given / len(OUTCOMES) < 0.45
    assert all(o.feedback is None for o in OUTCOMES if o.quality == "error")
    corrections = [o for o in OUTCOMES if o.expected_answer is not None]
    assert corrections and all(o.quality == "bad" and o.feedback is False for o in corrections)
    assert all("supported" not in o.expected_answer for o in corrections)


def test_layout_nests_children_inside_the_root() -> None:
    o = next(o for o in OUTCOMES if o.error_type is None)
    (r0, r1), (a0, a1), (c0, c1) = layout(o.plan, o.spans)
    assert r0 == o.plan.start_ns
    assert r0 < a0 < a1 < c0 < c1 < r1
    assert a1 - a0 == pytest.approx(o.plan.retrieval_ms * 1e6, abs=1)
    assert c1 - c0 == pytest.approx(o.plan.chat_ms * 1e6, abs=1)
    slower = replace(o.plan, chat_ms=o.plan.chat_ms * 4)
    assert layout(slower, o.spans)[0][1] - r0 > r1 - r0 + 2.9 * o.plan.chat_ms * 1e6


def test_span_dicts_encode_ids_attributes_and_trace_fields() -> None:
    o = next(o for o in OUTCOMES if o.error_type is None and o.plan.query.feature == "billing")
    root, retr, chat = span_dicts(o)
    otel_id = int.from_bytes(base64.b64decode(root["trace_id"]), "big")
    assert f"tr-{otel_id:032x}" == o.plan.trace_id
    assert root["parent_span_id"] is None and retr["parent_span_id"] == chat["parent_span_id"] == root["span_id"]
    assert len({root["span_id"], retr["span_id"], chat["span_id"]}) == 3
    a = root["attributes"]
    assert json.loads(a["mlflow.traceRequestId"]) == o.plan.trace_id
    assert json.loads(a["mlflow.spanInputs"]) == {"query": o.plan.query.text}
    assert json.loads(a["mlflow.spanOutputs"]) == {"answer": o.answer}
    assert json.loads(a["session.id"]) == o.plan.session_id and json.loads(a["user.id"]) == o.plan.user_id
    assert a["mlflow.traceTag.app_version"] == "v1" and a["mlflow.traceTag.model"] == "demo-chat-1"
    assert a["mlflow.traceTag.mlflow.traceName"] == "support_assistant"
    assert json.loads(retr["attributes"]["mlflow.spanType"]) == "RETRIEVER"
    assert json.loads(chat["attributes"]["mlflow.spanType"]) == "CHAT_MODEL"
    usage = json.loads(chat["attributes"][CHAT_USAGE_KEY])
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert [json.loads(s["attributes"]["mlflow.spanLogLevel"]) for s in (root, retr, chat)] == [10, 20, 20]
    assert all(s["status"]["code"] == "STATUS_CODE_OK" and not s["events"] for s in (root, retr, chat))
    assert span_dicts(o) == [root, retr, chat]  # deterministic


def test_span_dicts_of_a_failed_request() -> None:
    o = next(o for o in OUTCOMES if o.error_type == "TimeoutError")
    root, retr = span_dicts(o)
    for s in (root, retr):
        assert s["status"] == {"code": "STATUS_CODE_ERROR", "message": f"TimeoutError: {o.spans[1].error}"}
        (event,) = s["events"]
        assert event["name"] == "exception" and event["attributes"]["exception.type"] == "TimeoutError"
        assert json.loads(s["attributes"]["mlflow.spanLogLevel"]) == 40
    assert "mlflow.spanOutputs" not in root["attributes"]


def test_ground_truth_matches_the_outcomes(tmp_path: Path) -> None:
    gt = truth()
    inc = gt["incidents"]
    assert gt["n_traces"] == 600 and sum(gt["features"].values()) == 600
    bad = {o.plan.trace_id for o in OUTCOMES if o.quality == "bad"}
    assert set(inc["smart_sync_wrong_answers"]["trace_ids"]) == bad
    assert inc["smart_sync_wrong_answers"]["start"] == (END - timedelta(days=1)).isoformat()
    by_id = {o.plan.trace_id: o for o in OUTCOMES}
    assert all(by_id[t].error_type and by_id[t].plan.in_error_spike for t in inc["error_spike"]["trace_ids"])
    assert inc["error_spike"]["n_errors"] == len(inc["error_spike"]["trace_ids"]) > 0
    assert all(by_id[t].plan.in_latency_window for t in inc["chat_latency_regression"]["trace_ids"])
    assert gt["n_errors"] == sum(gt["error_types"].values()) == sum(o.error_type is not None for o in OUTCOMES)
    assert gt["n_feedback"] == sum(o.feedback is not None for o in OUTCOMES)
    assert all(by_id[t].plan.query.has_pii for t in gt["pii_trace_ids"])
    write_ground_truth(gt, tmp_path / "a" / "gt.json")
    write_ground_truth(truth(), tmp_path / "b.json")
    assert (tmp_path / "a" / "gt.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "b.json").read_text()) == gt


def test_without_incidents_no_wrong_answer_and_no_incident_in_the_ground_truth() -> None:
    clean = replace(PROFILE, incidents=False)
    plans, windows = plan_traffic(experiment="demo", start=START, end=END, n_traces=600, seed=11, profile=clean)
    outcomes = [run_plan(p, APPS, clean) for p in plans]
    assert not any(o.quality == "bad" for o in outcomes)
    # Smart Sync questions during the would-be incident are answered from the correct pages.
    smart_sync = [o for o in outcomes if o.plan.query.feature == "smart-sync" and o.error_type is None]
    assert any(windows.smart_sync.contains_ms(o.plan.timestamp_ms) for o in smart_sync)
    assert all(o.quality == "good" for o in smart_sync)
    gt = ground_truth(
        outcomes, windows, experiment="demo", seed=11, days=3, traces_per_day=200, start=START, end=END, profile=clean
    )
    assert gt["incidents"] == {} and gt["n_traces"] == 600
    assert truth()["incidents"].keys() == {"smart_sync_wrong_answers", "error_spike", "chat_latency_regression"}


@pytest.mark.parametrize(("kwargs", "match"), [({"days": 0}, "days must be"), ({"traces_per_day": -1}, "traces_per")])
def test_simulate_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(SimulationError, match=match):
        simulate("sqlite:///unused.db", "x", progress=False, **kwargs)
