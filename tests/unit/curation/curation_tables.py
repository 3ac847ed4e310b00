"""Hand-built trace tables (``TRACE_SCHEMA``) for the curation unit tests."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from genai_flywheel.traces.schema import TRACE_SCHEMA

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def assessment(
    name: str,
    value: Any,
    *,
    kind: str = "feedback",
    source: str = "CODE",
    rationale: str | None = None,
    at: int = 0,
) -> dict[str, Any]:
    """One ``ASSESSMENT_TYPE`` dict."""
    return {
        "assessment_id": f"a-{name}-{at}",
        "name": name,
        "kind": kind,
        "value": json.dumps(value),
        "source_type": source,
        "source_id": "test",
        "rationale": rationale,
        "error": None,
        "create_time_ms": BASE_MS + at,
    }


def trace(
    trace_id: str,
    query: str | None,
    *,
    minute: int = 0,
    answer: str | None = "an answer",
    status: str = "OK",
    feedback: bool | None = None,
    scores: dict[str, Any] | None = None,
    expectations: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    """A trace row; ``feedback`` becomes a HUMAN ``user_feedback`` assessment, ``scores`` CODE feedback."""
    found = []
    if feedback is not None:
        found.append(assessment("user_feedback", feedback, source="HUMAN", at=minute))
    for name, value in (scores or {}).items():
        found.append(assessment(name, value, rationale=f"{name} says {value}", at=minute))
    for name, value in (expectations or {}).items():
        found.append(assessment(name, value, kind="expectation", source="HUMAN", at=minute))
    return {
        "trace_id": trace_id,
        "app": "demo",
        "timestamp_ms": BASE_MS + minute * 60_000,
        "status": status,
        "execution_time_ms": 100,
        "request": request if request is not None else (json.dumps({"query": query}) if query else None),
        "response": json.dumps({"answer": answer}) if answer is not None and status == "OK" else None,
        "query": query,
        "answer": answer if status == "OK" else None,
        "context": [],
        "error_type": "TimeoutError" if status == "ERROR" else None,
        "error_message": "timed out" if status == "ERROR" else None,
        "spans": [],
        "input_tokens": 10,
        "output_tokens": 20,
        "total_tokens": 30,
        "model": "demo-chat-1",
        "session_id": "s",
        "user_id": "u",
        "app_version": "v1",
        "tags": json.dumps(tags or {}),
        "metadata": json.dumps({}),
        "assessments": found,
        "trace_json": None,
    }


def table(rows: list[dict[str, Any]]) -> pa.Table:
    """A ``TRACE_SCHEMA`` table of ``rows``."""
    return pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)
