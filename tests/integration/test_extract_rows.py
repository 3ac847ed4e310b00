"""extract reads spans in their stored dict form; its rows must say what MLflow's own Span objects say."""

from __future__ import annotations

import json

import pytest

from genai_flywheel.scoring.runner import trace_from_json
from genai_flywheel.traces.extract import get_experiment_id, iter_traces, trace_to_row


def _dumps(value):
    return None if value is None else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _reference(trace) -> dict:
    """The row fields derived from spans, computed through MLflow's Span API."""
    spans = list(trace.data.spans)
    root = next(s for s in spans if s.parent_id is None)
    context, error_type, model = [], None, None
    for span in spans:
        if span.span_type == "RETRIEVER":
            context += [d["page_content"] for d in span.outputs or []]
        if model is None and span.span_type in ("CHAT_MODEL", "LLM"):
            model = (span.attributes or {}).get("mlflow.llm.model") or (span.attributes or {}).get("model")
        if error_type is None:
            error_type = next((e.attributes["exception.type"] for e in span.events if e.name == "exception"), None)
    return {
        "request": _dumps(root.inputs),
        "response": _dumps(root.outputs),
        "context": context,
        "error_type": error_type or ("UnknownError" if trace.info.state.value == "ERROR" else None),
        "spans": [
            {
                "name": s.name,
                "span_type": s.span_type or "UNKNOWN",
                "duration_ms": (s.end_time_ns - s.start_time_ns) / 1e6,
                "status": s.status.status_code.value,
            }
            for s in spans
        ],
        "trace_json": trace.to_json(),
    }


def test_rows_from_span_dicts_match_mlflow_span_objects(production: dict) -> None:
    from mlflow.entities import Trace

    uri = production["uri"]
    traces = list(iter_traces(uri, get_experiment_id(uri, "support-prod"), "", page_size=200))
    assert len(traces) == production["result"].n_written
    statuses = set()
    for trace in traces:
        row = trace_to_row(trace, app="support")  # first: rows must not depend on spans being materialised
        expected = _reference(trace)
        assert {k: row[k] for k in expected} == expected, trace.info.trace_id
        # What the score stage hands to scorers that take ``trace``: the same trace as MLflow's own
        # Trace.from_json, span by span, with the spans built only when read.
        lazy, eager = trace_from_json(row["trace_json"]), Trace.from_json(row["trace_json"])
        assert lazy.to_dict() == eager.to_dict()
        assert lazy.data.spans[0]._materialized is False
        assert [(s.span_id, s.span_type, s.inputs, s.outputs, s.status) for s in lazy.data.spans] == [
            (s.span_id, s.span_type, s.inputs, s.outputs, s.status) for s in eager.data.spans
        ]
        assert eager.to_dict()["data"] == trace.to_dict()["data"]
        assert lazy.info.trace_id == trace.info.trace_id
        assert lazy.info.assessments == eager.info.assessments
        statuses |= {s["status"] for s in row["spans"]}
        if row["error_type"] is None:
            assert row["model"] == "demo-chat-1"
    assert {"OK", "ERROR"} <= statuses  # the simulated error spike is in there


@pytest.mark.parametrize(
    ("span", "status"),
    [
        ({"status": {"code": "STATUS_CODE_ERROR", "message": "boom"}}, "ERROR"),
        ({"status": {"code": "OK"}}, "OK"),  # MLflow 3.5's dict form
        ({"status": {}}, "UNSET"),
        ({}, "UNSET"),
    ],
)
def test_span_status_of_every_stored_form(span: dict, status: str) -> None:
    from genai_flywheel.traces.extract import _status

    assert _status(span) == status
