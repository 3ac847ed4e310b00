"""Copy a SQLite MLflow store into a PostgreSQL database, table by table: how the benchmarks get a large
trace store onto PostgreSQL (the bulk loader writes SQLite only; its SQL and its index handling are
SQLite's own).

MLflow first creates its schema in the target (its own migrations, as ``mlflow server`` would); the copy
then refuses two stores of different schema versions. Every table of that schema but ``alembic_version``
is emptied and filled with the source's rows through ``COPY ... FROM STDIN`` (text format), a chunk of
rows at a time, with foreign-key triggers off for the load (``session_replication_role = replica``), so
the order of the tables does not matter. Generated columns (``spans.duration_ns``) are the database's to
compute. Afterwards every sequence behind an auto-increment key is moved past the copied keys (the next
``create_experiment`` must not collide with a copied id) and the tables are analysed, so the planner
sees the copied rows. ``tests/integration/topology/test_pgcopy.py`` proves the copy equal: every row of
every table through MLflow's own models, and the traces as ``search_traces`` returns them.

Command line: ``.venv/bin/python benchmarks/pgcopy.py sqlite:///traces.db postgresql+psycopg2://...``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks.* when run as a script
    sys.path.insert(1, str(ROOT))

from benchmarks.bulkload import sqlite_file  # noqa: E402

log = logging.getLogger(__name__)

CHUNK_ROWS = 10_000
SKIPPED = ("alembic_version",)  # written by MLflow's migrations in the target, checked, not copied
# COPY's text format: backslash, newline, carriage return and tab are escaped; \N is NULL.
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_store` copied: rows per table (tables with rows only) and the seconds it took."""

    rows: dict[str, int] = field(default_factory=dict)
    schema_seconds: float = 0.0
    copy_seconds: float = 0.0
    analyze_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        """Schema, copy and analyse together."""
        return self.schema_seconds + self.copy_seconds + self.analyze_seconds


def create_schema(uri: str) -> None:
    """MLflow's tracking schema in the database at ``uri`` (its migrations; a no-op when it is current)."""
    from mlflow import MlflowClient

    # The client's first call builds the store, which migrates the schema (the default experiment it
    # creates is replaced by the copy).
    MlflowClient(uri).search_experiments(max_results=1)


def _schema_version(conn: Any) -> str | None:
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def _formatter(column: Any) -> Callable[[Any], str]:
    """How one source value of ``column`` (a reflected PostgreSQL column) is written in COPY's text format."""
    from sqlalchemy import Boolean, LargeBinary

    if isinstance(column.type, Boolean):  # SQLite keeps booleans as 0 / 1
        return lambda v: "t" if v else "f"
    if isinstance(column.type, LargeBinary):
        return lambda v: "\\\\x" + bytes(v).hex()
    return lambda v: str(v).translate(_ESCAPES)


def _copy_lines(rows: list[tuple[Any, ...]], formats: list[Callable[[Any], str]]) -> io.StringIO:
    out = io.StringIO()
    for row in rows:
        out.write("\t".join("\\N" if v is None else f(v) for f, v in zip(formats, row, strict=True)))
        out.write("\n")
    out.seek(0)
    return out


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> set[str] | None:
    cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
    return cols or None


def _chunks(cursor: sqlite3.Cursor, size: int) -> Iterator[list[tuple[Any, ...]]]:
    while rows := cursor.fetchmany(size):
        yield rows


_SEQUENCES = """
SELECT c.table_name, c.column_name, pg_get_serial_sequence(quote_ident(c.table_name), c.column_name)
FROM information_schema.columns c
WHERE c.table_schema = current_schema()
  AND pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) IS NOT NULL
"""


def _reset_sequences(cur: Any) -> int:
    """Move every sequence behind a column past the column's largest value; returns how many there are."""
    cur.execute(_SEQUENCES)
    found = cur.fetchall()
    for table, column, sequence in found:
        # setval(seq, max, true): the next value is max + 1; an empty table restarts at 1 (is_called false).
        cur.execute(
            f'SELECT setval(%s, COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) FROM "{table}"',
            (sequence,),
        )
    return len(found)


def copy_store(sqlite_uri: str, pg_uri: str, *, chunk_rows: int = CHUNK_ROWS) -> CopyResult:
    """Make the PostgreSQL database at ``pg_uri`` hold exactly the rows of the SQLite store ``sqlite_uri``.

    The target's schema is created by MLflow if missing; its rows are replaced whole. Raises ValueError when
    the two stores' schema versions differ (migrate the older one first: ``mlflow db upgrade <uri>``).
    """
    from sqlalchemy import MetaData, create_engine

    source = sqlite_file(sqlite_uri)
    if not source.is_file():
        raise FileNotFoundError(f"SQLite store {source} does not exist; fill it first (benchmarks/bulkload.py)")
    t0 = time.perf_counter()
    create_schema(pg_uri)
    schema_seconds = time.perf_counter() - t0

    engine = create_engine(pg_uri)
    metadata = MetaData()
    metadata.reflect(engine)
    tables = [t for t in metadata.sorted_tables if t.name not in SKIPPED]
    copied: dict[str, int] = {}
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SELECT version_num FROM alembic_version")
            target_version = cur.fetchone()[0]
            if _schema_version(src) != target_version:
                raise ValueError(
                    f"{sqlite_uri} is at MLflow schema {_schema_version(src)}, {pg_uri} at {target_version}: "
                    f"run `mlflow db upgrade {sqlite_uri}` first"
                )
            cur.execute("SET session_replication_role = replica")  # no foreign-key triggers during the load
            cur.execute("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables))
            for table in tables:
                columns = [c for c in table.columns if c.computed is None]
                present = _sqlite_columns(src, table.name)
                if present is None:
                    continue  # a table the source never had: left empty
                missing = [c.name for c in columns if c.name not in present]
                if missing:
                    raise ValueError(f"{sqlite_uri}: table {table.name} lacks columns {missing} of {pg_uri}")
                names = ", ".join(f'"{c.name}"' for c in columns)
                formats = [_formatter(c) for c in columns]
                n = 0
                for rows in _chunks(src.execute(f'SELECT {names} FROM "{table.name}"'), chunk_rows):
                    cur.copy_expert(f'COPY "{table.name}" ({names}) FROM STDIN', _copy_lines(rows, formats))
                    n += len(rows)
                if n:
                    copied[table.name] = n
            sequences = _reset_sequences(cur)
            raw.commit()
        finally:
            raw.close()
    copy_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    analyze_seconds = time.perf_counter() - t0
    engine.dispose()
    log.info(
        "copied %d rows of %d tables (%d sequences reset) in %.1f s",
        sum(copied.values()),
        len(copied),
        sequences,
        copy_seconds,
    )
    return CopyResult(copied, schema_seconds, copy_seconds, analyze_seconds)


def main(argv: list[str] | None = None) -> int:
    """Command line: copy a SQLite store into a PostgreSQL database and print what was copied."""
    p = argparse.ArgumentParser(description="Copy a SQLite MLflow store into a PostgreSQL database.")
    p.add_argument("sqlite_uri", help="sqlite:///path/to/mlflow.db")
    p.add_argument("pg_uri", help="postgresql+psycopg2://user@host:port/database (its rows are replaced)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = copy_store(args.sqlite_uri, args.pg_uri)
    print(
        f"{sum(result.rows.values())} rows in {len(result.rows)} tables: schema {result.schema_seconds:.1f} s, "
        f"copy {result.copy_seconds:.1f} s, analyze {result.analyze_seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
