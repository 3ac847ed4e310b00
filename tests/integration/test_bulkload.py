"""The bulk loader (benchmarks/bulkload.py) against MLflow's own writes: the same 300 simulated traces (with
errors and human feedback) go once through the simulator (``log_spans`` / ``log_assessment``) and once
through the loader into two fresh SQLite stores; the trace tables must hold the same rows, column by
column, and MLflow must read the traces back identically.

The one column left out: ``assessments.assessment_id``. MLflow draws it at write time
(``generate_assessment_id``: ``a-`` + a random uuid4), so two writes of the same assessment never share it;
the loader derives it from (trace id, assessment name) so that its loads are deterministic. Assessments are
matched on (trace_id, name) instead, which is unique in the simulation. No other column is time-of-write:
trace and assessment times come from the simulated plan, not from the clock.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bulkload as bl

N = 300
SEED = 11
END = datetime(2026, 11, 20, tzinfo=UTC)
EXPERIMENT = "bulk-it"
# Row identity per table: the primary key, except for assessments (see the module docstring).
KEYS = {
    "trace_info": ("request_id",),
    "trace_tags": ("request_id", "key"),
    "trace_request_metadata": ("request_id", "key"),
    "spans": ("trace_id", "span_id"),
    "assessments": ("trace_id", "name"),
}
IGNORED = {"assessments": {"assessment_id"}}


def _dump(db: Path, table: str) -> tuple[list[str], dict[tuple, dict[str, Any]]]:
    with closing(sqlite3.connect(db)) as conn:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_xinfo({table})")]  # with the generated duration_ns
        rows = [dict(zip(cols, r, strict=True)) for r in conn.execute(f"SELECT * FROM {table}")]
    keyed = {tuple(r[k] for k in KEYS[table]): r for r in rows}
    assert len(keyed) == len(rows), f"{table}: key {KEYS[table]} is not unique"
    return cols, keyed


def _load(db: Path) -> bl.LoadResult:
    return bl.bulkload(f"sqlite:///{db}", EXPERIMENT, traces_per_day=N, end=END, seed=SEED)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlflow import MlflowClient

    from flywheel_demo.simulate import simulate

    base = tmp_path_factory.mktemp("bulkload")
    artifacts = (base / "artifacts").resolve().as_uri()  # the trace artifact-location tag derives from it
    dbs = {name: base / f"{name}.db" for name in ("simulated", "loaded", "again")}
    for db in dbs.values():
        MlflowClient(f"sqlite:///{db}").create_experiment(EXPERIMENT, artifact_location=artifacts)
    simulate(f"sqlite:///{dbs['simulated']}", EXPERIMENT, days=1, traces_per_day=N, end=END, seed=SEED, progress=False)
    return {"dbs": dbs, "loaded": _load(dbs["loaded"]), "again": _load(dbs["again"])}


def test_the_sample_covers_errors_and_feedback(stores: dict[str, Any]) -> None:
    _, info = _dump(stores["dbs"]["simulated"], "trace_info")
    _, assessments = _dump(stores["dbs"]["simulated"], "assessments")
    assert len(info) == N
    assert sum(r["status"] == "ERROR" for r in info.values()) >= 3
    assert {name for _, name in assessments} >= {"user_feedback"}
    assert any(r["rationale"] for r in assessments.values())
    assert stores["loaded"].n_written == N
    assert stores["loaded"].n_assessments == len(assessments)


@pytest.mark.parametrize("table", bl.TABLES)
def test_rows_equal_mlflows_own_column_by_column(stores: dict[str, Any], table: str) -> None:
    cols, want = _dump(stores["dbs"]["simulated"], table)
    loaded_cols, got = _dump(stores["dbs"]["loaded"], table)
    assert loaded_cols == cols
    assert want, table
    assert got.keys() == want.keys()
    compared = [c for c in cols if c not in IGNORED.get(table, set())]
    for key, row in want.items():
        for col in compared:
            assert got[key][col] == row[col], f"{table} {key} column {col}"


def test_no_other_table_differs_and_the_schema_is_the_same(stores: dict[str, Any]) -> None:
    def counts_and_indexes(db: Path) -> tuple[dict[str, int], list[tuple]]:
        with closing(sqlite3.connect(db)) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
            indexes = conn.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            ).fetchall()
        return counts, indexes

    simulated, loaded = (counts_and_indexes(stores["dbs"][k]) for k in ("simulated", "loaded"))
    assert loaded == simulated  # the dropped and rebuilt indexes included


def test_mlflow_reads_the_loaded_traces_back_identically(stores: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    def traces(db: Path) -> dict[str, dict[str, Any]]:
        client = MlflowClient(f"sqlite:///{db}")
        exp = client.get_experiment_by_name(EXPERIMENT).experiment_id
        found = client.search_traces(locations=[exp], max_results=N + 1, order_by=["timestamp_ms ASC"])
        assert len(found) == N
        out = {}
        for summary in found:
            full = client.get_trace(summary.info.trace_id).to_dict()
            for a in full["info"].get("assessments", []):
                a.pop("assessment_id")  # see the module docstring
            out[summary.info.trace_id] = {"search": _without_assessment_ids(summary.info.to_dict()), "get": full}
        return out

    assert traces(stores["dbs"]["loaded"]) == traces(stores["dbs"]["simulated"])


def _without_assessment_ids(info: dict[str, Any]) -> dict[str, Any]:
    for a in info.get("assessments", []):
        a.pop("assessment_id")
    return info


def test_same_seed_same_rows_and_a_rerun_writes_nothing(stores: dict[str, Any]) -> None:
    for table in bl.TABLES:
        assert _dump(stores["dbs"]["again"], table) == _dump(stores["dbs"]["loaded"], table), table
    rerun = _load(stores["dbs"]["loaded"])
    assert (rerun.n_traces, rerun.n_written, rerun.n_assessments) == (N, 0, 0)
    assert _dump(stores["dbs"]["loaded"], "spans") == _dump(stores["dbs"]["again"], "spans")


def test_only_sqlite_stores_are_loaded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        bl.bulkload("http://127.0.0.1:5000", EXPERIMENT, traces_per_day=1, end=END, seed=SEED)
