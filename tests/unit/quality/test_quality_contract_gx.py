"""The trace and record contracts run through Great Expectations.

The only test module that imports great_expectations (~15 s): validations run once in module-scoped fixtures.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.quality import (
    EVAL_DATASET_SUITE_NAME,
    TRACE_SUITE_NAME,
    TRACE_SUITE_VERSION,
    ContractResult,
    eval_dataset_suite,
    trace_contract_suite,
    validate_records,
    validate_traces,
)
from genai_flywheel.quality.contract import ContractTotals, validate_trace_content
from genai_flywheel.quality.suites import CONTENT_SUITE_NAME, trace_content_suite

if TYPE_CHECKING:
    import pyarrow as pa

GOOD_TS = 1_760_000_000_000


def _trace(trace_id: str | None, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "app": "support-bot",
        "timestamp_ms": GOOD_TS,
        "status": "OK",
        "execution_time_ms": 120,
        "request": json.dumps({"question": "how do I reset my password?"}),
        "response": json.dumps({"answer": "Use the reset link."}),
        "context": ["doc one", "doc two"],
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "trace_json": "{}",
    }
    row.update(overrides)
    return row


def _hex(n: int) -> str:
    return f"tr-{n:032x}"


# (row, expected reasons or None when the row must stay valid)
CASES: list[tuple[dict[str, Any], list[str] | None]] = [
    (_trace(_hex(1)), None),
    (_trace(None), ["trace_id is null"]),
    (
        _trace(_hex(2), status="BROKEN"),
        ["status 'BROKEN' not in allowed values (OK, ERROR, IN_PROGRESS, STATE_UNSPECIFIED)"],
    ),
    (_trace(_hex(3), execution_time_ms=-5), ["execution_time_ms -5 < 0"]),
    (_trace(_hex(4), output_tokens=-2), ["output_tokens -2 < 0"]),
    # The trace contract reads the trace info only: the root span's content is the content contract's.
    (_trace(_hex(5), request="{not json"), None),
    (
        _trace(_hex(6), status="IN_PROGRESS", execution_time_ms=None, response=None),
        ["trace still in progress"],
    ),
    (
        _trace(_hex(10), status="ERROR", execution_time_ms=None),
        ["execution_time_ms is null for a finished trace"],
    ),
    (
        _trace(_hex(11), timestamp_ms=1_760_000_000),
        ["timestamp_ms 1760000000 is outside [2000-01-01, 2100-01-01); expected epoch milliseconds"],
    ),
    (_trace(""), ["trace_id is empty"]),
    # A non-MLflow-looking id is only a warning; null tokens are allowed.
    (_trace("legacy-42", input_tokens=None, output_tokens=None, total_tokens=None), None),
    (
        _trace(_hex(12), status="BROKEN", input_tokens=-1, request="nope"),
        [
            "status 'BROKEN' not in allowed values (OK, ERROR, IN_PROGRESS, STATE_UNSPECIFIED)",
            "input_tokens -1 < 0",
        ],
    ),
    (_trace(_hex(13), status="STATE_UNSPECIFIED", execution_time_ms=None), None),
    (_trace(_hex(99)), None),
]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    from genai_flywheel.traces.schema import TRACE_SCHEMA

    return pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)


@pytest.fixture(scope="module")
def traces() -> pa.Table:
    return _table([row for row, _ in CASES])


@pytest.fixture(scope="module")
def result(traces: pa.Table) -> ContractResult:
    return validate_traces(traces, max_bad_fraction=1.0)


def test_each_failure_kind_is_quarantined_with_its_reason(result: ContractResult) -> None:
    expected = [(row["trace_id"], reasons) for row, reasons in CASES if reasons is not None]
    got = list(zip(result.quarantine["trace_id"].to_pylist(), result.quarantine["reasons"].to_pylist(), strict=True))
    assert got == expected


def test_good_rows_are_untouched_and_in_order(traces: pa.Table, result: ContractResult) -> None:
    good = [i for i, (_, reasons) in enumerate(CASES) if reasons is None]
    assert result.valid.schema == traces.schema
    assert result.valid.equals(traces.take(good))
    assert len(result.valid) + len(result.quarantine) == len(traces)


def test_quarantine_keeps_every_column_plus_reasons(traces: pa.Table, result: ContractResult) -> None:
    from genai_flywheel.traces.schema import QUARANTINE_FIELDS

    assert result.quarantine.schema.names == traces.schema.names + ["reasons"]
    assert result.quarantine.schema.field("reasons") == QUARANTINE_FIELDS[0]
    bad = [i for i, (_, reasons) in enumerate(CASES) if reasons is not None]
    assert result.quarantine.drop_columns(["reasons"]).equals(traces.take(bad))


def test_report_counts_rows_and_expectations(result: ContractResult) -> None:
    report = result.report
    n_bad = sum(reasons is not None for _, reasons in CASES)
    assert (report["suite"], report["suite_version"]) == (TRACE_SUITE_NAME, TRACE_SUITE_VERSION)
    assert (report["rows_checked"], report["rows_quarantined"]) == (len(CASES), n_bad)
    assert report["rows_valid"] == len(CASES) - n_bad
    assert report["success"] and result.ok
    by_key = {e["key"]: e for e in report["expectations"]}
    assert [e["key"] for e in report["expectations"]] == [e.meta["key"] for e in trace_contract_suite().expectations]
    assert by_key["status_allowed"]["unexpected_count"] == 2
    assert by_key["trace_finished"]["unexpected_count"] == 1
    assert by_key["trace_id_unique"]["success"] is True
    # Warning only: counted, not quarantined ("legacy-42" is valid; the empty id does not match either).
    assert by_key["trace_id_format"]["action"] == "report"
    assert by_key["trace_id_format"]["unexpected_count"] == 2
    assert by_key["required_columns"]["action"] == "fail_batch"
    json.dumps(report)  # serialisable as is


def test_same_input_gives_identical_output(traces: pa.Table, result: ContractResult) -> None:
    again = validate_traces(traces, max_bad_fraction=1.0)
    assert again.report == result.report
    assert again.valid.equals(result.valid)
    assert again.quarantine.equals(result.quarantine)


def test_all_good_batch_passes_through_unchanged() -> None:
    rows = [_trace(_hex(i), status="ERROR" if i % 3 == 0 else "OK") for i in range(1, 8)]
    res = validate_traces(_table(rows))
    assert res.ok and res.quarantine.num_rows == 0
    assert res.valid.equals(_table(rows))


def test_duplicate_trace_ids_are_all_quarantined() -> None:
    rows = [_trace(_hex(1)), _trace(_hex(2)), _trace(_hex(1)), _trace(_hex(3))]
    res = validate_traces(_table(rows))
    assert res.valid["trace_id"].to_pylist() == [_hex(2), _hex(3)]
    assert res.quarantine["reasons"].to_pylist() == [[f"trace_id '{_hex(1)}' occurs more than once in the batch"]] * 2


def test_empty_table_validates_to_empty_outputs() -> None:
    from genai_flywheel.traces.schema import TRACE_SCHEMA

    res = validate_traces(TRACE_SCHEMA.empty_table())
    assert res.ok and res.valid.num_rows == 0 and res.quarantine.num_rows == 0
    assert res.valid.schema == TRACE_SCHEMA
    assert res.quarantine.schema.names[-1] == "reasons"
    assert res.report["rows_checked"] == 0 and res.report["bad_fraction"] == 0.0


def test_missing_required_column_fails_the_batch(traces: pa.Table) -> None:
    with pytest.raises(DataContractError, match=r"required column\(s\) \['total_tokens'\] missing"):
        validate_traces(traces.drop_columns(["total_tokens"]), max_bad_fraction=1.0)


def test_trace_contract_runs_on_trace_infos_alone() -> None:
    import pyarrow as pa

    from genai_flywheel.traces.schema import INFO_SCHEMA

    infos = pa.Table.from_pylist([_trace(_hex(1)), _trace(_hex(2), status="BROKEN")]).select(
        [c for c in INFO_SCHEMA.names if c in _trace(_hex(1))]
    )
    res = validate_traces(infos, max_bad_fraction=1.0)
    assert res.valid["trace_id"].to_pylist() == [_hex(1)]
    assert res.quarantine["trace_id"].to_pylist() == [_hex(2)]


CONTENT_CASES: list[tuple[dict[str, Any], list[str] | None]] = [
    (_trace(_hex(1)), None),
    (_trace(_hex(5), request="{not json"), ["request is not valid JSON; expected a JSON object"]),
    (_trace(_hex(7), request="[1, 2]"), ["request is a JSON array; expected a JSON object"]),
    (_trace(_hex(8), response="oops"), ["response is not valid JSON"]),
    # An ERROR trace's response is not checked: it failed, there may be no output.
    (_trace(_hex(9), status="ERROR", response="oops", error_type="ValueError"), None),
    (_trace(_hex(14), request=None), ["request is missing (null); expected a JSON object"]),
    (
        _trace(_hex(15), request="nope", response="{"),
        ["request is not valid JSON; expected a JSON object", "response is not valid JSON"],
    ),
]


def test_content_contract_quarantines_bad_root_span_content_and_never_fails_the_batch() -> None:
    table = _table([row for row, _ in CONTENT_CASES])
    res = validate_trace_content(table)
    expected = [(row["trace_id"], reasons) for row, reasons in CONTENT_CASES if reasons is not None]
    got = list(zip(res.quarantine["trace_id"].to_pylist(), res.quarantine["reasons"].to_pylist(), strict=True))
    assert got == expected
    assert res.ok and res.report["suite"] == CONTENT_SUITE_NAME
    assert res.valid["trace_id"].to_pylist() == [row["trace_id"] for row, r in CONTENT_CASES if r is None]
    # Even an all-bad batch only quarantines: the window-level share is the trace contract's.
    all_bad = validate_trace_content(_table([_trace(_hex(i), request="x") for i in range(1, 4)]))
    assert all_bad.ok and all_bad.quarantine.num_rows == 3


def test_window_totals_add_batches_and_judge_the_share_on_the_window() -> None:
    batches = [
        [_trace(_hex(1)), _trace(_hex(2), status="BROKEN")],
        [_trace(_hex(3)), _trace(_hex(4)), _trace(_hex(5))],
    ]
    totals = ContractTotals(max_bad_fraction=0.25)
    for rows in batches:
        # Each batch alone breaks 0.25 or not; only the window's share (1 of 5 = 20%) counts.
        totals.add(validate_traces(_table(rows), max_bad_fraction=1.0, raise_on_failure=False))
    report = totals.report()
    assert (report["rows_checked"], report["rows_valid"], report["rows_quarantined"], report["batches"]) == (5, 4, 1, 2)
    assert totals.ok and report["success"] and report["bad_fraction"] == 0.2
    by_key = {e["key"]: e for e in report["expectations"]}
    assert by_key["status_allowed"]["unexpected_count"] == 1 and by_key["status_allowed"]["element_count"] == 5
    strict = ContractTotals(max_bad_fraction=0.1)
    for rows in batches:
        strict.add(validate_traces(_table(rows), max_bad_fraction=1.0, raise_on_failure=False))
    with pytest.raises(DataContractError, match=r"1 of 5 traces \(20\.0%\).*status_allowed: 1"):
        strict.raise_for_failures()
    empty = ContractTotals(max_bad_fraction=0.5).report()  # a window without traces
    assert (empty["suite"], empty["rows_checked"], empty["success"]) == (TRACE_SUITE_NAME, 0, True)
    broken = ContractTotals(max_bad_fraction=1.0)
    broken.add(
        validate_traces(_table(batches[0]).drop_columns(["status"]), max_bad_fraction=1.0, raise_on_failure=False)
    )
    assert not broken.ok and "['status'] missing" in broken.failures[0]


def test_missing_column_without_raising_quarantines_every_row(traces: pa.Table) -> None:
    res = validate_traces(traces.drop_columns(["status"]), max_bad_fraction=1.0, raise_on_failure=False)
    assert not res.ok and res.valid.num_rows == 0 and res.quarantine.num_rows == traces.num_rows
    assert all("['status'] missing" in r[0] for r in res.quarantine["reasons"].to_pylist())
    with pytest.raises(DataContractError, match="status"):
        res.raise_for_failures()


def test_too_many_bad_rows_fail_the_batch_with_the_observed_share() -> None:
    rows = [_trace(_hex(1)), _trace(_hex(2), status="BROKEN"), _trace(_hex(3), status="BROKEN"), _trace(None)]
    # raise_on_failure=True raises exactly what raise_for_failures() raises; one GX run covers both.
    res = validate_traces(_table(rows), raise_on_failure=False)
    assert res.quarantine.num_rows == 3 and res.valid["trace_id"].to_pylist() == [_hex(1)]
    assert res.report["success"] is False and res.report["bad_fraction"] == 0.75
    with pytest.raises(DataContractError, match=r"3 of 4 traces \(75\.0%\).*max_bad_fraction 0\.5") as err:
        res.raise_for_failures()
    assert "status_allowed: 2" in str(err.value)


def test_bad_share_equal_to_the_limit_passes() -> None:
    rows = [_trace(_hex(1)), _trace(_hex(2), status="BROKEN"), _trace(_hex(3)), _trace(None)]
    res = validate_traces(_table(rows), max_bad_fraction=0.5)
    assert res.ok and res.quarantine.num_rows == 2


def test_wrong_column_type_fails_the_batch() -> None:
    import pyarrow as pa

    row = _trace(_hex(1), timestamp_ms="2026-01-01")
    del row["context"]
    with pytest.raises(DataContractError, match="timestamp_in_range.*could not be evaluated"):
        validate_traces(pa.Table.from_pylist([row]))


def test_suites_are_named_versioned_and_self_describing() -> None:
    for suite, name in (
        (trace_contract_suite(), TRACE_SUITE_NAME),
        (trace_content_suite(), CONTENT_SUITE_NAME),
        (eval_dataset_suite(), EVAL_DATASET_SUITE_NAME),
    ):
        assert suite.name == name and suite.meta["version"]
        keys = [e.meta["key"] for e in suite.expectations]
        assert len(keys) == len(set(keys))
        assert all(e.meta["reason"] for e in suite.expectations)


def _record(record_id: str | None, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": record_id,
        "inputs": json.dumps({"question": "q"}),
        "source_trace_id": _hex(1),
        "rule": "low_relevance",
        "outputs": None,
        "expectations": json.dumps({"expected_facts": ["f"]}),
    }
    row.update(overrides)
    return row


RECORD_CASES: list[tuple[dict[str, Any], list[str] | None]] = [
    (_record("r1"), None),
    (_record("r2", inputs="{}"), ["inputs is an empty JSON object; expected a non-empty JSON object"]),
    (_record("r3", inputs="{oops"), ["inputs is not valid JSON; expected a non-empty JSON object"]),
    (_record("r4", inputs=None), ["inputs is missing (null); expected a non-empty JSON object"]),
    (_record("r5", source_trace_id=None), ["source_trace_id is null"]),
    (_record("r6", rule=None), ["rule is null"]),
    (_record(None), ["record_id is null"]),
    (_record("r7", outputs="not json"), ["outputs is not valid JSON"]),
    (_record("r8", expectations="[1]"), ["expectations is a JSON array; expected a JSON object or null"]),
    (_record("dup"), ["record_id 'dup' occurs more than once in the batch"]),
    (_record("dup"), ["record_id 'dup' occurs more than once in the batch"]),
    (_record("r9", outputs=json.dumps("an answer"), expectations=None), None),
]


def test_record_suite_quarantines_bad_records() -> None:
    import pyarrow as pa

    records = pa.Table.from_pylist([row for row, _ in RECORD_CASES])
    res = validate_records(records, "eval_dataset", max_bad_fraction=1.0)
    assert res.report["suite"] == EVAL_DATASET_SUITE_NAME
    assert res.valid["record_id"].to_pylist() == [r["record_id"] for r, reasons in RECORD_CASES if reasons is None]
    got = list(zip(res.quarantine["record_id"].to_pylist(), res.quarantine["reasons"].to_pylist(), strict=True))
    assert got == [(r["record_id"], reasons) for r, reasons in RECORD_CASES if reasons is not None]


def test_record_suite_fails_on_missing_column_and_bad_share() -> None:
    import pyarrow as pa

    records = pa.Table.from_pylist([row for row, _ in RECORD_CASES])
    with pytest.raises(DataContractError, match=r"\['rule'\] missing"):
        validate_records(records.drop_columns(["rule"]), "eval_dataset")
    with pytest.raises(DataContractError, match=r"10 of 12 records"):
        validate_records(records, "eval_dataset")
