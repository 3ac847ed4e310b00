"""benchmarks/monitor.py's PostgreSQL and server options: parsing, and the write-back figures they add to the
summary and the report (synthetic figures; the runs themselves are in tests/integration/test_benchmark_smoke.py)."""

from __future__ import annotations

import pytest

from benchmarks import monitor


def test_postgres_and_the_ceiling_default_off_and_on() -> None:
    args = monitor.parse_args([])
    assert args.postgres is False
    assert args.ceiling_rows == monitor.DEFAULT_CEILING_ROWS > 0


def test_postgres_takes_a_sqlite_store_with_or_without_a_server() -> None:
    uri = "sqlite:////tmp/traces.db"
    served = monitor.parse_args(["--postgres", "--serve", "--tracking-uri", uri, "--ceiling-rows", "0"])
    assert (served.postgres, served.serve, served.tracking_uri, served.ceiling_rows) == (True, True, uri, 0)
    direct = monitor.parse_args(["--postgres"])
    assert (direct.postgres, direct.serve) == (True, False)


@pytest.mark.parametrize(
    "argv",
    [
        ["--postgres", "--tracking-uri", "http://127.0.0.1:5000"],
        ["--postgres", "--tracking-uri", "postgresql+psycopg2://u@h/db"],
        ["--ceiling-rows", "-1"],
    ],
)
def test_bad_postgres_and_ceiling_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        monitor.parse_args(argv)
    assert err.value.code == 2


def test_run_benchmark_refuses_postgres_without_a_sqlite_store(tmp_path) -> None:
    with pytest.raises(ValueError, match="--postgres needs a SQLite store"):
        monitor.run_benchmark(n=1, baseline_n=0, workdir=tmp_path, tracking_uri="http://127.0.0.1:1", postgres=True)


def _stage(name: str, seconds: float, **result: int) -> monitor.StageFigure:
    return monitor.StageFigure(name, seconds, 100 / seconds, 300.0, 400.0, result=dict(result))


def test_write_back_rate_and_ceiling_are_reported_beside_each_other() -> None:
    stages = [_stage("extract", 30.0), _stage("score", 50.0, scores=500), _stage("write_back", 10.0, written=500)]
    summary = monitor.summarize(
        100,
        stages,
        None,
        None,
        tracking_uri="http://127.0.0.1:5000",
        backend_store="postgresql+psycopg2://postgres@127.0.0.1:5432/run",
        copies=[monitor.CopyFigure("run", 1234, 2.5)],
        ceiling=monitor.CeilingFigure(rows=200, threads=8, seconds=4.0, per_s=50.0),
    )
    assert summary["monitor_seconds_excluding_write_back"] == 80.0
    assert (summary["write_back_written"], summary["write_back_per_s"]) == (500, 50.0)
    assert summary["ceiling"]["per_s"] == 50.0
    assert summary["store_copies"] == [{"database": "run", "rows": 1234, "seconds": 2.5}]
    text = monitor.format_report(summary)
    assert "against http://127.0.0.1:5000 (on postgresql+psycopg2)" in text
    assert "write_back:                500 assessments, 50/s" in text
    assert "bare client beside it:   50/s (200 log_feedback calls on 8 threads" in text
    assert "1234 rows into PostgreSQL database run" in text
    assert "(80.00 s;" in text


def test_without_a_server_there_is_no_ceiling_line() -> None:
    summary = monitor.summarize(10, [_stage("write_back", 1.0, written=5)], None, None, tracking_uri="sqlite:///x")
    assert summary["ceiling"] is None and summary["store_copies"] == []
    assert "bare client beside it" not in monitor.format_report(summary)
