"""Stage files: slices that cover a window exactly, Parquet written batch by batch and published atomically."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from genai_flywheel.exceptions import StoreError
from genai_flywheel.workspace import (
    ParquetPartWriter,
    atomic_write_parquet,
    iter_parquet_batches,
    read_parquet,
    read_stage_parquet,
    rebatch,
    slice_bounds,
)

SCHEMA = pa.schema([("trace_id", pa.string()), ("value", pa.int64())])


def _rows(start: int, n: int) -> pa.Table:
    return pa.table(
        {"trace_id": [f"t{i:05d}" for i in range(start, start + n)], "value": list(range(start, start + n))}
    )


@pytest.mark.parametrize(("start", "end", "slices"), [(0, 10, 3), (1_000, 21_601_000, 4), (5, 6, 4), (0, 7, 7)])
def test_slices_cover_the_window_exactly_once(start: int, end: int, slices: int) -> None:
    bounds = slice_bounds(start, end, slices)
    assert len(bounds) == slices
    assert bounds[0][0] == start and bounds[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    every = [t for t in range(start, min(end, start + 5_000))]
    assert all(sum(lo <= t < hi for lo, hi in bounds) == 1 for t in every)


def test_slices_reject_an_empty_window_or_no_slice() -> None:
    with pytest.raises(ValueError, match="empty window"):
        slice_bounds(10, 10, 2)
    with pytest.raises(ValueError, match="slices must be >= 1"):
        slice_bounds(0, 10, 0)


def test_part_writer_bytes_depend_on_rows_not_on_batching(tmp_path: Path) -> None:
    whole, pieces = tmp_path / "whole.parquet", tmp_path / "pieces.parquet"
    with ParquetPartWriter(whole, SCHEMA, row_group_rows=100) as w:
        w.write(_rows(0, 250))
    with ParquetPartWriter(pieces, SCHEMA, row_group_rows=100) as w:
        for start, n in ((0, 7), (7, 0), (7, 130), (137, 113)):
            w.write(_rows(start, n).to_batches()[0] if n else _rows(start, n))
    assert whole.read_bytes() == pieces.read_bytes()
    import pyarrow.parquet as pq

    assert [pq.ParquetFile(whole).metadata.row_group(i).num_rows for i in range(3)] == [100, 100, 50]
    assert read_parquet(whole).equals(_rows(0, 250))
    assert [b.num_rows for b in iter_parquet_batches([whole], batch_rows=60)] == [60, 60, 60, 60, 10]
    assert read_parquet(whole).num_rows == 250 and w.rows == 250


def test_part_writer_publishes_only_on_success_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "stage" / "out.parquet"
    atomic_write_parquet(_rows(0, 3), path)
    with pytest.raises(RuntimeError, match="killed"):
        with ParquetPartWriter(path, SCHEMA) as w:
            w.write(_rows(100, 5))
            raise RuntimeError("killed")
    assert read_parquet(path).equals(_rows(0, 3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.parquet"]  # no temp file left


def test_part_writer_without_rows_writes_a_typed_empty_file(tmp_path: Path) -> None:
    with ParquetPartWriter(tmp_path / "empty.parquet", SCHEMA):
        pass
    table = read_parquet(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and table.schema == SCHEMA


def test_part_writer_rejects_rows_of_another_shape(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="do not match its schema"):
        with ParquetPartWriter(tmp_path / "x.parquet", SCHEMA) as w:
            w.write(pa.table({"other": [1]}))


def test_a_missing_stage_file_names_the_stage_to_run(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run the validate stage"):
        read_stage_parquet(tmp_path / "valid.parquet", "validate")
    atomic_write_parquet(_rows(0, 4), tmp_path / "valid.parquet")
    assert read_stage_parquet(tmp_path / "valid.parquet", "validate", ["value"]).column_names == ["value"]


def test_stage_files_hold_and_stream_at_most_10000_rows_at_a_time(tmp_path: Path) -> None:
    # A writer buffers a row group as Arrow and a reader decodes a batch: both must stay below what a
    # window of ten thousand traces holds whole, so a task's memory is the same at a million traces.
    import pyarrow.parquet as pq

    path = tmp_path / "big.parquet"
    with ParquetPartWriter(path, SCHEMA) as w:
        for start in range(0, 25_000, 5_000):
            w.write(_rows(start, 5_000))
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10_000, 10_000, 5_000]
    assert [b.num_rows for b in iter_parquet_batches([path])] == [10_000, 10_000, 5_000]


def test_rebatch_cuts_a_stream_into_equal_tables_however_it_was_batched() -> None:
    parts = [_rows(0, 3), _rows(3, 0), _rows(3, 8).to_batches()[0], _rows(11, 1), _rows(12, 9)]
    out = list(rebatch(parts, 4, SCHEMA))
    assert [t.num_rows for t in out] == [4, 4, 4, 4, 4, 1]
    assert pa.concat_tables(out).equals(_rows(0, 21))
    assert all(t.column("trace_id").num_chunks == 1 for t in out)
    assert list(rebatch([], 4, SCHEMA)) == []
    with pytest.raises(ValueError, match="rows must be >= 1"):
        list(rebatch(parts, 0, SCHEMA))


def test_streaming_a_file_holds_a_row_group_not_the_file(tmp_path: Path) -> None:
    import os

    def peak(row_groups: int) -> int:
        path = tmp_path / f"rg{row_groups}.parquet"
        noise = pa.schema([("blob", pa.binary())])
        with ParquetPartWriter(path, noise, row_group_rows=1_000) as w:
            for _ in range(row_groups):  # incompressible: the file is as large as its rows
                w.write(pa.table({"blob": [os.urandom(1_000) for _ in range(1_000)]}, schema=noise))
        top = 0
        for _ in iter_parquet_batches([path], batch_rows=500):
            top = max(top, pa.total_allocated_bytes())
        return top

    small, large = peak(2), peak(40)
    # Pre-buffering fetches every row group of the file before the first batch: 40 MB here.
    assert large < small + 5_000_000, (small, large)
