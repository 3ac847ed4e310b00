"""Read production traces out of MLflow into Arrow rows.

The monitor reads a window in two passes:

* **pass one** (:func:`extract_infos`): the trace infos of one time slice, without spans (an order of
  magnitude faster than with spans), streamed page by page into a Parquet file of ``INFO_SCHEMA`` rows;
* **pass two** (:func:`fetch_rows`): full traces (spans, inputs, outputs, retrieved context) for the sampled
  trace ids only, through ``batch_get_traces``, a bounded batch at a time, as ``TRACE_SCHEMA`` rows.

``search_traces`` pages by OFFSET, which a SQL store answers by reading and skipping every row before the
page: over a window of a million traces the pages cost a quadratic number of row reads. A window is read by
keyset paging instead (:func:`iter_window_traces`): each page is a fresh query from the newest timestamp seen,
in the total order (``timestamp_ms``, ``request_id``) of a closed window ([start, end) in epoch ms); a trace
id seen twice is kept once, so a re-run of a window returns identical rows. :func:`extract_window` reads a whole
window with spans in one go (curation's lookback), sorted the same way.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from genai_flywheel.environ import scoped_environ
from genai_flywheel.exceptions import ConfigError, StoreError
from genai_flywheel.traces.schema import INFO_SCHEMA, TRACE_SCHEMA

if TYPE_CHECKING:
    from mlflow.entities import Trace, TraceInfo

    from genai_flywheel.workspace import ParquetPartWriter

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
    """Every trace matching ``filter_string``, page by page (OFFSET paging), in (timestamp_ms, request_id)
    order. For a time window, :func:`iter_window_traces` reads faster."""
    for page in _pages(tracking_uri, experiment_id, filter_string, include_spans, page_size):
        if not page:
            return
        yield from page


def iter_window_traces(
    tracking_uri: str,
    experiment_id: str,
    start_ms: int,
    end_ms: int,
    *,
    extra: str | None = None,
    include_spans: bool = True,
    page_size: int = MAX_PAGE,
) -> Iterator[Trace]:
    """Every trace of [start_ms, end_ms) matching ``extra``, in (timestamp_ms, request_id) order, by keyset
    paging: each page is a new query from the last timestamp seen, so no page re-reads the ones before it.

    The ids already returned at that timestamp are skipped. When a whole page shares one millisecond (more
    than ``page_size`` traces in it), that millisecond alone is read with OFFSET paging.
    """
    if end_ms <= start_ms:
        return
    low = int(start_ms)
    seen_at_low: set[str] = set()
    while True:
        page = next(_pages(tracking_uri, experiment_id, window_filter(low, end_ms, extra), include_spans, page_size))
        fresh = [t for t in page if not (t.info.request_time == low and t.info.trace_id in seen_at_low)]
        if not fresh and len(page) >= page_size:
            # page_size traces in one millisecond, all returned already: page through that millisecond alone.
            for trace in iter_traces(
                tracking_uri,
                experiment_id,
                window_filter(low, low + 1, extra),
                include_spans=include_spans,
                page_size=page_size,
            ):
                if trace.info.trace_id not in seen_at_low:
                    yield trace
            low, seen_at_low = low + 1, set()
            continue
        yield from fresh
        if len(page) < page_size:
            return
        last = int(page[-1].info.request_time)
        at_last = {t.info.trace_id for t in page if t.info.request_time == last}
        seen_at_low = seen_at_low | at_last if last == low else at_last
        low = last


def _pages(
    tracking_uri: str, experiment_id: str, filter_string: str, include_spans: bool, page_size: int
) -> Iterator[Any]:
    """The pages of one ``search_traces`` query, each a list of traces (empty at the end)."""
    c = client(tracking_uri)
    loading = span_loading_environ(tracking_uri, page_size) if include_spans else {}
    token: str | None = None
    while True:
        try:
            with scoped_environ(loading):
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
        yield list(page)
        token = page.token
        if not token or not page:
            yield []
            return


_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
#: Threads loading spans through a tracking server: within MLflow's HTTP connection pool (10 by default,
#: ``MLFLOW_HTTP_POOL_MAXSIZE``), which more threads overflow ("Connection pool is full" warnings).
HTTP_SPAN_THREADS = 8


def span_loading_environ(tracking_uri: str, batch: int) -> dict[str, str]:
    """MLflow's span-loading settings for ``tracking_uri``, to be set only around one call.

    MLflow loads spans in batches of 10 traces on up to 32 threads: right for a tracking server or an
    artifact store, where each batch waits on the network, though 32 threads overflow its HTTP pool; on a
    SQL store the work is CPU-bound (parsing span JSON) and the threads only contend for the GIL. One batch
    on one thread there: measured 2.3x faster on SQLite (9,548 traces with spans: 18.2 s -> 8.0 s).
    (mlflow/environment_variables.py in 3.17; the environment is process-wide, hence never across a yield.)
    """
    if _is_sql_uri(tracking_uri):
        return {"MLFLOW_SEARCH_TRACES_MAX_THREADS": "1", "MLFLOW_SEARCH_TRACES_MAX_BATCH_SIZE": str(batch)}
    return {"MLFLOW_SEARCH_TRACES_MAX_THREADS": str(HTTP_SPAN_THREADS)}


def _is_sql_uri(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` is a database MLflow reads directly (``postgresql+psycopg2://`` too)."""
    return tracking_uri.split(":", 1)[0].split("+", 1)[0] in _SQL_SCHEMES


def count_traces(tracking_uri: str, experiment_id: str, filter_string: str) -> int:
    """How many traces match, reading trace infos only (fast: no spans)."""
    return sum(
        1 for _ in iter_traces(tracking_uri, experiment_id, filter_string, include_spans=False, page_size=MAX_PAGE)
    )


def extract_infos(
    tracking_uri: str,
    experiment_id: str,
    start_ms: int,
    end_ms: int,
    writer: ParquetPartWriter,
    *,
    app: str,
    page_size: int = MAX_PAGE,
) -> int:
    """Pass one: the trace infos of [start_ms, end_ms), page by page into ``writer`` (``INFO_SCHEMA``).

    No spans are read. A page becomes Arrow rows as it arrives, so memory holds one page, not the window.
    Returns the number of rows written.
    """
    import pyarrow as pa

    if end_ms <= start_ms:
        raise ValueError(f"empty window: start_ms={start_ms} must be before end_ms={end_ms}")
    written = 0
    page: list[dict[str, Any]] = []
    for info in distinct_infos(
        iter_window_traces(tracking_uri, experiment_id, start_ms, end_ms, include_spans=False, page_size=page_size)
    ):
        page.append(info_to_row(info, app=app))
        written += 1
        if len(page) >= page_size:
            writer.write(pa.Table.from_pylist(page, schema=INFO_SCHEMA))
            page = []
    writer.write(pa.Table.from_pylist(page, schema=INFO_SCHEMA))
    return written


def distinct_infos(traces: Iterable[Trace]) -> Iterator[TraceInfo]:
    """The infos of ``traces`` (in (timestamp_ms, request_id) order, as :func:`iter_window_traces` yields
    them), each trace id once.

    A trace can only come back at the millisecond being read: OFFSET paging within one millisecond that a late
    trace was written into repeats a row of that millisecond, and keyset paging never goes back in time. So
    only the ids of the current millisecond are kept, never the window's: memory does not grow with the window.
    """
    current: int | None = None
    seen_now: set[str] = set()
    for trace in traces:
        info = trace.info
        stamp = int(info.request_time)
        if stamp != current:
            current, seen_now = stamp, set()
        elif info.trace_id in seen_now:
            continue
        seen_now.add(info.trace_id)
        yield info


def fetch_traces(tracking_uri: str, trace_ids: list[str]) -> dict[str, Trace]:
    """Pass two: the full traces (spans included) of ``trace_ids`` by id, through ``batch_get_traces``.

    A trace whose spans MLflow cannot load (an unfinished trace, lost span data) is absent from the result,
    or present without spans; the caller quarantines it.
    """
    from genai_flywheel.mlflow_compat import tracing_client

    if not trace_ids:
        return {}
    try:
        with scoped_environ(span_loading_environ(tracking_uri, len(trace_ids))):
            traces = tracing_client(tracking_uri).batch_get_traces(list(trace_ids))
    except Exception as err:  # MLflow raises many kinds; the task retries on StoreError
        raise StoreError(f"batch_get_traces failed on {tracking_uri} for {len(trace_ids)} traces: {err}") from err
    return {t.info.trace_id: t for t in traces if t is not None}


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
    # Each trace becomes its row as its page arrives: the window's MLflow Trace objects are never all held.
    rows = {
        t.info.trace_id: trace_to_row(t, app=app)
        for t in iter_window_traces(
            tracking_uri, experiment_id, start_ms, end_ms, extra=filter_string, page_size=page_size
        )
    }
    # search_traces silently leaves out a trace whose spans it cannot load (an unfinished trace, a lost
    # artifact). The trace infos alone are cheap to list: every trace missing above still gets its row,
    # built from the info, so the data contract can quarantine it with a reason instead of losing it.
    missing = 0
    for t in iter_window_traces(
        tracking_uri, experiment_id, start_ms, end_ms, extra=filter_string, include_spans=False, page_size=MAX_PAGE
    ):
        if t.info.trace_id not in rows:
            rows[t.info.trace_id] = trace_to_row(t, app=app)
            missing += 1
    if missing:
        log.warning("%d traces of %s have no readable spans; extracted from their trace info only", missing, experiment)
    table = rows_to_table(rows.values())
    log.info("extracted %d traces of %s in [%d, %d)", table.num_rows, experiment, start_ms, end_ms)
    return table


def rows_to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """TRACE_SCHEMA rows (unique trace ids) as a table sorted by (timestamp_ms, trace_id)."""
    ordered = sorted(rows, key=lambda r: (r["timestamp_ms"], r["trace_id"]))
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


def info_to_row(info: TraceInfo, *, app: str) -> dict[str, Any]:
    """The ``INFO_SCHEMA`` row of a trace info: everything the monitor reads without loading spans.

    The model comes from the trace's ``model`` tag or metadata (the span attributes are not read here).
    """
    metadata = dict(info.trace_metadata or {})
    tags = dict(info.tags or {})
    state = getattr(info.state, "value", str(info.state)) if info.state is not None else None
    usage = info.token_usage or _loads(metadata.get("mlflow.trace.tokenUsage")) or {}
    return {
        "trace_id": info.trace_id,
        "app": app,
        "timestamp_ms": int(info.request_time),
        "status": state,
        "execution_time_ms": int(info.execution_duration) if info.execution_duration is not None else None,
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "model": tags.get("model") or metadata.get("model"),
        "session_id": metadata.get("mlflow.trace.session"),
        "user_id": metadata.get("mlflow.trace.user"),
        "app_version": tags.get("app_version") or metadata.get("app_version"),
        "tags": _dumps(tags),
        "metadata": _dumps(metadata),
        "assessments": _assessment_rows(info.assessments),
        "query": preview_query(info.request_preview),
    }


# The value of a question key in JSON text that may be cut short: the string up to its closing quote, or up
# to the cut when the preview ends inside it.
_PREVIEW_KEY = re.compile(r'"(?:query|question|input|prompt)"\s*:\s*"((?:[^"\\]|\\.)*)')


def preview_query(preview: str | None) -> str | None:
    """The user's question in a trace info's request preview (JSON text of the root inputs, possibly cut
    short by MLflow): :func:`query_text` of the parsed inputs, else the ``query``/``question``/``input``/
    ``prompt`` string as far as the preview holds it, else None."""
    if not preview:
        return None
    try:
        return query_text(json.loads(preview))
    except (TypeError, ValueError):
        pass
    match = _PREVIEW_KEY.search(preview)
    if match is None:
        return None
    raw = match.group(1)
    if raw.endswith("\\") and not raw.endswith("\\\\"):
        raw = raw[:-1]  # an escape cut in half
    try:
        return json.loads(f'"{raw}"')
    except ValueError:
        return raw


def trace_to_row(trace: Trace, *, app: str) -> dict[str, Any]:
    """One TRACE_SCHEMA row for an MLflow trace.

    Spans are read in their dict form (``trace.to_dict()``, the form MLflow stores them in): a span that
    came from a SQL store is a ``LazySpan`` that would otherwise be rebuilt as an OpenTelemetry span just
    to read a few attributes, and the same dict is serialised once as ``trace_json``.
    """
    info = trace.info
    trace_dict = trace.to_dict() if trace.data and trace.data.spans else None
    spans = [_v3_span(s) for s in trace_dict["data"]["spans"]] if trace_dict else []
    root = next((s for s in spans if not s.get("parent_span_id")), None)
    metadata = dict(info.trace_metadata or {})

    if root is not None:
        attrs = root.get("attributes") or {}
        inputs, outputs = _loads(attrs.get(_INPUTS)), _loads(attrs.get(_OUTPUTS))
    else:  # spans not fetched: fall back to the trace-level copies MLflow keeps in the metadata
        inputs = _loads(metadata.get("mlflow.traceInputs"))
        outputs = _loads(metadata.get("mlflow.traceOutputs"))

    context: list[str] = []
    span_rows = []
    error_type = error_message = None
    model = None
    for span in spans:
        attrs = span.get("attributes") or {}
        span_type = _loads(attrs.get(_SPAN_TYPE)) or "UNKNOWN"
        start, end = span.get("start_time_unix_nano"), span.get("end_time_unix_nano")
        duration = (int(end) - int(start)) / 1e6 if start is not None and end else None
        span_rows.append(
            {"name": span.get("name"), "span_type": span_type, "duration_ms": duration, "status": _status(span)}
        )
        if span_type == "RETRIEVER":
            context.extend(_documents(_loads(attrs.get(_OUTPUTS))))
        if model is None and span_type in ("CHAT_MODEL", "LLM"):
            model = next((v for k in _MODEL_ATTRS if isinstance(v := _loads(attrs.get(k)), str)), None)
        if error_type is None:
            for event in span.get("events") or []:
                if event.get("name") == "exception":
                    event_attrs = event.get("attributes") or {}
                    error_type = event_attrs.get("exception.type") or "Exception"
                    error_message = event_attrs.get("exception.message")
                    break

    row = info_to_row(info, app=app)
    if row["status"] == "ERROR" and error_type is None:
        error_type = "UnknownError"
    row.update(
        {
            "request": _dumps(inputs),
            "response": _dumps(outputs),
            "query": query_text(inputs),
            "answer": answer_text(outputs),
            "context": context,
            "error_type": error_type,
            "error_message": error_message,
            "spans": span_rows,
            "model": model or row["model"],
            "trace_json": _trace_json(trace_dict) if trace_dict else None,
        }
    )
    return row


# Span attribute keys (mlflow.tracing.constant.SpanAttributeKey); values are stored JSON-encoded, and
# _loads decodes them as MLflow's Span.get_attribute does (JSON, else the value as it is).
_INPUTS, _OUTPUTS, _SPAN_TYPE = "mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.spanType"


def _status(span: dict[str, Any]) -> str:
    """``OK``/``ERROR``/``UNSET`` from a span dict (``STATUS_CODE_OK`` in the OTLP form, ``OK`` in older ones)."""
    code = (span.get("status") or {}).get("code") or "UNSET"
    return str(code).removeprefix("STATUS_CODE_")


def is_stored_span(span: Any) -> bool:
    """Whether ``span`` is a span dict in MLflow 3's stored form (what ``LazySpan`` and this module read)."""
    return isinstance(span, dict) and "start_time_unix_nano" in span and "attributes" in span


def _v3_span(span: Any) -> dict[str, Any]:
    """A span dict in MLflow 3's stored form; one in an older form is converted through ``Span``."""
    if is_stored_span(span):
        return span
    from mlflow.entities import Span

    return Span.from_dict(span).to_dict()


def _trace_json(trace_dict: dict[str, Any]) -> str:
    """``Trace.to_json()`` of an already computed ``trace.to_dict()``."""
    from genai_flywheel.mlflow_compat import trace_dict_to_json

    return trace_dict_to_json(trace_dict)
