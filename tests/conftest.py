"""Shared fixtures. Tests are marked by tier from their folder: unit/, dags/, integration/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


@pytest.fixture
def sqlite_tracking_uri(tmp_path: Path) -> str:
    """A fresh MLflow SQLite tracking store in the test's temp folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
