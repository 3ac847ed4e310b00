"""The local supervisor's retries: an ``airflow`` command that lost a SQLite write race is run again, with
growing pauses, at most ten times; waiting for a service polls once a second until its deadline."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from flywheel_demo import services
from flywheel_demo.services import ServiceError, Stack, wait_http
from tests.stubs.http_receiver import HttpReceiver

LOCKED = "sqlite3.OperationalError: database is locked"


def _scripted_run(monkeypatch: pytest.MonkeyPatch, *results: tuple[int, str]) -> list[list[str]]:
    calls: list[list[str]] = []
    script = list(results)

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        calls.append(argv)
        code, stderr = script.pop(0) if len(script) > 1 else script[0]
        return subprocess.CompletedProcess(argv, code, "", stderr)

    monkeypatch.setattr(services.subprocess, "run", run)
    return calls


def test_airflow_command_is_repeated_while_sqlite_is_locked(tmp_path: Path, monkeypatch, sleeps) -> None:
    calls = _scripted_run(monkeypatch, (1, LOCKED), (1, LOCKED), (0, ""))
    proc = services.airflow(Stack(project=tmp_path, home=tmp_path / "h"), "pools", "list")
    assert proc.returncode == 0 and len(calls) == 3
    assert sleeps == [3, 4]


def test_airflow_command_gives_up_after_ten_locked_tries(tmp_path: Path, monkeypatch, sleeps) -> None:
    calls = _scripted_run(monkeypatch, (1, LOCKED))
    stack = Stack(project=tmp_path, home=tmp_path / "h")
    with pytest.raises(ServiceError, match=f"airflow db migrate failed \\(1\\):\n{LOCKED}"):
        services.airflow(stack, "db", "migrate")
    assert len(calls) == 10 and sleeps == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert services.airflow(stack, "db", "migrate", check=False).returncode == 1  # the last process, not raised


def test_airflow_command_failing_otherwise_is_not_repeated(tmp_path: Path, monkeypatch, sleeps) -> None:
    calls = _scripted_run(monkeypatch, (2, "No such command"))
    with pytest.raises(ServiceError, match="No such command"):
        services.airflow(Stack(project=tmp_path, home=tmp_path / "h"), "nope")
    assert len(calls) == 1 and sleeps == []


def test_wait_http_polls_until_the_service_answers(sleeps) -> None:
    with HttpReceiver(503, 503, 401) as health:  # a login page counts as up
        wait_http(health.url + "/health", timeout_s=60, name="svc")
    assert sleeps == [1, 1] and len(health.requests) == 3


def test_wait_http_names_the_last_problem_and_the_log_tail(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    log_file.write_text("starting\nboom\n")
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"svc did not answer at .* within 2 s \(HTTP 500\); log tail:\nstart"):
        with HttpReceiver(500, repeat_last=True) as health:
            wait_http(health.url, timeout_s=1.5, name="svc", log_file=log_file)
    assert 1.5 <= time.monotonic() - started < 10
