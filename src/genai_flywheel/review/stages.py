"""The review stages: their inputs and outputs are files of a run folder, their MLflow side a ReviewBackend.

=====================  ==============================================  =============================
stage                  reads                                           writes
=====================  ==============================================  =============================
``enqueue_stage``      a curation run's ``traces.parquet`` and          MLflow label schemas and review
                       ``selected.parquet``                             queue items, ``review_queue.json``
=====================  ==============================================  =============================
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.metrics.store import atomic_write_json, read_stage_parquet
from genai_flywheel.review.queue import enqueue
from genai_flywheel.review.schemas import ensure_schemas

if TYPE_CHECKING:
    from genai_flywheel.config import Application
    from genai_flywheel.review.backend import ReviewBackend

log = logging.getLogger(__name__)

QUEUE_FILE = "review_queue.json"


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
        )
        for queue in app.review.queues
    ]
    summary = {
        "queues": [r.summary() for r in results],
        "added": sum(len(r.added) for r in results),
        "items": [row for r in results for row in r.rows()],
    }
    atomic_write_json(summary, curation_dir / QUEUE_FILE)
    return {"queues": summary["queues"], "added": summary["added"], "path": str(curation_dir / QUEUE_FILE)}
