"""Builds small trace tables with the TRACE_SCHEMA columns for the selection tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from genai_flywheel.traces.schema import TRACE_SCHEMA

JSON_COLUMNS = ("request", "response", "tags", "metadata")


def assessment(name: str, value: Any, create_time_ms: int | None = 0, kind: str = "feedback") -> dict[str, Any]:
    """One assessments-list entry; ``value`` is JSON-encoded (None stays null, as for an errored one)."""
    return {
        "assessment_id": f"a-{name}-{create_time_ms}",
        "name": name,
        "kind": kind,
        "value": None if value is None else json.dumps(value),
        "source_type": "HUMAN",
        "source_id": "tester",
        "rationale": None,
        "error": None if value is not None else "judge failed",
        "create_time_ms": create_time_ms,
    }


def build_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Any:
    """A pyarrow table of ``rows`` with TRACE_SCHEMA types.

    Row values for request/response/tags/metadata are Python objects JSON-encoded here (pass a ``str`` via
    ``raw_<column>`` to store text verbatim); ``assessments`` is a list of :func:`assessment` dicts.
    """
    import pyarrow as pa

    names = list(columns) if columns is not None else [f.name for f in TRACE_SCHEMA]
    data: dict[str, list[Any]] = {}
    for name in names:
        cells: list[Any] = []
        for i, row in enumerate(rows):
            if f"raw_{name}" in row:
                cells.append(row[f"raw_{name}"])
            elif name in JSON_COLUMNS:
                cells.append(None if row.get(name) is None else json.dumps(row[name]))
            elif name == "trace_id":
                cells.append(row.get("trace_id", f"tr-{i}"))
            elif name == "app":
                cells.append(row.get("app", "demo"))
            elif name == "timestamp_ms":
                cells.append(row.get("timestamp_ms", 1_700_000_000_000 + i))
            else:
                cells.append(row.get(name))
        data[name] = cells
    schema = pa.schema([TRACE_SCHEMA.field(n) for n in names])
    return pa.table(data, schema=schema)
