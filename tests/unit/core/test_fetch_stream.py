"""Pass two reads a shard's sample as a stream of fetch batches: the same MLflow calls as the whole table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from genai_flywheel.traces import fetch
from genai_flywheel.traces.sampling import sample_schema
from genai_flywheel.workspace import rebatch


def _sample(n: int) -> pa.Table:
    rows = [
        {
            "trace_id": f"tr-{i:04d}",
            "app": "a",
            "timestamp_ms": i,
            "stratum": "base",
            "sample_rate": 0.5,
            "weight": 2.0,
            "shard": 0,
            "scorers": ["s"],
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=sample_schema())


def test_a_stream_of_fetch_batches_makes_the_calls_the_whole_table_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_fetch(uri: str, ids: list[str]) -> dict:
        calls.append(list(ids))
        return {}  # every trace unreadable: the rows come back for the quarantine

    monkeypatch.setattr(fetch, "fetch_traces", fake_fetch)
    table = _sample(23)
    whole = list(fetch.fetch_sampled("sqlite://", table, app="a", batch=5))
    whole_calls, calls[:] = list(calls), []
    # Batches as a Parquet reader gives them (7, 0, 9, 7 rows), filtered per shard, then cut to fetch batches.
    parts = [table.slice(0, 7), table.slice(7, 0), table.slice(7, 9), table.slice(16, 7)]
    streamed = list(fetch.fetch_sampled("sqlite://", rebatch(parts, 5, sample_schema()), app="a", batch=5))
    assert calls == whole_calls and [len(c) for c in calls] == [5, 5, 5, 5, 3]
    assert [b.unreadable.to_pylist() for b in streamed] == [b.unreadable.to_pylist() for b in whole]
