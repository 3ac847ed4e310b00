"""Pass two of extraction: the sampled traces read in full, a bounded batch at a time.

The sample stage decides from trace infos alone which traces are scored; only those are read with their
spans (inputs, outputs, retrieved context, span timings), through ``batch_get_traces``, ``batch`` ids per
call. Each batch becomes complete ``TRACE_SCHEMA`` rows carrying the sample's columns (stratum, weights,
shard, scorers). A sampled trace MLflow returns without spans (an unfinished trace, span data that was lost)
is not dropped: it comes back among the ``unreadable`` rows, with its reason, for the quarantine.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_flywheel.traces.extract import fetch_traces, trace_to_row
from genai_flywheel.traces.schema import QUARANTINE_FIELDS, SAMPLE_FIELDS, TRACE_SCHEMA

if TYPE_CHECKING:
    import pyarrow as pa

UNREADABLE_REASON = (
    "MLflow returned no spans for this sampled trace (unfinished, or its span data is lost); it is not scored"
)


@functools.cache
def sampled_trace_schema() -> pa.Schema:
    """Full trace rows with the sample stage's columns: what the scorers read."""
    import pyarrow as pa

    return pa.schema([*TRACE_SCHEMA, *SAMPLE_FIELDS])


@functools.cache
def content_quarantine_schema() -> pa.Schema:
    """A sampled trace set aside in pass two: its full row (content columns null when unreadable) + reasons."""
    import pyarrow as pa

    return pa.schema([*sampled_trace_schema(), *QUARANTINE_FIELDS])


@dataclass(frozen=True)
class FetchedBatch:
    """One batch of sampled traces: the rows read in full, and those MLflow could not return in full."""

    rows: pa.Table  # sampled_trace_schema(), in the sample's order
    unreadable: pa.Table  # content_quarantine_schema(), in the sample's order


def fetch_sampled(
    tracking_uri: str, sampled: pa.Table | Iterable[pa.Table], *, app: str, batch: int
) -> Iterator[FetchedBatch]:
    """The sampled rows (pass-one infos + sample columns) read in full, ``batch`` traces per MLflow call.

    ``sampled`` is a table or a stream of tables (each cut into calls of ``batch`` rows: a stream of
    ``batch``-row tables, as :func:`genai_flywheel.workspace.rebatch` gives, makes the same calls as the
    whole table). Memory holds one batch of traces. The order of ``sampled`` is kept, so a re-run gives the
    same rows.
    """
    import pyarrow as pa

    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch!r}")
    tables = [sampled] if isinstance(sampled, pa.Table) else sampled
    for table in tables:
        for offset in range(0, table.num_rows, batch):
            yield _fetch_batch(tracking_uri, table.slice(offset, batch), app)


def _fetch_batch(tracking_uri: str, chunk: pa.Table, app: str) -> FetchedBatch:
    """One MLflow call: ``chunk``'s traces read in full, and those it could not return."""
    import pyarrow as pa

    sample_names = [f.name for f in SAMPLE_FIELDS]
    ids = chunk.column("trace_id").to_pylist()
    traces = fetch_traces(tracking_uri, ids)
    full: list[dict[str, Any]] = []
    unreadable: list[dict[str, Any]] = []
    for info_row in chunk.to_pylist():
        trace = traces.get(info_row["trace_id"])
        extra = {name: info_row[name] for name in sample_names}
        if trace is None or not (trace.data and trace.data.spans):
            unreadable.append({**info_row, "reasons": [UNREADABLE_REASON]})
        else:
            full.append({**trace_to_row(trace, app=app), **extra})
    return FetchedBatch(
        rows=pa.Table.from_pylist(full, schema=sampled_trace_schema()),
        unreadable=pa.Table.from_pylist(unreadable, schema=content_quarantine_schema()),
    )
