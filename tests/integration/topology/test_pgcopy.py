"""The benchmarks' SQLite → PostgreSQL copy (benchmarks/pgcopy.py) against its source: a bulk-loaded store
plus rows MLflow writes itself (a run with a metric, a param and tags, an experiment tag, feedback and an
expectation with MLflow's own random ids) is copied into a PostgreSQL database twice (the second copy must
replace the first, not add to it); every table then holds the same rows through MLflow's own SQLAlchemy
models, MLflow reads the same traces back, and new writes get fresh ids (the sequences moved on)."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bulkload, pgcopy
from flywheel_demo.services import Postgres
from genai_flywheel.mlflow_compat import use_tracking_uri

N = 120
EXPERIMENT = "pgcopy-it"
END = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def stores(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSource

    base = tmp_path_factory.mktemp("pgcopy")
    source = f"sqlite:///{base / 'source.db'}"
    artifacts = (base / "artifacts").resolve().as_uri()
    client = MlflowClient(source)
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    bulkload.bulkload(source, EXPERIMENT, traces_per_day=N, end=END, seed=11)
    client.set_experiment_tag(exp_id, "team", "support\tdesk\nline two \\ backslash")  # COPY's escapes
    run = client.create_run(exp_id, run_name="copied-run")
    client.log_metric(run.info.run_id, "loss", 0.25, step=3)
    client.log_metric(run.info.run_id, "nan-metric", float("nan"))  # latest_metrics.is_nan: a boolean
    client.log_param(run.info.run_id, "lr", "0.1")
    client.set_terminated(run.info.run_id)
    traces = client.search_traces(locations=[exp_id], max_results=3, order_by=["timestamp_ms ASC"])
    with use_tracking_uri(source):
        source_ = AssessmentSource(source_type="CODE", source_id="pgcopy-it")
        mlflow.log_feedback(trace_id=traces[0].info.trace_id, name="ok", value=True, source=source_, rationale="é")
        mlflow.log_expectation(trace_id=traces[1].info.trace_id, name="expected", value={"answer": 42})
    postgres.create_databases(("pgcopy",), replace=True)
    target = postgres.uri("pgcopy")
    first = pgcopy.copy_store(source, target)
    second = pgcopy.copy_store(source, target)
    return {"source": source, "target": target, "first": first, "second": second, "base": base}


def _rows(uri: str, table: Any) -> list[tuple[Any, ...]]:
    from sqlalchemy import create_engine, select

    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            return sorted((tuple(r) for r in conn.execute(select(table))), key=repr)
    finally:
        engine.dispose()


def _model_tables() -> list[Any]:
    from mlflow.store.db.base_sql_model import Base
    from mlflow.store.tracking.dbmodels import models  # noqa: F401  (registers the tracking tables)

    return [t for t in Base.metadata.sorted_tables if t.name not in pgcopy.SKIPPED]


def test_the_copy_covers_traces_runs_and_mlflows_own_writes(stores: dict[str, Any]) -> None:
    rows = stores["second"].rows
    assert rows["trace_info"] == N
    assert rows["spans"] >= 2 * N
    assert {"assessments", "runs", "metrics", "latest_metrics", "params", "experiment_tags"} <= rows.keys()
    assert stores["first"].rows == rows  # the second copy replaced the first: nothing doubled


def test_every_table_holds_the_same_rows_through_mlflows_models(stores: dict[str, Any]) -> None:
    compared = 0
    for table in _model_tables():
        want = _rows(stores["source"], table)
        got = _rows(stores["target"], table)
        assert got == want, f"{table.name}: {len(got)} rows copied, {len(want)} in the source"
        compared += bool(want)
    assert compared >= 9


def test_mlflow_reads_the_copied_traces_back_identically(stores: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    def traces(uri: str) -> dict[str, Any]:
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(EXPERIMENT)
        found = client.search_traces(locations=[exp.experiment_id], max_results=N + 1, order_by=["timestamp_ms ASC"])
        assert len(found) == N
        return {
            "experiment": (exp.experiment_id, exp.artifact_location, exp.tags),
            "traces": {t.info.trace_id: client.get_trace(t.info.trace_id).to_dict() for t in found},
        }

    assert traces(stores["target"]) == traces(stores["source"])


def test_new_writes_after_the_copy_get_fresh_ids(stores: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    source, target = MlflowClient(stores["source"]), MlflowClient(stores["target"])
    copied = {e.experiment_id for e in source.search_experiments()}
    new_id = target.create_experiment("after-the-copy")  # a stale sequence would hand out a copied id
    assert new_id not in copied
    run = target.create_run(new_id)
    target.log_metric(run.info.run_id, "x", 1.0)
    assert target.get_run(run.info.run_id).data.metrics == {"x": 1.0}


def test_a_store_of_another_schema_version_is_refused(stores: dict[str, Any], postgres: Postgres) -> None:
    older = stores["base"] / "older.db"
    shutil.copy(bulkload.sqlite_file(stores["source"]), older)
    with closing(sqlite3.connect(older)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'not-this-one'")
        conn.commit()
    with pytest.raises(ValueError, match="mlflow db upgrade"):
        pgcopy.copy_store(f"sqlite:///{older}", stores["target"])


def test_a_missing_source_is_named(tmp_path: Path, stores: dict[str, Any]) -> None:
    with pytest.raises(FileNotFoundError, match="bulkload"):
        pgcopy.copy_store(f"sqlite:///{tmp_path / 'none.db'}", stores["target"])
