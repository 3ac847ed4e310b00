"""Integration fixtures: a migrated Airflow metadata DB, simulated production traffic in a real MLflow
SQLite store, and a flywheel.yaml pointing at it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SIM_END = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """``airflow db migrate`` once per session into the private AIRFLOW_HOME set by tests/conftest.py."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        capture_output=True,
    )


@pytest.fixture(scope="session")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two days of simulated production traffic in a SQLite MLflow store: day 1 holds the error spike
    and the latency regression, day 2 the Smart Sync wrong answers."""
    from flywheel_demo.simulate import simulate

    base = tmp_path_factory.mktemp("production")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    result = simulate(
        uri,
        "support-prod",
        days=2,
        traces_per_day=300,
        end=SIM_END,
        seed=11,
        ground_truth_path=base / "truth.json",
        progress=False,
    )
    return {"uri": uri, "result": result, "base": base}


def write_config(path: Path, tracking_uri: str, data_root: Path, **overrides) -> Path:
    """A flywheel.yaml for the simulated app: code scorers only, 6-hour intervals, the demo's alerts."""
    cfg = yaml.safe_load((ROOT / "flywheel.yaml").read_text())
    app = cfg["applications"][0]
    app["mlflow"] = {"tracking_uri": tracking_uri, "experiment": "support-prod"}
    app["scorers"] = [s for s in app["scorers"] if s["name"] != "relevance_to_query"]
    # The tests' windows are small: the repository's min_traces would read every trace of them, and the
    # tests assert what the configured rate samples (test_monitor_min_traces.py covers min_traces).
    app["sampling"]["min_traces"] = 0
    app.update(overrides)
    cfg["data_root"] = str(data_root)
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def flywheel_env(tmp_path: Path, production: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """FLYWHEEL_CONFIG / FLYWHEEL_DATA_ROOT for one test, pointing at the simulated store."""
    data_root = tmp_path / "data"
    cfg = write_config(tmp_path / "flywheel.yaml", production["uri"], data_root)
    monkeypatch.setenv("FLYWHEEL_CONFIG", str(cfg))
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(data_root))
    try:
        from flywheel_airflow.settings import flywheel_config

        flywheel_config.cache_clear()
    except ImportError:
        pass
    return {"config": cfg, "data_root": data_root, **production}
