"""The use cases each Airflow task calls: one function per stage, one call per task.

Every function takes plain values (application name, interval bounds, a few ids), reads its input from
the files of the previous stage under the data root, writes its output atomically, and returns a small
JSON-able dict of paths and counts: never data, never secrets (task return values land in XCom
unmasked). Re-running a stage for the same interval overwrites its output with the same bytes.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.config import Application, FlywheelConfig, load_config
from genai_flywheel.workspace import IntervalWorkspace

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.scoring.judges import JudgeEndpoint

log = logging.getLogger(__name__)

# A failing MLflow call should fail the task quickly and let Airflow's retry with backoff take over,
# rather than hang for minutes inside MLflow's own HTTP retry loop.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


def _context(
    app_name: str, start: datetime | str | None, end: datetime | str | None, config: FlywheelConfig | None
) -> tuple[FlywheelConfig, Application, IntervalWorkspace]:
    cfg = config or load_config()
    app = cfg.app(app_name)
    if start is None or end is None:
        raise ValueError("the interval needs both a start and an end (data_interval_start/_end)")
    return cfg, app, IntervalWorkspace.of(cfg.data_path(), app_name, start, end)


def _read(path: Path) -> pa.Table:
    from genai_flywheel.metrics.store import read_parquet

    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the previous stage of this interval first")
    return read_parquet(path)


def _write(table: pa.Table, path: Path) -> Path:
    from genai_flywheel.metrics.store import atomic_write_parquet

    return atomic_write_parquet(table, path)


# --- monitor -----------------------------------------------------------------------------------------


def extract(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 1: every trace of the interval, from MLflow into ``traces.parquet``."""
    from genai_flywheel.traces.extract import extract_window

    _, app, ws = _context(app_name, start, end, config)
    table = extract_window(app.mlflow.tracking_uri, app.mlflow.experiment, ws.start_ms, ws.end_ms, app=app.name)
    path = _write(table, ws.path("traces.parquet"))
    return {"path": str(path), "traces": table.num_rows}


def validate(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 2: the data contract. Bad rows go to ``quarantine.parquet`` with reasons."""
    from genai_flywheel.metrics.store import atomic_write_json
    from genai_flywheel.quality.contract import validate_traces

    _, app, ws = _context(app_name, start, end, config)
    result = validate_traces(
        _read(ws.path("traces.parquet")),
        max_bad_fraction=app.contract.max_bad_fraction,
        raise_on_failure=False,
    )
    # The quarantine and the report are written even when the batch as a whole fails, so the failed
    # task leaves the evidence an operator needs, and nothing downstream reads a half-written stage.
    _write(result.quarantine, ws.path("quarantine.parquet"))
    atomic_write_json(result.report, ws.path("contract.json"))
    if not result.ok:
        # A stale valid.parquet of an earlier run must not outlive the evidence that replaced it.
        ws.path("valid.parquet").unlink(missing_ok=True)
        result.raise_for_failures()
    _write(result.valid, ws.path("valid.parquet"))
    if result.quarantine.num_rows:
        log.warning(
            "%d traces quarantined by the data contract; see %s",
            result.quarantine.num_rows,
            ws.path("quarantine.parquet"),
        )
    return {"valid": result.valid.num_rows, "quarantined": result.quarantine.num_rows}


def sample(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 3: deterministic stratified sample; returns the shards that have rows to score."""
    from genai_flywheel.traces.sampling import plan_sample

    _, app, ws = _context(app_name, start, end, config)
    plan = plan_sample(_read(ws.path("valid.parquet")), app.sampling, list(app.scorers))
    _write(plan.table, ws.path("sample.parquet"))
    shards = sorted(set(plan.table.column("shard").to_pylist()))
    # Stale shard files of an earlier run (e.g. before a config change) must not leak into aggregation.
    scores_dir = ws.path("scores")
    if scores_dir.exists():
        for f in scores_dir.glob("shard=*.parquet"):
            if int(f.stem.split("=")[1]) not in shards:
                f.unlink()
    return {
        "shards": shards,
        "eligible": plan.eligible,
        "sampled": plan.table.num_rows,
        "per_scorer": plan.per_scorer,
    }


def score_shard(
    app_name: str,
    start: Any,
    end: Any,
    shard: int,
    *,
    judge: JudgeEndpoint | None = None,
    config: FlywheelConfig | None = None,
) -> dict:
    """Stage 4: run every scorer on its sampled traces of one shard into ``scores/shard=<k>.parquet``.

    A score already written back to a trace in an earlier run (same deterministic assessment id) is
    reused, not recomputed: re-runs give identical results and do not pay for a judge twice.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from genai_flywheel.scoring import JudgeBudget, load_scorers, score_table
    from genai_flywheel.scoring.reuse import reuse_existing
    from genai_flywheel.traces.sampling import rows_for_scorer
    from genai_flywheel.traces.schema import SCORE_SCHEMA

    _, app, ws = _context(app_name, start, end, config)
    sampled = _read(ws.path("sample.parquet"))
    rows = sampled.filter(pc.equal(sampled.column("shard"), shard))
    specs = {s.name: s for s in app.scorers}
    loaded = load_scorers(app, judge)
    # The per-run judge budget is split evenly over the shards, which run in parallel.
    price = app.prices.get(app.judge.model)
    budget = JudgeBudget(app.judge.max_cost_per_run_usd / max(1, app.sampling.shards), price)
    parts = []
    # Scorers with the same rows to score (traces, strata and inclusion weights) run in one pass, so each
    # trace's arguments (and its Trace, for scorers that read it) are parsed once, not once per scorer.
    groups: dict[tuple, tuple[pa.Table, list]] = {}
    for scorer in loaded:
        mine = rows_for_scorer(rows, app.sampling, specs[scorer.name])
        reused, todo = reuse_existing(mine, scorer)
        parts.append(reused)
        key = tuple(tuple(todo.column(c).to_pylist()) for c in ("trace_id", "stratum", "weight"))
        groups.setdefault(key, (todo, []))[1].append(scorer)
    for todo, scorers in groups.values():
        parts.append(score_table(todo, scorers, budget=budget if any(s.is_judge for s in scorers) else None))
    table = pa.concat_tables(parts).cast(SCORE_SCHEMA) if parts else SCORE_SCHEMA.empty_table()
    table = table.sort_by([("trace_id", "ascending"), ("scorer", "ascending")])
    _write(table, ws.shard_path(shard))
    errors = sum(1 for e in table.column("error").to_pylist() if e)
    return {"shard": shard, "scores": table.num_rows, "not_scored": errors, "judge_budget": budget.summary()}


def _scores(ws: IntervalWorkspace) -> pa.Table:
    import pyarrow as pa

    from genai_flywheel.traces.schema import SCORE_SCHEMA

    files = sorted(ws.path("scores").glob("shard=*.parquet")) if ws.path("scores").exists() else []
    if not files:
        return SCORE_SCHEMA.empty_table()
    table = pa.concat_tables([_read(f).cast(SCORE_SCHEMA) for f in files])
    return table.sort_by([("trace_id", "ascending"), ("scorer", "ascending")])


def write_back(
    app_name: str, start: Any, end: Any, *, run_id: str | None = None, config: FlywheelConfig | None = None
) -> dict:
    """Stage 5: the scores as assessments on the traces, each exactly once."""
    from genai_flywheel.metrics.store import atomic_write_json
    from genai_flywheel.traces.extract import get_experiment_id
    from genai_flywheel.traces.writeback import HTTP_WORKERS, existing_assessment_ids, write_back as _write_back

    _, app, ws = _context(app_name, start, end, config)
    uri = app.mlflow.tracking_uri
    existing = existing_assessment_ids(uri, get_experiment_id(uri, app.mlflow.experiment), ws.start_ms, ws.end_ms)
    run_context = {"flywheel.app": app.name, "flywheel.interval": ws.key}
    if run_id:
        run_context["airflow.run_id"] = run_id
    workers = HTTP_WORKERS if uri.startswith(("http://", "https://")) else 1  # SQLite takes one writer at a time
    result = _write_back(uri, _scores(ws), existing_ids=existing, run_context=run_context, workers=workers)
    atomic_write_json(result.as_dict(), ws.path("writeback.json"))
    return result.as_dict()


def aggregate(
    app_name: str, start: Any, end: Any, *, run_id: str | None = None, config: FlywheelConfig | None = None
) -> dict:
    """Stage 6: operational and quality metrics of the interval into ``metrics.parquet``."""
    from genai_flywheel.metrics import aggregate as _aggregate

    _, app, ws = _context(app_name, start, end, config)
    quarantined = _read(ws.path("quarantine.parquet")).num_rows
    metrics = _aggregate(
        _read(ws.path("valid.parquet")),
        _scores(ws),
        app=app.name,
        interval_start=ws.start,
        interval_end=ws.end,
        prices=app.prices,
        quarantined=quarantined,
    )
    path = _write(metrics, ws.path("metrics.parquet"))
    return {"path": str(path), "metrics": metrics.num_rows}


HEADLINE_METRICS = (
    "volume",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "tokens_total",
    "cost_usd",
    "quarantined",
    "sampled",
)


def store(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 7: the metrics partition into the store, and the headline numbers into MLflow."""
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.monitoring_run import log_interval_metrics

    _, app, ws = _context(app_name, start, end, config)
    metrics = _read(ws.path("metrics.parquet"))
    path = MetricsStore(ws.data_root).write_partition(metrics)
    run_id = log_interval_metrics(app, ws.start, metrics, HEADLINE_METRICS)
    return {"partition": str(path), "mlflow_run_id": run_id}


def alert(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 8: evaluate the alert rules; returns the notifications this interval must send."""
    from genai_flywheel.alerts import process_interval

    _, app, ws = _context(app_name, start, end, config)
    notifications = process_interval(
        ws.data_root,
        app.name,
        _read(ws.path("metrics.parquet")),
        list(app.alerts),
        ws.start,
        ws.end,
        timedelta(hours=app.notify.renotify_after_hours),
    )
    payloads = [n.to_dict() for n in notifications]
    return {"notifications": payloads, "firing": sum(1 for p in payloads if p.get("state") != "resolved")}


def run_monitor_interval(
    app_name: str,
    start: Any,
    end: Any,
    *,
    judge: JudgeEndpoint | None = None,
    config: FlywheelConfig | None = None,
) -> dict:
    """All monitor stages of one interval in this process (what the DAG does, without Airflow)."""
    cfg = config or load_config()
    out: dict[str, Any] = {"extract": extract(app_name, start, end, config=cfg)}
    out["validate"] = validate(app_name, start, end, config=cfg)
    out["sample"] = sample(app_name, start, end, config=cfg)
    out["score"] = [score_shard(app_name, start, end, s, judge=judge, config=cfg) for s in out["sample"]["shards"]]
    out["write_back"] = write_back(app_name, start, end, config=cfg)
    out["aggregate"] = aggregate(app_name, start, end, config=cfg)
    out["store"] = store(app_name, start, end, config=cfg)
    out["alert"] = alert(app_name, start, end, config=cfg)
    return out
