"""The command line's argument handling and the demo's interval arithmetic."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genai_flywheel.cli import _parse_time, main
from genai_flywheel.config import load_config
from genai_flywheel.loop import run_folder
from genai_flywheel.services import sqlite_wal

ROOT = Path(__file__).resolve().parents[3]


def test_parse_time_accepts_iso_relative_and_now() -> None:
    assert _parse_time("2026-11-20T06:00Z") == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert _parse_time("2026-11-20T06:00").tzinfo is not None
    delta = datetime.now(UTC) - _parse_time("-2d")
    assert timedelta(days=2) - timedelta(seconds=5) < delta < timedelta(days=2, seconds=5)
    with pytest.raises(argparse.ArgumentTypeError, match="use ISO 8601"):
        _parse_time("yesterday")


def test_config_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "--config", str(ROOT / "flywheel.yaml")]) == 0
    assert "valid (1 application(s): support-assistant)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: []\n")
    assert main(["config", "validate", "--config", str(bad)]) == 2
    assert "applications" in capsys.readouterr().err


def test_demo_intervals_are_whole_schedule_intervals() -> None:
    from genai_flywheel.demo_run import interval_bounds

    app = load_config(ROOT / "flywheel.yaml").applications[0]
    start, end, step = interval_bounds(app, 3, now=datetime(2026, 11, 26, 7, 31, tzinfo=UTC))
    assert end == datetime(2026, 11, 26, 6, tzinfo=UTC)
    assert step == timedelta(hours=6)
    assert start == end - timedelta(days=3)
    assert (end - start) / step == 12


def test_run_folder_is_safe_for_any_run_id(tmp_path: Path) -> None:
    path = run_folder(tmp_path, "curation", "app", "manual__2026-11-26T07:37:03.468103+00:00")
    assert path.parent == tmp_path / "curation" / "app=app"
    assert "/" not in path.name and ":" not in path.name and "+" not in path.name


def test_sqlite_wal_mode_is_stored_in_the_file(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite_wal(tmp_path / "sub" / "x.db")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_exited_airflow_component_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from genai_flywheel import services

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
