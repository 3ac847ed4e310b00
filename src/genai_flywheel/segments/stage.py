"""The monitor's segment steps: the reference profile of an interval, and its segment and drift metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import Application
    from genai_flywheel.metrics.aggregate import _Row
    from genai_flywheel.metrics.scores import ScoreArrays
    from genai_flywheel.segments.reference import ReferenceProfile

log = logging.getLogger(__name__)


def ensure_profile(app: Application, data_root: Path, interval_start: datetime, interval_end: datetime) -> Path:
    """The path of the reference profile the interval uses, learned and written first if it is not stored
    (see :mod:`genai_flywheel.segments.reference` for the windows and the cold start)."""
    from genai_flywheel.segments.reference import (
        MIN_REFERENCE,
        cold_path,
        learn_profile,
        profile_path,
        reference_infos,
        reference_window,
        write_profile,
    )
    from genai_flywheel.traces.extract import get_experiment_id

    spec = app.segments.clusters
    warm = profile_path(data_root, app.name, interval_start, spec)
    if warm.is_file():
        return warm
    cold = cold_path(warm, interval_start)
    if cold.is_file():
        return cold
    uri = app.mlflow.tracking_uri
    experiment_id = get_experiment_id(uri, app.mlflow.experiment)
    scorers = [s.name for s in app.scorers]
    start, end = reference_window(interval_start, spec)
    rows = list(reference_infos(uri, experiment_id, app, start, end))
    if sum(t.num_rows for t in rows) >= MIN_REFERENCE:
        profile = learn_profile(app.name, rows, app.segments, scorers, start, end)
        log.info("app %s: reference profile of %s .. %s from %d traces", app.name, start, end, profile.traces)
        return write_profile(profile, warm)
    # Too little traffic before the period (a new application): this interval is its own reference.
    rows = list(reference_infos(uri, experiment_id, app, interval_start, interval_end))
    profile = learn_profile(app.name, rows, app.segments, scorers, interval_start, interval_end, cold_start=True)
    log.warning(
        "app %s: the reference window %s .. %s holds fewer than %d traces; interval %s is its own reference "
        "(cold start), so its drift metrics compare it with itself",
        app.name,
        start,
        end,
        MIN_REFERENCE,
        interval_start,
    )
    return write_profile(profile, cold)


def stored_profile(app: Application, data_root: Path, interval_start: datetime) -> ReferenceProfile:
    """The reference profile the interval uses, as the reference stage stored it (StoreError when absent)."""
    from genai_flywheel.exceptions import StoreError
    from genai_flywheel.segments.reference import cold_path, profile_path, read_profile

    warm = profile_path(data_root, app.name, interval_start, app.segments.clusters)
    for path in (warm, cold_path(warm, interval_start)):
        if path.is_file():
            return read_profile(path)
    raise StoreError(f"{warm} not found; run the reference stage of this interval first")


def segment_metrics(
    app: Application,
    profile: ReferenceProfile,
    infos: Iterable[pa.Table | pa.RecordBatch],
    scores: pa.Table | ScoreArrays,
    interval_start: datetime,
    interval_end: datetime,
    capacity: int | None = None,
) -> tuple[pa.Table, list[_Row]]:
    """The interval's segment metrics table and its drift metric rows, over batches of its valid trace
    infos (:func:`genai_flywheel.segments.accumulate.columns_for` columns) and its scores; ``capacity`` is
    their number when known (per-trace columns allocated once)."""
    from genai_flywheel.metrics.scores import ScoreArrays
    from genai_flywheel.segments.accumulate import SegmentAccumulator
    from genai_flywheel.segments.drift import drift_rows

    arrays = scores if isinstance(scores, ScoreArrays) else ScoreArrays.of(scores)
    acc = SegmentAccumulator(
        app=app.name,
        segments=app.segments,
        profile=profile,
        scored_ids=arrays.trace_ids if len(arrays) else None,
        capacity=capacity,
    )
    for batch in infos:
        acc.add_traces(batch)
    table = acc.table(arrays, interval_start=interval_start, interval_end=interval_end)
    return table, drift_rows(acc, profile, arrays, app.segments)
