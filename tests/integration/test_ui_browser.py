"""End to end: a real ``airflow api-server`` loads the plugin, and headless Chromium renders the page.

The server runs with its own AIRFLOW_HOME and SQLite metadata DB in a temp folder, the repo's plugins and
dags folders, and the simple auth manager in all-admins mode (no login). Chromium loads the plugin page
directly (``/flywheel/``) and the Airflow UI route that embeds it (``/plugin/genai-quality``); the DOM is
checked and both screenshots are saved under ``test-output/`` (their paths are printed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.ui.ui_seed import (
    APP,
    BUDGET_INTERVALS,
    BUDGET_SKIPPED_PER_INTERVAL,
    EMPTY_APP,
    seed,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
BIN = Path(sys.executable).parent
# Virtual time Chromium grants the Airflow UI (a React app) to fetch the plugin list and draw the iframe.
BUDGET_MS = 8000
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the api-server and its workers: the whole process group it leads."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _chromium()
    if path is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}); install Debian's chromium")
    return path


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[str]:
    base = tmp_path_factory.mktemp("ui-browser")
    home, data = base / "airflow", base / "data"
    home.mkdir()
    with socket.socket() as s:  # nothing listens here: MLflow is "down", the page must cope
        s.bind(("127.0.0.1", 0))
        mlflow_port = s.getsockname()[1]
    config = write_config(base / "flywheel.yaml", data, f"http://127.0.0.1:{mlflow_port}")
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "FLYWHEEL_CONFIG": str(config),
        "FLYWHEEL_DATA_ROOT": str(data),
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=120)  # fmt: skip
    log_path = base / "api-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(BIN / "airflow"),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so _stop() reaches the uvicorn workers too
        )
    url = f"http://127.0.0.1:{port}"
    try:
        seed(data, config)  # while the server starts: the page reads the data root per request
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if _get(f"{url}/api/v2/monitor/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server not healthy after 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)


def _chrome(chromium: str, profile: Path, *args: str, budget_ms: int | None = None) -> str:
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
        "--window-size=1400,1800", "--hide-scrollbars",
    ]  # fmt: skip
    if budget_ms is not None:  # lets a client-side app (the Airflow UI) render before the capture
        cmd.append(f"--virtual-time-budget={budget_ms}")
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_api_server_serves_the_plugin(api_server: str) -> None:
    status, body = _get(f"{api_server}/api/v2/plugins")
    assert status == 200, body
    [plugin] = [p for p in json.loads(body)["plugins"] if p["name"] == "genai_flywheel"]
    assert [v["url_route"] for v in plugin["external_views"]] == ["genai-quality"]
    status, body = _get(f"{api_server}/flywheel/api/apps/{APP}/alerts")
    assert status == 200 and [f["rule"] for f in json.loads(body)["firing"]] == ["latency_p95"]


def test_page_renders_in_chromium(api_server: str, chromium: str, tmp_path: Path) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page_url = f"{api_server}/flywheel/"
    dom = _chrome(chromium, tmp_path / "profile", "--dump-dom", page_url)
    assert dom.count("<svg") >= 5 and 'class="ci-band"' in dom
    assert '<table class="firing-now">' in dom and ">latency_p95<" in dom.split('<table class="firing-now">')[1]
    assert f">{BUDGET_SKIPPED_PER_INTERVAL * len(BUDGET_INTERVALS)} <small>" in dom  # judge budget card
    assert f"No metrics yet for {EMPTY_APP}" in dom
    assert "<script" not in dom.lower()

    shot = OUTPUT / "genai_quality_page.png"
    shot.unlink(missing_ok=True)
    _chrome(chromium, tmp_path / "profile", f"--screenshot={shot}", page_url)
    assert shot.is_file() and shot.stat().st_size > 20_000
    print(f"\nscreenshot of the GenAI Quality page: {shot}")


def test_airflow_ui_embeds_the_page(api_server: str, chromium: str, tmp_path: Path) -> None:
    OUTPUT.mkdir(exist_ok=True)
    ui_url = f"{api_server}/plugin/genai-quality"
    dom = _chrome(chromium, tmp_path / "profile", "--dump-dom", ui_url, budget_ms=BUDGET_MS)
    assert "<iframe" in dom and 'src="/flywheel/"' in dom, dom[-2000:]
    shot = OUTPUT / "genai_quality_in_airflow.png"
    shot.unlink(missing_ok=True)
    _chrome(chromium, tmp_path / "profile", f"--screenshot={shot}", ui_url, budget_ms=BUDGET_MS)
    assert shot.is_file() and shot.stat().st_size > 20_000
    print(f"\nscreenshot of the page inside the Airflow UI: {shot}")
