"""Smoke test of benchmarks/writeback_server.py: an ``mlflow server`` on SQLite, a few traces, two thread
counts. Asserts the figures' shape, that every rate is positive and that a pool sized to the threads
(by hand or by ``write_back``) discards no connection; never a timing."""

from __future__ import annotations

from pathlib import Path

from benchmarks import writeback_server

THREADS = (2, 16)


def test_every_thread_count_has_positive_rates_and_no_discard_when_sized(tmp_path: Path) -> None:
    results = writeback_server.run_benchmark(
        backends=("sqlite",), traces=10, rows=64, threads=THREADS, workdir=tmp_path
    )
    (table,) = results.values()
    assert [r["threads"] for r in table] == list(THREADS)
    for row in table:
        assert min(row["bare_pool10"], row["bare_sized"], row["write_back"]) > 0, row
        assert row["bare_sized_full"] == 0 and row["write_back_full"] == 0, row
    text = writeback_server.format_table("sqlite", table)
    assert all(f"\n{k:>7} |" in text for k in THREADS), text
