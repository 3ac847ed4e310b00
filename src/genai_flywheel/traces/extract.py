"""Read one time window of production traces out of MLflow into an Arrow table (``TRACE_SCHEMA``).

``search_traces`` pages by OFFSET, so paging is only safe over a closed window with a total order: the
window is closed ([start, end) in epoch ms) and the order is (``timestamp_ms``, ``request_id``). The final
table is sorted the same way and de-duplicated by trace id, so a re-run of a window returns identical rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from genai_flywheel.exceptions import ConfigError, StoreError
from genai_flywheel.traces.schema import TRACE_SCHEMA

if TYPE_CHECKING:
    from mlflow.entities import Trace

log = logging.getLogger(__name__)

_ORDER = ["timestamp_ms ASC", "request_id ASC"]
# The largest page an MLflow tracking server accepts (a local SQLite store takes more, a server rejects it).
MAX_PAGE = 500
_MODEL_ATTRS = ("mlflow.llm.model", "model", "llm.model", "gen_ai.request.model")


def client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (imported lazily: mlflow takes seconds to import)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def get_experiment_id(tracking_uri: str, experiment: str, *, create: bool = False) -> str:
    """The id of the experiment called ``experiment``; create it when asked, else a ConfigError."""
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is not None:
        return str(exp.experiment_id)
    if create:
        return str(c.create_experiment(experiment))
    raise ConfigError(
        f"MLflow experiment {experiment!r} not found at {tracking_uri}; check mlflow.experiment in the "
        "configuration, or let the app log a trace first"
    )


def window_filter(start_ms: int, end_ms: int, extra: str | None = None) -> str:
    """The ``search_traces`` filter of the closed window [start_ms, end_ms), ANDed with ``extra``."""
    parts = [f"trace.timestamp_ms >= {int(start_ms)}", f"trace.timestamp_ms < {int(end_ms)}"]
    if extra:
        parts.append(extra)
    return " AND ".join(parts)


def iter_traces(
    tracking_uri: str,
    experiment_id: str,
    filter_string: str,
    *,
    include_spans: bool = True,
    page_size: int = MAX_PAGE,
) -> Iterator[Trace]:
    """Every trace matching ``filter_string``, page by page, in (timestamp_ms, request_id) order."""
    c = client(tracking_uri)
    token: str | None = None
    while True:
        try:
            page = c.search_traces(
                locations=[experiment_id],
                filter_string=filter_string,
                max_results=page_size,
                order_by=_ORDER,
                page_token=token,
                include_spans=include_spans,
            )
        except Exception as err:  # MLflow raises many kinds; the task retries on StoreError
            raise StoreError(f"search_traces failed on {tracking_uri} ({filter_string!r}): {err}") from err
        yield from page
        token = page.token
        if not token or not page:
            return


def count_traces(tracking_uri: str, experiment_id: str, filter_string: str) -> int:
    """How many traces match, reading trace infos only (fast: no spans)."""
    return sum(
        1 for _ in iter_traces(tracking_uri, experiment_id, filter_string, include_spans=False, page_size=MAX_PAGE)
    )


def extract_window(
    tracking_uri: str,
    experiment: str,
    start_ms: int,
    end_ms: int,
    *,
    app: str,
    filter_string: str | None = None,
    page_size: int = 500,
) -> pa.Table:
    """Every trace of ``experiment`` whose timestamp falls in [start_ms, end_ms), as a TRACE_SCHEMA table.

    ``filter_string`` is an extra MLflow ``search_traces`` filter (the pushed-down part of a selection).
    There is no lookback cap: a window holds as many traces as MLflow has for it.
    """
    if end_ms <= start_ms:
        raise ValueError(f"empty window: start_ms={start_ms} must be before end_ms={end_ms}")
    experiment_id = get_experiment_id(tracking_uri, experiment)
    query = window_filter(start_ms, end_ms, filter_string)
    traces = {t.info.trace_id: t for t in iter_traces(tracking_uri, experiment_id, query, page_size=page_size)}
    # search_traces silently leaves out a trace whose spans it cannot load (an unfinished trace, a lost
    # artifact). The trace infos alone are cheap to list: every trace missing above still gets its row,
    # built from the info, so the data contract can quarantine it with a reason instead of losing it.
    missing = [
        t
        for t in iter_traces(tracking_uri, experiment_id, query, include_spans=False, page_size=MAX_PAGE)
        if t.info.trace_id not in traces
    ]
    if missing:
        log.warning(
            "%d traces of %s have no readable spans; extracted from their trace info only",
            len(missing),
            experiment,
        )
        traces.update((t.info.trace_id, t) for t in missing)
    table = traces_to_table(traces.values(), app=app)
    log.info("extracted %d traces of %s in [%d, %d)", table.num_rows, experiment, start_ms, end_ms)
    return table


def traces_to_table(traces: Iterable[Trace], *, app: str) -> pa.Table:
    """Convert MLflow traces to a TRACE_SCHEMA table sorted by (timestamp_ms, trace_id), one row per id."""
    rows: dict[str, dict[str, Any]] = {}
    for trace in traces:
        row = trace_to_row(trace, app=app)
        rows[row["trace_id"]] = row
    ordered = sorted(rows.values(), key=lambda r: (r["timestamp_ms"], r["trace_id"]))
    return pa.Table.from_pylist(ordered, schema=TRACE_SCHEMA)


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def query_text(inputs: Any) -> str | None:
    """The user's question in a root span's inputs: ``query``/``question``/``input``, or the last user
    message of a chat ``messages`` list, or the inputs themselves when they are a string."""
    if isinstance(inputs, str):
        return inputs
    if not isinstance(inputs, dict):
        return None
    for key in ("query", "question", "input", "prompt"):
        if isinstance(inputs.get(key), str):
            return inputs[key]
    messages = inputs.get("messages")
    if isinstance(messages, list):
        for msg in reversed(messages):
            if isinstance(msg, dict) and msg.get("role") == "user":
                return _content_text(msg.get("content"))
    return None


def answer_text(outputs: Any) -> str | None:
    """The app's answer in root span outputs: ``answer``/``output``/``response``, an OpenAI chat
    completion's first choice, the last assistant message, or the outputs themselves when a string."""
    if isinstance(outputs, str):
        return outputs
    if not isinstance(outputs, dict):
        return None
    for key in ("answer", "output", "response", "content", "text"):
        if isinstance(outputs.get(key), str):
            return outputs[key]
    choices = outputs.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        return _content_text(message.get("content"))
    messages = outputs.get("messages")
    if isinstance(messages, list):
        for msg in reversed(messages):
            if isinstance(msg, dict) and msg.get("role") == "assistant":
                return _content_text(msg.get("content"))
    return None


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: keep the text parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict)) or None
    return None


def _documents(outputs: Any) -> list[str]:
    docs = outputs if isinstance(outputs, list) else []
    texts = []
    for doc in docs:
        if isinstance(doc, dict):
            text = doc.get("page_content") or doc.get("content") or doc.get("text")
            if isinstance(text, str):
                texts.append(text)
        elif isinstance(doc, str):
            texts.append(doc)
    return texts


def _assessment_rows(assessments: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for a in assessments or []:
        is_feedback = getattr(a, "feedback", None) is not None
        if is_feedback:
            value = a.feedback.value
            error = a.feedback.error
        else:
            exp = getattr(a, "expectation", None)
            value = exp.value if exp is not None else None
            error = None
        source = getattr(a, "source", None)
        rows.append(
            {
                "assessment_id": a.assessment_id,
                "name": a.name,
                "kind": "feedback" if is_feedback else "expectation",
                "value": _dumps(value),
                "source_type": str(getattr(source, "source_type", "") or "") or None,
                "source_id": getattr(source, "source_id", None),
                "rationale": getattr(a, "rationale", None),
                "error": (getattr(error, "error_message", None) or str(error)) if error else None,
                "create_time_ms": getattr(a, "create_time_ms", None),
            }
        )
    rows.sort(key=lambda r: (r["create_time_ms"] or 0, r["assessment_id"] or ""))
    return rows


def trace_to_row(trace: Trace, *, app: str) -> dict[str, Any]:
    """One TRACE_SCHEMA row for an MLflow trace."""
    info = trace.info
    spans = list(trace.data.spans) if trace.data else []
    root = next((s for s in spans if s.parent_id is None), None)
    metadata = dict(info.trace_metadata or {})
    tags = dict(info.tags or {})

    if root is not None:
        inputs, outputs = root.inputs, root.outputs
    else:  # spans not fetched: fall back to the trace-level copies MLflow keeps in the metadata
        inputs = _loads(metadata.get("mlflow.traceInputs"))
        outputs = _loads(metadata.get("mlflow.traceOutputs"))

    context: list[str] = []
    span_rows = []
    error_type = error_message = None
    model = None
    for span in spans:
        span_type = span.span_type or "UNKNOWN"
        status = getattr(span.status.status_code, "value", str(span.status.status_code))
        duration = None
        if span.start_time_ns is not None and span.end_time_ns is not None:
            duration = (span.end_time_ns - span.start_time_ns) / 1e6
        span_rows.append({"name": span.name, "span_type": span_type, "duration_ms": duration, "status": status})
        if span_type == "RETRIEVER":
            context.extend(_documents(span.outputs))
        if model is None and span_type in ("CHAT_MODEL", "LLM"):
            attrs = span.attributes or {}
            model = next((attrs[k] for k in _MODEL_ATTRS if isinstance(attrs.get(k), str)), None)
        if error_type is None:
            for event in span.events or []:
                if event.name == "exception":
                    error_type = event.attributes.get("exception.type") or "Exception"
                    error_message = event.attributes.get("exception.message")
                    break

    state = getattr(info.state, "value", str(info.state)) if info.state is not None else None
    if state == "ERROR" and error_type is None:
        error_type = "UnknownError"
    usage = info.token_usage or _loads(metadata.get("mlflow.trace.tokenUsage")) or {}

    return {
        "trace_id": info.trace_id,
        "app": app,
        "timestamp_ms": int(info.request_time),
        "status": state,
        "execution_time_ms": int(info.execution_duration) if info.execution_duration is not None else None,
        "request": _dumps(inputs),
        "response": _dumps(outputs),
        "query": query_text(inputs),
        "answer": answer_text(outputs),
        "context": context,
        "error_type": error_type,
        "error_message": error_message,
        "spans": span_rows,
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "model": model or tags.get("model") or metadata.get("model"),
        "session_id": metadata.get("mlflow.trace.session"),
        "user_id": metadata.get("mlflow.trace.user"),
        "app_version": tags.get("app_version") or metadata.get("app_version"),
        "tags": _dumps(tags),
        "metadata": _dumps(metadata),
        "assessments": _assessment_rows(info.assessments),
        "trace_json": trace.to_json() if spans else None,
    }
