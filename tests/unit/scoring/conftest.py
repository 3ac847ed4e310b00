"""Fixtures of the scoring unit tests: hand-built MLflow trace JSON and trace-table rows."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def make_trace_json(
    trace_id: str = "tr-1",
    *,
    inputs: Any = None,
    outputs: Any = None,
    documents: list[str | dict[str, Any]] | None = None,
    duration_ms: int = 1200,
) -> str:
    """``Trace.to_json()`` text of a trace with a root span and, if ``documents``, a RETRIEVER span."""
    inputs = {"query": "What is the capital of France?"} if inputs is None else inputs
    outputs = {"answer": "Paris is the capital of France."} if outputs is None else outputs
    otel_trace = _b64(hashlib.md5(trace_id.encode()).digest())
    start = 1_767_225_600_000_000_000

    def span(name: str, span_id: bytes, parent: str | None, kind: str, i: Any, o: Any, end_ms: int) -> dict:
        return {
            "trace_id": otel_trace,
            "span_id": _b64(span_id),
            "parent_span_id": parent,
            "name": name,
            "start_time_unix_nano": start,
            "end_time_unix_nano": start + end_ms * 1_000_000,
            "events": [],
            "status": {"code": "STATUS_CODE_OK", "message": ""},
            "attributes": {
                "mlflow.traceRequestId": json.dumps(trace_id),
                "mlflow.spanType": json.dumps(kind),
                "mlflow.spanInputs": json.dumps(i),
                "mlflow.spanOutputs": json.dumps(o),
            },
            "links": [],
        }

    spans = [span("app", b"rootspan", None, "CHAIN", inputs, outputs, duration_ms)]
    if documents is not None:
        docs = [
            d if isinstance(d, dict) else {"page_content": d, "metadata": {"doc_uri": f"doc-{n}"}, "id": None}
            for n, d in enumerate(documents)
        ]
        spans.append(span("retrieve", b"retrieve", _b64(b"rootspan"), "RETRIEVER", {"q": "x"}, docs, 5))
    trace = {
        "info": {
            "trace_id": trace_id,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
            "request_time": "2026-01-01T00:00:00.000Z",
            "state": "OK",
            "trace_metadata": {"mlflow.trace_schema.version": "3"},
            "tags": {},
            "request_preview": json.dumps(inputs),
            "response_preview": json.dumps(outputs),
            "execution_duration_ms": duration_ms,
        },
        "data": {"spans": spans},
    }
    return json.dumps(trace)


def make_row(
    trace_id: str,
    *,
    query: str = "What is the capital of France?",
    answer: str = "Paris is the capital of France.",
    documents: list[str] | None = None,
    duration_ms: int = 1200,
    with_trace: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One trace-table row (the columns the runner reads) for the demo app's shapes."""
    inputs, outputs = {"query": query}, {"answer": answer}
    row = {
        "trace_id": trace_id,
        "app": "demo",
        "timestamp_ms": 1_767_225_600_000,
        "execution_time_ms": duration_ms,
        "request": json.dumps(inputs),
        "response": json.dumps(outputs),
        "query": query,
        "answer": answer,
        "context": documents or [],
        "trace_json": make_trace_json(
            trace_id, inputs=inputs, outputs=outputs, documents=documents, duration_ms=duration_ms
        )
        if with_trace
        else None,
        "stratum": "base",
        "weight": 5.0,
    }
    row.update(extra)
    return row


@pytest.fixture
def trace_json() -> Callable[..., str]:
    """Factory of ``Trace.to_json()`` text: ``trace_json(trace_id, inputs=, outputs=, documents=, ...)``."""
    return make_trace_json


@pytest.fixture
def trace_row() -> Callable[..., dict[str, Any]]:
    """Factory of trace-table rows: ``trace_row(trace_id, query=, answer=, documents=, duration_ms=)``."""
    return make_row
