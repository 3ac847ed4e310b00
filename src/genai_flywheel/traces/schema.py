"""The Arrow schema of an extracted trace table: the contract between every stage.

One row per trace. Columns:

==================  =======================  ==========================================================
column              type                     meaning
==================  =======================  ==========================================================
trace_id            string, required         MLflow trace id
app                 string, required         configured application name
timestamp_ms        int64, required          trace start, epoch milliseconds (UTC)
status              string                   MLflow trace state: OK, ERROR, IN_PROGRESS, ...
execution_time_ms   int64                    end-to-end latency
request             string                   root span inputs, JSON text
response            string                   root span outputs, JSON text
query               string                   the user's question, pulled out of ``request``
answer              string                   the app's answer, pulled out of ``response``
context             list<string>             retrieved document texts (RETRIEVER spans)
error_type          string                   exception type of a failed trace (null if OK)
error_message       string                   exception message of a failed trace
spans               list<struct>             per span: name, span_type, duration_ms, status
input_tokens        int64                    prompt tokens (trace token usage)
output_tokens       int64                    completion tokens
total_tokens        int64
model               string                   LLM model name, for the price table
session_id          string                   ``mlflow.trace.session`` metadata
user_id             string                   ``mlflow.trace.user`` metadata
app_version         string                   ``app_version`` tag
tags                string                   all trace tags, JSON object text
metadata            string                   all trace request metadata, JSON object text
assessments         list<struct>             existing assessments (see ASSESSMENT_TYPE)
trace_json          string                   the whole MLflow trace (``Trace.to_json()``) for scorers
                                             that take ``trace``
==================  =======================  ==========================================================

Text columns hold JSON rather than Arrow maps so they survive Parquet, pandas and Python untouched.

The monitor reads a window in two passes. Pass one lists trace infos only (no spans): its rows have the
:data:`INFO_COLUMNS` (:data:`INFO_SCHEMA`), every one of which MLflow keeps on the trace info. There the
``query`` comes from the trace info's request preview (the root inputs as JSON text, which MLflow cuts
short for long requests): the question of a cut-short preview is read up to the cut, or is null. Pass two
fetches full traces for the sampled traces only and builds complete ``TRACE_SCHEMA`` rows for them.
"""

from __future__ import annotations

import pyarrow as pa

SPAN_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("span_type", pa.string()),
        ("duration_ms", pa.float64()),
        ("status", pa.string()),
    ]
)

ASSESSMENT_TYPE = pa.struct(
    [
        ("assessment_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),  # "feedback" or "expectation"
        ("value", pa.string()),  # JSON text of the value
        ("source_type", pa.string()),  # HUMAN, CODE, LLM_JUDGE
        ("source_id", pa.string()),
        ("rationale", pa.string()),
        ("error", pa.string()),
        ("create_time_ms", pa.int64()),
    ]
)

TRACE_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.string(), nullable=False),
        pa.field("app", pa.string(), nullable=False),
        pa.field("timestamp_ms", pa.int64(), nullable=False),
        pa.field("status", pa.string()),
        pa.field("execution_time_ms", pa.int64()),
        pa.field("request", pa.string()),
        pa.field("response", pa.string()),
        pa.field("query", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("context", pa.list_(pa.string())),
        pa.field("error_type", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("spans", pa.list_(SPAN_TYPE)),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("total_tokens", pa.int64()),
        pa.field("model", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("app_version", pa.string()),
        pa.field("tags", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("assessments", pa.list_(ASSESSMENT_TYPE)),
        pa.field("trace_json", pa.string()),
    ]
)

#: Columns of a pass-one row: everything MLflow keeps on the trace info, read without loading spans.
INFO_COLUMNS = (
    "trace_id",
    "app",
    "timestamp_ms",
    "status",
    "execution_time_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "model",
    "session_id",
    "user_id",
    "app_version",
    "tags",
    "metadata",
    "assessments",
    "query",
)
INFO_SCHEMA = pa.schema([TRACE_SCHEMA.field(name) for name in INFO_COLUMNS])

# Columns added by the sample stage.
SAMPLE_FIELDS = [
    pa.field("stratum", pa.string(), nullable=False),
    pa.field("sample_rate", pa.float64(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),  # inclusion weight = 1 / sample_rate
    pa.field("shard", pa.int32(), nullable=False),
    pa.field("scorers", pa.list_(pa.string()), nullable=False),  # scorers that sampled this trace
]

# One row per (trace, scorer): the output of the score stage.
SCORE_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.string(), nullable=False),
        pa.field("app", pa.string(), nullable=False),
        pa.field("timestamp_ms", pa.int64(), nullable=False),
        pa.field("scorer", pa.string(), nullable=False),
        pa.field("scorer_version", pa.string(), nullable=False),
        pa.field("source_type", pa.string(), nullable=False),  # CODE or LLM_JUDGE
        pa.field("value", pa.string()),  # JSON text of the Feedback value; null when not scored
        pa.field("numeric", pa.float64()),  # value as a number (bool -> 0/1; yes/no -> 1/0) if it has one
        pa.field("passed", pa.bool_()),  # pass/fail when the scorer defines one
        pa.field("rationale", pa.string()),
        pa.field("error", pa.string()),  # why the trace was not scored (scorer error, judge outage, budget)
        pa.field("stratum", pa.string()),
        pa.field("weight", pa.float64()),
        pa.field("assessment_id", pa.string(), nullable=False),  # deterministic, for idempotent write-back
    ]
)

QUARANTINE_FIELDS = [pa.field("reasons", pa.list_(pa.string()), nullable=False)]

#: What the score stage keeps of each fetched (sampled, full) trace for the span and error-type estimates
#: of the aggregate stage: a few small columns, never the trace itself.
FETCHED_SCHEMA = pa.schema(
    [
        TRACE_SCHEMA.field("trace_id"),
        TRACE_SCHEMA.field("status"),
        TRACE_SCHEMA.field("error_type"),
        TRACE_SCHEMA.field("spans"),
        pa.field("weight", pa.float64(), nullable=False),  # trace-level inclusion weight 1 / pi
    ]
)
