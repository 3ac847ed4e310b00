"""Shared fixtures. Tests are marked by tier from their folder: unit/, dags/, integration/."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.stubs.openai_stub"]  # the `openai_stub` fixture: an OpenAI-compatible judge

# Airflow reads its configuration once, at import: point it at a private home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="flywheel-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_AIRFLOW_HOME / "logs"),
    }
)
os.environ.setdefault("FLYWHEEL_CONFIG", str(ROOT / "flywheel.yaml"))
os.environ.setdefault("FLYWHEEL_DATA_ROOT", str(_AIRFLOW_HOME / "data"))
if str(ROOT / "plugins") not in sys.path:  # what Airflow's plugin loader does for DAG files
    sys.path.insert(0, str(ROOT / "plugins"))

# Keep MLflow quiet and local: no telemetry, no prompts, no network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

_TIERS = {"unit": "unit", "dags": "dags", "integration": "integration"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests")
        tier = _TIERS.get(rel.parts[0])
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session", autouse=True)
def _private_working_directory(tmp_path_factory: pytest.TempPathFactory):
    """Run in a scratch folder: MLflow puts a SQLite store's artifacts under ./mlruns by default."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays code under test sleeps (tenacity's retries included), recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def sqlite_tracking_uri(tmp_path: Path) -> str:
    """A fresh MLflow SQLite tracking store in the test's temp folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
