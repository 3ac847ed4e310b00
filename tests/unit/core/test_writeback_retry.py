"""The batched write-back starts a batch over, in a new transaction, when a concurrent writer moved one of
its traces between the snapshot and the row lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from genai_flywheel.mlflow_compat import insert_feedbacks


class _Query:
    def __init__(self, rows: list[tuple[str, int, int]]) -> None:
        self.rows = rows

    def filter(self, *args: Any) -> _Query:
        return self

    def order_by(self, *args: Any) -> _Query:
        return self

    def all(self) -> list[tuple[str, int, int]]:
        return self.rows


class _Store:
    """Routing reads in order: each transaction reads a snapshot, then the locked rows."""

    def __init__(self, *reads: list[tuple[str, int, int]]) -> None:
        self.reads = list(reads)
        self.transactions = 0
        self.rollbacks = 0
        self.inserted: list[Any] = []

    @contextmanager
    def ManagedSessionMaker(self, read_only: bool) -> Iterator[Any]:
        self.transactions += 1
        yield SimpleNamespace(
            query=lambda *columns: _Query(self.reads.pop(0)),
            rollback=lambda: setattr(self, "rollbacks", self.rollbacks + 1),
            execute=lambda statement, rows: self.inserted.append(rows),
        )

    def _validate_trace_accessible(self, session: Any, trace_id: str) -> None:
        pass

    def _apply_trace_row_lock(self, query: _Query) -> _Query:
        return query


def test_a_moved_trace_starts_the_batch_over(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.store.tracking.utils import sql_trace_rollups

    monkeypatch.setattr(sql_trace_rollups, "enqueue_rollup_rebuild_partitions", lambda session, parts: None)
    before, moved = [("t1", 1, 100)], [("t1", 2, 100)]
    store = _Store(before, moved, moved, moved)  # moved between snapshot and lock, then stable
    feedbacks = [SimpleNamespace(trace_id="t1", name="a"), SimpleNamespace(trace_id="t9", name="b")]
    monkeypatch.setattr("genai_flywheel.mlflow_compat.assessment_row", lambda fb, exp, ts: {"exp": exp})
    outcomes = insert_feedbacks(store, feedbacks)
    assert outcomes == [None, "t9/b: trace 't9' not found"]
    assert store.transactions == 2 and store.rollbacks == 1 and store.reads == []
    assert store.inserted == [[{"exp": 2}]]  # written with the routing read under the lock
