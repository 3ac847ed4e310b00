"""The batched write-back on a PostgreSQL tracking store (row locks are real here, unlike on SQLite)
writes exactly the rows MLflow's ``log_assessment`` writes; see ``tests/integration/test_writeback_batch.py``."""

from __future__ import annotations

import pytest

from tests.integration.test_writeback_batch import check_batched_equals_row_by_row, simulated_store
from tests.integration.topology.conftest import Postgres


def _database(pg: Postgres, name: str) -> str:
    pg.create_databases((name,), replace=True)
    return pg.uri(name)


@pytest.mark.parametrize("rollups", [False, True], ids=["rollups-off", "rollups-on"])
def test_batched_write_back_equals_log_assessment_on_postgres(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch, rollups: bool
) -> None:
    monkeypatch.setenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", str(rollups).lower())
    suffix = "on" if rollups else "off"
    check_batched_equals_row_by_row(
        _database(postgres, f"wb_batched_{suffix}"),
        _database(postgres, f"wb_rowwise_{suffix}"),
        monkeypatch,
        setup=simulated_store,
    )
