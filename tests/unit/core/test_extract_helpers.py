"""Pulling the question and the answer out of the many shapes GenAI apps log."""

from __future__ import annotations

import pytest

from genai_flywheel.traces.extract import answer_text, query_text, window_filter
from genai_flywheel.workspace import IntervalWorkspace, interval_key, to_ms


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"query": "how?"}, "how?"),
        ({"question": "why?"}, "why?"),
        ("plain", "plain"),
        (
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "last"},
                ]
            },
            "last",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "multi"}]}]}, "multi"),
        ({"other": 1}, None),
        (None, None),
    ],
)
def test_query_text(inputs, expected) -> None:
    assert query_text(inputs) == expected


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ({"answer": "yes"}, "yes"),
        ("plain", "plain"),
        ({"choices": [{"message": {"role": "assistant", "content": "chat"}}]}, "chat"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "a"),
        ([1, 2], None),
    ],
)
def test_answer_text(outputs, expected) -> None:
    assert answer_text(outputs) == expected


def test_window_filter_is_half_open() -> None:
    assert window_filter(10, 20) == "trace.timestamp_ms >= 10 AND trace.timestamp_ms < 20"
    assert window_filter(10, 20, "trace.status = 'OK'").endswith("AND trace.status = 'OK'")


def test_interval_workspace_paths_and_errors(tmp_path) -> None:
    ws = IntervalWorkspace.of(tmp_path, "app", "2026-11-20T06:00:00Z", "2026-11-20T12:00:00+00:00")
    assert ws.key == interval_key(ws.start) == "2026-11-20T06-00-00Z"
    assert ws.run_dir == tmp_path / "runs" / "app=app" / "interval=2026-11-20T06-00-00Z"
    assert ws.end_ms - ws.start_ms == 6 * 3600 * 1000 == to_ms(ws.end) - to_ms(ws.start)
    assert ws.shard_path(2).name == "shard=002.parquet"
    with pytest.raises(ValueError, match="must be after its start"):
        IntervalWorkspace.of(tmp_path, "app", "2026-11-20T06:00Z", "2026-11-20T06:00Z")
