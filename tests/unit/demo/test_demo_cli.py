"""The ``flywheel-demo`` command line, the demo's interval arithmetic and the local-service supervisor."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel_demo import cli as demo_cli
from flywheel_demo.services import sqlite_wal
from genai_flywheel.config import load_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], ("run", 3, 400)),
        (["run", "--days", "1", "--traces-per-day", "50"], ("run", 1, 50)),
        (["down"], ("down", 3, 400)),
        (["up"], ("up", 3, 400)),
        (["status"], ("status", 3, 400)),
    ],
)
def test_stack_actions_reach_the_runner(argv: list[str], expected: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel_demo import run

    calls: list[tuple] = []
    monkeypatch.setattr(
        run, "main", lambda action, *, days, traces_per_day: calls.append((action, days, traces_per_day)) or 0
    )
    assert demo_cli.main(argv) == 0
    assert calls == [expected]


def test_simulate_passes_its_options(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from flywheel_demo import simulate as sim_module

    seen: dict = {}

    def fake(uri, experiment, **kw):
        seen.update(uri=uri, experiment=experiment, **kw)
        return SimpleNamespace(n_traces=5, n_feedback=1, start=kw["end"] - timedelta(days=1), end=kw["end"])

    monkeypatch.setattr(sim_module, "simulate", fake)
    argv = ["simulate", "--tracking-uri", "sqlite:///x.db", "--experiment", "e", "--days", "1",
            "--end", "2026-11-20T06:00Z", "--ground-truth", "gt.json", "--quiet"]  # fmt: skip
    assert demo_cli.main(argv) == 0
    assert (seen["uri"], seen["experiment"], seen["days"]) == ("sqlite:///x.db", "e", 1)
    assert seen["end"] == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert seen["ground_truth_path"] == Path("gt.json") and seen["progress"] is False
    assert "wrote 5 traces and 1 feedback assessments to e" in capsys.readouterr().out


def test_flywheel_demo_help_runs_as_a_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flywheel_demo.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for action in ("run", "up", "down", "status", "simulate"):
        assert action in out


def test_demo_intervals_are_whole_schedule_intervals() -> None:
    from flywheel_demo.run import interval_bounds

    app = load_config(ROOT / "flywheel.yaml").applications[0]
    start, end, step = interval_bounds(app, 3, now=datetime(2026, 11, 26, 7, 31, tzinfo=UTC))
    assert end == datetime(2026, 11, 26, 6, tzinfo=UTC)
    assert step == timedelta(hours=6)
    assert start == end - timedelta(days=3)
    assert (end - start) / step == 12


def test_sqlite_wal_mode_is_stored_in_the_file(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite_wal(tmp_path / "sub" / "x.db")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_exited_airflow_component_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel_demo import services

    stack = services.Stack(project=tmp_path, home=tmp_path / "home")
    stack.pids.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (stack.pids / "airflow-scheduler.pid").write_text(str(dead.pid))
    started: list[list[str]] = []
    monkeypatch.setattr(services, "start", lambda st, name, argv, env: started.append(argv) or 1)
    monkeypatch.setattr(services.Stack, "airflow_env", lambda self, extra=None: {})
    assert services.ensure_airflow(stack) == ["scheduler"]
    assert started and started[0][-1] == "scheduler"
