"""What the report reads from the data root, as plain Python values, and :func:`summarize`.

Sources (all optional except that an application without metrics shows an empty monitor section):

* ``metrics/app=<app>/...`` through :class:`~genai_flywheel.metrics.store.MetricsStore` (long format).
* ``metrics/app=<app>/interval=<start>/segments.parquet`` through ``MetricsStore.read_segments``: the worst
  segments of the latest interval and each one's history (:mod:`genai_flywheel.report.segments`).
* ``alerts/app=<app>/events.parquet`` through :class:`~genai_flywheel.alerts.AlertStore`: one row per
  (recorded interval, rule) with ``evaluation`` (firing / ok / insufficient_data), ``kind`` (fired,
  still_firing, resolved, ok, insufficient_data) and ``status`` after the interval.
* ``datasets/<name>/v<N>/manifest.json`` (see :mod:`genai_flywheel.curation.datasets`): fields read are
  ``dataset``, ``version``, ``app``, ``records``, ``added``, ``updated``, ``quarantined``, ``per_rule``,
  ``digest``, ``interval_start_ms``, ``interval_end_ms``; a manifest without ``app`` is matched by name
  (``<prefix>_<app>_<ruleset>``).
* ``review/metrics/app=<app>/...``: the review DAG's ``calibration.*`` metrics, a second
  :class:`~genai_flywheel.metrics.store.MetricsStore` read by the same :func:`load_metrics`, and the newest
  ``review/app=<app>/<run>/disagreements.json`` (``traces``: ``scorer``, ``trace_id``, ``scorer_passed``,
  ``correct``, ``source``): the judge calibration.
* ``evaluations/app=<app>/<run>/summary.json``: fields read are ``candidate``, ``dataset``, ``version``,
  ``n_records``, ``candidate_errors``, ``scorers`` ({scorer: {n, candidate_mean, production_mean,
  improvement (or diff / mean_diff), ci_low, ci_high, p_value, wins, losses, ties}}), optionally ``rules``
  ({rule: {scorer: same stats}}) and ``gate`` ({passed, checks: [{gate, criterion, threshold, actual,
  passed, message}]}); without ``gate`` in the summary, a sibling ``gate.json`` of that shape is read.
  Every field may be missing; it is then shown as n/a.

A malformed JSON file does not abort the report: it is listed under the section as unreadable.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.metrics.intervals import iso, to_utc
from genai_flywheel.report.charts import Point

if TYPE_CHECKING:
    from genai_flywheel.report.segments import HistoryPoint, SegmentLinks, WorstSegments

log = logging.getLogger(__name__)

_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


@dataclass(frozen=True)
class Annotation:
    """A time window ``[start, end)`` the caller marks on every chart of an application (a deployment, a
    maintenance, a known outage): hatched and labelled with ``name``."""

    name: str
    start: datetime
    end: datetime
    kind: str = ""
    description: str = ""


@dataclass(frozen=True)
class AppData:
    """Everything the report shows about one application."""

    app: str
    intervals: tuple[tuple[datetime, datetime], ...]
    metrics: dict[str, tuple[Point, ...]]
    events: tuple[dict[str, Any], ...]
    datasets: tuple[dict[str, Any], ...] = ()
    evaluations: tuple[dict[str, Any], ...] = ()
    problems: tuple[str, ...] = field(default=())  # unreadable optional files, shown in the report
    calibration: dict[str, tuple[Point, ...]] = field(default_factory=dict)  # calibration.* metrics
    disagreements: tuple[dict[str, Any], ...] = ()  # traces where a scorer contradicts a reviewer
    segments: WorstSegments | None = None  # None: no segment metrics stored
    # (dimension, segment) of each worst segment -> its history over the last days
    segment_history: dict[tuple[str, str], tuple[HistoryPoint, ...]] = field(default_factory=dict)


def utc(value: datetime) -> datetime:
    """``value`` in UTC with the one ``datetime.UTC`` tzinfo (a naive datetime is taken to be UTC)."""
    # pyarrow returns zoneinfo UTC; one tzinfo object everywhere keeps comparisons and repr uniform.
    return to_utc(value).astimezone(UTC)


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when missing or not finite (a NaN is no value: not charted, not
    summed, not JSON)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def load_metrics(
    data_root: Path, app: str, *, start: datetime | None = None, metrics: list[str] | None = None
) -> tuple[tuple[tuple[datetime, datetime], ...], dict[str, tuple[Point, ...]]]:
    """The stored intervals of ``app`` (ascending) and every metric as points sorted by interval; only
    the intervals from ``start`` on and only the named ``metrics`` when given."""
    from genai_flywheel.metrics.store import MetricsStore

    table = MetricsStore(data_root).read(app, start=start, metrics=metrics)
    intervals: set[tuple[datetime, datetime]] = set()
    series: dict[str, list[Point]] = {}
    for row in table.to_pylist():
        lo, hi = utc(row["interval_start"]), utc(row["interval_end"])
        intervals.add((lo, hi))
        series.setdefault(row["metric"], []).append(
            Point(lo, hi, finite(row["value"]), finite(row["ci_low"]), finite(row["ci_high"]), int(row["n"] or 0))
        )
    by_metric = {name: tuple(sorted(points, key=lambda p: p.start)) for name, points in sorted(series.items())}
    return tuple(sorted(intervals)), by_metric


def load_events(data_root: Path, app: str) -> tuple[dict[str, Any], ...]:
    """The alert event log of ``app`` as dicts, sorted by (interval_start, rule); empty when none."""
    from genai_flywheel.alerts import AlertStore

    rows = AlertStore(data_root).read_events(app).to_pylist()
    for row in rows:
        for key in ("interval_start", "interval_end", "firing_since"):
            if row[key] is not None:
                row[key] = utc(row[key])
    rows.sort(key=lambda r: (r["interval_start"], r["rule"]))
    return tuple(rows)


def read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """The JSON object in ``path``; None, with the reason appended to ``problems``, when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("report: skipping unreadable %s: %s", path, err)
        problems.append(f"{path}: not readable JSON ({err}); fix or delete the file")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a JSON object, got {type(data).__name__}")
        return None
    return data


def load_datasets(data_root: Path, app: str, problems: list[str]) -> tuple[dict[str, Any], ...]:
    """Manifests of the curated dataset versions of ``app``, sorted by (dataset, version)."""
    base = Path(data_root) / "datasets"
    if not base.is_dir():
        return ()
    found: list[dict[str, Any]] = []
    for ds_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for v_dir in sorted(ds_dir.iterdir()):
            match = _VERSION_DIR.match(v_dir.name)
            manifest_path = v_dir / "manifest.json"
            if not match or not manifest_path.is_file():
                continue  # not a committed version (a crashed run leaves no manifest)
            manifest = read_json(manifest_path, problems)
            if manifest is None:
                continue
            owner = manifest.get("app")
            if owner is None:
                owner = app if f"_{app}_" in f"_{ds_dir.name}_" else None
            if owner != app:
                continue
            entry = dict(manifest)
            entry.setdefault("dataset", ds_dir.name)
            entry.setdefault("version", int(match.group(1)))
            found.append(entry)
    found.sort(key=lambda m: (str(m["dataset"]), _as_int(m["version"])))
    return tuple(found)


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def load_evaluations(data_root: Path, app: str, problems: list[str]) -> tuple[dict[str, Any], ...]:
    """``summary.json`` of every development evaluation run of ``app``, sorted by run directory name;
    each gets ``_run`` (the directory name) and ``gate`` from ``gate.json`` when the summary has none."""
    base = Path(data_root) / "evaluations" / f"app={app}"
    if not base.is_dir():
        return ()
    runs = (read_evaluation(d, problems) for d in sorted(p for p in base.iterdir() if p.is_dir()))
    return tuple(run for run in runs if run is not None)


def read_evaluation(run_dir: Path, problems: list[str]) -> dict[str, Any] | None:
    """The ``summary.json`` of one evaluation run folder with ``_run`` (the folder name) and, when the
    summary has no ``gate``, the one of ``gate.json``; None when there is no readable summary."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    summary = read_json(path, problems)
    if summary is None:
        return None
    entry = dict(summary)
    entry["_run"] = run_dir.name
    gate_path = run_dir / "gate.json"
    if "gate" not in entry and gate_path.is_file():
        gate = read_json(gate_path, problems)
        if gate is not None:
            entry["gate"] = gate
    return entry


def load_calibration(
    data_root: Path, app: str, problems: list[str], *, start: datetime | None = None
) -> tuple[dict[str, tuple[Point, ...]], tuple[dict[str, Any], ...]]:
    """The ``calibration.*`` metrics of ``app`` (from ``start`` on when given) and the disagreeing traces of
    its newest review run (by the time ``disagreements.json`` was written); empty without reviews."""
    from genai_flywheel.review.stages import DISAGREEMENTS_FILE, REVIEW_ROOT, calibration_store_root

    _, metrics = load_metrics(calibration_store_root(data_root), app, start=start)
    runs = sorted(
        (Path(data_root) / REVIEW_ROOT / f"app={app}").glob(f"*/{DISAGREEMENTS_FILE}"),
        key=lambda p: (p.stat().st_mtime, p.parent.name),
    )
    found = read_json(runs[-1], problems) if runs else None
    traces = found.get("traces") if found is not None else None
    return metrics, tuple(t for t in traces or () if isinstance(t, Mapping))


def load_segments(
    data_root: Path, app: str, links: SegmentLinks | None = None
) -> tuple[WorstSegments | None, dict[tuple[str, str], tuple[HistoryPoint, ...]]]:
    """The worst segments of the latest interval of ``app`` (linked as ``links`` says) and the history of
    each over the last :data:`~genai_flywheel.report.segments.HISTORY_DAYS` days; (None, {}) without
    segment metrics."""
    from genai_flywheel.metrics.store import MetricsStore
    from genai_flywheel.report.segments import SegmentLinks, segment_history, worst_segments

    store = MetricsStore(data_root)
    links = links or SegmentLinks()
    worst = worst_segments(store, app, traces_url=links.traces_url, sources=links.sources)
    if worst.interval is None:
        return None, {}
    history = {
        (r.dimension, r.segment): tuple(segment_history(store, app, r.dimension, r.segment)[1])
        for rows in worst.dimensions.values()
        for r in rows
    }
    return worst, history


def load_app(data_root: Path | str, app: str, *, segment_links: SegmentLinks | None = None) -> AppData:
    """Read everything the report shows about ``app`` under ``data_root`` (its worst segments linked as
    ``segment_links`` says)."""
    root = Path(data_root)
    intervals, metrics = load_metrics(root, app)
    problems: list[str] = []
    calibration, disagreements = load_calibration(root, app, problems)
    segments, history = load_segments(root, app, segment_links)
    return AppData(
        app=app,
        intervals=intervals,
        metrics=metrics,
        events=load_events(root, app),
        datasets=load_datasets(root, app, problems),
        evaluations=load_evaluations(root, app, problems),
        problems=tuple(problems),
        calibration=calibration,
        disagreements=disagreements,
        segments=segments,
        segment_history=history,
    )


def _sum(metrics: dict[str, tuple[Point, ...]], name: str) -> float:
    return float(sum(p.value for p in metrics.get(name, ()) if p.value is not None))


def families(metrics: Mapping[str, tuple[Point, ...]], prefix: str, suffix: str) -> list[str]:
    """The ``<x>`` of every metric named ``<prefix><x><suffix>``, sorted."""
    return sorted(
        m[len(prefix) : len(m) - len(suffix)]
        for m in metrics
        if m.startswith(prefix) and m.endswith(suffix) and len(m) > len(prefix) + len(suffix)
    )


def alert_counts(events: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """Per rule: metric, op, threshold, severity, ``fired`` (episodes), ``firing_intervals``,
    ``insufficient_data`` intervals, ``evaluated`` intervals and ``status`` after the latest interval."""
    rules: dict[str, dict[str, Any]] = {}
    for e in events:  # sorted by interval, so the last one seen per rule is the latest
        r = rules.setdefault(
            e["rule"],
            {"fired": 0, "firing_intervals": 0, "insufficient_data": 0, "evaluated": 0},
        )
        r.update(
            metric=e["metric"],
            op=e["op"],
            threshold=e["threshold"],
            severity=e["severity"],
            status=e["status"],
        )
        r["evaluated"] += 1
        r["fired"] += int(e["kind"] == "fired")
        r["firing_intervals"] += int(e["evaluation"] == "firing")
        r["insufficient_data"] += int(e["evaluation"] == "insufficient_data")
    return dict(sorted(rules.items()))


def summary_of(data: AppData) -> dict[str, Any]:
    """The :func:`summarize` dict of already loaded data."""
    m = data.metrics
    scorers = sorted(set(families(m, "scorer.", ".n")))
    volume = {p.start: p.value for p in m.get("volume", ()) if p.value is not None}
    # error_rate is errors / volume exactly, so rounding recovers the count of each interval.
    errors = sum(
        round(p.value * volume[p.start]) for p in m.get("error_rate", ()) if p.value is not None and p.start in volume
    )
    feedback = {
        name: sum(p.n for p in m[f"feedback.{name}.positive_rate"])
        for name in families(m, "feedback.", ".positive_rate")
    }
    alerts = alert_counts(data.events)
    return {
        "app": data.app,
        "intervals": len(data.intervals),
        "first_interval_start": iso(data.intervals[0][0]) if data.intervals else None,
        "last_interval_end": iso(data.intervals[-1][1]) if data.intervals else None,
        "traces": int(_sum(m, "volume")),
        "error_traces": int(errors),
        "quarantined": int(_sum(m, "quarantined")),
        "sampled": int(_sum(m, "sampled")),
        "scored": int(sum(_sum(m, f"scorer.{s}.n") for s in scorers)),
        "scored_by_scorer": {s: int(_sum(m, f"scorer.{s}.n")) for s in scorers},
        "scorer_errors": int(sum(_sum(m, f"scorer.{s}.errors") for s in scorers)),
        "feedback_by_name": feedback,
        "tokens_total": int(_sum(m, "tokens_total")),
        "cost_usd": round(_sum(m, "cost_usd"), 6),
        "alerts_raised": sum(r["fired"] for r in alerts.values()),
        "alerts_fired_by_rule": {rule: r["fired"] for rule, r in alerts.items()},
        "firing_intervals_by_rule": {rule: r["firing_intervals"] for rule, r in alerts.items()},
        "firing_now": sorted(rule for rule, r in alerts.items() if r["status"] == "firing"),
        "datasets": len({d["dataset"] for d in data.datasets}),
        "evaluations": len(data.evaluations),
    }


def summarize(data_root: Path | str, app: str) -> dict[str, Any]:
    """Headline numbers of ``app`` under ``data_root``, JSON-ready (for command-line summaries).

    Keys: ``app``, ``intervals`` (metrics partitions), ``first_interval_start``/``last_interval_end`` (ISO,
    None when no intervals), ``traces`` (sum of ``volume``), ``error_traces``, ``quarantined``, ``sampled``
    (traces selected for scoring), ``scored`` (trace x scorer pairs scored; per scorer in
    ``scored_by_scorer``), ``scorer_errors``, ``feedback_by_name`` (traces with human feedback),
    ``tokens_total``, ``cost_usd``, ``alerts_raised`` (alert episodes that started, i.e. ``fired`` events),
    ``alerts_fired_by_rule``, ``firing_intervals_by_rule`` (intervals whose evaluation was firing),
    ``firing_now`` (rules firing after the latest interval), ``datasets`` (curated datasets of the app) and
    ``evaluations`` (development evaluation runs).
    """
    return summary_of(load_app(data_root, app))
