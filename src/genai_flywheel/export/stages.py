"""The fine-tuning export DAG's stages: each one call, reading and writing files under one run folder.

====================  ==========================================  ============================================
stage                 reads                                       writes (under ``run_dir``)
====================  ==========================================  ============================================
``select_examples``   the app's production traces of the window   ``examples.parquet``, ``selection.json``
``build_jsonl``       ``examples.parquet``, ``selection.json``    ``train.jsonl``, ``validation.jsonl``,
                                                                  ``rejected.jsonl``, ``manifest.json``
``log_export``        the above                                   an MLflow run
                                                                  ``finetune-export-<app>-<date>`` with the
                                                                  files as artifacts, ``logged.json``
====================  ==========================================  ============================================

``examples.parquet`` holds raw (unredacted) text and stays under the data root; only the redacted JSONL files
and the manifest leave it (to MLflow). Params (JSON-able, validated by :class:`ExportParams`): ``filter`` (an
extra selection filter), ``min_score`` (default ``export.min_score``), ``quality_scorers``, ``max_chars``,
``seed`` and ``experiment`` (default: the app's experiment; the run holds files only, no traces).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genai_flywheel.config import Application
from genai_flywheel.exceptions import ConfigError, DataContractError, StoreError
from genai_flywheel.export.finetune import (
    DEFAULT_MAX_CHARS,
    DEFAULT_QUALITY_SCORERS,
    BuildOptions,
    SelectionOptions,
    build_examples,
    examples_schema,
    jsonl_text,
    select_from_traces,
    validate_chat_jsonl,
)
from genai_flywheel.export.pii import Redactor
from genai_flywheel.workspace import (
    atomic_write_json as _write_json,
    atomic_write_text as _write_text,
    read_stage_json as _read_json,
)

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

EXAMPLES_FILE = "examples.parquet"
SELECTION_FILE = "selection.json"
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
REJECTED_FILE = "rejected.jsonl"
MANIFEST_FILE = "manifest.json"
LOGGED_FILE = "logged.json"
MANIFEST_SCHEMA_VERSION = 1
FORMAT = "openai-chat-finetune"
TAG_PREFIX = "flywheel."


class ExportParams(BaseModel):
    """The export DAG's params; None means "take the application's default"."""

    model_config = ConfigDict(extra="forbid")

    filter: str | None = Field(default=None, description="Extra selection filter on the window's traces")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    quality_scorers: list[str] = Field(default_factory=lambda: list(DEFAULT_QUALITY_SCORERS), min_length=1)
    max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=100, le=10_000_000)
    seed: str = Field(default="flywheel", min_length=1, max_length=64, description="Split hash salt")
    experiment: str | None = None

    @field_validator("filter", "experiment", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def _params(params: Mapping[str, Any] | None) -> ExportParams:
    try:
        return ExportParams.model_validate(dict(params or {}))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"export params are invalid: {problems}") from None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def select_examples(
    run_dir: Path,
    app: Application,
    *,
    start_ms: int,
    end_ms: int,
    params: Mapping[str, Any] | None = None,
    traces: pa.Table | None = None,
) -> dict[str, Any]:
    """Select the window's export candidates into ``examples.parquet`` (raw) and ``selection.json``.

    ``traces`` (a ``TRACE_SCHEMA`` table) replaces reading the window from MLflow, e.g. in tests.
    """
    import pyarrow as pa

    from genai_flywheel.selection import compile_filter

    run_dir = Path(run_dir)
    p = _params(params)
    compiled = compile_filter(p.filter)  # a syntax error fails before MLflow is read
    if traces is None:
        from genai_flywheel.traces.extract import extract_window

        traces = extract_window(
            app.mlflow.tracking_uri,
            app.mlflow.experiment,
            int(start_ms),
            int(end_ms),
            app=app.name,
            filter_string=compiled.pushdown,
        )
        mask = compiled.residual_mask(traces)
    else:
        mask = compiled.mask(traces)
    matched = traces.filter(pa.array(mask, pa.bool_()))
    wanted = (
        "trace_id",
        "timestamp_ms",
        "status",
        "request",
        "response",
        "query",
        "answer",
        "tags",
        "assessments",
    )
    columns = [c for c in wanted if c in matched.column_names]
    min_score = p.min_score if p.min_score is not None else app.export.min_score
    options = SelectionOptions(min_score=min_score, quality_scorers=tuple(p.quality_scorers))
    selected, skipped = select_from_traces(matched.select(columns).to_pylist(), options)
    from genai_flywheel.workspace import atomic_write_parquet

    path = atomic_write_parquet(pa.Table.from_pylist(selected, schema=examples_schema()), run_dir / EXAMPLES_FILE)
    by_source: dict[str, int] = {}
    for example in selected:
        by_source[example["source"]] = by_source.get(example["source"], 0) + 1
    selection = {
        "app": app.name,
        "window": {
            "start_ms": int(start_ms),
            "end_ms": int(end_ms),
            "start": _iso(start_ms),
            "end": _iso(end_ms),
        },
        "filter": p.filter,
        "selection": options.to_dict(),
        "params": p.model_dump(mode="json"),
        "traces": traces.num_rows,
        "matched_filter": matched.num_rows,
        "selected": len(selected),
        "selected_by_source": dict(sorted(by_source.items())),
        "skipped_by_reason": skipped,
    }
    _write_json(selection, run_dir / SELECTION_FILE)
    logger.info("export selection: %d of %d traces selected %s", len(selected), traces.num_rows, by_source)
    return {
        "traces": traces.num_rows,
        "selected": len(selected),
        "selected_by_source": selection["selected_by_source"],
        "path": str(path),
    }


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("genai-flywheel", "mlflow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def build_jsonl(run_dir: Path, app: Application) -> dict[str, Any]:
    """Redact, check, deduplicate and split ``examples.parquet`` into the JSONL files and ``manifest.json``.

    Both JSONL files are validated against the chat format before the manifest (the commit marker) is
    written; an invalid line is a DataContractError (it would mean a bug here, never bad input: bad input is
    rejected into ``rejected.jsonl`` with its reason).
    """
    from genai_flywheel.workspace import read_parquet

    run_dir = Path(run_dir)
    selection = _read_json(run_dir / SELECTION_FILE, "select_examples")
    path = run_dir / EXAMPLES_FILE
    if not path.is_file():
        raise StoreError(f"{path} not found; run the select_examples stage for this run folder first")
    examples = read_parquet(path).to_pylist()
    params = selection["params"]
    options = BuildOptions(
        redactor=Redactor.from_config(app.export.pii),
        system_prompt=app.export.system_prompt,
        validation_fraction=app.export.validation_fraction,
        max_chars=int(params["max_chars"]),
        seed=str(params["seed"]),
    )
    result = build_examples(examples, options)
    files = {
        TRAIN_FILE: _write_text(jsonl_text(result.train), run_dir / TRAIN_FILE),
        VALIDATION_FILE: _write_text(jsonl_text(result.validation), run_dir / VALIDATION_FILE),
        REJECTED_FILE: _write_text(jsonl_text(result.rejected), run_dir / REJECTED_FILE),
    }
    for name in (TRAIN_FILE, VALIDATION_FILE):
        check = validate_chat_jsonl(files[name])
        if not check.valid:
            raise DataContractError(f"{files[name]} breaks the chat fine-tuning format: {check.errors[:5]}")
    digest = hashlib.sha256()
    for name in (TRAIN_FILE, VALIDATION_FILE):
        digest.update(name.encode() + b"\x00" + files[name].read_bytes())
    counts = result.counts()
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "format": FORMAT,
        "app": app.name,
        "window": selection["window"],
        "filters": {"selection_filter": selection["filter"], **selection["selection"]},
        "split": {
            "validation_fraction": app.export.validation_fraction,
            "seed": options.seed,
            "method": "sha256(seed, normalised user message) < validation_fraction",
        },
        "pii": {
            "settings": app.export.pii.model_dump(mode="json"),
            "redactions": result.pii.to_dict(),
        },
        "system_prompt": app.export.system_prompt is not None,
        "max_chars": options.max_chars,
        "counts": {
            "traces": selection["traces"],
            "matched_filter": selection["matched_filter"],
            "selected": selection["selected"],
            "selected_by_source": selection["selected_by_source"],
            "skipped_by_reason": selection["skipped_by_reason"],
            **counts,
        },
        "files": {
            name: {"lines": sum(1 for _ in p.open(encoding="utf-8")), "sha256": _sha256(p)} for name, p in files.items()
        },
        "digest": "sha256:" + digest.hexdigest(),
        "versions": _versions(),
    }
    _write_json(manifest, run_dir / MANIFEST_FILE)
    logger.info(
        "export %s: %d train, %d validation, %d rejected, PII redactions %s",
        app.name,
        counts["train"],
        counts["validation"],
        counts["rejected"],
        result.pii.to_dict(),
    )
    return {
        "train": counts["train"],
        "validation": counts["validation"],
        "rejected": counts["rejected"],
        "digest": manifest["digest"],
        "manifest": str(run_dir / MANIFEST_FILE),
    }


def run_name_for(app: str, end_ms: int) -> str:
    """``finetune-export-<app>-<YYYY-MM-DD>`` from the window end (not the wall clock)."""
    return f"finetune-export-{app}-{datetime.fromtimestamp(end_ms / 1000, tz=UTC):%Y-%m-%d}"


def log_export(run_dir: Path, app: Application) -> dict[str, Any]:
    """Log the export to MLflow: a finished run ``finetune-export-<app>-<date>`` with the JSONL files and the
    manifest as artifacts, counts as metrics and the digest as a tag.

    A retried task finds the run it already logged for this digest (tag ``flywheel.export.digest``) and
    returns it instead of logging a second one.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / MANIFEST_FILE, "build_jsonl")
    params = _read_json(run_dir / SELECTION_FILE, "select_examples")["params"]
    experiment = params.get("experiment") or app.mlflow.experiment
    run_name = run_name_for(app.name, manifest["window"]["end_ms"])
    client = MlflowClient(tracking_uri=app.mlflow.tracking_uri)
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        existing = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`{TAG_PREFIX}export.digest` = '{manifest['digest']}' AND "
                f"attributes.run_name = '{run_name}' AND attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        if existing:
            run_id = existing[0].info.run_id
            logger.info("export %s already logged as run %s", manifest["digest"], run_id)
        else:
            counts = manifest["counts"]
            metrics = {
                "train_examples": counts["train"],
                "validation_examples": counts["validation"],
                "rejected": counts["rejected"],
                "selected": counts["selected"],
                "traces": counts["traces"],
                **{f"pii_{k}": v for k, v in manifest["pii"]["redactions"].items()},
                **{f"selected_{k}": v for k, v in counts["selected_by_source"].items()},
            }
            run_params = {
                "app": app.name,
                "window_start": manifest["window"]["start"],
                "window_end": manifest["window"]["end"],
                "min_score": str(manifest["filters"]["min_score"]),
                "quality_scorers": ",".join(manifest["filters"]["quality_scorers"]),
                "selection_filter": str(manifest["filters"]["selection_filter"]),
                "validation_fraction": str(manifest["split"]["validation_fraction"]),
                "max_chars": str(manifest["max_chars"]),
            }
            tags = {
                f"{TAG_PREFIX}app": app.name,
                f"{TAG_PREFIX}stage": "finetune-export",
                f"{TAG_PREFIX}export.digest": manifest["digest"],
                f"{TAG_PREFIX}export.format": manifest["format"],
            }
            run = client.create_run(experiment_id, run_name=run_name, tags=tags)
            run_id = run.info.run_id
            try:
                now_ms = run.info.start_time  # MLflow bookkeeping only
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, float(v), now_ms, 0) for k, v in sorted(metrics.items())],
                    params=[Param(k, v[:6000]) for k, v in sorted(run_params.items())],
                )
                for name in (TRAIN_FILE, VALIDATION_FILE, REJECTED_FILE, MANIFEST_FILE):
                    client.log_artifact(run_id, str(run_dir / name), artifact_path="finetune")
            except Exception:
                # Leave no RUNNING run behind: the retry creates a complete one.
                client.set_terminated(run_id, "FAILED")
                raise
            client.set_terminated(run_id, "FINISHED")
    except Exception as err:  # MLflow raises several kinds; the task retries on StoreError
        raise StoreError(f"cannot log the export to MLflow at {app.mlflow.tracking_uri}: {err}") from err
    logged = {
        "run_id": run_id,
        "run_name": run_name,
        "experiment_id": str(experiment_id),
        "digest": manifest["digest"],
    }
    _write_json(logged, run_dir / LOGGED_FILE)
    return logged
