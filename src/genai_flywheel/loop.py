"""The use cases of the improvement loop's DAGs: curation, development evaluation, fine-tuning export.

Like :mod:`genai_flywheel.pipeline`, one function per stage (``curate_*``, ``evaluate_*``, ``export_*``):
each Airflow task makes one call here with plain values and gets a small JSON-able dict of paths and
counts back, never data or secrets. A DAG run works in its own folder under the data root, named after
the Airflow run id, so a retried or cleared task finds the files of the stages before it, and two runs
never mix::

    curation/app=<app>/<run>/      traces, selection, records, quarantine, merge result
    evaluations/app=<app>/<run>/   params, records, candidate outputs, comparison, summary, gate
    exports/app=<app>/<run>/       examples, train/validation JSONL, rejected, manifest
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.config import Application, FlywheelConfig, load_config
from genai_flywheel.workspace import to_ms, to_utc

if TYPE_CHECKING:
    from genai_flywheel.review.backend import ReviewBackend
    from genai_flywheel.scoring.judges import JudgeEndpoint


def run_folder(data_root: Path, kind: str, app: str, run_id: str) -> Path:
    """The working folder of one DAG run (the run id made safe as a folder name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_") or "run"
    return Path(data_root) / kind / f"app={app}" / safe


def _setup(app_name: str, config: FlywheelConfig | None) -> tuple[FlywheelConfig, Application]:
    cfg = config or load_config()
    return cfg, cfg.app(app_name)


def _run(
    kind: str, app_name: str, run_id: str, config: FlywheelConfig | None
) -> tuple[FlywheelConfig, Application, Path]:
    """The configuration, the application and the folder (created) of one ``kind`` DAG run."""
    cfg, app = _setup(app_name, config)
    run_dir = run_folder(cfg.data_path(), kind, app.name, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    return cfg, app, run_dir


def _blank_dropped(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` without the keys left empty (an unset DAG param means "the application's default")."""
    return {k: v for k, v in dict(params or {}).items() if v not in (None, "")}


# --- curation: extract -> select -> build -> validate -> merge -> publish ------------------------------


def curate_extract(
    app_name: str,
    run_id: str,
    *,
    interval_end: datetime | str | None,
    window_end: datetime | str | None = None,
    lookback_days: int | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """Stage 1: the traces of the lookback window ``[end - lookback_days, end)`` into ``traces.parquet``.

    ``end`` is ``window_end`` when given (a run on demand), else the DAG run's ``interval_end``;
    ``lookback_days`` defaults to the application's ``curation.lookback_days``.
    """
    from genai_flywheel.curation.stages import extract_stage

    end = window_end or interval_end
    if end is None:
        raise ValueError("the curation extract stage needs the window end (the DAG run's data_interval_end)")
    _, app, run_dir = _run("curation", app_name, run_id, config)
    days = lookback_days or app.curation.lookback_days
    start_ms = to_ms(to_utc(end) - timedelta(days=days))
    return extract_stage(run_dir, app, interval_end_ms=to_ms(end), interval_start_ms=start_ms)


def curate_select(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 2: apply the curation rules to the extracted traces; counts per rule and the clusters found."""
    from functools import partial

    from genai_flywheel.curation.stages import select_stage
    from genai_flywheel.segments.alerted import segment_alert_masks

    cfg, app, run_dir = _run("curation", app_name, run_id, config)
    return select_stage(run_dir, app, partial(segment_alert_masks, app, cfg.data_path()))


def curate_build(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 3: the selected traces become evaluation records with lineage to their traces."""
    from genai_flywheel.curation.stages import build_stage

    _, app, run_dir = _run("curation", app_name, run_id, config)
    return build_stage(run_dir, app, airflow_run_id=run_id)


def curate_validate(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 4: the records' data contract; bad records are quarantined, too many fail the stage."""
    from genai_flywheel.curation.stages import validate_stage

    _, app, run_dir = _run("curation", app_name, run_id, config)
    return validate_stage(run_dir, max_bad_fraction=app.contract.max_bad_fraction)


def curate_merge(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 5: merge the valid records into the next version of the application's dataset (snapshot and
    MLflow dataset); an unchanged record set keeps the current version."""
    from genai_flywheel.curation.stages import merge_stage

    cfg, app, run_dir = _run("curation", app_name, run_id, config)
    return merge_stage(run_dir, app, data_root=cfg.data_path(), airflow_run_id=run_id)


def curate_publish(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 6: the dataset Asset event's extra (dataset, version, digest, record counts per rule)."""
    from genai_flywheel.curation.stages import publish_stage

    _, _, run_dir = _run("curation", app_name, run_id, config)
    return publish_stage(run_dir)


def default_dataset(app: Application) -> str:
    """The name of the dataset the curation DAG maintains for ``app``."""
    from genai_flywheel.curation.datasets import dataset_name
    from genai_flywheel.curation.stages import ruleset_name

    return dataset_name(app.curation.dataset_prefix, app.name, ruleset_name(app))


# --- development evaluation: load -> run_candidate -> compare -> log -> gate ---------------------------


def evaluation_params(
    app_name: str,
    params: Mapping[str, Any] | None,
    asset_extra: Mapping[str, Any] | None = None,
    *,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """The evaluation's params: the DAG params, with the dataset (and version) of the curation Asset event
    that triggered the run when the params name none, else the app's curated dataset, newest version."""
    _, app = _setup(app_name, config)
    out = _blank_dropped(params)
    if not out.get("dataset") and not out.get("filter"):
        extra = dict(asset_extra or {})
        out["dataset"] = extra.get("dataset") or default_dataset(app)
        if extra.get("version") and extra.get("dataset") == out["dataset"]:
            out["dataset_version"] = int(extra["version"])
    return out


def evaluate_load(
    app_name: str,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    asset_extra: Mapping[str, Any] | None = None,
    interval_end: datetime | str | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """Stage 1: resolve the params (:func:`evaluation_params`) and load the records into ``records.parquet``.

    ``asset_extra`` is the extra of the curation Asset event that triggered the run, if any. An ad-hoc
    evaluation (a ``filter`` param) reads the production traces of the lookback window ending at the DAG
    run's ``interval_end``; a ``window_end_ms`` in the params is ignored, so a run's conf cannot move it.
    """
    from genai_flywheel.evaluation.stages import load_stage

    cfg, app, run_dir = _run("evaluations", app_name, run_id, config)
    resolved = evaluation_params(app.name, {**dict(params or {}), "window_end_ms": None}, asset_extra, config=cfg)
    if resolved.get("filter"):
        if interval_end is None:
            raise ValueError("an ad-hoc evaluation (a 'filter' param) needs the window end (data_interval_end)")
        resolved["window_end_ms"] = to_ms(interval_end)
    return load_stage(run_dir, app, resolved, data_root=cfg.data_path())


def evaluate_run_candidate(
    app_name: str, run_id: str, *, judge: JudgeEndpoint | None = None, config: FlywheelConfig | None = None
) -> dict[str, Any]:
    """Stage 2: run the candidate on every record and score candidate and production outputs (LLM judges
    through ``judge`` when configured)."""
    from genai_flywheel.evaluation.stages import run_candidate_stage

    _, app, run_dir = _run("evaluations", app_name, run_id, config)
    return run_candidate_stage(run_dir, app, judge=judge)


def evaluate_compare(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 3: candidate vs production per scorer (and per curation rule): wins/losses, mean difference
    with its CI, paired test; ``summary.json`` and ``summary.md``."""
    from genai_flywheel.evaluation.stages import compare_stage

    _, _, run_dir = _run("evaluations", app_name, run_id, config)
    return compare_stage(run_dir)


def evaluate_log(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 4: log the comparison to an MLflow run of the application's development-evaluation experiment."""
    from genai_flywheel.evaluation.stages import log_stage

    _, app, run_dir = _run("evaluations", app_name, run_id, config)
    return log_stage(run_dir, app)


def evaluate_gate(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 5: check the gate thresholds; raises GateFailedError when one is not met (the summary, the
    comparison and the MLflow run are already written for the operator to read)."""
    from genai_flywheel.evaluation.stages import gate_stage

    _, app, run_dir = _run("evaluations", app_name, run_id, config)
    return gate_stage(run_dir, app, enforce=True)


# --- fine-tuning export: select -> build -> log --------------------------------------------------------


def export_select(
    app_name: str,
    run_id: str,
    *,
    interval_start: datetime | str | None,
    interval_end: datetime | str | None,
    window_start: datetime | str | None = None,
    window_end: datetime | str | None = None,
    params: Mapping[str, Any] | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """Stage 1: the export candidates of the window into ``examples.parquet``.

    The window is ``[window_start, window_end)`` where given (a run on demand), else the DAG run's
    interval; ``params`` are the export params (``filter``, ``min_score``, ...; empty ones take the
    application's defaults).
    """
    from genai_flywheel.export.stages import select_examples

    start, end = window_start or interval_start, window_end or interval_end
    if start is None or end is None:
        raise ValueError("the export select stage needs the window (data_interval_start/_end)")
    _, app, run_dir = _run("exports", app_name, run_id, config)
    return select_examples(run_dir, app, start_ms=to_ms(start), end_ms=to_ms(end), params=_blank_dropped(params))


def export_build(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 2: chat-format JSONL (PII redacted, deduplicated, split train/validation) and the manifest."""
    from genai_flywheel.export.stages import build_jsonl

    _, app, run_dir = _run("exports", app_name, run_id, config)
    return build_jsonl(run_dir, app)


def export_log(app_name: str, run_id: str, *, config: FlywheelConfig | None = None) -> dict[str, Any]:
    """Stage 3: log the export files and counts to an MLflow run."""
    from genai_flywheel.export.stages import log_export

    _, app, run_dir = _run("exports", app_name, run_id, config)
    return log_export(run_dir, app)


# --- human review: enqueue (after curation select) ----------------------------------------------------


def review_enqueue(
    app_name: str, run_id: str, *, backend: ReviewBackend | None = None, config: FlywheelConfig | None = None
) -> dict[str, Any]:
    """Send the traces the curation run ``run_id`` selected (and a calibration sample of its window) to the
    application's MLflow review queues; idempotent, at most each queue's ``cap`` new items per run."""
    from genai_flywheel.review.stages import enqueue_stage, mlflow_backend

    _, app, run_dir = _run("curation", app_name, run_id, config)
    return enqueue_stage(run_dir, app, backend or mlflow_backend(app))


def review_collect(
    app_name: str,
    run_id: str,
    *,
    interval_start: datetime | str | None,
    interval_end: datetime | str | None,
    backend: ReviewBackend | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """Collect the reviews completed in the interval and store the ``calibration.<scorer>.*`` metrics of the
    interval and the rolling window; returns counts, the metric values and the calibration alerts' notifications.

    A run on demand has no data interval: it collects from the ``review.schedule`` tick before
    ``interval_end`` (given as the run's ``interval_end`` param) up to it.
    """
    from croniter import croniter

    from genai_flywheel.review.stages import collect_stage, mlflow_backend

    if interval_end is None:
        raise ValueError(
            "the review collect stage needs the interval end (data_interval_end or the interval_end param)"
        )
    cfg, app, run_dir = _run("review", app_name, run_id, config)
    end = to_utc(interval_end)
    start = (
        to_utc(interval_start) if interval_start is not None else croniter(app.review.schedule, end).get_prev(datetime)
    )
    return collect_stage(
        app,
        backend or mlflow_backend(app),
        data_root=cfg.data_path(),
        run_dir=run_dir,
        interval_start=start,
        interval_end=end,
    )
