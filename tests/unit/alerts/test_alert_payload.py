"""Notification payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from genai_flywheel.alerts.payload import PAYLOAD_SCHEMA, Notification
from genai_flywheel.alerts.rules import AlertEvaluation

T0 = datetime(2026, 11, 20, 5, tzinfo=UTC)


def evaluation(value: float | None = 0.31) -> AlertEvaluation:
    return AlertEvaluation(
        rule="errors", metric="error_rate", op=">", threshold=0.2, severity="critical", min_samples=30,
        state="firing", value=value, ci_low=0.28, ci_high=0.34, n=1000, reason="whole CI above",
    )  # fmt: skip


def note(state: str = "firing", value: float | None = 0.31) -> Notification:
    return Notification.from_evaluation("bot", evaluation(value), state, T0, T0 + timedelta(hours=1), T0)  # type: ignore[arg-type]


def test_to_json_carries_the_whole_story() -> None:
    payload = json.loads(note().to_json())
    assert payload["schema"] == PAYLOAD_SCHEMA
    assert payload["app"] == "bot" and payload["rule"] == "errors" and payload["severity"] == "critical"
    assert payload["state"] == "firing" and payload["metric"] == "error_rate" and payload["op"] == ">"
    assert payload["value"] == 0.31 and payload["threshold"] == 0.2 and payload["n"] == 1000
    assert payload["ci"] == {"low": 0.28, "high": 0.34, "confidence": 0.95}
    assert payload["interval"] == {"start": "2026-11-20T05:00:00Z", "end": "2026-11-20T06:00:00Z"}
    assert payload["firing_since"] == "2026-11-20T05:00:00Z"
    assert payload["links"] == {"dashboard": None, "traces": None}
    assert payload["title"].startswith("[CRITICAL] bot/errors FIRING: error_rate > 0.2; value 0.31 [0.28, 0.34]")


def test_ids_are_deterministic_and_distinguish_states() -> None:
    assert note().id == note().id and note().to_json() == note().to_json()
    assert note("firing").id != note("resolved").id != note("still_firing").id
    later = Notification.from_evaluation("bot", evaluation(), "firing", T0 + timedelta(hours=1), T0, T0)
    assert later.id != note().id


def test_links_and_missing_values() -> None:
    linked = note().with_links(dashboard_url="http://127.0.0.1:3000/d/bot", traces_url="http://127.0.0.1:5000/x")
    payload = json.loads(linked.to_json())
    assert payload["links"]["dashboard"] == "http://127.0.0.1:3000/d/bot" and linked.id == note().id
    empty = json.loads(note("resolved", value=None).to_json())
    assert empty["value"] is None and "value n/a" in empty["title"] and "RESOLVED" in empty["title"]
