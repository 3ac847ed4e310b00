"""What every flywheel DAG shares: the configuration, default task arguments, tags."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any

from flywheel_airflow.notifiers import TaskFailureNotifier
from genai_flywheel.config import Application, FlywheelConfig, load_config

log = logging.getLogger(__name__)

# Every task that talks to MLflow retries with backoff: a restarted tracking server or a locked SQLite
# file must cost a retry, not a failed interval.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "genai-flywheel",
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


def default_args(app: Application) -> dict[str, Any]:
    """The default task arguments of ``app``'s DAGs: :data:`DEFAULT_ARGS` and an ``on_failure_callback``
    that sends "task failed" (DAG, task, run, try number, log URL) through the app's ``notify:`` channels."""
    notifier = TaskFailureNotifier(app.name, **TaskFailureNotifier.channels(app.notify))
    return {**DEFAULT_ARGS, "on_failure_callback": notifier}


@lru_cache(maxsize=1)
def flywheel_config() -> FlywheelConfig:
    """The validated configuration (``$FLYWHEEL_CONFIG``), read once per process."""
    return load_config()


def dag_tags(stage: str, app: str) -> list[str]:
    return ["genai-flywheel", stage, f"app:{app}"]


def dataset_asset(app_name: str):  # returns an airflow.sdk.Asset, imported lazily with the SDK
    """The Asset the curation DAG updates and the evaluation DAG is scheduled on."""
    from airflow.sdk import Asset

    return Asset(f"flywheel://datasets/{app_name}", extra={"app": app_name})


def metrics_asset(app_name: str):
    """The Asset the monitor's store task updates (one event per stored interval)."""
    from airflow.sdk import Asset

    return Asset(f"flywheel://metrics/{app_name}", extra={"app": app_name})
