"""Validate a table against its data contract (a GX suite) and quarantine the rows that break it.

Every input row ends up in exactly one of ``valid`` (same schema, original order) and ``quarantine`` (same
columns plus ``reasons``). Only a batch-level condition fails the task: a required column is missing, an
expectation cannot be evaluated (usually a wrong column type), or more than ``max_bad_fraction`` of the rows
were quarantined.

Only the scalar columns the suite reads, the derived JSON-kind columns and a row-index column are converted
to pandas; ``trace_json`` and the list columns never are. GX reports the failing rows by that index column
and the rows are then taken from the Arrow table, so nothing is round-tripped through pandas.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from genai_flywheel.exceptions import ConfigError, DataContractError, FlywheelError
from genai_flywheel.quality.suites import (
    CONTENT_CONTRACT,
    JSON_KIND_LABELS,
    RECORD_CONTRACTS,
    TRACE_CONTRACT,
    ContractSpec,
    json_kind,
    json_kind_column,
)

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

# GX logs every metric computation at INFO; a validate task's log should show our summary, not that.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

#: Row-index column added to the pandas projection; GX reports failing rows by it.
ROW_INDEX_COLUMN = "__flywheel_row__"
_MAX_VALUE_CHARS = 80

_LOCK = threading.Lock()
_CONTEXT: Any = None
_BATCH_DEFINITIONS: dict[str, Any] = {}
_SUITES: dict[str, gx.ExpectationSuite] = {}


class _Verdict:
    """``ok`` and ``raise_for_failures`` over a ``failures`` sequence (a batch's or a window's)."""

    failures: Any

    @property
    def ok(self) -> bool:
        """True when no batch- or window-level condition was broken."""
        return not self.failures

    def raise_for_failures(self) -> None:
        """Raise DataContractError naming every broken condition, if any."""
        if self.failures:
            raise DataContractError("; ".join(self.failures))


def _too_many_bad_rows(
    spec_label: str, quarantined: int, checked: int, max_bad_fraction: float, entries: Any, noun: str, hint: str
) -> str | None:
    """The failure of a batch or window whose quarantined share exceeds ``max_bad_fraction``, else None."""
    share = quarantined / checked if checked else 0.0
    if share <= max_bad_fraction:
        return None
    counts = Counter({e["key"]: e["unexpected_count"] for e in entries if e.get("action") == "quarantine"})
    top = ", ".join(f"{k}: {c}" for k, c in counts.most_common(3) if c)
    return (
        f"{spec_label}: {quarantined} of {checked} {noun}s ({share:.1%}) were quarantined, above max_bad_fraction "
        f"{max_bad_fraction}; most broken: {top}; {hint}, or raise max_bad_fraction if this is expected"
    )


@dataclass(frozen=True)
class ContractResult(_Verdict):
    """The outcome of validating one table.

    ``valid`` holds the good rows with the input's schema, in input order; ``quarantine`` the bad rows in
    input order plus a ``reasons`` list<string> column; ``report`` is a JSON-serialisable summary;
    ``failures`` the batch-level conditions that were broken (empty when the batch honours the contract).
    """

    valid: pa.Table
    quarantine: pa.Table
    report: dict[str, Any]
    failures: tuple[str, ...] = field(default=())


@dataclass
class ContractTotals(_Verdict):
    """The contract over a whole window validated batch by batch (each batch with ``max_bad_fraction=1``).

    Row-level results add up; the batch-level conditions are judged on the totals: a batch that broke the
    contract as a whole (a missing column, an expectation that could not run) breaks the window, and so does
    a quarantined share of the window above ``max_bad_fraction``.
    """

    max_bad_fraction: float
    checked: int = 0
    valid: int = 0
    quarantined: int = 0
    batches: int = 0
    suite: dict[str, Any] = field(
        default_factory=lambda: {"suite": TRACE_CONTRACT.name, "suite_version": TRACE_CONTRACT.version}
    )
    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_failures: list[str] = field(default_factory=list)

    def add(self, result: ContractResult) -> None:
        """Count one batch's result."""
        report = result.report
        self.batches += 1
        self.checked += report["rows_checked"]
        self.valid += report["rows_valid"]
        self.quarantined += report["rows_quarantined"]
        self.suite = {"suite": report["suite"], "suite_version": report["suite_version"]}
        for failure in result.failures:
            if failure not in self.batch_failures:
                self.batch_failures.append(failure)
        for entry in report["expectations"]:
            total = self.expectations.setdefault(entry["key"], {**entry, "element_count": 0, "unexpected_count": 0})
            total["success"] = total["success"] and entry["success"]
            for count in ("element_count", "unexpected_count"):
                total[count] = total.get(count, 0) + entry.get(count, 0)

    @property
    def failures(self) -> list[str]:
        """The window-level conditions that were broken (empty when the window honours the contract)."""
        if self.batch_failures:
            return list(self.batch_failures)
        failure = _too_many_bad_rows(
            f"data contract {self.suite.get('suite')} v{self.suite.get('suite_version')}",
            self.quarantined,
            self.checked,
            self.max_bad_fraction,
            self.expectations.values(),
            "trace",
            TRACE_CONTRACT.hint,
        )
        return [failure] if failure else []

    def report(self) -> dict[str, Any]:
        """The window's contract report (the shape of one batch's ``ContractResult.report``)."""
        failures = self.failures
        return {
            **self.suite,
            "batches": self.batches,
            "rows_checked": self.checked,
            "rows_valid": self.valid,
            "rows_quarantined": self.quarantined,
            "bad_fraction": self.quarantined / self.checked if self.checked else 0.0,
            "max_bad_fraction": self.max_bad_fraction,
            "success": not failures,
            "failures": failures,
            "expectations": list(self.expectations.values()),
        }


def validate_traces(table: pa.Table, *, max_bad_fraction: float = 0.5, raise_on_failure: bool = True) -> ContractResult:
    """Validate extracted trace rows (``INFO_SCHEMA`` or ``TRACE_SCHEMA``) against ``flywheel_trace_contract``.

    Rows breaking a row-level expectation are quarantined with one human-readable reason per broken
    expectation. Raises DataContractError when the batch as a whole breaks the contract (see the module
    docstring); with ``raise_on_failure=False`` the result is returned instead, ``result.failures`` lists the
    broken conditions and ``result.raise_for_failures()`` raises later, so the caller can write the quarantine
    first.
    """
    return _validate(table, TRACE_CONTRACT, max_bad_fraction=max_bad_fraction, raise_on_failure=raise_on_failure)


def validate_trace_content(table: pa.Table) -> ContractResult:
    """Validate full trace rows (the sampled traces read in full) against ``flywheel_trace_content_contract``.

    Bad rows are quarantined with their reasons and not scored; the batch never fails as a whole (each batch
    of a shard is a few hundred traces: the trace contract's batch-level share applies to the window).
    """
    return _validate(table, CONTENT_CONTRACT, max_bad_fraction=1.0, raise_on_failure=True)


def validate_records(
    records: pa.Table,
    suite: Literal["eval_dataset"],
    *,
    max_bad_fraction: float = 0.5,
    raise_on_failure: bool = True,
) -> ContractResult:
    """Validate curated records against a record suite (``"eval_dataset"``: the eval-dataset contract).

    Same quarantine and batch-failure semantics as :func:`validate_traces`.
    """
    spec = RECORD_CONTRACTS.get(suite)
    if spec is None:
        known = ", ".join(sorted(RECORD_CONTRACTS))
        raise ConfigError(f"unknown record suite {suite!r}; known suites: {known}")
    return _validate(records, spec, max_bad_fraction=max_bad_fraction, raise_on_failure=raise_on_failure)


def _gx_batch_definition(spec: ContractSpec) -> Any:
    """The cached GX batch definition of ``spec`` (one ephemeral context per process: creation is slow)."""
    global _CONTEXT
    with _LOCK:
        if spec.name in _BATCH_DEFINITIONS:
            return _BATCH_DEFINITIONS[spec.name]
        # Respect an explicit opt-in, otherwise never phone home.
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        if _CONTEXT is None:
            _CONTEXT = gx.get_context(mode="ephemeral")
            # tqdm bars on stderr would flood task logs.
            _CONTEXT.variables.progress_bars = ProgressBarsConfig(globally=False)
            _CONTEXT.data_sources.add_pandas("flywheel_contracts")
        source = _CONTEXT.data_sources.get("flywheel_contracts")
        definition = source.add_dataframe_asset(spec.name).add_batch_definition_whole_dataframe("batch")
        _BATCH_DEFINITIONS[spec.name] = definition
        return definition


def _suite(spec: ContractSpec) -> gx.ExpectationSuite:
    with _LOCK:
        if spec.name not in _SUITES:
            _SUITES[spec.name] = spec.build_suite()
        return _SUITES[spec.name]


def _projection(table: pa.Table, spec: ContractSpec) -> pd.DataFrame:
    """The columns GX needs, as pandas: present required columns, JSON-kind columns and the row index."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    present = [c for c in spec.required_columns if c in table.column_names]
    proj = table.select(present)
    for name in spec.json_columns:
        if name in table.column_names:
            kinds = [json_kind(v) for v in table.column(name).to_pylist()]
            proj = proj.append_column(json_kind_column(name), pa.array(kinds, pa.string()))
    proj = proj.append_column(ROW_INDEX_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64)))

    def nullable_ints(t: pa.DataType) -> Any:
        # Int64 keeps integers exact and nulls as NA; the default float64 would print -5 as -5.0.
        return pd.Int64Dtype() if pa.types.is_integer(t) else None

    return proj.to_pandas(types_mapper=nullable_ints)


def _exception_messages(info: Any) -> list[str]:
    """Messages of the exceptions GX caught while evaluating one expectation (its shape varies by failure)."""
    if not isinstance(info, dict) or not info:
        return []
    if "raised_exception" in info:
        return [str(info.get("exception_message"))] if info["raised_exception"] else []
    return [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception", True) and v.get("exception_message")
    ]


def _render(value: Any) -> str:
    """A failing value as it appears in a reason: strings quoted and truncated, nulls as ``null``."""
    import pandas as pd

    if hasattr(value, "item"):  # numpy scalar -> Python, so 7 prints as 7 and not np.int64(7)
        value = value.item()
    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return "null"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        if len(value) > _MAX_VALUE_CHARS:
            value = value[: _MAX_VALUE_CHARS - 3] + "..."
        return repr(value)
    return str(value)


def _reason(template: str, value: Any) -> str:
    # str.replace, not str.format: templates may contain regex braces.
    label = JSON_KIND_LABELS.get(value, str(value)) if isinstance(value, str) else _render(value)
    return template.replace("{label}", label).replace("{value}", _render(value))


def _table_failure(spec: ContractSpec, table: pa.Table, key: str, result: dict[str, Any]) -> str:
    prefix = f"data contract {spec.name} v{spec.version}"
    if key == "required_columns":
        missing = sorted(set(spec.required_columns) - set(table.column_names))
        return (
            f"{prefix}: required column(s) {missing} missing; the table has {table.column_names}; "
            f"{spec.hint} (expected columns: {list(spec.required_columns)})"
        )
    return f"{prefix}: table expectation {key} failed, observed {result.get('observed_value')!r}; {spec.hint}"


def _validate(
    table: pa.Table, spec: ContractSpec, *, max_bad_fraction: float, raise_on_failure: bool
) -> ContractResult:
    """Validate ``table`` against ``spec``'s suite and split it into valid and quarantined rows."""
    import pyarrow as pa

    from genai_flywheel.traces.schema import QUARANTINE_FIELDS

    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ConfigError(f"max_bad_fraction must be between 0 and 1, got {max_bad_fraction!r}")
    if ROW_INDEX_COLUMN in table.column_names:
        raise DataContractError(f"column {ROW_INDEX_COLUMN!r} is reserved by the data contract; rename it")

    started = time.perf_counter()
    n = table.num_rows
    suite = _suite(spec)
    order = {e.meta["key"]: i for i, e in enumerate(suite.expectations)}
    frame = _projection(table, spec)
    batch = _gx_batch_definition(spec).get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(
        suite,
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [ROW_INDEX_COLUMN],
            # The pandas query string lists every failing index: large and unused.
            "return_unexpected_index_query": False,
            "partial_unexpected_count": 0,
        },
    )

    entries: list[dict[str, Any]] = [{} for _ in order]
    table_failures: list[str] = []
    eval_errors: list[str] = []
    row_reasons: dict[int, list[tuple[int, str]]] = {}
    for res in outcome.results:
        cfg = res.expectation_config
        key = cfg.meta["key"]
        pos = order[key]
        column = cfg.kwargs.get("column")
        critical = str(getattr(cfg.severity, "value", cfg.severity)) == "critical"
        action = ("quarantine" if column else "fail_batch") if critical else "report"
        result = res.result or {}
        entry: dict[str, Any] = {
            "key": key,
            "type": cfg.type,
            "column": column,
            "severity": str(getattr(cfg.severity, "value", cfg.severity)),
            "action": action,
            "success": bool(res.success),
        }
        errors = _exception_messages(res.exception_info)
        if column:
            entry["element_count"] = int(result.get("element_count") or 0)
            entry["unexpected_count"] = int(result.get("unexpected_count") or 0)
        else:
            observed = result.get("observed_value")
            entry["observed_value"] = list(observed) if isinstance(observed, list | tuple) else observed
        if errors:
            entry["error"] = errors[0]
            eval_errors.append(
                f"data contract {spec.name} v{spec.version}: expectation {key} ({cfg.type} on {column}) "
                f"could not be evaluated: {errors[0]}; check the column's type"
            )
        entries[pos] = entry
        if res.success or errors or not critical:
            continue
        if not column:
            table_failures.append(_table_failure(spec, table, key, result))
            continue
        failing = result.get("unexpected_index_list") or []
        if len(failing) != entry["unexpected_count"]:
            raise FlywheelError(
                f"GX listed {len(failing)} failing rows for {key} but counted {entry['unexpected_count']}; "
                "refusing to guess which rows to quarantine (a GX result_format change?)"
            )
        template = cfg.meta["reason"]
        for item in failing:
            row = int(item[ROW_INDEX_COLUMN])
            row_reasons.setdefault(row, []).append((pos, _reason(template, item.get(column))))

    # A missing column makes the expectations on it error out too: report the cause, not its echoes.
    failures = table_failures or eval_errors
    if failures:
        bad_rows = list(range(n))
        reasons = [[f"batch broke the data contract: {f}" for f in failures]] * n
    else:
        bad_rows = sorted(row_reasons)
        reasons = [[text for _, text in sorted(row_reasons[r])] for r in bad_rows]
    if bad_rows:
        bad_set = set(bad_rows)
        valid = table.take(pa.array([i for i in range(n) if i not in bad_set], pa.int64()))
    else:
        valid = table  # the common case: no copy of trace_json and the list columns
    reasons_field = QUARANTINE_FIELDS[0]
    quarantine = table.take(pa.array(bad_rows, pa.int64())).append_column(
        reasons_field, pa.array(reasons, reasons_field.type)
    )
    if valid.num_rows + quarantine.num_rows != n:
        raise FlywheelError(
            f"contract split {n} rows into {valid.num_rows} valid + {quarantine.num_rows} quarantined; "
            "this is a bug in genai_flywheel.quality"
        )

    bad_fraction = quarantine.num_rows / n if n else 0.0
    if not failures:
        failure = _too_many_bad_rows(
            f"data contract {spec.name} v{spec.version}",
            quarantine.num_rows,
            n,
            max_bad_fraction,
            entries,
            spec.row_noun,
            spec.hint,
        )
        failures = [failure] if failure else []

    report: dict[str, Any] = {
        "suite": spec.name,
        "suite_version": spec.version,
        "rows_checked": n,
        "rows_valid": valid.num_rows,
        "rows_quarantined": quarantine.num_rows,
        "bad_fraction": bad_fraction,
        "max_bad_fraction": max_bad_fraction,
        "success": not failures,
        "failures": list(failures),
        "expectations": entries,
    }
    log.info(
        "%s v%s: %d %ss checked, %d valid, %d quarantined (%.1f%%) in %.2fs",
        spec.name,
        spec.version,
        n,
        spec.row_noun,
        valid.num_rows,
        quarantine.num_rows,
        100.0 * bad_fraction,
        time.perf_counter() - started,
    )
    result = ContractResult(valid=valid, quarantine=quarantine, report=report, failures=tuple(failures))
    if raise_on_failure:
        result.raise_for_failures()
    return result
