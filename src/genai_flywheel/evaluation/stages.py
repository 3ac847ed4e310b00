"""The development-evaluation DAG's stages: each one call, reading and writing files under one run folder.

========================  ==========================================  ======================================
stage                     reads (under ``run_dir``)                   writes
========================  ==========================================  ======================================
``load_stage``            a curated dataset version (data root) or    ``eval_params.json``, ``dataset.json``,
                          production traces + a selection filter      ``records.parquet``
``run_candidate_stage``   ``records.parquet``, ``eval_params.json``   an MLflow evaluation run,
                                                                      ``scores.parquet``,
                                                                      ``candidate_outputs.parquet``,
                                                                      ``eval_run.json``
``compare_stage``         the above                                   ``comparison.parquet``,
                                                                      ``summary.json``, ``summary.md``
``log_stage``             the above                                   metrics, params, tags and artifacts
                                                                      on the evaluation run, ``logged.json``
``gate_stage``            ``summary.json``, ``eval_params.json``      ``gate.json`` (raises GateFailedError)
========================  ==========================================  ======================================

Params (the DAG's JSON-able Params dict, validated by :class:`EvalParams`): ``candidate``, and either
``dataset`` (+ ``dataset_version``, default newest) or, for a quick ad-hoc check, ``filter`` +
``sample_size`` over the ``lookback_days`` before ``window_end_ms``; ``scorers``, ``gates`` (``Gate`` dicts,
optionally with a ``rule`` key to gate on one rule's records), ``experiment`` and the statistics options.
Defaults come from the application's ``evaluation`` section.

The evaluation run goes to ``<app experiment>-dev-eval`` by default, not the production experiment: its
traces are the candidate's, and the monitor, curation and export read every trace of the production
experiment as production traffic.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genai_flywheel.config import Application
from genai_flywheel.evaluation.gate import enforce as enforce_gates, evaluate_gates, parse_gates
from genai_flywheel.evaluation.stats import DEFAULT_EPSILON
from genai_flywheel.exceptions import ConfigError, StoreError
from genai_flywheel.workspace import (
    atomic_write_json as _write_json,
    atomic_write_parquet as _write_parquet,
    atomic_write_text as _write_text,
    read_stage_json as _read_json,
    read_stage_parquet as _read_parquet,
)

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
PARAMS_FILE = "eval_params.json"
DATASET_FILE = "dataset.json"
RECORDS_FILE = "records.parquet"
SCORES_FILE = "scores.parquet"
OUTPUTS_FILE = "candidate_outputs.parquet"
RUN_FILE = "eval_run.json"
COMPARISON_FILE = "comparison.parquet"
SUMMARY_FILE = "summary.json"
MARKDOWN_FILE = "summary.md"
LOGGED_FILE = "logged.json"
GATE_FILE = "gate.json"
TRACE_IDS_FILE = "source_trace_ids.json"
DEV_EXPERIMENT_SUFFIX = "-dev-eval"
ADHOC_RULE = "adhoc"
TAG_PREFIX = "flywheel."
MAX_TAG_TRACE_IDS = 20
TABLE_ARTIFACT = "flywheel/comparison_table.json"


class EvalParams(BaseModel):
    """The evaluation DAG's params; None means "take the application's default"."""

    model_config = ConfigDict(extra="forbid")

    candidate: str | None = Field(default=None, description="module:function or models:/... / runs:/...")
    dataset: str | None = Field(default=None, description="Curated dataset name")
    dataset_version: int | None = Field(default=None, ge=1, description="Default: the newest version")
    filter: str | None = Field(default=None, description="Ad-hoc: selection filter over production traces")
    sample_size: int = Field(default=100, ge=1, le=100_000, description="Ad-hoc: records to sample")
    lookback_days: int | None = Field(default=None, ge=1, le=3650, description="Ad-hoc window length")
    window_end_ms: int | None = Field(default=None, ge=0, description="Ad-hoc window end (epoch ms)")
    seed: str = Field(default="flywheel", min_length=1, max_length=64, description="Ad-hoc sampling salt")
    scorers: list[str] | None = None
    gates: list[dict[str, Any]] | None = None
    experiment: str | None = Field(default=None, description="Default: '<app experiment>-dev-eval'")
    tie_epsilon: float = Field(default=DEFAULT_EPSILON, ge=0.0, le=1.0)
    lower_is_better: list[str] = Field(default_factory=list)
    worst_k: int = Field(default=10, ge=0, le=1000)
    rescore_production: bool = False
    max_workers: int | None = Field(default=None, ge=1, le=64)
    max_candidate_error_rate: float | None = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("candidate", "dataset", "filter", "experiment", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # Airflow's Params form sends "" for an untouched text box.
        return None if isinstance(value, str) and not value.strip() else value


def resolve_params(app: Application, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated params with the application's defaults filled in (what ``eval_params.json`` holds)."""
    try:
        p = EvalParams.model_validate(dict(params or {}))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"evaluation params are invalid: {problems}") from None
    out = p.model_dump(mode="json")
    out["candidate"] = p.candidate or app.evaluation.candidate
    if not out["candidate"]:
        raise ConfigError(
            f"no candidate for application {app.name!r}: pass the 'candidate' param or set "
            "evaluation.candidate (module:function or an MLflow model URI)"
        )
    if p.dataset and p.filter:
        raise ConfigError("pass either 'dataset' (a curated dataset) or 'filter' (an ad-hoc check), not both")
    if not p.dataset and not p.filter:
        raise ConfigError(
            "nothing to evaluate on: pass 'dataset' (a curated dataset name) or 'filter' (+ 'window_end_ms') "
            "for an ad-hoc check on production inputs"
        )
    if p.filter and p.window_end_ms is None:
        raise ConfigError("an ad-hoc check needs 'window_end_ms' (e.g. the DAG run's data_interval_end)")
    # None: every scorer the application loads (an LLM judge without an endpoint is skipped, not an error).
    out["scorers"] = list(p.scorers or app.evaluation.scorers) or None
    if out["scorers"] is None and not app.scorers:
        raise ConfigError(
            f"no scorers for application {app.name!r}: pass 'scorers' or set evaluation.scorers / scorers"
        )
    gates = p.gates if p.gates is not None else [g.model_dump(mode="json") for g in app.evaluation.gates]
    out["gates"] = [g.to_dict() for g in parse_gates(gates)]
    out["lookback_days"] = p.lookback_days or app.curation.lookback_days
    out["experiment"] = p.experiment or f"{app.mlflow.experiment}{DEV_EXPERIMENT_SUFFIX}"
    return out


# --- files -----------------------------------------------------------------------------------------------


# --- load ------------------------------------------------------------------------------------------------


def _sample_key(seed: str, trace_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{trace_id}".encode()).hexdigest()


def adhoc_records(
    traces: pa.Table, *, filter_text: str, sample_size: int, seed: str, app: str, start_ms: int, end_ms: int
) -> pa.Table:
    """Records for an ad-hoc check: traces matching ``filter_text``, a deterministic sample of
    ``sample_size`` (smallest salted hash of the trace id), one record per distinct input."""
    import pyarrow as pa

    from genai_flywheel.curation.records import build_records, deduplicate
    from genai_flywheel.selection import compile_filter

    compiled = compile_filter(filter_text)
    matched = traces.filter(pa.array(compiled.mask(traces), pa.bool_()))
    ids = matched.column("trace_id").to_pylist()
    chosen = sorted(range(len(ids)), key=lambda i: (_sample_key(seed, ids[i]), ids[i]))[:sample_size]
    # Keep the window's (timestamp, trace id) order so duplicates merge onto their first occurrence.
    sampled = matched.take(pa.array(sorted(chosen), pa.int64()))
    n = sampled.num_rows
    sampled = sampled.append_column("rule", pa.array([ADHOC_RULE] * n, pa.string()))
    sampled = sampled.append_column("rule_priority", pa.array([0] * n, pa.int32()))
    records = build_records(sampled, app=app, interval_start_ms=start_ms, interval_end_ms=end_ms)
    deduped, _ = deduplicate(records)
    return deduped.sort_by("record_id")


def load_stage(
    run_dir: Path, app: Application, params: Mapping[str, Any] | None = None, *, data_root: Path | str
) -> dict[str, Any]:
    """Resolve the params and load the evaluation records into ``records.parquet``.

    From a curated dataset version (its snapshot under ``data_root``, digest-checked) or, ad hoc, from the
    production traces of ``[window_end_ms - lookback_days, window_end_ms)`` matching ``filter``.
    """
    from genai_flywheel.curation.datasets import load_dataset_version, snapshot_digest

    run_dir = Path(run_dir)
    resolved = resolve_params(app, params)
    if resolved["dataset"]:
        records, manifest = load_dataset_version(data_root, resolved["dataset"], resolved["dataset_version"])
        dataset = {
            "name": resolved["dataset"],
            "version": int(manifest["version"]),
            "digest": manifest["digest"],
            "source": "curated",
            "records": records.num_rows,
        }
    else:
        from genai_flywheel.selection import compile_filter
        from genai_flywheel.traces.extract import extract_window

        end = int(resolved["window_end_ms"])
        start = end - int(resolved["lookback_days"]) * DAY_MS
        compiled = compile_filter(resolved["filter"])  # a syntax error fails here, before MLflow is read
        traces = extract_window(
            app.mlflow.tracking_uri,
            app.mlflow.experiment,
            start,
            end,
            app=app.name,
            filter_string=compiled.pushdown,
        )
        records = adhoc_records(
            traces,
            filter_text=resolved["filter"],
            sample_size=resolved["sample_size"],
            seed=resolved["seed"],
            app=app.name,
            start_ms=start,
            end_ms=end,
        )
        dataset = {
            "name": ADHOC_RULE,
            "version": None,
            "digest": snapshot_digest(records),
            "source": "adhoc",
            "records": records.num_rows,
            "filter": resolved["filter"],
            "window_start_ms": start,
            "window_end_ms": end,
            "traces_extracted": traces.num_rows,  # after the filter's pushed-down part
        }
    if records.num_rows == 0:
        raise StoreError(
            f"no records to evaluate in {dataset['source']} dataset {dataset['name']!r}; "
            "check the dataset name and version, or widen the filter / lookback window"
        )
    _write_json(resolved, run_dir / PARAMS_FILE)
    _write_json(dataset, run_dir / DATASET_FILE)
    path = _write_parquet(records, run_dir / RECORDS_FILE)
    logger.info("loaded %d records of %s dataset %s", records.num_rows, dataset["source"], dataset["name"])
    return {
        "records": records.num_rows,
        "dataset": dataset["name"],
        "version": dataset["version"],
        "digest": dataset["digest"],
        "path": str(path),
    }


# --- run the candidate -----------------------------------------------------------------------------------


def run_name_for(candidate_short: str, dataset: Mapping[str, Any]) -> str:
    """``dev-eval-<candidate>-<dataset>-v<N>`` (ad hoc: ``-adhoc-<digest prefix>``)."""
    if dataset.get("version") is not None:
        suffix = f"{dataset['name']}-v{dataset['version']}"
    else:
        suffix = f"{dataset['name']}-{str(dataset.get('digest', '')).removeprefix('sha256:')[:8]}"
    return f"dev-eval-{candidate_short}-{suffix}"


def select_scorers(loaded: Sequence[Any], names: Sequence[str]) -> list[Any]:
    """The loaded scorers named in ``names``, in that order; a ConfigError names any that are unknown."""
    from genai_flywheel.evaluation.run import scorer_name

    by_name = {scorer_name(s): s for s in loaded}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(
            f"scorer(s) {unknown} are not loaded for this application; available: {sorted(by_name)}. "
            "Add them under scorers: in the configuration or fix the 'scorers' param"
        )
    return [by_name[n] for n in names]


def run_candidate_stage(
    run_dir: Path,
    app: Application,
    *,
    judge: Any = None,
    scorers: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Run the candidate on ``records.parquet`` with ``mlflow.genai.evaluate`` and score production outputs.

    ``scorers`` (MLflow Scorers or LoadedScorers) replace the application's loaded scorers, e.g. in tests;
    by default they come from :func:`genai_flywheel.scoring.load_scorers` with the ``judge`` endpoint.
    """
    import pyarrow as pa

    from genai_flywheel.evaluation.candidate import resolve_candidate
    from genai_flywheel.evaluation.run import (
        evaluate_candidate,
        judge_context,
        outputs_schema,
        production_scores,
        scorer_name,
        scores_schema,
        to_eval_records,
        tracking,
    )

    run_dir = Path(run_dir)
    params = _read_json(run_dir / PARAMS_FILE, "load")
    dataset = _read_json(run_dir / DATASET_FILE, "load")
    table = _read_parquet(run_dir / RECORDS_FILE, "load")
    records = to_eval_records(table.to_pylist())
    candidate = resolve_candidate(params["candidate"], tracking_uri=app.mlflow.tracking_uri)
    if scorers is None:
        from genai_flywheel.scoring import load_scorers

        scorers = load_scorers(app, judge)
    chosen = select_scorers(scorers, params["scorers"] or [scorer_name(s) for s in scorers])
    if not chosen:
        raise ConfigError(f"no scorer of application {app.name!r} could be loaded; check scorers: and judge:")
    run_name = run_name_for(candidate.short_name, dataset)
    tags = {
        f"{TAG_PREFIX}app": app.name,
        f"{TAG_PREFIX}stage": "dev-eval",
        f"{TAG_PREFIX}candidate": candidate.spec,
        f"{TAG_PREFIX}dataset.name": str(dataset["name"]),
        f"{TAG_PREFIX}dataset.version": str(dataset["version"]),
        f"{TAG_PREFIX}dataset.digest": str(dataset["digest"]),
    }
    outcome = evaluate_candidate(
        records,
        candidate,
        chosen,
        tracking_uri=app.mlflow.tracking_uri,
        experiment=params["experiment"],
        run_name=run_name,
        run_tags=tags,
        max_workers=params["max_workers"],
    )
    with tracking(app.mlflow.tracking_uri), judge_context(chosen):
        production = production_scores(records, chosen, rescore=params["rescore_production"])
    scores = pa.Table.from_pylist(outcome.scores + production, schema=scores_schema())
    scores = scores.sort_by([("record_id", "ascending"), ("side", "ascending"), ("scorer", "ascending")])
    outputs = pa.Table.from_pylist(outcome.outputs, schema=outputs_schema()).sort_by("record_id")
    _write_parquet(scores, run_dir / SCORES_FILE)
    _write_parquet(outputs, run_dir / OUTPUTS_FILE)
    run_info = {
        "run_id": outcome.run_id,
        "experiment_id": outcome.experiment_id,
        "experiment": params["experiment"],
        "run_name": run_name,
        "candidate": candidate.spec,
        "candidate_short": candidate.short_name,
        "candidate_errors": outcome.errors,
        "records": len(records),
        "scorers": [scorer_name(s) for s in chosen],
        # Scorers whose lower values are better (pii, refusal): declared by the registry or the params.
        "lower_is_better": sorted(
            {
                *params["lower_is_better"],
                *(scorer_name(s) for s in chosen if getattr(s, "lower_is_better", False)),
            }
        ),
    }
    _write_json(run_info, run_dir / RUN_FILE)
    return {
        "run_id": outcome.run_id,
        "run_name": run_name,
        "records": len(records),
        "candidate_errors": outcome.errors,
        "scores": str(run_dir / SCORES_FILE),
    }


# --- compare ---------------------------------------------------------------------------------------------


def compare_stage(run_dir: Path) -> dict[str, Any]:
    """Per record and scorer, candidate vs production: ``comparison.parquet``, ``summary.json``/``.md``."""
    import pyarrow as pa

    from genai_flywheel.evaluation.compare import (
        build_comparison,
        comparison_schema,
        render_markdown,
        summarize,
    )

    run_dir = Path(run_dir)
    params = _read_json(run_dir / PARAMS_FILE, "load")
    dataset = _read_json(run_dir / DATASET_FILE, "load")
    run_info = _read_json(run_dir / RUN_FILE, "run_candidate")
    records = _read_parquet(run_dir / RECORDS_FILE, "load").to_pylist()
    scores = _read_parquet(run_dir / SCORES_FILE, "run_candidate").to_pylist()
    outputs = _read_parquet(run_dir / OUTPUTS_FILE, "run_candidate").to_pylist()
    lower = sorted({*params["lower_is_better"], *run_info.get("lower_is_better", [])})
    scorers = run_info["scorers"]
    rows = build_comparison(
        records,
        scores,
        outputs,
        scorers=scorers,
        lower_is_better=lower,
        epsilon=params["tie_epsilon"],
    )
    summary = summarize(
        rows,
        scorers=scorers,
        lower_is_better=lower,
        epsilon=params["tie_epsilon"],
        worst_k=params["worst_k"],
        candidate_errors=sum(1 for o in outputs if o.get("error")),
        context={
            "candidate": run_info["candidate"],
            "dataset": {k: dataset.get(k) for k in ("name", "version", "digest", "source")},
            "run_id": run_info["run_id"],
            "run_name": run_info["run_name"],
        },
    )
    _write_parquet(pa.Table.from_pylist(rows, schema=comparison_schema()), run_dir / COMPARISON_FILE)
    _write_json(summary, run_dir / SUMMARY_FILE)
    _write_text(render_markdown(summary), run_dir / MARKDOWN_FILE)
    return {
        "summary": str(run_dir / SUMMARY_FILE),
        "report": str(run_dir / MARKDOWN_FILE),
        "records": summary["n_records"],
        "scorers": {
            name: {k: s[k] for k in ("n", "improvement", "p_value", "wins", "losses", "ties")}
            for name, s in summary["scorers"].items()
        },
    }


# --- log -------------------------------------------------------------------------------------------------

_METRIC_FIELDS = (
    "candidate_mean",
    "production_mean",
    "mean_diff",
    "improvement",
    "ci_low",
    "ci_high",
    "p_value",
    "sign_test_p",
    "wins",
    "losses",
    "ties",
    "n",
)


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics of a summary: ``<scorer>/<field>`` overall, ``rule/<rule>/<scorer>/<field>`` per rule
    (None values, e.g. a CI of one record, are left out)."""
    metrics: dict[str, float] = {
        "records": float(summary["n_records"]),
        "candidate_errors": float(summary["candidate_errors"]),
    }
    for scorer, stats in summary["scorers"].items():
        for name in _METRIC_FIELDS:
            if stats.get(name) is not None:
                metrics[f"{scorer}/{name}"] = float(stats[name])
    for rule, blocks in summary["rules"].items():
        for scorer, stats in blocks.items():
            for name in ("improvement", "p_value", "n", "wins", "losses"):
                if stats.get(name) is not None:
                    metrics[f"rule/{rule}/{scorer}/{name}"] = float(stats[name])
    return metrics


def _trace_ids(records: pa.Table) -> list[str]:
    ids: set[str] = set()
    names = records.column_names
    for row in records.select([c for c in ("source_trace_id", "source_trace_ids") if c in names]).to_pylist():
        if row.get("source_trace_id"):
            ids.add(row["source_trace_id"])
        ids.update(t for t in row.get("source_trace_ids") or () if t)
    return sorted(ids)


def log_stage(run_dir: Path, app: Application) -> dict[str, Any]:
    """Log the comparison to the evaluation run: metrics, params, lineage tags and the report artifacts.

    Safe to retry: params get the same values, metrics are re-logged at step 0, artifacts overwrite their own
    paths.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    run_dir = Path(run_dir)
    run_info = _read_json(run_dir / RUN_FILE, "run_candidate")
    dataset = _read_json(run_dir / DATASET_FILE, "load")
    summary = _read_json(run_dir / SUMMARY_FILE, "compare")
    params = _read_json(run_dir / PARAMS_FILE, "load")
    records = _read_parquet(run_dir / RECORDS_FILE, "load")
    comparison = _read_parquet(run_dir / COMPARISON_FILE, "compare")
    trace_ids = _trace_ids(records)
    _write_json(trace_ids, run_dir / TRACE_IDS_FILE)

    run_id = run_info["run_id"]
    client = MlflowClient(tracking_uri=app.mlflow.tracking_uri)
    now_ms = int(time.time() * 1000)  # MLflow bookkeeping only; no file of ours depends on it
    metrics = [Metric(k, v, now_ms, 0) for k, v in sorted(summary_metrics(summary).items())]
    run_params = {
        "candidate": run_info["candidate"],
        "dataset_name": str(dataset["name"]),
        "dataset_version": str(dataset["version"]),
        "dataset_digest": str(dataset["digest"]),
        "dataset_source": str(dataset["source"]),
        "scorers": ",".join(run_info["scorers"]),
        "tie_epsilon": str(params["tie_epsilon"]),
        "significance_test": "wilcoxon_signed_rank_normal_approx",
    }
    if dataset.get("filter"):
        run_params["filter"] = str(dataset["filter"])[:6000]
    shown = trace_ids[:MAX_TAG_TRACE_IDS]
    more = len(trace_ids) - len(shown)
    tags = {
        f"{TAG_PREFIX}dataset.name": str(dataset["name"]),
        f"{TAG_PREFIX}dataset.version": str(dataset["version"]),
        f"{TAG_PREFIX}dataset.digest": str(dataset["digest"]),
        f"{TAG_PREFIX}source_trace_ids": ",".join(shown) + (f",... (+{more} more in {TRACE_IDS_FILE})" if more else ""),
        f"{TAG_PREFIX}source_trace_count": str(len(trace_ids)),
    }
    try:
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in sorted(run_params.items())],
            tags=[RunTag(k, v) for k, v in sorted(tags.items())],
        )
        for name in (MARKDOWN_FILE, SUMMARY_FILE, COMPARISON_FILE, TRACE_IDS_FILE):
            client.log_artifact(run_id, str(run_dir / name), artifact_path="flywheel")
        # log_table appends to an existing file, so a retried task must not log it twice.
        existing = {a.path for a in client.list_artifacts(run_id, "flywheel")}
        if TABLE_ARTIFACT not in existing:
            frame = comparison.drop_columns(["rules"]).to_pandas()
            client.log_table(run_id, data=frame, artifact_file=TABLE_ARTIFACT)
    except Exception as err:  # MLflow raises several kinds; the task retries on StoreError
        raise StoreError(f"cannot log the comparison to run {run_id} at {app.mlflow.tracking_uri}: {err}") from err
    logged = {
        "run_id": run_id,
        "metrics": len(metrics),
        "params": len(run_params),
        "trace_ids": len(trace_ids),
    }
    _write_json(logged, run_dir / LOGGED_FILE)
    return logged


# --- gate ------------------------------------------------------------------------------------------------


def gate_stage(run_dir: Path, app: Application | None = None, *, enforce: bool = True) -> dict[str, Any]:
    """Check the declared gates against ``summary.json``; write ``gate.json``; tag the evaluation run
    (``flywheel.gate`` = passed/failed) when ``app`` is given; raise GateFailedError when ``enforce`` and a
    check failed (the file and tag are written first, so a failed task leaves its evidence)."""
    run_dir = Path(run_dir)
    summary = _read_json(run_dir / SUMMARY_FILE, "compare")
    params = _read_json(run_dir / PARAMS_FILE, "load")
    result = evaluate_gates(
        summary, params["gates"], max_candidate_error_rate=params.get("max_candidate_error_rate", 0.0)
    )
    _write_json({**result.to_dict(), "gates": params["gates"]}, run_dir / GATE_FILE)
    run_path = run_dir / RUN_FILE
    if app is not None and run_path.is_file():
        from mlflow import MlflowClient

        run_id = _read_json(run_path, "run_candidate")["run_id"]
        client = MlflowClient(tracking_uri=app.mlflow.tracking_uri)
        try:
            client.set_tag(run_id, f"{TAG_PREFIX}gate", "passed" if result.passed else "failed")
            client.log_artifact(run_id, str(run_dir / GATE_FILE), artifact_path="flywheel")
        except Exception as err:  # the verdict stands even if MLflow is briefly unreachable
            logger.warning("could not record the gate verdict on run %s: %s", run_id, err)
    failed = [c.message for c in result.failed]
    if failed:
        logger.warning("gate failed:\n  %s", "\n  ".join(failed))
    if enforce:
        enforce_gates(result)
    return {
        "passed": result.passed,
        "checks": len(result.checks),
        "failed": failed,
        "path": str(run_dir / GATE_FILE),
    }
