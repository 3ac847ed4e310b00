"""Benchmark: the monitor pipeline's throughput and peak memory over one window, against
``mlflow.genai.evaluate`` running the same code scorers on the same traces.

Run ``make bench`` (or ``.venv/bin/python benchmarks/monitor.py --help``). Steps:

1. Write ``--n`` simulated traces into ONE daily monitor window of a fresh SQLite MLflow store with the
   bulk loader (benchmarks/bulkload.py; timed separately: writing is not part of the monitor's figures).
   ``--tracking-uri`` reuses a store instead, writing only if its window holds fewer than ``--n`` traces
   (through the simulator when the store is an ``http://`` server).
2. Run every monitor stage over that window, each task in a fresh process as Airflow runs it
   (benchmarks/stage.py; extract, validate, sample, score once per shard, write_back, aggregate, store,
   alert: the table ``STAGE_CALLS``), reading each process's wall time of the stage call and its peak RSS
   (``resource.getrusage``): the stage's own memory, not the high-water mark of the stages before it.
3. Run ``mlflow.genai.evaluate(data=<the window's first --baseline-n traces>, scorers=<the same scorer
   objects>)`` and time it from the call to its return. It runs at tens of rows/s, so it is measured on a
   subset and compared as a rate (traces/s).
4. Run the whole monitor in one process (``pipeline.run_monitor_interval``, what ``flywheel monitor``
   does) on a fresh copy of the traces, for its time and peak RSS.

On a SQLite store every run works on a copy of the traces store (``run.db``; ``whole.db`` for step 4): the
monitor writes its scores back onto the traces, and a later run would reuse them instead of scoring again,
so an untouched traces store makes every run a first run. ``--serve`` puts an ``mlflow server`` over that
copy and runs the stages against it over HTTP. An external ``http://`` store is used in place (re-runs are
flagged) and the whole monitor is not run on it (its store cannot be reset).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run as a script from a checkout without an installed package
    sys.path.insert(1, str(ROOT / "src"))
if str(ROOT) not in sys.path:  # benchmarks.* when run as a script
    sys.path.insert(1, str(ROOT))

from benchmarks.stage import STAGE_MODULES, peak_rss_kib  # noqa: E402
from genai_flywheel.config import DATA_ROOT_ENV, FlywheelConfig, load_config  # noqa: E402
from genai_flywheel.environ import scoped_environ  # noqa: E402

log = logging.getLogger(__name__)

EXPERIMENT = "flywheel-bench"
# A fixed window (not "now"), so the same arguments write the same traces and a kept store can be reused.
WINDOW_END = datetime(2026, 11, 20, tzinfo=UTC)
SCHEDULE = "0 0 * * *"  # daily: the simulated day is exactly one monitor interval
SEED = 11
GOAL_RATIO = 20.0
EVAL_WORKERS_ENV = "MLFLOW_GENAI_EVAL_MAX_WORKERS"  # mlflow/environment_variables.py in mlflow 3.17
DEFAULT_SQLITE_EVAL_WORKERS = 2  # evaluate's default of 10 exhausts SQLite connections and loses rows
STAGE_SCRIPT = Path(__file__).resolve().with_name("stage.py")
SERVER_WORKERS = 2  # --serve: the demo's mlflow server workers
DEFAULT_CEILING_ROWS = 2000  # against a server: bare log_feedback calls beside the write-back (~30 s)


def _once(config: FlywheelConfig, app_name: str, done: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{}]


def _per_shard(config: FlywheelConfig, app_name: str, done: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"shard": shard} for task in done["sample"] for shard in task["shards"]]


@dataclass(frozen=True)
class StageCall:
    """One monitor stage as the monitor DAG runs it: ``pipeline.<function>(app, start, end, **kwargs,
    config=...)`` once per kwargs that ``tasks(config, app_name, results so far)`` returns (a mapped stage:
    one task per shard or time slice), every task in a fresh process."""

    name: str
    function: str
    tasks: Callable[[FlywheelConfig, str, dict[str, list[dict[str, Any]]]], list[dict[str, Any]]] = _once


def _per_slice(config: FlywheelConfig, app_name: str, done: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"slice_index": k} for k in range(config.app(app_name).extract.slices)]


# The monitor's task calls, in order: the one place to change when a stage's signature does.
STAGE_CALLS = (
    StageCall("extract", "extract", _per_slice),
    StageCall("reference", "reference"),
    StageCall("validate", "validate"),
    StageCall("sample", "sample"),
    StageCall("score", "score_shard", _per_shard),
    StageCall("write_back", "write_back"),
    StageCall("aggregate", "aggregate"),
    StageCall("store", "store"),
    StageCall("alert", "alert"),
)
STAGES = tuple(call.name for call in STAGE_CALLS)
WHOLE_MONITOR = "run_monitor_interval"  # every stage in one process: what `flywheel monitor` runs


@dataclass(frozen=True)
class StageFigure:
    """One monitor stage (all its tasks, one after another, each in a fresh process): seconds of the stage
    calls, traces/s over the window, the peak RSS of its processes after their imports and at their end
    (the largest over its tasks), and the processes' whole wall time (interpreter, imports, call)."""

    stage: str
    seconds: float
    traces_per_s: float
    peak_rss_before_mb: float
    peak_rss_after_mb: float
    result: dict[str, Any] = field(default_factory=dict)
    tasks: int = 1
    process_seconds: float = 0.0
    imports_seconds: float = 0.0


@dataclass(frozen=True)
class WriteFigure:
    """Writing the benchmark's traces (not part of the monitor figures)."""

    tracking_uri: str
    in_window_before: int
    written: int
    seconds: float
    traces_per_s: float


@dataclass(frozen=True)
class CopyFigure:
    """``--postgres``: the traces store copied into a PostgreSQL database (benchmarks/pgcopy.py); not part
    of the monitor figures."""

    database: str
    rows: int
    seconds: float


@dataclass(frozen=True)
class CeilingFigure:
    """The server's own assessment-write ceiling, measured beside the write-back: a bare client loop of
    ``mlflow.log_feedback`` calls (benchmarks/writeback_server.py) on the write-back's thread count, against
    the same server right after the monitor."""

    rows: int
    threads: int
    seconds: float
    per_s: float


@dataclass(frozen=True)
class BaselineFigure:
    """``mlflow.genai.evaluate`` on the window's first ``requested`` traces with the same scorers."""

    requested: int
    rows: int
    lost: int
    scorers: list[str]
    seconds: float
    search_seconds: float
    traces_per_s: float
    max_workers: str
    peak_rss_after_mb: float
    compared: int = 0  # (trace, scorer) values present on both sides
    agreed: int = 0  # of which evaluate's value equals the monitor's


# --- measurement helpers ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB."""
    return peak_rss_kib() / 1024


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def run_stage_process(config_path: Path, app_name: str, function: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``pipeline.<function>`` over the benchmark window in a fresh process (benchmarks/stage.py); its figures
    plus ``process_seconds``, the child's whole wall time."""
    start, end = window()
    argv = [sys.executable, str(STAGE_SCRIPT), str(config_path), app_name, start.isoformat(), end.isoformat()]
    argv += [function, json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    process_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"stage {function}({kwargs}) failed with exit code {proc.returncode}:\n{proc.stderr[-4000:]}"
        )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "process_seconds": process_seconds}


def stage_figure(name: str, n: int, tasks: list[dict[str, Any]]) -> StageFigure:
    """One figure for the tasks of stage ``name`` (run one after another) over a window of ``n`` traces."""
    seconds = sum(t["seconds"] for t in tasks)
    results = [t["result"] for t in tasks]
    return StageFigure(
        stage=name,
        seconds=seconds,
        traces_per_s=_rate(n, seconds),
        peak_rss_before_mb=max(t["rss_before_kib"] for t in tasks) / 1024,
        peak_rss_after_mb=max(t["peak_rss_kib"] for t in tasks) / 1024,
        result=results[0] if len(results) == 1 else {"tasks": results, **_summed(results)},
        tasks=len(tasks),
        process_seconds=sum(t["process_seconds"] for t in tasks),
        imports_seconds=sum(t["imports_seconds"] for t in tasks),
    )


def _summed(results: list[dict[str, Any]]) -> dict[str, Any]:
    # Counts of a mapped stage's tasks, added up (e.g. the scores of every shard).
    keys = {k for r in results for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {k: sum(r.get(k, 0) for r in results) for k in sorted(keys)}


# --- setup ------------------------------------------------------------------------------------------------


def window(end: datetime = WINDOW_END) -> tuple[datetime, datetime]:
    """The benchmark's one monitor interval: the simulated day ending at ``end``."""
    return end - timedelta(days=1), end


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


def copy_sqlite_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite MLflow store (the backup API, so a journal or WAL is included)."""
    if not source.is_file():
        raise FileNotFoundError(f"SQLite store {source} does not exist; check --tracking-uri")
    target.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def write_config(
    path: Path, tracking_uri: str, data_root: Path, *, sample_rate: float | None, schedule: str | None = SCHEDULE
) -> FlywheelConfig:
    """The repository's flywheel.yaml for the simulated app, pointed at ``tracking_uri``: code scorers only,
    the monitor ``schedule`` (default one daily interval), base sampling rate ``sample_rate`` (exactly: no
    ``min_traces``; the logic of tests/integration/conftest.py). ``None`` keeps the repository's sampling
    rate or schedule."""
    from genai_flywheel.scoring.registry import JUDGES

    cfg = yaml.safe_load((ROOT / "flywheel.yaml").read_text())
    app = cfg["applications"][0]
    app["mlflow"] = {"tracking_uri": tracking_uri, "experiment": EXPERIMENT}
    # LLM judges need an endpoint and would measure its latency, not the pipeline's.
    app["scorers"] = [s for s in app["scorers"] if s.get("ref") or s["name"] not in JUDGES]
    if schedule is not None:
        app["schedule"] = schedule
    if sample_rate is not None:
        # The rate asked for, exactly: min_traces would raise it in a small benchmark window.
        app.setdefault("sampling", {}).update(rate=sample_rate, min_traces=0)
    cfg["data_root"] = str(data_root)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(path)


def traces_in_window(tracking_uri: str, experiment: str, start: datetime, end: datetime) -> int:
    """How many traces ``experiment`` holds in [start, end); 0 when the experiment does not exist."""
    from mlflow import MlflowClient

    from genai_flywheel.traces.extract import iter_window_traces
    from genai_flywheel.workspace import to_ms

    exp = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    if exp is None:
        return 0
    window = iter_window_traces(tracking_uri, exp.experiment_id, to_ms(start), to_ms(end), include_spans=False)
    return sum(1 for _ in window)


def ensure_traces(
    tracking_uri: str, n: int, *, artifact_root: Path | None = None, progress: bool = True
) -> WriteFigure:
    """Make the benchmark window of ``tracking_uri`` hold ``n`` simulated traces, timing the write.

    Skips writing when the window already holds ``n`` or more (a reused store). A SQLite store is filled
    by the bulk loader (benchmarks/bulkload.py), a server through the simulator (``log_spans`` over HTTP).
    Both skip traces already written, so an interrupted earlier write is resumed, not duplicated.
    """
    from mlflow import MlflowClient

    from benchmarks.bulkload import bulkload
    from flywheel_demo.simulate import simulate

    start, end = window()
    present = traces_in_window(tracking_uri, EXPERIMENT, start, end)
    if present >= n:
        log.info("window already holds %d traces (>= %d): not writing", present, n)
        return WriteFigure(tracking_uri, present, 0, 0.0, 0.0)
    if sqlite_path(tracking_uri) is not None:
        loaded = bulkload(
            tracking_uri,
            EXPERIMENT,
            traces_per_day=n,
            end=end,
            seed=SEED,
            artifact_location=artifact_root,
            progress=progress,
        )
        return WriteFigure(tracking_uri, present, loaded.n_written, loaded.seconds, loaded.traces_per_second)
    client = MlflowClient(tracking_uri)
    if artifact_root is not None and client.get_experiment_by_name(EXPERIMENT) is None:
        # Otherwise MLflow puts run artifacts under ./mlruns of whatever directory the benchmark runs in.
        client.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())
    result = simulate(tracking_uri, EXPERIMENT, days=1, traces_per_day=n, end=end, seed=SEED, progress=progress)
    return WriteFigure(tracking_uri, present, result.n_written, result.write_seconds, result.traces_per_second)


# --- the two measurements ---------------------------------------------------------------------------------


def run_monitor(config: FlywheelConfig, config_path: Path, app_name: str, n: int) -> list[StageFigure]:
    """Every call of ``STAGE_CALLS`` over the benchmark window, in order, each task in a fresh process;
    one figure per stage (``n``: the window's traces, for the rates)."""
    done: dict[str, list[dict[str, Any]]] = {}
    figures = []
    for call in STAGE_CALLS:
        tasks = [
            run_stage_process(config_path, app_name, call.function, kwargs)
            for kwargs in call.tasks(config, app_name, done)
        ]
        done[call.name] = [t["result"] for t in tasks]
        figure = stage_figure(call.name, n, tasks)
        log.info(
            "%s: %.2f s (%.0f traces/s), peak RSS %.0f MB",
            call.name,
            figure.seconds,
            figure.traces_per_s,
            figure.peak_rss_after_mb,
        )
        figures.append(figure)
    return figures


def run_whole_monitor(config_path: Path, app_name: str, n: int) -> StageFigure:
    """``pipeline.run_monitor_interval`` (every stage in one process, as ``flywheel monitor``) in a fresh
    process: its seconds and its peak RSS."""
    figure = stage_figure("monitor in one process", n, [run_stage_process(config_path, app_name, WHOLE_MONITOR, {})])
    log.info("whole monitor: %.2f s, peak RSS %.0f MB", figure.seconds, figure.peak_rss_after_mb)
    return figure


def measure_ceiling(tracking_uri: str, rows: int, threads: int) -> CeilingFigure:
    """``rows`` bare ``mlflow.log_feedback`` calls on ``threads`` threads against the server at
    ``tracking_uri``, spread over the window's first traces (the HTTP pool sized to the threads, as
    ``write_back`` does): assessments per second."""
    from mlflow import MlflowClient

    from benchmarks.writeback_server import bare_loop
    from genai_flywheel.mlflow_compat import size_http_pool, use_tracking_uri
    from genai_flywheel.traces.extract import iter_window_traces
    from genai_flywheel.workspace import to_ms

    start, end = window()
    exp = MlflowClient(tracking_uri).get_experiment_by_name(EXPERIMENT).experiment_id
    traces = iter_window_traces(tracking_uri, exp, to_ms(start), to_ms(end), include_spans=False)
    ids = [t.info.trace_id for _, t in zip(range(200), traces, strict=False)]
    size_http_pool(threads)
    with use_tracking_uri(tracking_uri):
        t0 = time.perf_counter()
        bare_loop(ids, rows, threads, "bench-ceiling")
        seconds = time.perf_counter() - t0
    figure = CeilingFigure(rows, threads, seconds, _rate(rows, seconds))
    log.info("bare client ceiling: %d assessments in %.1f s (%.0f/s)", rows, seconds, figure.per_s)
    return figure


@contextlib.contextmanager
def serving(backend_uri: str, home: Path) -> Iterator[str]:
    """An ``mlflow server`` over ``backend_uri`` on a free loopback port (the demo's service supervisor);
    yields its ``http://`` URI and stops it on exit."""
    from benchmarks.bulkload import demo_services

    stack = demo_services.Stack(
        project=ROOT, home=home, mlflow_port=demo_services.free_port(), mlflow_backend_uri=backend_uri
    )
    db = sqlite_path(backend_uri)
    if db is not None:  # two server workers write to it: readers must not block the writer
        demo_services.sqlite_wal(db)
    # The demo's 2 workers (what writeback_server.py measured the ceiling with); no server-side job runners,
    # which would only compete for the CPUs.
    uri = demo_services.start_mlflow(
        stack, workers=SERVER_WORKERS, extra_env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, timeout_s=300
    )
    try:
        yield uri
    finally:
        demo_services.stop(stack, "mlflow")


def monitor_scores(config: FlywheelConfig, app_name: str) -> dict[tuple[str, str], Any]:
    """(trace id, scorer) -> the value the monitor computed (decoded), from the window's shard files."""
    import pyarrow.parquet as pq

    from genai_flywheel.workspace import IntervalWorkspace

    start, end = window()
    ws = IntervalWorkspace.of(config.data_path(), app_name, start, end)
    out: dict[tuple[str, str], Any] = {}
    for path in sorted(ws.path("scores").glob("shard=*.parquet")):
        for row in pq.read_table(path, columns=["trace_id", "scorer", "value"]).to_pylist():
            if row["value"] is not None:
                out[(row["trace_id"], row["scorer"])] = json.loads(row["value"])
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b) and type(a) is type(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= 1e-9
    return a == b


def agreement(result_df: Any, expected: dict[tuple[str, str], Any], scorers: list[str]) -> tuple[int, int]:
    """(compared, agreed): how many of evaluate's ``<scorer>/value`` cells have a monitor value for the
    same trace and scorer, and how many of those are equal, i.e. whether both did the same work."""
    import math

    compared = agreed = 0
    if result_df is None:
        return 0, 0
    for row in result_df.to_dict(orient="records"):
        for name in scorers:
            got = row.get(f"{name}/value")
            want = expected.get((row.get("trace_id"), name))
            if got is None or want is None or (isinstance(got, float) and math.isnan(got)):
                continue
            compared += 1
            agreed += _same(_plain(got), want)
    return compared, agreed


def _plain(value: Any) -> Any:
    # pandas hands back numpy scalars (numpy.bool_, numpy.float64): compare them as Python values.
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def run_baseline(
    config: FlywheelConfig, app_name: str, baseline_n: int, *, max_workers: int | None = None
) -> BaselineFigure:
    """``mlflow.genai.evaluate`` over the window's first ``baseline_n`` traces with the app's scorers.

    Only the ``evaluate`` call is timed (not the search that fetches the traces). On a SQLite store the
    worker count defaults to 2: with MLflow's default of 10, evaluate loses rows there.
    """
    import mlflow
    import mlflow.genai  # imported before the timer: its first import takes seconds

    from genai_flywheel.evaluation.run import tracking
    from genai_flywheel.scoring import load_scorers
    from genai_flywheel.traces.extract import get_experiment_id, window_filter
    from genai_flywheel.workspace import to_ms

    app = config.app(app_name)
    uri = app.mlflow.tracking_uri
    start, end = window()
    exp_id = get_experiment_id(uri, app.mlflow.experiment)
    loaded = load_scorers(app)
    if max_workers is None and sqlite_path(uri) is not None and EVAL_WORKERS_ENV not in os.environ:
        max_workers = DEFAULT_SQLITE_EVAL_WORKERS
    with tracking(uri, max_workers=max_workers):
        t0 = time.perf_counter()
        traces_df = mlflow.search_traces(
            locations=[exp_id],
            filter_string=window_filter(to_ms(start), to_ms(end)),
            max_results=baseline_n,
            order_by=["timestamp_ms ASC", "request_id ASC"],
            return_type="pandas",
        )
        search_seconds = time.perf_counter() - t0
        workers = os.environ.get(EVAL_WORKERS_ENV, "mlflow default")
        with mlflow.start_run(experiment_id=exp_id, run_name="flywheel-bench-baseline"):
            t0 = time.perf_counter()
            result = mlflow.genai.evaluate(data=traces_df, scorers=[s.scorer for s in loaded])
            seconds = time.perf_counter() - t0
    rss_after = peak_rss_mb()
    rows = 0 if result.result_df is None else len(result.result_df)
    requested = len(traces_df)
    if rows < requested:
        log.warning(
            "mlflow.genai.evaluate returned %d of %d rows; set %s=1 on a SQLite store",
            rows,
            requested,
            EVAL_WORKERS_ENV,
        )
    names = [s.name for s in loaded]
    compared, agreed = agreement(result.result_df, monitor_scores(config, app_name), names)
    return BaselineFigure(
        requested=requested,
        rows=rows,
        lost=requested - rows,
        scorers=names,
        seconds=seconds,
        search_seconds=search_seconds,
        traces_per_s=_rate(rows, seconds),
        max_workers=workers,
        peak_rss_after_mb=rss_after,
        compared=compared,
        agreed=agreed,
    )


# --- report -----------------------------------------------------------------------------------------------


def summarize(
    n: int,
    stages: list[StageFigure],
    baseline: BaselineFigure | None,
    write: WriteFigure | None,
    *,
    imports_seconds: float = 0.0,
    whole: StageFigure | None = None,
    tracking_uri: str = "",
    backend_store: str = "",
    copies: list[CopyFigure] | None = None,
    ceiling: CeilingFigure | None = None,
) -> dict[str, Any]:
    """The benchmark's figures as one JSON-able dict (what ``--json`` writes). ``backend_store``: the
    database behind ``tracking_uri`` when it is a server the benchmark started."""
    total = sum(s.seconds for s in stages)
    combined = _rate(n, total)
    # write_back is bound by the store's per-assessment writes, not by the pipeline's own work.
    seconds_without_write_back = sum(s.seconds for s in stages if s.stage != "write_back")
    without_write_back = _rate(n, seconds_without_write_back)
    write_back = next((s for s in stages if s.stage == "write_back"), None)
    written = int(write_back.result.get("written", 0)) if write_back else 0
    ratio = combined / baseline.traces_per_s if baseline and baseline.traces_per_s > 0 else None
    score = next((s for s in stages if s.stage == "score"), None)
    reused = next((s.result.get("already_present", 0) for s in stages if s.stage == "write_back"), 0)
    return {
        "n": n,
        "stages": [asdict(s) for s in stages],
        "monitor_seconds": total,
        "monitor_traces_per_s": combined,
        "monitor_traces_per_s_excluding_write_back": without_write_back,
        "monitor_seconds_excluding_write_back": seconds_without_write_back,
        "write_back_written": written,
        "write_back_per_s": _rate(written, write_back.seconds) if write_back else 0.0,
        "ceiling": asdict(ceiling) if ceiling else None,
        "store_copies": [asdict(c) for c in copies or []],
        "backend_store": backend_store,
        "scores_computed": int(score.result.get("scores", 0)) if score else 0,
        "scores_reused": int(reused),
        "peak_rss_mb": max((s.peak_rss_after_mb for s in stages), default=peak_rss_mb()),
        "rss_before_monitor_mb": min((s.peak_rss_before_mb for s in stages), default=None),
        "imports_seconds": imports_seconds,
        "stage_imports_seconds": sum(s.imports_seconds for s in stages),
        "whole_monitor": asdict(whole) if whole else None,
        "tracking_uri": tracking_uri,
        "baseline": asdict(baseline) if baseline else None,
        "baseline_traces_per_s": baseline.traces_per_s if baseline else None,
        "ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio is not None and ratio >= GOAL_RATIO,
        "write": asdict(write) if write else None,
    }


def format_report(summary: dict[str, Any]) -> str:
    """The printed table and headline lines of ``summary``."""
    n = summary["n"]
    uri = summary.get("tracking_uri", "")
    where = f" against {uri}" if uri.startswith("http") else (" on PostgreSQL" if uri.startswith("postgresql") else "")
    if summary.get("backend_store"):
        where += f" (on {summary['backend_store'].split(':', 1)[0]})"
    lines = [f"monitor over one window of N = {n} traces{where} (every task in a fresh process, in turn)", ""]
    head = f"{'stage':<24}{'tasks':>6}{'seconds':>10}{'traces/s':>11}{'RSS after imports MB':>22}{'peak RSS MB':>13}"
    lines.append(head + f"{'process s':>11}")

    def row(s: dict[str, Any]) -> str:
        return (
            f"{s['stage']:<24}{s['tasks']:>6}{s['seconds']:>10.2f}{s['traces_per_s']:>11.0f}"
            f"{s['peak_rss_before_mb']:>22.0f}{s['peak_rss_after_mb']:>13.0f}{s['process_seconds']:>11.1f}"
        )

    for s in summary["stages"]:
        lines.append(row(s))
    lines.append(
        f"{'monitor (sum of stages)':<24}{sum(s['tasks'] for s in summary['stages']):>6}"
        f"{summary['monitor_seconds']:>10.2f}{summary['monitor_traces_per_s']:>11.0f}{'':>22}"
        f"{summary['peak_rss_mb']:>13.0f}{sum(s['process_seconds'] for s in summary['stages']):>11.1f}"
    )
    if summary.get("whole_monitor"):
        lines.append(row(summary["whole_monitor"]))
    lines.append("")
    lines.append(f"N:                         {n}")
    lines.append(f"scores computed:           {summary['scores_computed']}")
    if summary["scores_reused"]:
        lines.append(
            f"WARNING: {summary['scores_reused']} scores were already on the traces from an earlier "
            "run: score and write_back measured a re-run"
        )
    lines.append(
        f"peak RSS:                  {summary['peak_rss_mb']:.0f} MB, the largest stage "
        f"(a stage process after its imports: {summary['rss_before_monitor_mb'] or 0:.0f} MB)"
    )
    if summary.get("whole_monitor"):
        lines.append(f"whole monitor, one process: peak RSS {summary['whole_monitor']['peak_rss_after_mb']:.0f} MB")
    lines.append(
        f"imports:                   {summary['stage_imports_seconds']:.1f} s over the stage processes "
        "(once per task, as in Airflow; not in the figures)"
    )
    lines.append(
        f"monitor combined:          {summary['monitor_traces_per_s']:.0f} traces/s "
        f"(N / {summary['monitor_seconds']:.2f} s, sum of stages)"
    )
    lines.append(
        f"  excluding write_back:    {summary['monitor_traces_per_s_excluding_write_back']:.0f} traces/s "
        f"({summary['monitor_seconds_excluding_write_back']:.2f} s; informational: write_back is bound by the "
        "tracking store's writes)"
    )
    lines.append(
        f"write_back:                {summary['write_back_written']} assessments, {summary['write_back_per_s']:.0f}/s"
    )
    c = summary.get("ceiling")
    if c:
        lines.append(
            f"  bare client beside it:   {c['per_s']:.0f}/s ({c['rows']} log_feedback calls on {c['threads']} "
            f"threads in {c['seconds']:.1f} s: the server's own ceiling)"
        )
    for copy in summary.get("store_copies") or []:
        lines.append(
            f"store copy (not timed above): {copy['rows']} rows into PostgreSQL database {copy['database']} "
            f"in {copy['seconds']:.1f} s"
        )
    b = summary["baseline"]
    if b:
        lost = f", {b['lost']} LOST" if b["lost"] else ""
        lines.append(
            f"baseline (genai.evaluate): {b['traces_per_s']:.1f} traces/s ({b['rows']} of "
            f"{b['requested']} rows{lost} in {b['seconds']:.2f} s, workers={b['max_workers']}; "
            "a rate measured on a subset)"
        )
        lines.append(f"  same values as monitor:  {b['agreed']} of {b['compared']} (trace, scorer) values")
        lines.append(
            f"ratio monitor / baseline:  {summary['ratio']:.1f}x"
            if summary["ratio"] is not None
            else "ratio monitor / baseline:  n/a"
        )
        verdict = "MET" if summary["goal_met"] else "NOT MET"
        lines.append(f"goal (ratio >= {summary['goal_ratio']:.0f}):         {verdict}")
    else:
        lines.append("baseline: skipped")
    w = summary["write"]
    if w:
        lines.append(
            f"trace write (not timed above): {w['written']} written in {w['seconds']:.1f} s "
            f"({w['traces_per_s']:.0f} traces/s); {w['in_window_before']} already in the window"
        )
    return "\n".join(lines)


# --- the whole run ------------------------------------------------------------------------------------------


def run_benchmark(
    *,
    n: int,
    baseline_n: int,
    workdir: Path,
    tracking_uri: str | None = None,
    sample_rate: float = 1.0,
    baseline_workers: int | None = None,
    progress: bool = True,
    serve: bool = False,
    whole: bool = True,
    postgres: bool = False,
    ceiling_rows: int = DEFAULT_CEILING_ROWS,
) -> dict[str, Any]:
    """Write (or reuse) the traces, run the monitor stages, the baseline, then the whole monitor in one
    process; return :func:`summarize`. ``serve``: run them against an ``mlflow server`` over the copy.
    ``postgres``: the copy is a database of a throw-away PostgreSQL cluster instead of a SQLite file.
    ``ceiling_rows``: against a server, that many bare ``log_feedback`` calls after the stages (0: none)."""
    if n < 1 or baseline_n < 0 or ceiling_rows < 0:
        raise ValueError(f"need n >= 1, baseline_n >= 0 and ceiling_rows >= 0, got {n}, {baseline_n}, {ceiling_rows}")
    workdir.mkdir(parents=True, exist_ok=True)
    source_uri = tracking_uri or f"sqlite:///{(workdir / 'traces.db').resolve()}"
    src_db = sqlite_path(source_uri)
    if (serve or postgres) and src_db is None:
        option = "--serve" if serve else "--postgres"
        raise ValueError(f"{option} needs a SQLite store to copy, got --tracking-uri {source_uri}; drop {option}")
    t0 = time.perf_counter()
    # The baseline runs in this process: its imports (great_expectations alone takes seconds) come first.
    for module in STAGE_MODULES:
        importlib.import_module(module)
    imports_seconds = time.perf_counter() - t0
    artifacts = workdir / "artifacts" if src_db is not None else None  # a server keeps its own artifacts
    write = ensure_traces(source_uri, n, artifact_root=artifacts, progress=progress)
    from benchmarks.bulkload import demo_services
    from genai_flywheel.traces.writeback import HTTP_WORKERS

    services = contextlib.ExitStack()
    pg = services.enter_context(demo_services.throwaway_postgres(())) if postgres else None
    copies: list[CopyFigure] = []
    backends: dict[str, str] = {}  # served URI -> the store behind it

    @contextlib.contextmanager
    def fresh_run_store(name: str) -> Iterator[str]:
        # A copy of the traces store (see the module docstring), served over HTTP with --serve.
        if src_db is None:
            yield source_uri
            return
        run_db = workdir / name
        if pg is None:
            copy_sqlite_store(src_db, run_db)
            run_uri = f"sqlite:///{run_db.resolve()}"
        else:
            run_uri = copy_to_postgres(source_uri, pg, run_db.stem, copies)
        if not serve:
            yield run_uri
            return
        with serving(run_uri, workdir / f"server-{run_db.stem}") as http_uri:
            backends[http_uri] = run_uri
            yield http_uri

    start, end = window()
    with services:
        with fresh_run_store("run.db") as run_uri:
            n_window = traces_in_window(run_uri, EXPERIMENT, start, end)
            if n_window != n:
                log.warning("the window holds %d traces, not --n %d: figures use %d", n_window, n, n_window)
            config, config_path, data_root = _bench_config(workdir, "data", run_uri, sample_rate)
            app_name = config.applications[0].name
            with scoped_environ({DATA_ROOT_ENV: str(data_root)}):  # the config's data root, whatever the env says
                stages = run_monitor(config, config_path, app_name, n_window)
                ceiling = (
                    measure_ceiling(run_uri, ceiling_rows, HTTP_WORKERS)
                    if ceiling_rows and run_uri.startswith(("http://", "https://"))
                    else None
                )
                baseline = (
                    run_baseline(config, app_name, min(baseline_n, n_window), max_workers=baseline_workers)
                    if baseline_n
                    else None
                )
        whole_figure = None
        if whole and src_db is not None:  # an external server cannot be reset to a first run
            with fresh_run_store("whole.db") as whole_uri:
                _, config_path, data_root = _bench_config(workdir, "data-whole", whole_uri, sample_rate)
                with scoped_environ({DATA_ROOT_ENV: str(data_root)}):
                    whole_figure = run_whole_monitor(config_path, app_name, n_window)
    return summarize(
        n_window,
        stages,
        baseline,
        write,
        imports_seconds=imports_seconds,
        whole=whole_figure,
        tracking_uri=run_uri,
        backend_store=backends.get(run_uri, ""),
        copies=copies,
        ceiling=ceiling,
    )


def copy_to_postgres(source_uri: str, pg: Any, database: str, copies: list[CopyFigure]) -> str:
    """A fresh database ``database`` of the cluster ``pg`` holding the rows of the SQLite store
    ``source_uri`` (benchmarks/pgcopy.py); its URI. The copy's figure is appended to ``copies``."""
    from benchmarks.pgcopy import copy_store

    pg.create_databases((database,), replace=True)
    uri = pg.uri(database)
    copied = copy_store(source_uri, uri)
    copies.append(CopyFigure(database, sum(copied.rows.values()), copied.seconds))
    log.info(
        "copied the store into PostgreSQL database %s: %d rows in %.1f s", database, copies[-1].rows, copied.seconds
    )
    return uri


def _bench_config(workdir: Path, data: str, run_uri: str, sample_rate: float) -> tuple[FlywheelConfig, Path, Path]:
    # A config (and its file, for the stage processes) over a clean data root.
    data_root = workdir / data
    shutil.rmtree(data_root, ignore_errors=True)
    path = workdir / f"flywheel-{data}.yaml"
    return write_config(path, run_uri, data_root, sample_rate=sample_rate), path, data_root


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(
        description="Throughput and peak memory of the monitor pipeline vs mlflow.genai.evaluate."
    )
    p.add_argument("--n", type=int, default=20_000, help="traces in the monitor window (default 20000)")
    p.add_argument(
        "--baseline-n",
        type=int,
        default=500,
        help="traces mlflow.genai.evaluate scores (a rate is compared; 0 skips it; default 500)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="reuse this store (writing only if its window holds < N traces); default: a fresh "
        "SQLite store in a temp dir",
    )
    p.add_argument(
        "--sample-rate",
        type=float,
        default=1.0,
        help="monitor base sampling rate; 1.0 scores every trace with every scorer, as the baseline does (default 1.0)",
    )
    p.add_argument(
        "--baseline-workers",
        type=int,
        default=None,
        help=f"{EVAL_WORKERS_ENV} for the baseline (default {DEFAULT_SQLITE_EVAL_WORKERS} on SQLite)",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="run the stages against an `mlflow server` started over the SQLite store on a free loopback port",
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="copy the SQLite store into a throw-away PostgreSQL cluster (benchmarks/pgcopy.py) and run against "
        "it: directly (postgresql+psycopg2://), or with --serve through an `mlflow server` on it",
    )
    p.add_argument(
        "--ceiling-rows",
        type=int,
        default=DEFAULT_CEILING_ROWS,
        help="against a server: bare log_feedback calls after the stages, the server's own assessment-write "
        f"ceiling beside the write-back's rate (0 skips; default {DEFAULT_CEILING_ROWS})",
    )
    p.add_argument(
        "--no-whole",
        dest="whole",
        action="store_false",
        help="skip the whole monitor in one process (a second copy of the store and a second monitor run)",
    )
    p.add_argument("--workdir", type=Path, default=None, help="working directory (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the working directory (traces store, stage files)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error(f"--n must be >= 1, got {args.n}")
    if args.baseline_n < 0:
        p.error(f"--baseline-n must be >= 0, got {args.baseline_n}")
    if not 0.0 < args.sample_rate <= 1.0:
        p.error(f"--sample-rate must be in (0, 1], got {args.sample_rate}")
    if args.ceiling_rows < 0:
        p.error(f"--ceiling-rows must be >= 0, got {args.ceiling_rows}")
    if args.serve and args.tracking_uri and not args.tracking_uri.startswith("sqlite:///"):
        p.error(f"--serve serves a SQLite store; --tracking-uri {args.tracking_uri} is already a server")
    if args.postgres and args.tracking_uri and not args.tracking_uri.startswith("sqlite:///"):
        p.error(f"--postgres copies a SQLite store; --tracking-uri {args.tracking_uri} is not one")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; exits 0 whether or not the goal is met (a measurement)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
    try:
        summary = run_benchmark(
            n=args.n,
            baseline_n=args.baseline_n,
            workdir=workdir,
            tracking_uri=args.tracking_uri,
            sample_rate=args.sample_rate,
            baseline_workers=args.baseline_workers,
            progress=not args.quiet,
            serve=args.serve,
            whole=args.whole,
            postgres=args.postgres,
            ceiling_rows=args.ceiling_rows,
        )
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(format_report(summary))
    if args.keep or args.workdir is not None:
        print(
            f"working directory kept: {workdir} (traces store: sqlite:///{workdir.resolve()}/traces.db)"
            if args.tracking_uri is None
            else f"working directory kept: {workdir}"
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
