"""What the GenAI Quality page reads from the data root, as plain values (JSON-ready through ``to_json``).

Sources, all read-only and all optional (a missing one is an empty state, not an error):

* ``metrics/app=<app>/interval=<start>/part.parquet`` through ``MetricsStore``: the most recent
  ``intervals`` partitions only, so the page stays fast on a year of hourly data;
* ``alerts/app=<app>/state.json`` and ``events.parquet`` through ``AlertStore``: rules firing now (the
  state) and recent fired / resolved events (the event log);
* ``runs/app=<app>/interval=<start>/scores/shard=*.parquet``: rows whose ``error`` starts with
  ``skipped: judge budget`` are judge calls the per-run budget skipped (the metrics only hold
  ``scorer.<name>.errors``, which mixes every reason);
* ``metrics/app=<app>/interval=<start>/segments.parquet`` through ``MetricsStore.read_segments``: the worst
  segments of the latest interval with segment metrics and their baselines (the last 7 days), and one
  segment's history (:mod:`genai_flywheel.report.segments`);
* ``datasets/<name>/v<N>/manifest.json``: the newest committed version of each curated dataset of the app;
* ``evaluations/app=<app>/<run>/summary.json`` (+ ``gate.json``, ``eval_run.json``): development
  evaluations, newest first by the time their summary was written;
* ``review/metrics/app=<app>/...`` (the review DAG's ``calibration.*`` metrics, its newest interval only)
  and the newest ``review/app=<app>/<run>/disagreements.json``: the judge calibration.

A file that cannot be read is reported in ``problems`` (shown on the page) and its section is left out;
the rest of the page still renders. Metric partitions, the event log, dataset manifests and evaluation
summaries are read by the static report's loaders (:mod:`genai_flywheel.report.data`), the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import StoreError
from genai_flywheel.metrics.intervals import interval_label, iso
from genai_flywheel.report.charts import Point
from genai_flywheel.report.data import (
    finite,
    load_calibration,
    load_datasets,
    load_events,
    load_metrics,
    read_evaluation,
    read_json,
)

if TYPE_CHECKING:
    from genai_flywheel.config import Application
    from genai_flywheel.report.segments import WorstSegments

log = logging.getLogger(__name__)

DEFAULT_INTERVALS = 168  # a week of hourly intervals
MAX_INTERVALS = 2000  # each chart draws a hover column per interval: this bounds the page size
BUDGET_INTERVALS = 24  # how many recent intervals the judge-budget table covers
RECENT_EVENTS = 20
RECENT_EVALUATIONS = 10
BUDGET_ERROR_PREFIX = "skipped: judge budget"


@dataclass(frozen=True)
class BudgetRow:
    """Judge calls skipped by the per-run budget in one interval (``skipped`` None: no run files)."""

    interval_start: datetime
    interval_end: datetime
    skipped: int | None
    by_scorer: dict[str, int]
    scorer_errors: int | None  # sum of scorer.<name>.errors (every reason) from the metrics
    scored: int | None  # sum of scorer.<name>.n from the metrics

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "interval_start": iso(self.interval_start),
            "interval_end": iso(self.interval_end),
            "budget_skipped": self.skipped,
            "budget_skipped_by_scorer": dict(sorted(self.by_scorer.items())),
            "scorer_errors": self.scorer_errors,
            "scored": self.scored,
        }


@dataclass(frozen=True)
class AppView:
    """Everything the page shows about one application."""

    app: Application
    total_intervals: int
    intervals: tuple[tuple[datetime, datetime], ...]  # the charted window, ascending
    metrics: dict[str, tuple[Point, ...]]
    events: tuple[dict[str, Any], ...]
    rules: tuple[dict[str, Any], ...]
    firing: tuple[dict[str, Any], ...]
    budget: tuple[BudgetRow, ...]
    datasets: tuple[dict[str, Any], ...]
    evaluations: tuple[dict[str, Any], ...]
    problems: tuple[str, ...] = field(default=())
    calibration: dict[str, tuple[Point, ...]] = field(default_factory=dict)  # the newest review interval's
    disagreements: tuple[dict[str, Any], ...] = ()
    segments: WorstSegments | None = None  # None: the application declares no segment dimension

    @property
    def name(self) -> str:
        """The application name."""
        return self.app.name

    def recent_events(self, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
        """Fired and resolved events, newest first."""
        return notable_events(self.events, limit)

    def budget_skipped(self) -> int | None:
        """Budget-skipped judge calls over the recent intervals that have run files (None: no files)."""
        known = [row.skipped for row in self.budget if row.skipped is not None]
        return sum(known) if known else None


def clamp_intervals(value: int | None) -> int:
    """How many recent intervals to chart: ``value`` bounded to 1..MAX_INTERVALS (default a week)."""
    if value is None:
        return DEFAULT_INTERVALS
    return max(1, min(MAX_INTERVALS, int(value)))


def window_starts(data_root: Path, app: str, intervals: int) -> tuple[int, list[datetime]]:
    """(number of stored intervals, the starts of the most recent ``intervals`` of them)."""
    from genai_flywheel.metrics import MetricsStore

    starts = MetricsStore(data_root).intervals(app)  # directory names only: cheap
    return len(starts), starts[-intervals:]


def read_points(
    data_root: Path, app: str, start: datetime | None, metrics: list[str] | None = None
) -> tuple[tuple[tuple[datetime, datetime], ...], dict[str, tuple[Point, ...]]]:
    """Intervals and points of every (or each named) metric of ``app`` from ``start`` on (none without a
    ``start``: no interval is stored yet)."""
    if start is None:
        return (), {}
    return load_metrics(data_root, app, start=start, metrics=metrics)


def read_events(data_root: Path, app: str) -> tuple[dict[str, Any], ...]:
    """The alert event log of ``app``, sorted by (interval_start, rule); empty when never alerted."""
    return load_events(data_root, app)


def notable_events(events: tuple[dict[str, Any], ...], limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    """The latest ``limit`` fired and resolved events of an ascending event log, newest first (every
    interval of a long episode is a ``still_firing`` event; those would crowd out the transitions)."""
    notable = [e for e in events if e["kind"] in ("fired", "resolved")]
    return list(reversed(notable))[:limit]


def alert_rules(app: Application, statuses: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Configured rules with their status now (``not evaluated`` before the first alert stage)."""
    from genai_flywheel.alerts.state import rule_status

    rows = []
    for rule in app.alerts:
        status = rule_status(dict(statuses), rule.name)  # a per-segment rule: firing while a segment fires
        rows.append(
            {
                "rule": rule.name,
                "metric": rule.metric,
                "op": rule.op,
                "threshold": rule.threshold,
                "min_samples": rule.min_samples,
                "severity": rule.severity,
                "status": status.status if status is not None else "not evaluated",
                "since": iso(status.since) if status is not None and status.since else None,
            }
        )
    return rows


def firing_now(statuses: Mapping[str, Any], events: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Rules firing after the latest recorded interval, with their latest evaluation from the event log."""
    from genai_flywheel.alerts.rules import state_key

    latest: dict[str, dict[str, Any]] = {}
    for e in events:  # ascending: the last one seen per rule (or rule and segment) is the latest
        latest[state_key(e["rule"], e.get("dimension"), e.get("segment"))] = e
    out = []
    for rule in sorted(r for r, s in statuses.items() if s.status == "firing"):
        e = latest.get(rule, {})
        since = statuses[rule].since
        out.append(
            {
                "rule": rule,
                "metric": e.get("metric"),
                "severity": e.get("severity"),
                "op": e.get("op"),
                "threshold": e.get("threshold"),
                "since": since,
                "value": finite(e.get("value")),
                "ci_low": finite(e.get("ci_low")),
                "ci_high": finite(e.get("ci_high")),
                "n": e.get("n"),
                "interval_start": e.get("interval_start"),
                "interval_end": e.get("interval_end"),
                "evaluation": e.get("evaluation"),
                "reason": e.get("reason"),
            }
        )
    return out


def budget_rows(
    data_root: Path,
    app: str,
    intervals: tuple[tuple[datetime, datetime], ...],
    metrics: Mapping[str, tuple[Point, ...]],
    problems: list[str],
    limit: int = BUDGET_INTERVALS,
) -> list[BudgetRow]:
    """Budget-skipped judge calls of the most recent ``limit`` intervals, newest first."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def metric_sum(suffix: str, start: datetime) -> int | None:
        values = [
            p.value
            for name, points in metrics.items()
            if name.startswith("scorer.") and name.endswith(suffix)
            for p in points
            if p.start == start and p.value is not None
        ]
        return int(round(sum(values))) if values else None

    rows = []
    for start, end in reversed(intervals[-limit:]):
        scores = Path(data_root) / "runs" / f"app={app}" / f"interval={interval_label(start)}" / "scores"
        files = sorted(scores.glob("shard=*.parquet")) if scores.is_dir() else []
        skipped: int | None = None
        by_scorer: dict[str, int] = {}
        for path in files:
            try:
                with pq.ParquetFile(path) as f:
                    table = f.read(columns=["scorer", "error"])
            except (OSError, pa.ArrowException) as err:
                problems.append(f"{path}: not readable ({err}); re-run the interval's score task")
                continue
            errors = pc.fill_null(table.column("error"), "")
            hit = table.filter(pc.starts_with(errors, BUDGET_ERROR_PREFIX))
            skipped = (skipped or 0) + hit.num_rows
            for scorer in hit.column("scorer").to_pylist():
                by_scorer[scorer] = by_scorer.get(scorer, 0) + 1
        rows.append(BudgetRow(start, end, skipped, by_scorer, metric_sum(".errors", start), metric_sum(".n", start)))
    return rows


def latest_datasets(data_root: Path, app: str, problems: list[str]) -> list[dict[str, Any]]:
    """The newest committed version's manifest of every curated dataset of ``app``, by dataset name."""
    newest: dict[str, dict[str, Any]] = {}
    for manifest in load_datasets(data_root, app, problems):  # sorted by (dataset, version)
        newest[str(manifest["dataset"])] = manifest
    return [newest[name] for name in sorted(newest)]


def recent_evaluations(
    data_root: Path, app: str, problems: list[str], limit: int = RECENT_EVALUATIONS
) -> list[dict[str, Any]]:
    """The newest ``limit`` development evaluations of ``app``, newest first.

    Run folders carry no time in their name or summary, so "newest" is the modification time of
    ``summary.json`` (the compare stage writes it once per run); the folder name breaks ties.
    """
    base = Path(data_root) / "evaluations" / f"app={app}"
    if not base.is_dir():
        return []
    found: list[tuple[float, str, Path]] = []
    for run_dir in base.iterdir():
        summary = run_dir / "summary.json"
        if run_dir.is_dir() and summary.is_file():
            found.append((summary.stat().st_mtime, run_dir.name, run_dir))
    found.sort(key=lambda item: (-item[0], item[1]))
    runs = []
    for _, _, run_dir in found[:limit]:
        entry = read_evaluation(run_dir, problems)
        if entry is None:
            continue
        if (run_dir / "eval_run.json").is_file():  # where the run is in MLflow, for the page's link
            run_info = read_json(run_dir / "eval_run.json", problems)
            if run_info is not None:
                entry["_mlflow"] = {k: run_info.get(k) for k in ("run_id", "experiment_id", "experiment")}
        runs.append(entry)
    return runs


def read_calibration(
    data_root: Path, app: str, problems: list[str]
) -> tuple[dict[str, tuple[Point, ...]], tuple[dict[str, Any], ...]]:
    """The ``calibration.*`` metrics of the newest review interval and the newest disagreeing traces."""
    from genai_flywheel.review.stages import calibration_store_root

    _, newest = window_starts(calibration_store_root(data_root), app, 1)
    if not newest:
        return {}, ()
    return load_calibration(data_root, app, problems, start=newest[0])


def worst_segments(data_root: Path, app: Application, traces_url: str | None = None) -> WorstSegments:
    """The worst segments of the latest interval of ``app``, linked to its MLflow traces (``traces_url``)."""
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.report.segments import worst_segments as ranked

    sources = {d.name: d.source for d in app.segments.dimensions}
    return ranked(MetricsStore(data_root), app.name, traces_url=traces_url, sources=sources)


def load_view(
    data_root: Path, app: Application, intervals: int = DEFAULT_INTERVALS, *, traces_url: str | None = None
) -> AppView:
    """Read everything the page shows about ``app`` (its segments linked to ``traces_url``, the MLflow
    experiment's traces); unreadable files land in ``problems``."""
    from genai_flywheel.alerts import AlertStore

    problems: list[str] = []
    segments = None
    if app.segments.dimensions:
        try:
            segments = worst_segments(data_root, app, traces_url)
        except StoreError as err:
            problems.append(str(err))
    total, starts = window_starts(data_root, app.name, intervals)
    try:
        window, metrics = read_points(data_root, app.name, starts[0] if starts else None)
    except StoreError as err:
        problems.append(str(err))
        window, metrics = (), {}
    try:
        events = read_events(data_root, app.name)
    except StoreError as err:
        problems.append(str(err))
        events = ()
    try:
        statuses: Mapping[str, Any] = AlertStore(data_root).load(app.name).alerts
    except StoreError as err:
        problems.append(str(err))
        statuses = {}
    try:
        calibration, disagreements = read_calibration(data_root, app.name, problems)
    except StoreError as err:
        problems.append(str(err))
        calibration, disagreements = {}, ()
    return AppView(
        app=app,
        total_intervals=total,
        intervals=window,
        metrics=metrics,
        events=events,
        rules=tuple(alert_rules(app, statuses)),
        firing=tuple(firing_now(statuses, events)),
        budget=tuple(budget_rows(data_root, app.name, window, metrics, problems)),
        datasets=tuple(latest_datasets(data_root, app.name, problems)),
        evaluations=tuple(recent_evaluations(data_root, app.name, problems)),
        problems=tuple(problems),
        calibration=calibration,
        disagreements=disagreements,
        segments=segments,
    )


def to_json(value: Any) -> Any:
    """``value`` with datetimes as ISO strings, non-finite floats as None and tuples as lists."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def point_dict(p: Point) -> dict[str, Any]:
    """One interval's value of a metric, JSON-ready."""
    return {
        "interval_start": iso(p.start),
        "interval_end": iso(p.end),
        "value": p.value,
        "n": p.n,
        "ci_low": p.low,
        "ci_high": p.high,
    }
