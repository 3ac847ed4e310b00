"""Benchmark: the monitor pipeline's throughput and peak memory over one window, against
``mlflow.genai.evaluate`` running the same code scorers on the same traces.

Run ``make bench`` (or ``.venv/bin/python benchmarks/monitor.py --help``). Steps:

1. Write ``--n`` simulated traces into ONE daily monitor window of a fresh SQLite MLflow store (timed
   separately: writing is not part of the monitor's figures). ``--tracking-uri`` reuses a store instead,
   writing only if its window holds fewer than ``--n`` traces.
2. Run every monitor stage in this process over that window (extract, validate, sample, score of every
   shard in turn, write_back, aggregate, store, alert), timing each and reading the process's peak RSS
   (``resource.getrusage``) after each.
3. Run ``mlflow.genai.evaluate(data=<the window's first --baseline-n traces>, scorers=<the same scorer
   objects>)`` and time it from the call to its return. It runs at tens of rows/s, so it is measured on a
   subset and compared as a rate (traces/s).

On a SQLite store both runs work on a copy of the traces store (``run.db``): the monitor writes its scores
back onto the traces, and a later run would reuse them instead of scoring again, so an untouched traces
store makes every run a first run. An ``http://`` store is used in place (re-runs are flagged).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run as a script from a checkout without an installed package
    sys.path.insert(1, str(ROOT / "src"))

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
# Everything the stages import lazily (see genai_flywheel.pipeline), imported before any timer starts.
STAGE_MODULES = (
    "genai_flywheel.pipeline",
    "genai_flywheel.traces.extract",
    "genai_flywheel.quality.contract",
    "genai_flywheel.traces.sampling",
    "genai_flywheel.scoring",
    "genai_flywheel.scoring.reuse",
    "genai_flywheel.traces.writeback",
    "genai_flywheel.metrics",
    "genai_flywheel.metrics.store",
    "genai_flywheel.monitoring_run",
    "genai_flywheel.alerts",
    "genai_flywheel.evaluation.run",
)
STAGES = ("extract", "validate", "sample", "score", "write_back", "aggregate", "store", "alert")


@dataclass(frozen=True)
class StageFigure:
    """One monitor stage: wall seconds, traces/s over the window, and the process's peak RSS around it."""

    stage: str
    seconds: float
    traces_per_s: float
    peak_rss_before_mb: float
    peak_rss_after_mb: float
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteFigure:
    """Writing the benchmark's traces (not part of the monitor figures)."""

    tracking_uri: str
    in_window_before: int
    written: int
    seconds: float
    traces_per_s: float


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
    """The process's peak resident set size so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def _timed(stage: str, n: int | None, fn: Callable[[], dict[str, Any]]) -> StageFigure:
    """Run ``fn`` as the stage ``stage``; ``n=None`` when the window's size is not known yet."""
    before = peak_rss_mb()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    figure = StageFigure(stage, seconds, _rate(n or 0, seconds), before, peak_rss_mb(), result)
    if n is None:
        log.info("%s: %.2f s", stage, seconds)
    else:
        log.info("%s: %.2f s (%.0f traces/s)", stage, seconds, figure.traces_per_s)
    return figure


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


def write_config(path: Path, tracking_uri: str, data_root: Path, *, sample_rate: float) -> FlywheelConfig:
    """The repository's flywheel.yaml for the simulated app, pointed at ``tracking_uri``: code scorers only,
    one daily interval, base sampling rate ``sample_rate`` (the logic of tests/integration/conftest.py)."""
    from genai_flywheel.scoring.registry import JUDGES

    cfg = yaml.safe_load((ROOT / "flywheel.yaml").read_text())
    app = cfg["applications"][0]
    app["mlflow"] = {"tracking_uri": tracking_uri, "experiment": EXPERIMENT}
    # LLM judges need an endpoint and would measure its latency, not the pipeline's.
    app["scorers"] = [s for s in app["scorers"] if s.get("ref") or s["name"] not in JUDGES]
    app["schedule"] = SCHEDULE
    app.setdefault("sampling", {})["rate"] = sample_rate
    cfg["data_root"] = str(data_root)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(path)


def traces_in_window(tracking_uri: str, experiment: str, start: datetime, end: datetime) -> int:
    """How many traces ``experiment`` holds in [start, end); 0 when the experiment does not exist."""
    from mlflow import MlflowClient

    from genai_flywheel.traces.extract import count_traces, window_filter
    from genai_flywheel.workspace import to_ms

    exp = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    if exp is None:
        return 0
    return count_traces(tracking_uri, exp.experiment_id, window_filter(to_ms(start), to_ms(end)))


def ensure_traces(
    tracking_uri: str, n: int, *, artifact_root: Path | None = None, progress: bool = True
) -> WriteFigure:
    """Make the benchmark window of ``tracking_uri`` hold ``n`` simulated traces, timing the write.

    Skips writing when the window already holds ``n`` or more (a reused store); the simulator is
    idempotent, so an interrupted earlier write is resumed, not duplicated.
    """
    from mlflow import MlflowClient

    from flywheel_demo.simulate import simulate

    start, end = window()
    present = traces_in_window(tracking_uri, EXPERIMENT, start, end)
    if present >= n:
        log.info("window already holds %d traces (>= %d): not writing", present, n)
        return WriteFigure(tracking_uri, present, 0, 0.0, 0.0)
    client = MlflowClient(tracking_uri)
    if artifact_root is not None and client.get_experiment_by_name(EXPERIMENT) is None:
        # Otherwise MLflow puts run artifacts under ./mlruns of whatever directory the benchmark runs in.
        client.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())
    result = simulate(tracking_uri, EXPERIMENT, days=1, traces_per_day=n, end=end, seed=SEED, progress=progress)
    return WriteFigure(tracking_uri, present, result.n_written, result.write_seconds, result.traces_per_second)


# --- the two measurements ---------------------------------------------------------------------------------


def run_monitor(config: FlywheelConfig, app_name: str) -> tuple[int, list[StageFigure]]:
    """Every monitor stage over the benchmark window, in order and in this process; returns
    (traces in the window, one figure per stage). The score figure covers every shard, run in turn."""
    from genai_flywheel import pipeline

    start, end = window()
    kw: dict[str, Any] = {"config": config}
    figures: list[StageFigure] = []
    # The window's size is only known after extract; its rate is filled in once it is.
    first = _timed("extract", None, lambda: pipeline.extract(app_name, start, end, **kw))
    n = int(first.result["traces"])
    figures.append(replace(first, traces_per_s=_rate(n, first.seconds)))
    figures.append(_timed("validate", n, lambda: pipeline.validate(app_name, start, end, **kw)))
    figures.append(_timed("sample", n, lambda: pipeline.sample(app_name, start, end, **kw)))
    shards = list(figures[-1].result["shards"])

    def score_all() -> dict[str, Any]:
        per_shard = []
        for shard in shards:
            t0 = time.perf_counter()
            out = pipeline.score_shard(app_name, start, end, shard, **kw)
            per_shard.append({**out, "seconds": round(time.perf_counter() - t0, 3)})
        return {
            "shards": per_shard,
            "scores": sum(s["scores"] for s in per_shard),
            "not_scored": sum(s["not_scored"] for s in per_shard),
        }

    figures.append(_timed("score", n, score_all))
    figures.append(_timed("write_back", n, lambda: pipeline.write_back(app_name, start, end, **kw)))
    figures.append(_timed("aggregate", n, lambda: pipeline.aggregate(app_name, start, end, **kw)))
    figures.append(_timed("store", n, lambda: pipeline.store(app_name, start, end, **kw)))
    figures.append(_timed("alert", n, lambda: pipeline.alert(app_name, start, end, **kw)))
    return n, figures


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
) -> dict[str, Any]:
    """The benchmark's figures as one JSON-able dict (what ``--json`` writes)."""
    total = sum(s.seconds for s in stages)
    combined = _rate(n, total)
    # write_back is bound by the store's per-assessment writes, not by the pipeline's own work.
    without_write_back = _rate(n, sum(s.seconds for s in stages if s.stage != "write_back"))
    ratio = combined / baseline.traces_per_s if baseline and baseline.traces_per_s > 0 else None
    score = next((s for s in stages if s.stage == "score"), None)
    reused = next((s.result.get("already_present", 0) for s in stages if s.stage == "write_back"), 0)
    return {
        "n": n,
        "stages": [asdict(s) for s in stages],
        "monitor_seconds": total,
        "monitor_traces_per_s": combined,
        "monitor_traces_per_s_excluding_write_back": without_write_back,
        "scores_computed": int(score.result.get("scores", 0)) if score else 0,
        "scores_reused": int(reused),
        "peak_rss_mb": max((s.peak_rss_after_mb for s in stages), default=peak_rss_mb()),
        "rss_before_monitor_mb": stages[0].peak_rss_before_mb if stages else None,
        "imports_seconds": imports_seconds,
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
    lines = [f"monitor over one window of N = {n} traces (every stage in-process, sequential)", ""]
    lines.append(f"{'stage':<12}{'seconds':>10}{'traces/s':>12}{'peak RSS MB':>14}")
    for s in summary["stages"]:
        lines.append(f"{s['stage']:<12}{s['seconds']:>10.2f}{s['traces_per_s']:>12.0f}{s['peak_rss_after_mb']:>14.0f}")
    lines.append(
        f"{'monitor':<12}{summary['monitor_seconds']:>10.2f}{summary['monitor_traces_per_s']:>12.0f}"
        f"{summary['peak_rss_mb']:>14.0f}"
    )
    lines.append("")
    lines.append(f"N:                         {n}")
    lines.append(f"scores computed:           {summary['scores_computed']}")
    if summary["scores_reused"]:
        lines.append(
            f"WARNING: {summary['scores_reused']} scores were already on the traces from an earlier "
            "run: score and write_back measured a re-run"
        )
    lines.append(
        f"peak RSS:                  {summary['peak_rss_mb']:.0f} MB "
        f"(after imports, before the monitor: {summary['rss_before_monitor_mb'] or 0:.0f} MB)"
    )
    lines.append(f"imports (one-off):         {summary['imports_seconds']:.1f} s (not in the figures)")
    lines.append(
        f"monitor combined:          {summary['monitor_traces_per_s']:.0f} traces/s "
        f"(N / {summary['monitor_seconds']:.2f} s, sum of stages)"
    )
    lines.append(
        f"  excluding write_back:    {summary['monitor_traces_per_s_excluding_write_back']:.0f} traces/s "
        "(informational: write_back is bound by the tracking store's writes)"
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
) -> dict[str, Any]:
    """Write (or reuse) the traces, run the monitor stages, then the baseline; return :func:`summarize`."""
    if n < 1 or baseline_n < 0:
        raise ValueError(f"need n >= 1 and baseline_n >= 0, got n={n}, baseline_n={baseline_n}")
    workdir.mkdir(parents=True, exist_ok=True)
    source_uri = tracking_uri or f"sqlite:///{(workdir / 'traces.db').resolve()}"
    t0 = time.perf_counter()
    # Imported up front so the first stage to touch each library does not carry its import time
    # (great_expectations alone takes several seconds); reported separately as a one-off cost.
    import great_expectations  # noqa: F401
    import mlflow
    import mlflow.genai  # noqa: F401

    # The stages' own lazy imports too: a long run must not fail at its last stage because a module
    # changed on disk meanwhile (or pay its import inside a timed stage).
    for module in STAGE_MODULES:
        importlib.import_module(module)

    imports_seconds = time.perf_counter() - t0
    src_db = sqlite_path(source_uri)
    artifacts = workdir / "artifacts" if src_db is not None else None  # a server keeps its own artifacts
    write = ensure_traces(source_uri, n, artifact_root=artifacts, progress=progress)

    run_uri = source_uri
    if src_db is not None:
        # Work on a copy: the traces store stays free of this run's scores (see the module docstring).
        run_db = workdir / "run.db"
        copy_sqlite_store(src_db, run_db)
        run_uri = f"sqlite:///{run_db.resolve()}"
    data_root = workdir / "data"
    shutil.rmtree(data_root, ignore_errors=True)
    config = write_config(workdir / "flywheel.yaml", run_uri, data_root, sample_rate=sample_rate)
    app_name = config.applications[0].name
    with scoped_environ({DATA_ROOT_ENV: str(data_root)}):  # the config's data root, whatever the caller's env says
        n_window, stages = run_monitor(config, app_name)
        if n_window != n:
            log.warning("the window holds %d traces, not --n %d: figures use %d", n_window, n, n_window)
        baseline = (
            run_baseline(config, app_name, min(baseline_n, n_window), max_workers=baseline_workers)
            if baseline_n
            else None
        )
    return summarize(n_window, stages, baseline, write, imports_seconds=imports_seconds)


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
