"""The ``flywheel`` command line's argument handling."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genai_flywheel.cli import build_parser, main, parse_time

ROOT = Path(__file__).resolve().parents[3]


def test_parse_time_accepts_iso_relative_and_now() -> None:
    assert parse_time("2026-11-20T06:00Z") == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert parse_time("2026-11-20T06:00").tzinfo is not None
    delta = datetime.now(UTC) - parse_time("-2d")
    assert timedelta(days=2) - timedelta(seconds=5) < delta < timedelta(days=2, seconds=5)
    with pytest.raises(argparse.ArgumentTypeError, match="use ISO 8601"):
        parse_time("yesterday")


def test_config_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "--config", str(ROOT / "flywheel.yaml")]) == 0
    assert "valid (1 application(s): support-assistant)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: []\n")
    assert main(["config", "validate", "--config", str(bad)]) == 2
    assert "applications" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "simulate"])
def test_the_core_cli_has_no_demo_commands(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The embedded default has its own program, flywheel-demo; the library's CLI only runs the pipeline.
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
