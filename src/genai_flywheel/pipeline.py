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

from genai_flywheel.config import Application, FlywheelConfig, Sampling, load_config
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


def _read(path: Path, producer: str, columns: list[str] | None = None) -> pa.Table:
    from genai_flywheel.workspace import read_stage_parquet

    return read_stage_parquet(path, producer, columns)


def _write(table: pa.Table, path: Path) -> Path:
    from genai_flywheel.workspace import atomic_write_parquet

    return atomic_write_parquet(table, path)


def _slices(app: Application, ws: IntervalWorkspace) -> list[Path]:
    """The pass-one files of every slice of the interval, or a StoreError naming the missing slice."""
    from genai_flywheel.exceptions import StoreError

    paths = [ws.slice_path(k) for k in range(app.extract.slices)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise StoreError(f"{missing[0]} not found; run the extract stage (every slice) of this interval first")
    return paths


# --- monitor -----------------------------------------------------------------------------------------


def extract(
    app_name: str, start: Any, end: Any, *, slice_index: int | None = None, config: FlywheelConfig | None = None
) -> dict:
    """Stage 1, pass one: the trace infos (no spans) of one time slice of the interval, streamed page by page
    into ``infos/slice=<k>.parquet``; every slice in turn when ``slice_index`` is None."""
    from genai_flywheel.traces.extract import extract_infos, get_experiment_id
    from genai_flywheel.traces.schema import INFO_SCHEMA
    from genai_flywheel.workspace import ParquetPartWriter, slice_bounds

    _, app, ws = _context(app_name, start, end, config)
    bounds = slice_bounds(ws.start_ms, ws.end_ms, app.extract.slices)
    indices = range(len(bounds)) if slice_index is None else [slice_index]
    if slice_index is not None and not 0 <= slice_index < len(bounds):
        raise ValueError(f"slice_index {slice_index} is outside 0..{len(bounds) - 1} (extract.slices)")
    uri = app.mlflow.tracking_uri
    experiment_id = get_experiment_id(uri, app.mlflow.experiment)
    total = 0
    for k in indices:
        lo, hi = bounds[k]
        with ParquetPartWriter(ws.slice_path(k), INFO_SCHEMA) as writer:
            extract_infos(uri, experiment_id, lo, hi, writer, app=app.name, page_size=app.extract.page_size)
        log.info("slice %d of %s [%d, %d): %d trace infos", k, ws.key, lo, hi, writer.rows)
        total += writer.rows
    path = ws.slice_path(indices[0]) if slice_index is not None else ws.path("infos")
    return {"path": str(path), "traces": total}


def reference(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """The reference profile the interval's segment and drift metrics use (query clusters, the reference mix
    and scores), learned from MLflow's trace infos once per refresh period; a no-op without segments.

    It runs after the interval's write-back: a cold-start profile (an application too new for a reference
    window) is learned from the interval itself, scores included, and must not depend on how far the
    write-back had got."""
    _, app, ws = _context(app_name, start, end, config)
    if not app.segments.dimensions:
        return {"path": None}
    from genai_flywheel.segments.stage import ensure_profile

    return {"path": str(ensure_profile(app, ws.data_root, ws.start, ws.end))}


def validate(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 2: the trace data contract, batch by batch over the slices. Bad rows go to
    ``quarantine.parquet`` with reasons, good ones to ``valid.parquet``."""
    from genai_flywheel.quality.contract import ContractTotals, validate_traces
    from genai_flywheel.traces.schema import INFO_SCHEMA, QUARANTINE_FIELDS
    from genai_flywheel.workspace import ParquetPartWriter, atomic_write_json, iter_parquet_batches

    _, app, ws = _context(app_name, start, end, config)
    totals = ContractTotals(max_bad_fraction=app.contract.max_bad_fraction)
    quarantine_schema = INFO_SCHEMA.append(QUARANTINE_FIELDS[0])
    valid_path = ws.path("valid.parquet")
    # A stale valid.parquet of an earlier run must not outlive the evidence that replaces it.
    valid_path.unlink(missing_ok=True)
    with ParquetPartWriter(ws.path(".valid.partial.parquet"), INFO_SCHEMA) as valid:
        with ParquetPartWriter(ws.path("quarantine.parquet"), quarantine_schema) as quarantine:
            for batch in iter_parquet_batches(_slices(app, ws)):
                result = validate_traces(_table(batch), max_bad_fraction=1.0, raise_on_failure=False)
                totals.add(result)
                quarantine.write(result.quarantine)
                valid.write(result.valid)
    # The quarantine and the report are written even when the window as a whole fails, so the failed task
    # leaves the evidence an operator needs, and nothing downstream reads a half-validated window.
    atomic_write_json(totals.report(), ws.path("contract.json"))
    partial = ws.path(".valid.partial.parquet")
    if not totals.ok:
        partial.unlink(missing_ok=True)
        totals.raise_for_failures()
    partial.replace(valid_path)
    if totals.quarantined:
        log.warning(
            "%d traces quarantined by the data contract; see %s", totals.quarantined, ws.path("quarantine.parquet")
        )
    return {"valid": totals.valid, "quarantined": totals.quarantined}


def _table(batch: Any) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def sample(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 3: deterministic stratified sample of the valid trace infos, batch by batch, into
    ``sample.parquet``; returns the shards that have rows to read and score."""
    from genai_flywheel.traces.sampling import plan_sample, sample_schema
    from genai_flywheel.workspace import ParquetPartWriter, iter_parquet_batches

    _, app, ws = _context(app_name, start, end, config)
    scorers = list(app.scorers)
    eligible = 0
    per_scorer = {s.name: 0 for s in scorers}
    shards: set[int] = set()
    _exists(ws, "valid.parquet", "validate")
    sampling = _interval_sampling(app, ws)
    if sampling is not app.sampling:
        log.info(
            "interval %s: base sampling rate %.4g instead of %.4g (sampling.min_traces %d)",
            ws.start.isoformat(),
            sampling.rate,
            app.sampling.rate,
            sampling.min_traces,
        )
    with ParquetPartWriter(ws.path("sample.parquet"), sample_schema()) as out:
        for batch in iter_parquet_batches([ws.path("valid.parquet")]):
            plan = plan_sample(_table(batch), sampling, scorers)
            out.write(plan.table)
            eligible += plan.eligible
            for name, count in plan.per_scorer.items():
                per_scorer[name] += count
            shards.update(plan.table.column("shard").to_pylist())
    # Stale shard files of an earlier run (e.g. before a config change) must not leak into aggregation.
    for stage in ("scores", "fetched", "quarantine"):
        for f in ws.parts(stage):
            if int(f.stem.split("=")[1]) not in shards:
                f.unlink()
    return {"shards": sorted(shards), "eligible": eligible, "sampled": out.rows, "per_scorer": per_scorer}


def _interval_sampling(app: Application, ws: IntervalWorkspace) -> Sampling:
    """The application's sampling as this interval applies it (``sampling.min_traces``): sample and score
    derive it from the same count of valid traces, so both use the same rates and weights."""
    from genai_flywheel.traces.sampling import interval_sampling
    from genai_flywheel.workspace import parquet_rows

    return interval_sampling(app.sampling, parquet_rows([ws.path("valid.parquet")]))


def _exists(ws: IntervalWorkspace, name: str, producer: str) -> None:
    from genai_flywheel.exceptions import StoreError

    if not ws.path(name).is_file():
        raise StoreError(f"{ws.path(name)} not found; run the {producer} stage of this interval first")


def score_shard(
    app_name: str,
    start: Any,
    end: Any,
    shard: int,
    *,
    judge: JudgeEndpoint | None = None,
    config: FlywheelConfig | None = None,
) -> dict:
    """Stage 4: pass two of extraction and scoring for one shard of the sample.

    The shard's sampled traces are read in full from MLflow, ``extract.fetch_batch`` at a time; each batch
    is checked against the content contract (failures to ``quarantine/shard=<k>.parquet``, not scored),
    scored by every scorer that sampled it (``scores/shard=<k>.parquet``), and summarised for the span and
    error-type metrics (``fetched/shard=<k>.parquet``). Memory holds one batch of traces.

    A score already written back to a trace in an earlier run (same deterministic assessment id) is
    reused, not recomputed: re-runs give identical results and do not pay for a judge twice.
    """
    import pyarrow.compute as pc

    from genai_flywheel.quality.contract import validate_trace_content
    from genai_flywheel.scoring import JudgeBudget, load_scorers
    from genai_flywheel.scoring.sampled import score_sampled
    from genai_flywheel.traces.fetch import content_quarantine_schema, fetch_sampled
    from genai_flywheel.traces.sampling import sample_schema
    from genai_flywheel.traces.schema import FETCHED_SCHEMA, SCORE_SCHEMA
    from genai_flywheel.workspace import ParquetPartWriter, iter_parquet_batches, rebatch

    _, app, ws = _context(app_name, start, end, config)
    _exists(ws, "sample.parquet", "sample")
    sampling = _interval_sampling(app, ws)
    # This shard's rows, streamed: neither the window's sample nor the shard's is ever held.
    mine = (b.filter(pc.equal(b.column("shard"), shard)) for b in iter_parquet_batches([ws.path("sample.parquet")]))
    specs = {s.name: s for s in app.scorers}
    loaded = load_scorers(app, judge)
    # The per-run judge budget is split evenly over the shards, which run in parallel.
    price = app.prices.get(app.judge.model)
    budget = JudgeBudget(app.judge.max_cost_per_run_usd / max(1, app.sampling.shards), price)
    errors = 0
    with (
        ParquetPartWriter(ws.shard_path(shard), SCORE_SCHEMA) as scores,
        ParquetPartWriter(ws.shard_path(shard, "fetched"), FETCHED_SCHEMA) as fetched,
        ParquetPartWriter(ws.shard_path(shard, "quarantine"), content_quarantine_schema()) as quarantine,
    ):
        chunks = rebatch(mine, app.extract.fetch_batch, sample_schema())
        batches = fetch_sampled(app.mlflow.tracking_uri, chunks, app=app.name, batch=app.extract.fetch_batch)
        for batch in batches:
            quarantine.write(batch.unreadable)
            content = validate_trace_content(batch.rows)
            quarantine.write(content.quarantine)
            fetched.write(content.valid.select(FETCHED_SCHEMA.names))
            table = score_sampled(content.valid, loaded, specs, sampling, budget)
            errors += sum(1 for e in table.column("error").to_pylist() if e)
            scores.write(table)
    if quarantine.rows:
        log.warning("shard %d: %d sampled traces quarantined; see %s", shard, quarantine.rows, quarantine.path)
    return {
        "shard": shard,
        "read": fetched.rows,
        "quarantined": quarantine.rows,
        "scores": scores.rows,
        "not_scored": errors,
        "judge_budget": budget.summary(),
    }


def write_back(
    app_name: str, start: Any, end: Any, *, run_id: str | None = None, config: FlywheelConfig | None = None
) -> dict:
    """Stage 5: the scores as assessments on the traces, each exactly once, a batch of score rows at a time
    (memory holds one batch, never the window's scores)."""

    from genai_flywheel.traces.writeback import (
        HTTP_WORKERS,
        WriteBackResult,
        existing_assessment_ids,
        write_back as _write_back,
    )
    from genai_flywheel.workspace import atomic_write_json, iter_parquet_batches

    _, app, ws = _context(app_name, start, end, config)
    uri = app.mlflow.tracking_uri
    run_context = {"flywheel.app": app.name, "flywheel.interval": ws.key}
    if run_id:
        run_context["airflow.run_id"] = run_id
    workers = HTTP_WORKERS if uri.startswith(("http://", "https://")) else 1  # SQLite takes one writer at a time
    result = WriteBackResult()
    # A trace's rows all sit in its shard file, sorted by trace: a batch holds whole traces but for its edges,
    # and the existing-id check reads the batch's own traces.
    for batch in iter_parquet_batches(ws.parts("scores"), batch_rows=WRITE_BACK_BATCH):
        scores = _table(batch)
        existing = existing_assessment_ids(uri, scores.column("trace_id").to_pylist())
        result.add(
            _write_back(
                uri, scores, existing_ids=existing, run_context=run_context, workers=workers, raise_on_failure=False
            )
        )
    atomic_write_json(result.as_dict(), ws.path("writeback.json"))
    result.raise_for_failures()
    return result.as_dict()


#: Score rows per write-back batch: a few MB of rows and MLflow Feedback objects at a time.
WRITE_BACK_BATCH = 20_000


def aggregate(
    app_name: str, start: Any, end: Any, *, run_id: str | None = None, config: FlywheelConfig | None = None
) -> dict:
    """Stage 6: operational and quality metrics of the interval into ``metrics.parquet``, streaming over the
    valid trace infos and the fetched sample (see :func:`genai_flywheel.metrics.aggregate_window`)."""
    from genai_flywheel.metrics.aggregate import INFO_TRACE_COLUMNS, aggregate_window
    from genai_flywheel.metrics.scores import read_score_arrays
    from genai_flywheel.workspace import iter_parquet_batches, parquet_rows

    _, app, ws = _context(app_name, start, end, config)
    quarantined = _read(ws.path("quarantine.parquet"), "validate", ["trace_id"]).num_rows
    quarantined += sum(_read(p, "score", ["trace_id"]).num_rows for p in ws.parts("quarantine"))
    _exists(ws, "valid.parquet", "validate")
    valid_rows = parquet_rows([ws.path("valid.parquet")])  # per-trace columns are allocated once, this size
    # One entry per (trace, scorer) as a few numbers, batch by batch: the scores' text is never held.
    scores = read_score_arrays(ws.parts("scores"))
    drift: list = []
    segment_rows = 0
    if app.segments.dimensions:
        from genai_flywheel.segments.accumulate import columns_for
        from genai_flywheel.segments.stage import segment_metrics, stored_profile

        segments, drift = segment_metrics(
            app,
            stored_profile(app, ws.data_root, ws.start),
            iter_parquet_batches([ws.path("valid.parquet")], columns=columns_for(app.segments)),
            scores,
            ws.start,
            ws.end,
            capacity=valid_rows,
        )
        _write(segments, ws.path("segments.parquet"))
        segment_rows = segments.num_rows
    metrics = aggregate_window(
        iter_parquet_batches([ws.path("valid.parquet")], columns=list(INFO_TRACE_COLUMNS)),
        iter_parquet_batches(ws.parts("fetched")),
        scores,
        app=app.name,
        interval_start=ws.start,
        interval_end=ws.end,
        prices=app.prices,
        quarantined=quarantined,
        run_id=run_id,
        extra_rows=drift,
        capacity=valid_rows,
    )
    path = _write(metrics, ws.path("metrics.parquet"))
    return {"path": str(path), "metrics": metrics.num_rows, "segment_metrics": segment_rows}


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
    metrics = _read(ws.path("metrics.parquet"), "aggregate")
    store = MetricsStore(ws.data_root)
    path = store.write_partition(metrics)
    if app.segments.dimensions:
        store.write_segments(_read(ws.path("segments.parquet"), "aggregate"), app=app.name, interval_start=ws.start)
    elif store.segments_path(app.name, ws.start).is_file():
        store.segments_path(app.name, ws.start).unlink()  # segments no longer configured: none stored
    run_id = log_interval_metrics(app, ws.start, metrics, HEADLINE_METRICS)
    return {"partition": str(path), "mlflow_run_id": run_id}


def alert(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """Stage 8: evaluate the alert rules; returns the notifications this interval must send."""
    from genai_flywheel.alerts import process_interval
    from genai_flywheel.metric_names import is_review_metric

    _, app, ws = _context(app_name, start, end, config)
    segments = None
    if any(rule.segment is not None for rule in app.alerts):
        from genai_flywheel.metrics import MetricsStore

        # The per-segment rules read the segment table the store stage wrote beside the partition.
        segments = MetricsStore(ws.data_root).read_segments(app.name, ws.start, ws.end)
    notifications = process_interval(
        ws.data_root,
        app.name,
        _read(ws.path("metrics.parquet"), "aggregate"),
        [rule for rule in app.alerts if not is_review_metric(rule.metric)],  # the review DAG's own
        ws.start,
        ws.end,
        timedelta(hours=app.notify.renotify_after_hours),
        segments=segments,
    )
    payloads = [n.to_dict() for n in notifications]
    return {"notifications": payloads, "firing": sum(1 for p in payloads if p.get("state") != "resolved")}


def watchdog(app_name: str, start: Any, end: Any, *, config: FlywheelConfig | None = None) -> dict:
    """The watchdog's check at ``end``: the ``kind: stale`` rules against the newest stored interval;
    returns the notifications to send (the same ones on a re-run of the check)."""
    from croniter import croniter

    from genai_flywheel.alerts.watchdog import check

    cfg, app, ws = _context(app_name, start, end, config)
    ticks = croniter(app.schedule, ws.end)
    later = ticks.get_prev(datetime)
    interval = later - ticks.get_prev(datetime)  # the monitor's interval length at this time
    notifications = check(
        ws.data_root,
        app.name,
        list(app.alerts),
        interval,
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
    out: dict[str, Any] = {"extract": extract(app_name, start, end, config=cfg)}  # every slice in turn
    out["validate"] = validate(app_name, start, end, config=cfg)
    out["sample"] = sample(app_name, start, end, config=cfg)
    out["score"] = [score_shard(app_name, start, end, s, judge=judge, config=cfg) for s in out["sample"]["shards"]]
    out["write_back"] = write_back(app_name, start, end, config=cfg)
    out["reference"] = reference(app_name, start, end, config=cfg)  # after write-back: see reference()
    out["aggregate"] = aggregate(app_name, start, end, config=cfg)
    out["store"] = store(app_name, start, end, config=cfg)
    out["alert"] = alert(app_name, start, end, config=cfg)
    return out
