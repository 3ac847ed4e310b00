"""``flywheel select`` runs a selection ad hoc against a real store and prints the matching traces."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa

from tests.integration.conftest import SIM_END

FILTER = (
    "inputs.query CONTAINS 'smart sync' AND (assessments.user_feedback.value = 'negative' OR trace.status = 'ERROR')"
)


def test_select_prints_what_the_filter_matches(flywheel_env, capsys) -> None:
    from genai_flywheel.cli import main
    from genai_flywheel.selection import compile_filter
    from genai_flywheel.traces.extract import extract_window
    from genai_flywheel.workspace import to_ms

    start, end = SIM_END - timedelta(days=2), SIM_END
    code = main(
        [
            "select",
            "--app",
            "support-assistant",
            "--filter",
            FILTER,
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
            "--format",
            "json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    table = extract_window(flywheel_env["uri"], "support-prod", to_ms(start), to_ms(end), app="support-assistant")
    expected = table.filter(pa.array(compile_filter(FILTER).mask(table)))
    assert rows, "the incident's negative feedback should match"
    assert sorted(r["trace_id"] for r in rows) == sorted(expected.column("trace_id").to_pylist())
    assert all("smart sync" in r["query"].lower() for r in rows)
    assert all(r["scores"].get("user_feedback") is False or r["status"] == "ERROR" for r in rows)


def test_malformed_filter_points_at_the_token(flywheel_env, capsys) -> None:
    from genai_flywheel.cli import main

    assert main(["select", "--app", "support-assistant", "--filter", "inputs.query CONTAINZ 'x'"]) == 2
    err = capsys.readouterr().err
    assert "CONTAINZ" in err or "^" in err
