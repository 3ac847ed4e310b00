"""The review stages: their inputs and outputs are files of a run folder, their MLflow side a ReviewBackend.

=====================  ==============================================  =============================
stage                  reads                                           writes
=====================  ==============================================  =============================
``enqueue_stage``      a curation run's ``traces.parquet`` and          MLflow label schemas and review
                       ``selected.parquet``                             queue items, ``review_queue.json``
``collect_stage``      MLflow: items completed in the interval, their   the labels partition, the
                       assessments; the curation runs'                  ``calibration.*`` metrics partition
                       ``review_queue.json`` (which items are the       (``review/metrics/...``),
                       calibration sample); the window's labels         ``disagreements.json``
                       partitions
=====================  ==============================================  =============================
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.review.queue import QUEUE_FILE, enqueue
from genai_flywheel.review.schemas import ensure_schemas
from genai_flywheel.workspace import atomic_write_json, read_stage_json, read_stage_parquet

if TYPE_CHECKING:
    from genai_flywheel.config import Application
    from genai_flywheel.review.backend import ReviewBackend

log = logging.getLogger(__name__)

DISAGREEMENTS_FILE = "disagreements.json"
REVIEW_ROOT = "review"  # under the data root: labels/, metrics/ (a MetricsStore), alerts/


def calibration_store_root(data_root: Path) -> Path:
    """The root of the calibration metrics' :class:`~genai_flywheel.metrics.store.MetricsStore` (and of their
    alert state), beside the monitor's: ``<data root>/review``."""
    return Path(data_root) / REVIEW_ROOT


def mlflow_backend(app: Application) -> ReviewBackend:
    """The application's experiment in its MLflow tracking store."""
    from genai_flywheel.review.backend import MlflowReviewBackend
    from genai_flywheel.traces.extract import get_experiment_id

    return MlflowReviewBackend(
        app.mlflow.tracking_uri, get_experiment_id(app.mlflow.tracking_uri, app.mlflow.experiment)
    )


def check_queue_rules(app: Application) -> None:
    """Every rule a queue names must be one the curation run applies (the configured or default rules)."""
    from genai_flywheel.curation.rules import effective_rules

    known = {r.name for r in effective_rules(app)}
    for queue in app.review.queues:
        unknown = sorted(set(queue.rules) - known)
        if unknown:
            raise ConfigError(
                f"review.queues.{queue.name}.rules: unknown curation rule(s) {unknown}; the curation run "
                f"applies {sorted(known)}"
            )


def enqueue_stage(curation_dir: Path, app: Application, backend: ReviewBackend) -> dict[str, Any]:
    """Send the traces a curation run found to the application's review queues (see
    :mod:`genai_flywheel.review.queue`); ``review_queue.json`` in the run folder records what was added."""
    from genai_flywheel.curation.stages import SELECTED_FILE, TRACES_FILE

    if not app.review.queues:
        return {"queues": [], "added": 0}
    check_queue_rules(app)
    # Strata filters may read any trace column; without strata two columns are enough.
    columns = None if app.sampling.strata else ["trace_id", "assessments"]
    traces = read_stage_parquet(curation_dir / TRACES_FILE, "curation extract", columns=columns)
    selected = read_stage_parquet(curation_dir / SELECTED_FILE, "curation select", columns=["trace_id", "rule"])
    plan_path = curation_dir / QUEUE_FILE
    if plan_path.is_file():  # a retry or re-run: the plan is made once per curation run
        return _replay(backend, read_stage_json(plan_path, "enqueue_review"), plan_path)
    needed = sorted({s for q in app.review.queues for s in q.schemas})
    schema_ids = ensure_schemas(backend, app.review, needed)
    results = [
        enqueue(
            backend,
            app.name,
            queue,
            [schema_ids[s] for s in queue.schemas],
            selected=selected,
            traces=traces,
            sampling=app.sampling,
            add=False,
        )
        for queue in app.review.queues
    ]
    plan = {
        "queues": [r.summary() for r in results],
        "added": sum(len(r.added) for r in results),
        "items": [row for r in results for row in r.rows()],
    }
    atomic_write_json(plan, plan_path)  # before adding: a retry re-adds exactly these items
    for result in results:
        backend.add_items(result.queue_id, [c.trace_id for c in result.added])
    return {"queues": plan["queues"], "added": plan["added"], "path": str(plan_path)}


def _replay(backend: ReviewBackend, plan: dict[str, Any], plan_path: Path) -> dict[str, Any]:
    """Attach the items of an earlier plan that are not attached yet; ``added`` counts only those."""
    added = 0
    for queue in plan["queues"]:
        attached = {i.trace_id for i in backend.queue_items(queue["queue_id"])}
        missing = [i["trace_id"] for i in plan["items"] if i["queue_id"] == queue["queue_id"]]
        missing = [t for t in missing if t not in attached]
        backend.add_items(queue["queue_id"], missing)
        added += len(missing)
    log.info("review plan %s replayed: %d item(s) were not attached yet", plan_path, added)
    return {"queues": plan["queues"], "added": added, "path": str(plan_path), "replayed": True}


def collect_stage(
    app: Application,
    backend: ReviewBackend,
    *,
    data_root: Path,
    run_dir: Path,
    interval_start: datetime,
    interval_end: datetime,
) -> dict[str, Any]:
    """Collect the review items completed in ``[interval_start, interval_end)`` and measure each scorer's
    agreement with the reviewers over the interval and over the rolling ``review.window_days``.

    Writes the labels partition, the ``calibration.*`` metrics partition (replaced whole on a re-run) and
    ``disagreements.json`` (the window's traces where a scorer contradicts a reviewer); evaluates the alert
    rules on ``calibration.*`` metrics and returns their notifications.
    """
    from genai_flywheel.alerts import process_interval
    from genai_flywheel.metric_names import is_review_metric
    from genai_flywheel.metrics.store import MetricsStore
    from genai_flywheel.review.calibration import calibration_metrics, disagreements
    from genai_flywheel.review.labels import LabelStore, collect_labels, queue_origins
    from genai_flywheel.workspace import to_ms

    origins = queue_origins(data_root, app.name)  # which items are the weighted calibration sample
    rows = collect_labels(backend, app, to_ms(interval_start), to_ms(interval_end), origins)
    labels = LabelStore(data_root)
    labels_path = labels.write(app.name, interval_start, rows)
    window = labels.read(app.name, interval_end - timedelta(days=app.review.window_days), interval_end)
    metrics = calibration_metrics(app, rows, window, interval_start, interval_end)
    root = calibration_store_root(data_root)
    metrics_path = MetricsStore(root).write_partition(metrics)
    disagreeing = disagreements(app, window)
    atomic_write_json({"window_days": app.review.window_days, "traces": disagreeing}, run_dir / DISAGREEMENTS_FILE)
    rules = [r for r in app.alerts if is_review_metric(r.metric)]
    notifications = []
    if rules:
        notifications = process_interval(
            root,
            app.name,
            metrics,
            rules,
            interval_start,
            interval_end,
            timedelta(hours=app.notify.renotify_after_hours),
        )
    return {
        "labels": len(rows),
        "sample_labels": sum(1 for r in rows if r.sampled),
        "window_labels": len(window),
        "corrections": sum(1 for r in rows if r.correction),
        "labels_path": str(labels_path),
        "metrics_path": str(metrics_path),
        "metrics": {r["metric"]: r["value"] for r in metrics.to_pylist()},
        "disagreements": len(disagreeing),
        "notifications": [n.to_dict() for n in notifications],
    }
