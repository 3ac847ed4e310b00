"""Evaluation records: one per selected trace, with lineage; deduplication; merging across runs.

A record (``RECORD_SCHEMA``) holds the trace's root-span ``inputs`` and production ``outputs`` (JSON text),
``expectations`` (the trace's expectation assessments, e.g. a human's ``expected_answer``), human feedback as
``labels`` (e.g. ``{"user_feedback": false}``), automated ``scores`` and their ``rationales`` (JSON objects
``{scorer: value}``), and lineage: the primary ``source_trace_id`` and its selection ``rule``, every source
trace and rule of merged duplicates, the app, the Airflow run and the curation interval, and the MLflow
assessment ids behind the copied values: ``expectation_ids`` (``{name: assessment_id}`` of each expectation,
e.g. the reviewer's ``expected_answer``; merged with the expectations) and ``label_ids`` (the same for the
human feedback in ``labels``, e.g. a reviewer's verdict; following the primary trace like ``labels``). Both
are null when there is nothing to trace back.

``record_id`` is a hash of the *normalised* inputs (:func:`genai_flywheel.curation.text.record_id_for`), so
duplicates share it. JSON columns are written canonically (sorted keys, compact) so equal content gives equal
bytes and an equal digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import HUMAN, decode_value, parse_assessments
from genai_flywheel.curation.text import canonical_json, record_id_for

if TYPE_CHECKING:
    import pyarrow as pa

# Columns whose value follows the primary source trace (refreshed when that trace is seen again).
_PRIMARY_CONTENT = (
    "outputs",
    "query",
    "status",
    "source_timestamp_ms",
    "labels",
    "label_ids",
    "scores",
    "rationales",
    "cluster_id",
)
# Columns that describe where/when the primary source was first curated.
_PRIMARY_ORIGIN = ("app", "airflow_run_id", "interval_start_ms", "interval_end_ms")


def record_schema() -> pa.Schema:
    """The Arrow schema of curated evaluation records (see the module docstring)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("inputs", pa.string()),
            pa.field("outputs", pa.string()),
            pa.field("expectations", pa.string()),
            pa.field("source_trace_id", pa.string(), nullable=False),
            pa.field("source_trace_ids", pa.list_(pa.string())),
            pa.field("rule", pa.string(), nullable=False),
            pa.field("rules", pa.list_(pa.string())),
            pa.field("rule_priority", pa.int32()),
            pa.field("query", pa.string()),
            pa.field("status", pa.string()),
            pa.field("source_timestamp_ms", pa.int64()),
            pa.field("labels", pa.string()),
            pa.field("scores", pa.string()),
            pa.field("rationales", pa.string()),
            pa.field("cluster_id", pa.string()),
            pa.field("app", pa.string()),
            pa.field("airflow_run_id", pa.string()),
            pa.field("interval_start_ms", pa.int64()),
            pa.field("interval_end_ms", pa.int64()),
            pa.field("expectation_ids", pa.string()),  # JSON {name: MLflow assessment id} of expectations
            pa.field("label_ids", pa.string()),  # JSON {name: MLflow assessment id} of labels
        ]
    )


def _json_or_raw(text: str | None) -> tuple[Any, str | None]:
    """(decoded value, canonical text) of a JSON text; unparsable text is kept raw for the contract."""
    if text is None:
        return None, None
    try:
        value = json.loads(text)
        return value, canonical_json(value)
    except ValueError:  # not JSON, or JSON with NaN/Infinity that canonical JSON refuses
        return None, text


def _object(mapping: dict[str, Any]) -> str:
    return canonical_json(dict(sorted(mapping.items())))


def _ids(found: dict[str, Any]) -> str | None:
    """The ``{name: assessment_id}`` lineage of decoded assessments (null when none has an id)."""
    ids = {name: a.assessment_id for name, a in found.items() if a.assessment_id}
    return _object(ids) if ids else None


def _overridden(old: str | None, new: str | None, names: Iterable[str]) -> str | None:
    """The JSON object ``old`` without ``names``, then ``new``'s entries on top (null when empty): the ids of
    expectations that ``new`` replaces must not outlive them."""
    dropped = set(names)
    merged = {k: v for k, v in (decode_value(old) or {}).items() if k not in dropped}
    merged.update(decode_value(new) or {})
    return _object(merged) if merged else None


def build_records(
    selected: pa.Table,
    *,
    app: str,
    airflow_run_id: str | None = None,
    interval_start_ms: int | None = None,
    interval_end_ms: int | None = None,
) -> pa.Table:
    """One record per selected trace (:func:`~genai_flywheel.curation.rules.selection_table` output), in order.

    Expectations are the trace's expectation assessments; human (``HUMAN`` source) feedback goes to
    ``labels``; other feedback (code scorers, LLM judges) to ``scores`` and ``rationales``. A trace whose
    root-span inputs are missing or not JSON keeps them as they are (null or raw text) and gets a record id
    derived from its trace id, so the data contract can quarantine it without merging it into another.
    """
    import pyarrow as pa

    columns = {name: selected.column(name).to_pylist() for name in selected.column_names}
    n = selected.num_rows

    def col(name: str) -> list[Any]:
        return columns.get(name) or [None] * n

    rows: list[dict[str, Any]] = []
    for i in range(n):
        trace_id = col("trace_id")[i]
        inputs_value, inputs_text = _json_or_raw(col("request")[i])
        _, outputs_text = _json_or_raw(col("response")[i])
        if isinstance(inputs_value, dict) and inputs_value:
            record_id = record_id_for(inputs_value)
        else:
            record_id = record_id_for({"__unparsed_trace__": trace_id})
        found = parse_assessments(col("assessments")[i])
        human = {k: a for k, a in found.feedback.items() if a.source_type == HUMAN}
        labels = {k: a.value for k, a in human.items()}
        scores = {k: a.value for k, a in found.feedback.items() if a.source_type != HUMAN}
        rationales = {k: a.rationale for k, a in found.feedback.items() if a.source_type != HUMAN and a.rationale}
        expectations = {k: a.value for k, a in found.expectations.items()}
        rows.append(
            {
                "record_id": record_id,
                "inputs": inputs_text,
                "outputs": outputs_text,
                "expectations": _object(expectations) if expectations else None,
                "source_trace_id": trace_id,
                "source_trace_ids": [trace_id],
                "rule": col("rule")[i],
                "rules": [col("rule")[i]],
                "rule_priority": col("rule_priority")[i],
                "query": col("query")[i],
                "status": col("status")[i],
                "source_timestamp_ms": col("timestamp_ms")[i],
                "labels": _object(labels),
                "scores": _object(scores),
                "rationales": _object(rationales),
                "cluster_id": col("cluster_id")[i],
                "app": app,
                "airflow_run_id": airflow_run_id,
                "interval_start_ms": interval_start_ms,
                "interval_end_ms": interval_end_ms,
                "expectation_ids": _ids(found.expectations),
                "label_ids": _ids(human),
            }
        )
    return pa.Table.from_pylist(rows, schema=record_schema())


def _merged_expectations(group: Iterable[dict[str, Any]]) -> tuple[str | None, str | None]:
    """Union of the group's expectations and of their ids; per name, the newest source trace's value (and
    its id) wins."""
    merged: str | None = None
    ids: str | None = None
    for row in sorted(group, key=lambda r: (r["source_timestamp_ms"] or 0, r["source_trace_id"])):
        if row["expectations"]:
            names = decode_value(row["expectations"])
            merged = _overridden(merged, row["expectations"], names)
            ids = _overridden(ids, row["expectation_ids"], names)
    return merged, ids


def deduplicate(records: pa.Table) -> tuple[pa.Table, int]:
    """Merge records that share a ``record_id`` (same normalised inputs); return (records, merged count).

    The first record of a group in table order (the highest-priority rule, best ranked) stays primary; the
    group's source traces and rules are unioned (sorted) and their expectations merged. Output keeps the order
    of first occurrence.
    """
    import pyarrow as pa

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in records.to_pylist():
        groups.setdefault(row["record_id"], []).append(row)
    out: list[dict[str, Any]] = []
    for group in groups.values():
        primary = dict(group[0])
        if len(group) > 1:
            primary["source_trace_ids"] = sorted({t for r in group for t in r["source_trace_ids"] or ()})
            primary["rules"] = sorted({t for r in group for t in r["rules"] or ()})
            primary["expectations"], primary["expectation_ids"] = _merged_expectations(group)
        out.append(primary)
    return pa.Table.from_pylist(out, schema=record_schema()), records.num_rows - len(out)


def merge_record(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge this run's record ``new`` into the snapshot's record ``old`` (same ``record_id``).

    * ``inputs`` stay as first curated (MLflow keys dataset records by their exact inputs);
    * the primary source switches to ``new``'s only when its rule has a strictly higher priority (lower
      number); when both name the same primary trace, its content (outputs, scores, labels, ...) is refreshed
      from ``new`` and the better of the two rules is kept;
    * source traces and rules are unioned; ``new``'s expectations (and their ids) override ``old``'s per name.

    Merging the same ``new`` twice gives the same result as once (re-runs do not change a snapshot).
    """
    out = dict(old)
    old_priority = old["rule_priority"] if old["rule_priority"] is not None else 1 << 30
    new_priority = new["rule_priority"] if new["rule_priority"] is not None else 1 << 30
    if new["source_trace_id"] != old["source_trace_id"] and new_priority < old_priority:
        for key in ("source_trace_id", "rule", "rule_priority", *_PRIMARY_CONTENT, *_PRIMARY_ORIGIN):
            out[key] = new[key]
    elif new["source_trace_id"] == old["source_trace_id"]:
        for key in _PRIMARY_CONTENT:
            out[key] = new[key]
        if new_priority < old_priority:
            out["rule"], out["rule_priority"] = new["rule"], new["rule_priority"]
    out["source_trace_ids"] = sorted({*(old["source_trace_ids"] or ()), *(new["source_trace_ids"] or ())})
    out["rules"] = sorted({*(old["rules"] or ()), *(new["rules"] or ())})
    if new["expectations"]:
        names = decode_value(new["expectations"])
        out["expectations"] = _overridden(old["expectations"], new["expectations"], names)
        out["expectation_ids"] = _overridden(old["expectation_ids"], new["expectation_ids"], names)
    return out


@dataclass(frozen=True)
class MergeResult:
    """The snapshot after a run: all records (sorted by ``record_id``) and what changed."""

    records: pa.Table
    added: list[str]
    updated: list[str]


def merge_snapshot(previous: pa.Table | None, current: pa.Table) -> MergeResult:
    """The dataset after this run: ``previous`` snapshot records merged with ``current`` (deduplicated).

    Records only in ``previous`` are kept unchanged; new record ids are added; shared ones are merged with
    :func:`merge_record`. The result is sorted by ``record_id``.
    """
    import pyarrow as pa

    schema = record_schema()
    merged: dict[str, dict[str, Any]] = {}
    if previous is not None:
        for row in previous.select(schema.names).cast(schema).to_pylist():
            merged[row["record_id"]] = row
    added: list[str] = []
    updated: list[str] = []
    for row in current.select(schema.names).cast(schema).to_pylist():
        rid = row["record_id"]
        if rid not in merged:
            merged[rid] = row
            added.append(rid)
            continue
        combined = merge_record(merged[rid], row)
        if combined != merged[rid]:
            updated.append(rid)
            merged[rid] = combined
    rows = [merged[k] for k in sorted(merged)]
    return MergeResult(
        records=pa.Table.from_pylist(rows, schema=schema), added=sorted(added), updated=sorted(set(updated))
    )


def canonical_lines(records: pa.Table, columns: Sequence[str] | None = None) -> list[str]:
    """One canonical JSON line per record, sorted by ``record_id`` (the input of the snapshot digest)."""
    names = list(columns or record_schema().names)
    rows = records.select(names).to_pylist()
    rows.sort(key=lambda r: r["record_id"])
    return [canonical_json(row) for row in rows]
