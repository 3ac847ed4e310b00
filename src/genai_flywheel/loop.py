"""The use cases of the improvement loop's DAGs: curation, development evaluation, fine-tuning export.

Like :mod:`genai_flywheel.pipeline`, each Airflow task makes one call here with plain values and gets a
small JSON-able dict back. A DAG run works in its own folder under the data root, named after the Airflow
run id, so a retried or cleared task finds the files of the stages before it, and two runs never mix::

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
from genai_flywheel.exceptions import ConfigError
from genai_flywheel.workspace import to_ms, to_utc

if TYPE_CHECKING:
    from genai_flywheel.scoring.judges import JudgeEndpoint

CURATION_STAGES = ("extract", "select", "build", "validate", "merge", "publish")
EVALUATION_STAGES = ("load", "run_candidate", "compare", "log", "gate")
EXPORT_STAGES = ("select", "build", "log")


def run_folder(data_root: Path, kind: str, app: str, run_id: str) -> Path:
    """The working folder of one DAG run (the run id made safe as a folder name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_") or "run"
    return Path(data_root) / kind / f"app={app}" / safe


def _setup(app_name: str, config: FlywheelConfig | None) -> tuple[FlywheelConfig, Application]:
    cfg = config or load_config()
    return cfg, cfg.app(app_name)


def _check(stage: str, stages: tuple[str, ...], kind: str) -> None:
    if stage not in stages:
        raise ConfigError(f"unknown {kind} stage {stage!r}; stages are {', '.join(stages)}")


def curation(
    stage: str,
    app_name: str,
    run_id: str,
    *,
    end: datetime | str | None = None,
    lookback_days: int | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """One stage of the curation DAG: extract -> select -> build -> validate -> merge -> publish.

    ``end`` closes the lookback window ``[end - lookback_days, end)`` (default: the config's
    ``curation.lookback_days``).
    """
    from genai_flywheel.curation import stages as st

    _check(stage, CURATION_STAGES, "curation")
    cfg, app = _setup(app_name, config)
    run_dir = run_folder(cfg.data_path(), "curation", app.name, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    if stage == "extract":
        if end is None:
            raise ValueError("the curation extract stage needs the window end (the DAG run's data_interval_end)")
        end_ms = to_ms(end)
        days = lookback_days or app.curation.lookback_days
        start_ms = to_ms(to_utc(end) - timedelta(days=days))
        return st.extract_stage(run_dir, app, interval_end_ms=end_ms, interval_start_ms=start_ms)
    if stage == "select":
        return st.select_stage(run_dir, app)
    if stage == "build":
        return st.build_stage(run_dir, app, airflow_run_id=run_id)
    if stage == "validate":
        return st.validate_stage(run_dir, max_bad_fraction=app.contract.max_bad_fraction)
    if stage == "merge":
        return st.merge_stage(run_dir, app, data_root=cfg.data_path(), airflow_run_id=run_id)
    return st.publish_stage(run_dir)


def default_dataset(app: Application) -> str:
    """The name of the dataset the curation DAG maintains for ``app``."""
    from genai_flywheel.curation.datasets import dataset_name
    from genai_flywheel.curation.stages import ruleset_name

    return dataset_name(app.curation.dataset_prefix, app.name, ruleset_name(app))


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
    out = {k: v for k, v in dict(params or {}).items() if v not in (None, "")}
    if not out.get("dataset") and not out.get("filter"):
        extra = dict(asset_extra or {})
        out["dataset"] = extra.get("dataset") or default_dataset(app)
        if extra.get("version") and extra.get("dataset") == out["dataset"]:
            out["dataset_version"] = int(extra["version"])
    return out


def evaluation(
    stage: str,
    app_name: str,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    judge: JudgeEndpoint | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """One stage of the development evaluation DAG: load -> run_candidate -> compare -> log -> gate.

    ``gate`` raises GateFailedError when a declared threshold is not met (the task fails; the summary,
    the comparison and the MLflow run are already written for the operator to read).
    """
    from genai_flywheel.evaluation import stages as st

    _check(stage, EVALUATION_STAGES, "evaluation")
    cfg, app = _setup(app_name, config)
    run_dir = run_folder(cfg.data_path(), "evaluations", app.name, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    if stage == "load":
        return st.load_stage(run_dir, app, params, data_root=cfg.data_path())
    if stage == "run_candidate":
        return st.run_candidate_stage(run_dir, app, judge=judge)
    if stage == "compare":
        return st.compare_stage(run_dir)
    if stage == "log":
        return st.log_stage(run_dir, app)
    return st.gate_stage(run_dir, app, enforce=True)


def export(
    stage: str,
    app_name: str,
    run_id: str,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    params: Mapping[str, Any] | None = None,
    config: FlywheelConfig | None = None,
) -> dict[str, Any]:
    """One stage of the fine-tuning export DAG: select -> build -> log, over the window [start, end)."""
    from genai_flywheel.export import stages as st

    _check(stage, EXPORT_STAGES, "export")
    cfg, app = _setup(app_name, config)
    run_dir = run_folder(cfg.data_path(), "exports", app.name, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    if stage == "select":
        if start is None or end is None:
            raise ValueError("the export select stage needs the window (data_interval_start/_end)")
        clean = {k: v for k, v in dict(params or {}).items() if v not in (None, "")}
        return st.select_examples(run_dir, app, start_ms=to_ms(start), end_ms=to_ms(end), params=clean)
    if stage == "build":
        return st.build_jsonl(run_dir, app)
    return st.log_export(run_dir, app)
