"""The data contracts, declared as Great Expectations suites.

A suite *is* the contract: every expectation carries, in its ``meta``, a stable ``key`` (used in reports)
and a ``reason`` template that becomes the quarantine reason of each failing row. ``{value}`` in a template
is replaced by the failing row's value (strings quoted), ``{label}`` by a readable phrase for a derived
JSON-kind code (see :data:`JSON_KIND_LABELS`).

The GX ``severity`` decides what a failure does:

* ``critical`` column expectation: each failing row is quarantined with the expectation's reason;
* ``critical`` table expectation: the batch as a whole breaks the contract (``DataContractError``);
* ``warning``: counted in the report only, the row stays valid.

GX has no "is a JSON object" check for pandas, so JSON text columns are parsed before validation into a
derived ``<column>_json_kind`` column (one of :data:`JSON_KINDS`, never null) that the suite constrains.

great_expectations is imported inside the functions: it takes ~15 s to import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import great_expectations as gx

TRACE_SUITE_NAME = "flywheel_trace_contract"
TRACE_SUITE_VERSION = "2.0.0"  # 2.0: the content checks moved to flywheel_trace_content_contract
CONTENT_SUITE_NAME = "flywheel_trace_content_contract"
CONTENT_SUITE_VERSION = "1.0.0"
EVAL_DATASET_SUITE_NAME = "flywheel_eval_dataset_contract"
EVAL_DATASET_SUITE_VERSION = "1.0.0"

#: MLflow trace states (``TraceState``). IN_PROGRESS is a valid state but is quarantined: an unfinished trace
#: has no outputs or latency yet and cannot be scored.
TRACE_STATUSES = ("OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED")
#: States of a trace that has ended, so it must have a latency.
FINISHED_STATUSES = ("OK", "ERROR")

#: MLflow 3 trace ids are ``tr-`` + 32 lowercase hex digits. Other id shapes (older clients, other backends)
#: are reported as a warning but are not quarantined: any non-empty unique string identifies a trace.
TRACE_ID_PATTERN = r"^tr-[0-9a-f]{32}$"

#: Sane range of ``timestamp_ms``: from 2000-01-01 (inclusive) to 2100-01-01 (exclusive), UTC. Fixed bounds
#: rather than "now" keep validation deterministic; the upper bound catches seconds/microseconds mix-ups.
MIN_TIMESTAMP_MS = 946_684_800_000
MAX_TIMESTAMP_MS = 4_102_444_800_000

#: Columns of a trace table the trace contract reads (all on the trace info: pass one of extraction); a
#: batch missing any of them breaks the contract.
TRACE_REQUIRED_COLUMNS = (
    "trace_id",
    "app",
    "timestamp_ms",
    "status",
    "execution_time_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
)
#: Columns of a full trace row the content contract reads (pass two: the sampled traces read in full).
CONTENT_REQUIRED_COLUMNS = ("trace_id", "status", "request", "response")

#: Columns of a curated evaluation-dataset record table.
EVAL_DATASET_REQUIRED_COLUMNS = ("record_id", "inputs", "source_trace_id", "rule", "outputs", "expectations")

#: Codes of a derived ``<column>_json_kind`` column.
JSON_KINDS = (
    "object",
    "empty_object",
    "array",
    "string",
    "number",
    "boolean",
    "null",
    "invalid",
    "missing",
)
JSON_KIND_LABELS = {
    "object": "a JSON object",
    "empty_object": "an empty JSON object",
    "array": "a JSON array",
    "string": "a JSON string",
    "number": "a JSON number",
    "boolean": "a JSON boolean",
    "null": "JSON null",
    "invalid": "not valid JSON",
    "missing": "missing (null)",
}


def json_kind(text: str | None) -> str:
    """The :data:`JSON_KINDS` code of one JSON text value (``missing`` for a null value)."""
    if text is None:
        return "missing"
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return "invalid"
    # bool is checked before numbers because bool is an int subclass.
    if isinstance(value, dict):
        return "object" if value else "empty_object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def json_kind_column(name: str) -> str:
    """The name of the derived JSON-kind column of text column ``name``."""
    return f"{name}_json_kind"


@dataclass(frozen=True)
class ContractSpec:
    """How to validate one kind of table: its suite and what must be prepared before GX sees it.

    ``required_columns`` are converted to pandas for GX (scalar columns, cheap to convert); columns not listed
    (``trace_json``, list columns) are never converted. ``json_columns`` get a derived JSON-kind column.
    """

    name: str
    version: str
    build_suite: Callable[[], gx.ExpectationSuite]
    required_columns: tuple[str, ...]
    json_columns: tuple[str, ...]
    row_noun: str
    hint: str


def _meta(key: str, reason: str) -> dict[str, Any]:
    return {"key": key, "reason": reason}


def _token_checks(gxe: Any, columns: Iterable[str]) -> list[Any]:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=0, meta=_meta(f"{col}_non_negative", f"{col} {{value}} < 0")
        )
        for col in columns
    ]


def trace_contract_suite() -> gx.ExpectationSuite:
    """The trace data contract ``flywheel_trace_contract`` (a new suite object on every call), checked on
    every trace of the window from its trace info.

    Row level (failing rows are quarantined): trace_id present, non-empty and unique in the batch; app
    present; timestamp_ms present and within [2000-01-01, 2100-01-01); status present, an MLflow state and
    not IN_PROGRESS; execution_time_ms >= 0, and present for finished (OK/ERROR) traces; token counts >= 0
    when present. Warning only: trace_id matches :data:`TRACE_ID_PATTERN`. Table level: the required columns
    exist. What needs the spans is :func:`trace_content_suite`'s, checked on the traces read in full.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    allowed = ", ".join(TRACE_STATUSES)
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(TRACE_REQUIRED_COLUMNS),
            exact_match=False,
            meta=_meta("required_columns", "required columns missing"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="trace_id", meta=_meta("trace_id_not_null", "trace_id is null")),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="trace_id", min_value=1, meta=_meta("trace_id_not_empty", "trace_id is empty")
        ),
        gxe.ExpectColumnValuesToBeUnique(
            column="trace_id",
            meta=_meta("trace_id_unique", "trace_id {value} occurs more than once in the batch"),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="trace_id",
            regex=TRACE_ID_PATTERN,
            severity="warning",
            meta=_meta("trace_id_format", "trace_id {value} is not 'tr-' + 32 hex digits"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="app", meta=_meta("app_not_null", "app is null")),
        gxe.ExpectColumnValuesToNotBeNull(
            column="timestamp_ms", meta=_meta("timestamp_not_null", "timestamp_ms is null")
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="timestamp_ms",
            min_value=MIN_TIMESTAMP_MS,
            max_value=MAX_TIMESTAMP_MS,
            strict_max=True,
            meta=_meta(
                "timestamp_in_range",
                "timestamp_ms {value} is outside [2000-01-01, 2100-01-01); expected epoch milliseconds",
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="status", meta=_meta("status_not_null", "status is null")),
        gxe.ExpectColumnValuesToBeInSet(
            column="status",
            value_set=list(TRACE_STATUSES),
            meta=_meta("status_allowed", f"status {{value}} not in allowed values ({allowed})"),
        ),
        gxe.ExpectColumnValuesToNotBeInSet(
            column="status",
            value_set=["IN_PROGRESS"],
            meta=_meta("trace_finished", "trace still in progress"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="execution_time_ms",
            row_condition=Column("status").is_in(list(FINISHED_STATUSES)),
            meta=_meta("latency_not_null", "execution_time_ms is null for a finished trace"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="execution_time_ms",
            min_value=0,
            meta=_meta("latency_non_negative", "execution_time_ms {value} < 0"),
        ),
        *_token_checks(gxe, ("input_tokens", "output_tokens", "total_tokens")),
    ]
    return gx.ExpectationSuite(
        name=TRACE_SUITE_NAME,
        expectations=expectations,
        meta={"version": TRACE_SUITE_VERSION, "table": "genai_flywheel.traces.schema.INFO_SCHEMA"},
    )


def trace_content_suite() -> gx.ExpectationSuite:
    """The content contract ``flywheel_trace_content_contract``, checked on the sampled traces read in full
    (a new suite object on every call).

    Row level (failing rows are quarantined and not scored): request a JSON object; response valid JSON when
    status is OK. Table level: the required columns exist. (A sampled trace whose spans MLflow cannot return
    at all is quarantined before this suite runs, with its own reason.)
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(CONTENT_REQUIRED_COLUMNS),
            exact_match=False,
            meta=_meta("required_columns", "required columns missing"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=json_kind_column("request"),
            value_set=["object", "empty_object"],
            meta=_meta("request_is_json_object", "request is {label}; expected a JSON object"),
        ),
        gxe.ExpectColumnValuesToNotBeInSet(
            column=json_kind_column("response"),
            value_set=["invalid"],
            row_condition=Column("status") == "OK",
            meta=_meta("response_is_json", "response is not valid JSON"),
        ),
    ]
    return gx.ExpectationSuite(
        name=CONTENT_SUITE_NAME,
        expectations=expectations,
        meta={"version": CONTENT_SUITE_VERSION, "table": "genai_flywheel.traces.schema.TRACE_SCHEMA"},
    )


def eval_dataset_suite() -> gx.ExpectationSuite:
    """The curated evaluation-record contract ``flywheel_eval_dataset_contract`` (a new suite on every call).

    Row level: record_id present and unique; inputs a non-empty JSON object; source_trace_id and rule present;
    outputs valid JSON when present; expectations a JSON object when present. Table level: the six record
    columns exist.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(EVAL_DATASET_REQUIRED_COLUMNS),
            exact_match=False,
            meta=_meta("required_columns", "required columns missing"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="record_id", meta=_meta("record_id_not_null", "record_id is null")),
        gxe.ExpectColumnValuesToBeUnique(
            column="record_id",
            meta=_meta("record_id_unique", "record_id {value} occurs more than once in the batch"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=json_kind_column("inputs"),
            value_set=["object"],
            meta=_meta("inputs_non_empty_object", "inputs is {label}; expected a non-empty JSON object"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="source_trace_id", meta=_meta("source_trace_id_not_null", "source_trace_id is null")
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="rule", meta=_meta("rule_not_null", "rule is null")),
        gxe.ExpectColumnValuesToNotBeInSet(
            column=json_kind_column("outputs"),
            value_set=["invalid"],
            meta=_meta("outputs_is_json", "outputs is not valid JSON"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=json_kind_column("expectations"),
            value_set=["object", "empty_object", "missing"],
            meta=_meta("expectations_is_json_object", "expectations is {label}; expected a JSON object or null"),
        ),
    ]
    return gx.ExpectationSuite(
        name=EVAL_DATASET_SUITE_NAME,
        expectations=expectations,
        meta={"version": EVAL_DATASET_SUITE_VERSION},
    )


TRACE_CONTRACT = ContractSpec(
    name=TRACE_SUITE_NAME,
    version=TRACE_SUITE_VERSION,
    build_suite=trace_contract_suite,
    required_columns=TRACE_REQUIRED_COLUMNS,
    json_columns=(),
    row_noun="trace",
    hint="check the upstream application and the extract stage",
)

CONTENT_CONTRACT = ContractSpec(
    name=CONTENT_SUITE_NAME,
    version=CONTENT_SUITE_VERSION,
    build_suite=trace_content_suite,
    required_columns=CONTENT_REQUIRED_COLUMNS,
    json_columns=("request", "response"),
    row_noun="trace",
    hint="check the upstream application's root span inputs and outputs",
)

EVAL_DATASET_CONTRACT = ContractSpec(
    name=EVAL_DATASET_SUITE_NAME,
    version=EVAL_DATASET_SUITE_VERSION,
    build_suite=eval_dataset_suite,
    required_columns=EVAL_DATASET_REQUIRED_COLUMNS,
    json_columns=("inputs", "outputs", "expectations"),
    row_noun="record",
    hint="check the curation rules that built these records",
)

#: Record suites by the name ``validate_records`` accepts.
RECORD_CONTRACTS = {"eval_dataset": EVAL_DATASET_CONTRACT}
