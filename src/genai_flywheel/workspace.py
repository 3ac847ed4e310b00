"""Where every stage's files live under the data root, and how stages write and read them.

Intermediate data between tasks goes to files, never to XCom: a task returns the path and a few counts.
Layout (all below the data root)::

    runs/app=<app>/interval=<start>/infos/slice=<k>.parquet     extract (pass one: trace infos of slice k)
    runs/app=<app>/interval=<start>/valid.parquet               validate (infos that meet the contract)
    runs/app=<app>/interval=<start>/quarantine/infos.parquet    validate (infos that do not, with reasons)
    runs/app=<app>/interval=<start>/contract.json               validate (the GX report)
    runs/app=<app>/interval=<start>/sample.parquet              sample (the sampled infos)
    runs/app=<app>/interval=<start>/scores/shard=<k>.parquet    score (one row per trace and scorer)
    runs/app=<app>/interval=<start>/fetched/shard=<k>.parquet   score (status, error type, spans, weight)
    runs/app=<app>/interval=<start>/quarantine/shard=<k>.parquet  score (sampled traces whose content
                                                                broke the content contract, with reasons)
    runs/app=<app>/interval=<start>/writeback.json              write back
    runs/app=<app>/interval=<start>/metrics.parquet             aggregate
    metrics/app=<app>/interval=<start>/part.parquet             store (the metrics store)
    alerts/app=<app>/...                                        alert state and events
    datasets/<name>/v<N>/...                                    curated evaluation-dataset snapshots
    evaluations/app=<app>/<run>/...                             development evaluations
    exports/app=<app>/<date>/...                                fine-tuning exports

A stage writes each file atomically (a temp file beside it, then ``os.replace``), either whole
(:func:`atomic_write_parquet`) or batch by batch (:class:`ParquetPartWriter`), with fixed writer options, so
the same input gives the same bytes. A stage reads its input in record batches (:func:`iter_parquet_batches`):
memory is bounded by a batch, not by the window. Every failure to read or write is a ``StoreError``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from genai_flywheel.exceptions import StoreError

if TYPE_CHECKING:
    import pyarrow as pa


def interval_key(start: datetime) -> str:
    """A file-system-safe, sortable name of an interval start, e.g. ``2026-11-20T13-00-00Z``."""
    return to_utc(start).strftime("%Y-%m-%dT%H-%M-%SZ")


def to_utc(value: datetime | str) -> datetime:
    """``value`` as an aware UTC ``datetime`` (naive input is taken as UTC; ISO strings are parsed).

    Always a plain :class:`datetime.datetime`: Airflow passes pendulum ``DateTime`` objects, whose
    arithmetic differs (the difference of two is a pendulum ``Interval``, which cannot be floor-divided by a
    ``timedelta``), and the library's interval arithmetic must not depend on who called it.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )


def to_ms(value: datetime | str) -> int:
    """Epoch milliseconds of ``value``."""
    return int(to_utc(value).timestamp() * 1000)


@dataclass(frozen=True)
class IntervalWorkspace:
    """The files of one application's schedule interval [start, end)."""

    data_root: Path
    app: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, data_root: Path | str, app: str, start: datetime | str, end: datetime | str) -> IntervalWorkspace:
        s, e = to_utc(start), to_utc(end)
        if e <= s:
            raise ValueError(f"interval end {e.isoformat()} must be after its start {s.isoformat()}")
        return cls(Path(data_root), app, s, e)

    @property
    def key(self) -> str:
        return interval_key(self.start)

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)

    @property
    def run_dir(self) -> Path:
        return self.data_root / "runs" / f"app={self.app}" / f"interval={self.key}"

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def shard_path(self, shard: int, stage: str = "scores") -> Path:
        """The file of one scoring shard: its scores, its fetched traces or its content quarantine."""
        return self.run_dir / stage / f"shard={shard:03d}.parquet"

    def slice_path(self, slice_index: int) -> Path:
        """The pass-one file (trace infos) of one extraction time slice."""
        return self.run_dir / "infos" / f"slice={slice_index:03d}.parquet"

    def parts(self, stage: str) -> list[Path]:
        """Every part file of a stage folder (``scores``, ``fetched``, ``quarantine``, ``infos``), sorted."""
        folder = self.run_dir / stage
        return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def slice_bounds(start_ms: int, end_ms: int, slices: int) -> list[tuple[int, int]]:
    """``slices`` adjacent half-open ranges covering [start_ms, end_ms) exactly (integer arithmetic), so
    every timestamp of the window falls in exactly one slice."""
    if slices < 1:
        raise ValueError(f"slices must be >= 1, got {slices!r}")
    if end_ms <= start_ms:
        raise ValueError(f"empty window: start_ms={start_ms} must be before end_ms={end_ms}")
    span = end_ms - start_ms
    edges = [start_ms + span * k // slices for k in range(slices + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


# --- stage files ---------------------------------------------------------------------------------------

# Fixed writer options: changing any of them changes the bytes of every file written afterwards.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 1_000_000,
    "store_schema": True,
    "write_page_index": False,
    "write_page_checksum": False,
    "use_byte_stream_split": False,
}
#: Rows per row group of a file written batch by batch. A writer holds up to a row group of rows as Arrow
#: before encoding it, and a row of trace infos is about 600 bytes decoded (tags, metadata, assessments):
#: 10,000 rows keep that buffer a few MB, and no larger in a window of a million traces than in one of
#: ten thousand (measured on the validate task at a million traces: 684 MB peak with 50,000, 525 MB with
#: 10,000; 418 MB at ten thousand traces).
ROW_GROUP_ROWS = 10_000
#: Rows per record batch when a stage streams its input: the same bound, for the same reason (a stage
#: converts a batch to pandas, Python rows or sorted copies, several times its Arrow size).
BATCH_ROWS = 10_000

_FILE_MODE = 0o644  # mkstemp creates 0600; dashboards and other users must be able to read the files


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory, hence best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> tuple[int, Path]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise StoreError(f"cannot create {path.parent}: {err}; check the data root exists and is writable") from err
    return fd, Path(tmp_name)


def _publish(tmp: Path, path: Path) -> None:
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through ``write`` to a temp file beside ``path``, fsync, then ``os.replace`` it into place."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException as err:
        # Whatever failed (disk full, a serialisation error, a killed task), the target keeps its old content
        # and no temp file is left behind.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise StoreError(f"cannot write {path}: {err}; check free space and permissions") from err
        raise
    return path


def atomic_write_parquet(table: pa.Table, path: Path | str) -> Path:
    """Write ``table`` to ``path`` as Parquet atomically, with :data:`PARQUET_OPTIONS` (same table, same
    bytes). Chunks are combined first so the file does not depend on how the table was assembled."""
    import pyarrow.parquet as pq

    table = table.combine_chunks()
    return _atomic_write(Path(path), lambda handle: pq.write_table(table, handle, **PARQUET_OPTIONS))


class ParquetPartWriter:
    """One Parquet file written batch by batch, published atomically when the ``with`` block ends.

    Rows are buffered into row groups of :data:`ROW_GROUP_ROWS`, so the file's bytes depend only on the rows
    written and their order, not on how they were batched. A block that raises leaves no file and no temp
    file behind, and the previous file at ``path`` (if any) untouched.
    """

    def __init__(self, path: Path | str, schema: pa.Schema, *, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self.path = Path(path)
        self.schema = schema
        self.rows = 0
        self._row_group_rows = row_group_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: Any = None
        self._tmp: Path | None = None

    def __enter__(self) -> ParquetPartWriter:
        import pyarrow.parquet as pq

        fd, self._tmp = _temp_beside(self.path)
        os.close(fd)
        options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
        self._writer = pq.ParquetWriter(self._tmp, self.schema, **options)
        return self

    def write(self, rows: pa.Table | pa.RecordBatch) -> None:
        """Append ``rows`` (cast to the file's schema; a column it lacks is an error)."""
        import pyarrow as pa

        table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
        if table.num_rows == 0:
            return
        try:
            table = table.select(self.schema.names).cast(self.schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as err:
            raise StoreError(f"rows for {self.path} do not match its schema: {err}") from err
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= self._row_group_rows:
            self._flush(self._row_group_rows)

    def _flush(self, limit: int | None = None) -> None:
        import pyarrow as pa

        if not self._pending_rows:
            return
        table = pa.concat_tables(self._pending)
        take = table.num_rows if limit is None else min(limit, table.num_rows)
        self._writer.write_table(table.slice(0, take).combine_chunks(), row_group_size=take)
        rest = table.slice(take)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._tmp is not None
        try:
            if exc_type is None:
                self._flush()
            self._writer.close()
            if exc_type is None:
                with open(self._tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
                _publish(self._tmp, self.path)
        except OSError as err:
            raise StoreError(f"cannot write {self.path}: {err}; check free space and permissions") from err
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()


def read_parquet(path: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """Read one Parquet file whole (only ``columns`` when given).

    ``pq.read_table`` imports ``pyarrow.dataset`` (seconds, on every task start); reading the single file
    through ``ParquetFile`` gives the same table without it.
    """
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        return f.read(columns=list(columns) if columns is not None else None)


def iter_parquet_batches(
    paths: Iterable[Path | str], *, columns: Sequence[str] | None = None, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """The rows of ``paths``, file after file, as record batches of at most ``batch_rows`` rows.

    Memory holds one row group and one batch. The reader's pre-buffering is off: it fetches the column chunks
    of every row group to be read up front: the whole file, 70 MB of trace infos at a million traces.
    """
    import pyarrow.parquet as pq

    for path in paths:
        with pq.ParquetFile(path, pre_buffer=False) as f:
            # One thread: a batch of 10,000 rows gains nothing from the pool, and each of its threads keeps
            # allocator caches of its own (6 MB less at a million score rows, measured).
            yield from f.iter_batches(
                batch_size=batch_rows, columns=list(columns) if columns is not None else None, use_threads=False
            )


def parquet_rows(paths: Iterable[Path | str]) -> int:
    """The rows of the Parquet files ``paths`` together, from their footers (no data is read)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def rebatch(tables: Iterable[pa.Table | pa.RecordBatch], rows: int, schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows of ``tables`` in order, as tables of exactly ``rows`` rows (the last one shorter, none empty):
    the same tables however the input was batched, holding at most one output table and one input batch."""
    import pyarrow as pa

    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows!r}")
    pending: list[pa.Table] = []
    held = 0
    for part in tables:
        table = pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
        while table.num_rows:
            take = min(rows - held, table.num_rows)
            pending.append(table.slice(0, take))
            held += take
            table = table.slice(take)
            if held == rows:
                yield pa.concat_tables(pending).cast(schema).combine_chunks()
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).cast(schema).combine_chunks()


def read_stage_parquet(path: Path | str, producer: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The Parquet file a previous stage wrote, or a StoreError naming the stage to run first."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} not found; run the {producer} stage for this run folder first")
    return read_parquet(path, columns)


def read_stage_json(path: Path | str, producer: str) -> dict[str, Any]:
    """The JSON file a previous stage wrote, or a StoreError naming the stage to run first."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} not found; run the {producer} stage for this run folder first")
    return json.loads(path.read_text(encoding="utf-8"))


def atomic_write_text(text: str, path: Path | str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return _atomic_write(Path(path), write)


def dumps_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, 2-space indent, no NaN (it is not JSON), trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(obj: Any, path: Path | str) -> Path:
    """Write ``obj`` as canonical JSON (:func:`dumps_json`) to ``path`` atomically."""
    return atomic_write_text(dumps_json(obj), path)
