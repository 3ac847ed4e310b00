"""Reuse scores that an earlier run already wrote back onto the traces.

A score's assessment id is deterministic (trace, scorer, scorer version), so when the extracted trace
already carries that id, the score was computed and written before: the re-run takes its value from the
trace instead of calling the scorer again. Re-runs therefore give identical results even for LLM judges,
and never pay for the same judgement twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from genai_flywheel.scoring.registry import LoadedScorer
from genai_flywheel.scoring.runner import assessment_id_for, passed_for, to_numeric

if TYPE_CHECKING:
    import pyarrow as pa


def reuse_existing(rows: pa.Table, loaded: LoadedScorer) -> tuple[pa.Table, pa.Table]:
    """Split ``rows`` (sampled traces for ``loaded``) into (SCORE_SCHEMA rows taken from the traces'
    existing assessments, trace rows that still need scoring)."""
    import pyarrow as pa

    from genai_flywheel.traces.schema import SCORE_SCHEMA

    reused: list[dict[str, Any]] = []
    todo: list[int] = []
    has_assessments = "assessments" in rows.column_names
    cells = rows.column("assessments").to_pylist() if has_assessments else [None] * rows.num_rows
    meta = rows.select(["trace_id", "app", "timestamp_ms", "stratum", "weight"]).to_pylist()
    for i, (row, cell) in enumerate(zip(meta, cells, strict=True)):
        aid = assessment_id_for(row["trace_id"], loaded.name, loaded.version)
        found = next((a for a in cell or [] if a.get("assessment_id") == aid), None)
        if found is None:
            todo.append(i)
            continue
        value = json.loads(found["value"]) if found.get("value") is not None else None
        numeric = to_numeric(value)
        reused.append(
            {
                **row,
                "scorer": loaded.name,
                "scorer_version": loaded.version,
                "source_type": loaded.source_type,
                "value": found.get("value"),
                "numeric": numeric,
                "passed": passed_for(value, numeric, loaded.threshold, loaded.lower_is_better),
                "rationale": found.get("rationale"),
                "error": found.get("error"),
                "assessment_id": aid,
            }
        )
    return (pa.Table.from_pylist(reused, schema=SCORE_SCHEMA), rows.take(pa.array(todo, type=pa.int64())))
