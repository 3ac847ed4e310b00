"""The headline numbers of every interval as metrics of one MLflow run per application, so they chart in
the MLflow UI next to the traces.

Each interval is logged at ``step`` = minutes since the epoch of its start and ``timestamp`` = its start, so
the chart's x axis is the interval, not the wall clock of whenever it was (re)computed. MLflow keeps each
(key, value, step, timestamp) once, so re-logging an unchanged interval adds nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa

from genai_flywheel.config import Application

log = logging.getLogger(__name__)

MONITOR_TAG = "flywheel.monitor_app"


def monitoring_run_id(app: Application) -> str:
    """The app's monitoring run in its experiment, created on first use.

    Two intervals running at once may both create one; every caller then settles on the oldest, and the
    younger duplicate is deleted, so the app keeps exactly one.
    """
    from mlflow import MlflowClient

    from genai_flywheel.traces.extract import get_experiment_id

    client = MlflowClient(tracking_uri=app.mlflow.tracking_uri)
    exp_id = get_experiment_id(app.mlflow.tracking_uri, app.mlflow.experiment, create=True)
    query = f"tags.`{MONITOR_TAG}` = '{app.name}'"

    def _runs() -> list:
        return client.search_runs([exp_id], filter_string=query, order_by=["attributes.start_time ASC"])

    runs = _runs()
    if not runs:
        run = client.create_run(
            exp_id,
            run_name=f"flywheel-monitor-{app.name}",
            tags={
                MONITOR_TAG: app.name,
                "mlflow.note.content": f"Headline production metrics of {app.name}, one step per interval.",
            },
        )
        # A finished run still takes metrics; left RUNNING it would look like a hung job in the UI.
        client.set_terminated(run.info.run_id)
        runs = _runs()
    keep, *extra = sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))
    for dup in extra:
        try:
            client.delete_run(dup.info.run_id)
        except Exception:  # another task deleted it first
            log.debug("duplicate monitoring run %s already gone", dup.info.run_id)
    return keep.info.run_id


def log_interval_metrics(app: Application, interval_start: datetime, metrics: pa.Table, names: Iterable[str]) -> str:
    """Log the chosen metrics (and every ``scorer.*.pass_rate``/``mean``) of one interval."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    wanted = set(names)
    step = int(interval_start.timestamp() // 60)
    ts = int(interval_start.timestamp() * 1000)
    batch = []
    for row in metrics.select(["metric", "value"]).to_pylist():
        name, value = row["metric"], row["value"]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if name in wanted or name.endswith((".pass_rate", ".mean", ".positive_rate")):
            batch.append(Metric(key=name, value=float(value), timestamp=ts, step=step))
    run_id = monitoring_run_id(app)
    client = MlflowClient(tracking_uri=app.mlflow.tracking_uri)
    for i in range(0, len(batch), 1000):
        client.log_batch(run_id, metrics=batch[i : i + 1000])
    return run_id
