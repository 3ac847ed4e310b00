"""The Parquet metrics store (its files are written by :mod:`genai_flywheel.workspace`'s atomic writers).

Layout under the data root::

    metrics/app=<app>/interval=<2026-11-20T00-00-00Z>/part.parquet
    metrics/app=<app>/interval=<2026-11-20T00-00-00Z>/segments.parquet   (segment metrics, if configured)

One file per (application, interval), replaced atomically, so re-running an interval overwrites its
partition instead of duplicating rows, and a reader never sees a half-written file. Note the ``app`` and
``interval`` directory names follow Hive style for humans and DuckDB globbing; the file itself also holds
the ``app`` column, so read it without Hive partition inference (as :meth:`MetricsStore.read` does) or the
column is duplicated.

Determinism: :data:`PARQUET_OPTIONS` fixes every writer option, and the writer stores no timestamps or
ids, so the same table gives the same bytes (with the same pyarrow version, whose name is in the footer).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from genai_flywheel.exceptions import StoreError
from genai_flywheel.metrics.aggregate import metrics_schema
from genai_flywheel.metrics.intervals import interval_label, parse_interval_label, to_utc
from genai_flywheel.workspace import atomic_write_parquet, read_parquet

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

PART_FILE = "part.parquet"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(app: str) -> str:
    """``app`` if it is safe as a directory name, else a StoreError (it becomes part of a path)."""
    if not isinstance(app, str) or not _SAFE_NAME.match(app) or ".." in app:
        raise StoreError(
            f"application name {app!r} cannot be used as a directory name; use letters, digits, '_', '-', '.'"
        )
    return app


class MetricsStore:
    """Metrics partitions of every application under ``root/metrics``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def base(self) -> Path:
        """The ``metrics`` directory under the data root."""
        return self.root / "metrics"

    def app_dir(self, app: str) -> Path:
        """Directory holding one application's partitions."""
        return self.base / f"app={check_name(app)}"

    def partition_path(self, app: str, interval_start: datetime) -> Path:
        """Where the partition of ``app`` for the interval starting at ``interval_start`` lives."""
        return self.app_dir(app) / f"interval={interval_label(interval_start)}" / PART_FILE

    def write_partition(self, table: pa.Table) -> Path:
        """Write one (app, interval) metrics table as its partition, atomically replacing a previous run.

        ``table`` must follow ``METRICS_SCHEMA`` and hold exactly one app and one interval (the output of
        :func:`~genai_flywheel.metrics.aggregate.aggregate`). Rows are sorted by metric before writing.
        """
        import pyarrow.compute as pc

        table = self._conform(table, "the table to write")
        if table.num_rows == 0:
            raise StoreError("cannot write an empty metrics table: it names no app or interval; pass aggregate()")
        keys = {name: pc.unique(table.column(name)).to_pylist() for name in ("app", "interval_start", "interval_end")}
        several = {name: values for name, values in keys.items() if len(values) != 1}
        if several:
            raise StoreError(
                f"a metrics partition holds one app and one interval, got {several}; write them one by one"
            )
        metrics = table.column("metric").to_pylist()
        if len(set(metrics)) != len(metrics):
            dupes = sorted({m for m in metrics if metrics.count(m) > 1})
            raise StoreError(f"metric(s) {dupes} appear twice in the partition; aggregate once per interval")
        table = table.sort_by([("metric", "ascending")])
        path = self.partition_path(keys["app"][0], keys["interval_start"][0])
        atomic_write_parquet(table, path)
        log.info("wrote %d metrics to %s", table.num_rows, path)
        return path

    def segments_path(self, app: str, interval_start: datetime) -> Path:
        """Where the segment metrics of ``app`` for the interval starting at ``interval_start`` live."""
        from genai_flywheel.segments.schema import SEGMENT_FILE

        return self.partition_path(app, interval_start).with_name(SEGMENT_FILE)

    def write_segments(self, table: pa.Table, *, app: str, interval_start: datetime) -> Path:
        """Write one interval's segment metrics (``segments_schema``) beside its metrics partition, atomically.

        Rows are sorted by (dimension, segment, metric); an empty table is written too (a re-run of an interval
        whose segments vanished must not leave the old ones behind).
        """
        import pyarrow.compute as pc

        table = self._conform_segments(table, "the segment table to write")
        for name, expected in (("app", app), ("interval_start", to_utc(interval_start))):
            values = pc.unique(table.column(name)).to_pylist()
            if values and values != [expected]:
                raise StoreError(f"segment table rows hold {name} {values}, expected only {expected!r}")
        keys = table.select(["dimension", "segment", "metric"]).to_pylist()
        seen: set[tuple[str, str, str]] = set()
        for row in keys:
            key = (row["dimension"], row["segment"], row["metric"])
            if key in seen:
                raise StoreError(f"segment metric {key} appears twice in one interval; aggregate once")
            seen.add(key)
        table = table.sort_by([("dimension", "ascending"), ("segment", "ascending"), ("metric", "ascending")])
        path = self.segments_path(app, interval_start)
        atomic_write_parquet(table, path)
        log.info("wrote %d segment metrics to %s", table.num_rows, path)
        return path

    def read_segments(
        self,
        app: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        dimension: str | None = None,
        segment: str | None = None,
        metrics: list[str] | None = None,
    ) -> pa.Table:
        """The stored segment metrics of ``app`` for intervals starting in ``[start, end)``, optionally of one
        ``dimension``/``segment`` and only the named ``metrics``, sorted by (interval_start, dimension,
        segment, metric). Intervals without a segment file give no rows."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from genai_flywheel.segments.schema import segments_schema

        lo = to_utc(start) if start is not None else None
        hi = to_utc(end) if end is not None else None
        # Filters are pushed into the Parquet reader (row-group statistics), so a segment's history over
        # months of partitions reads only what it needs.
        filters = [
            pc.field(name) == value for name, value in (("dimension", dimension), ("segment", segment)) if value
        ]
        if metrics is not None:
            filters.append(pc.field("metric").isin(metrics))
        expression = None
        for f in filters:
            expression = f if expression is None else expression & f
        tables = []
        for interval_start, part in self._partitions(app):
            if (lo is not None and interval_start < lo) or (hi is not None and interval_start >= hi):
                continue
            path = part.with_name(self.segments_path(app, interval_start).name)
            if not path.is_file():
                continue
            try:
                table = pq.read_table(path, filters=expression, partitioning=None)
            except (OSError, pa.ArrowException) as err:
                raise StoreError(
                    f"cannot read segment metrics {path}: {err}; delete it and re-run that interval"
                ) from err
            tables.append(self._conform_segments(table, str(path)))
        if not tables:
            return segments_schema().empty_table()
        return pa.concat_tables(tables).sort_by(
            [(key, "ascending") for key in ("interval_start", "dimension", "segment", "metric")]
        )

    @staticmethod
    def _conform_segments(table: pa.Table, label: str) -> pa.Table:
        import pyarrow as pa

        from genai_flywheel.segments.schema import segments_schema

        schema = segments_schema()
        missing = [name for name in schema.names if name not in table.column_names]
        if missing:
            raise StoreError(f"{label} lacks segment column(s) {missing}; it must follow segments_schema()")
        try:
            return table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as err:
            raise StoreError(f"{label} does not match segments_schema(): {err}") from err

    def _partitions(self, app: str) -> Iterator[tuple[datetime, Path]]:
        directory = self.app_dir(app)
        if not directory.is_dir():
            return
        for child in sorted(directory.iterdir()):
            if not child.name.startswith("interval="):
                continue
            start = parse_interval_label(child.name.removeprefix("interval="))
            part = child / PART_FILE
            if start is None:
                log.warning("ignoring %s: not an interval=<YYYY-MM-DDTHH-MM-SSZ> directory", child)
            elif part.is_file():
                yield start, part

    def intervals(self, app: str) -> list[datetime]:
        """Start times (UTC) of every stored interval of ``app``, ascending; empty for an unknown app."""
        return [start for start, _ in self._partitions(app)]

    def read(
        self,
        app: str,
        start: datetime | None = None,
        end: datetime | None = None,
        metrics: list[str] | None = None,
    ) -> pa.Table:
        """The stored metrics of ``app`` for intervals starting in ``[start, end)``, optionally only the
        named ``metrics``, sorted by (interval_start, metric). An app without partitions gives 0 rows."""
        import pyarrow as pa
        import pyarrow.compute as pc

        lo = to_utc(start) if start is not None else None
        hi = to_utc(end) if end is not None else None
        tables = []
        for interval_start, part in self._partitions(app):
            if (lo is not None and interval_start < lo) or (hi is not None and interval_start >= hi):
                continue
            try:
                table = read_parquet(part)
            except (OSError, pa.ArrowException) as err:
                raise StoreError(
                    f"cannot read metrics partition {part}: {err}; delete it and re-run that interval"
                ) from err
            tables.append(self._conform(table, str(part)))
        schema = metrics_schema()
        if not tables:
            return schema.empty_table()
        table = pa.concat_tables(tables)
        if metrics is not None:
            table = table.filter(pc.is_in(table.column("metric"), value_set=pa.array(metrics, pa.string())))
        return table.sort_by([("interval_start", "ascending"), ("metric", "ascending")])

    @staticmethod
    def _conform(table: pa.Table, label: str) -> pa.Table:
        import pyarrow as pa

        schema = metrics_schema()
        missing = [name for name in schema.names if name not in table.column_names]
        if missing:
            raise StoreError(f"{label} lacks metrics column(s) {missing}; it must follow METRICS_SCHEMA")
        try:
            # cast() also drops foreign schema metadata (e.g. pandas'), which would change the bytes.
            return table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as err:
            raise StoreError(f"{label} does not match METRICS_SCHEMA: {err}") from err
