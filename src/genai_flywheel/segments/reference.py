"""The reference profile of an application's traffic: what its segments and scores looked like before.

A profile is learned on a **reference window** and reused for every interval of a refresh period, so a query
cluster keeps its id from one interval to the next and its history is a time series:

* refresh periods are ``segments.clusters.refresh_hours`` long, aligned to the Unix epoch; the reference of
  a period is the ``reference_days`` before the period starts. Every interval starting in that period uses
  the same profile: its file, ``segments/app=<app>/reference/<period start>.json`` under the data root, is
  written once and read afterwards, so re-running an interval gives the same bytes;
* the reference is read from MLflow as trace infos only (pass one, no spans): at most ``per_hour`` traces
  of every hour of the window, the earliest of each hour, so a busy week costs ``24 x days`` small queries
  however large the traffic is;
* **cold start**: when the reference holds fewer than :data:`MIN_REFERENCE` questions (a new application,
  the first days of a deployment) the profile of an interval is learned on that interval itself, written
  under its own name (``<period start>.cold-<interval start>.json``), so it does not depend on which
  interval of the period ran first.

A profile holds the query clusters (``signature`` clustering of the reference questions, the method of the
curation stage's ``query_clusters`` rule, so a cluster has the same id in both), the count of every
dimension's values in the reference (the baseline of the mix-drift metrics), and every scorer's values on
the reference traces that were scored (the baseline of the score-drift metrics).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import StoreError
from genai_flywheel.metrics.intervals import to_utc
from genai_flywheel.segments.clusters import ClusterAssigner, ReferenceCluster

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import Application, QueryClusters, Segments

log = logging.getLogger(__name__)

#: Questions with content terms a reference needs; below it the interval itself is the reference.
MIN_REFERENCE = 100
#: Reference score values kept per scorer (the earliest; enough for decile bins).
MAX_REFERENCE_SCORES = 20_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMAT = 1


@dataclass(frozen=True)
class ReferenceProfile:
    """What the reference window looked like (see the module docstring)."""

    app: str
    reference_start: datetime
    reference_end: datetime
    traces: int
    clusters: tuple[ReferenceCluster, ...]
    counts: Mapping[str, Mapping[str, int]]  # dimension name -> segment key -> traces
    scores: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # scorer -> values
    cold_start: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sorted keys and lists: the same profile gives the same bytes)."""
        return {
            "format": _FORMAT,
            "app": self.app,
            "reference_start": self.reference_start.isoformat(),
            "reference_end": self.reference_end.isoformat(),
            "traces": self.traces,
            "cold_start": self.cold_start,
            "clusters": [
                {"cluster_id": c.cluster_id, "key": list(c.key), "label": c.label, "count": c.count}
                for c in self.clusters
            ],
            "counts": {dim: dict(sorted(values.items())) for dim, values in sorted(self.counts.items())},
            "scores": {name: list(values) for name, values in sorted(self.scores.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "reference profile") -> ReferenceProfile:
        """Inverse of :meth:`to_dict`; a StoreError naming ``source`` for a file of another format."""
        if data.get("format") != _FORMAT:
            raise StoreError(f"{source} has format {data.get('format')!r}, expected {_FORMAT}; delete it to rebuild")
        try:
            return cls(
                app=str(data["app"]),
                reference_start=to_utc(datetime.fromisoformat(data["reference_start"])),
                reference_end=to_utc(datetime.fromisoformat(data["reference_end"])),
                traces=int(data["traces"]),
                clusters=tuple(
                    ReferenceCluster(c["cluster_id"], tuple(c["key"]), c["label"], int(c["count"]))
                    for c in data["clusters"]
                ),
                counts={dim: {k: int(v) for k, v in values.items()} for dim, values in data["counts"].items()},
                scores={name: tuple(float(v) for v in values) for name, values in data["scores"].items()},
                cold_start=bool(data.get("cold_start", False)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise StoreError(f"{source} is not a reference profile ({err}); delete it to rebuild") from err

    def assigner(self) -> ClusterAssigner:
        """The assignment of questions to this profile's clusters."""
        return ClusterAssigner(self.clusters)


def period_start(interval_start: datetime, spec: QueryClusters) -> datetime:
    """The start of the refresh period holding ``interval_start`` (periods aligned to the Unix epoch)."""
    start = to_utc(interval_start)
    period = timedelta(hours=spec.refresh_hours)
    return _EPOCH + ((start - _EPOCH) // period) * period


def reference_window(interval_start: datetime, spec: QueryClusters) -> tuple[datetime, datetime]:
    """The reference window ``[start, end)`` of the interval starting at ``interval_start``."""
    end = period_start(interval_start, spec)
    return end - timedelta(days=spec.reference_days), end


def profile_path(data_root: Path | str, app: str, interval_start: datetime, spec: QueryClusters) -> Path:
    """Where the (warm) profile of the refresh period holding ``interval_start`` lives."""
    from genai_flywheel.metrics.store import check_name
    from genai_flywheel.workspace import interval_key

    label = interval_key(period_start(interval_start, spec))
    return Path(data_root) / "segments" / f"app={check_name(app)}" / "reference" / f"{label}.json"


def cold_path(warm: Path, interval_start: datetime) -> Path:
    """Where the cold-start profile of one interval lives, beside its period's warm profile."""
    from genai_flywheel.workspace import interval_key

    return warm.with_name(f"{warm.stem}.cold-{interval_key(interval_start)}.json")


def _scorer_values(assessments: Any, scorers: Sequence[str]) -> dict[str, float]:
    """The values this monitor wrote on one trace, by scorer (``source_id`` ``<scorer>@<version>``)."""
    import json

    from genai_flywheel.scoring.runner import to_numeric

    out: dict[str, tuple[int, str, float]] = {}
    for a in assessments or ():
        name, source = a.get("name"), a.get("source_id") or ""
        if name not in scorers or not source.startswith(f"{name}@") or a.get("error") or a.get("value") is None:
            continue
        try:
            number = to_numeric(json.loads(a["value"]))
        except ValueError:
            continue
        if number is None:
            continue
        key = (a.get("create_time_ms") or 0, a.get("assessment_id") or "", number)
        if name not in out or key[:2] > out[name][:2]:  # the latest value counts, as for feedback
            out[name] = key
    return {name: value for name, (_, _, value) in out.items()}


def learn_profile(
    app: str,
    rows: Iterable[pa.Table | pa.RecordBatch],
    segments: Segments,
    scorers: Sequence[str],
    reference_start: datetime,
    reference_end: datetime,
    *,
    cold_start: bool = False,
) -> ReferenceProfile:
    """Learn a profile from batches of pass-one rows (``INFO_SCHEMA``) of the reference window."""
    import pyarrow as pa

    from genai_flywheel.curation.clusters import cluster_signatures
    from genai_flywheel.curation.text import query_terms
    from genai_flywheel.metrics.segment_schema import MISSING
    from genai_flywheel.segments.dimensions import dimension_keys

    spec = segments.clusters
    plain = [d for d in segments.dimensions if d.source != "query_cluster"]
    clustered = [d for d in segments.dimensions if d.source == "query_cluster"]
    counts: dict[str, Counter[str]] = {d.name: Counter() for d in segments.dimensions}
    terms: list[tuple[str, ...]] = []
    scores: dict[str, list[float]] = {name: [] for name in scorers}
    traces = 0
    for batch in rows:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        traces += table.num_rows
        for dim in plain:
            counts[dim.name].update(dimension_keys(table, dim, None))
        if clustered:
            terms.extend(query_terms(q) for q in table.column("query").to_pylist())
        for assessments in table.column("assessments").to_pylist():
            for name, value in _scorer_values(assessments, scorers).items():
                if len(scores[name]) < MAX_REFERENCE_SCORES:
                    scores[name].append(value)
    clusters: tuple[ReferenceCluster, ...] = ()
    if clustered:
        found = cluster_signatures(terms).clusters.values()
        big = sorted(
            (c for c in found if len(c.members) >= spec.min_size), key=lambda c: (-len(c.members), c.cluster_id)
        )[: spec.max_clusters]
        clusters = tuple(ReferenceCluster(c.cluster_id, c.key, c.label, len(c.members)) for c in big)
        assigner = ClusterAssigner(clusters)
        keys = Counter(assigner.assign_terms(t) for t in terms)
        for dim in clustered:
            counts[dim.name] = keys
        log.info(
            "app %s: %d query clusters learned on %d reference questions (%d without terms)",
            app,
            len(clusters),
            len(terms),
            keys.get(MISSING, 0),
        )
    return ReferenceProfile(
        app=app,
        reference_start=to_utc(reference_start),
        reference_end=to_utc(reference_end),
        traces=traces,
        clusters=clusters,
        counts={name: dict(values) for name, values in counts.items()},
        scores={name: tuple(values) for name, values in scores.items() if values},
        cold_start=cold_start,
    )


def questions(profile_rows: Iterable[pa.Table | pa.RecordBatch]) -> int:
    """Questions with content terms in batches of pass-one rows."""
    import pyarrow as pa

    from genai_flywheel.curation.text import query_terms

    total = 0
    for batch in profile_rows:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        total += sum(1 for q in table.column("query").to_pylist() if query_terms(q))
    return total


def read_profile(path: Path) -> ReferenceProfile:
    """The profile stored at ``path`` (StoreError when unreadable)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"cannot read reference profile {path}: {err}; delete it to rebuild") from err
    return ReferenceProfile.from_dict(data, str(path))


def write_profile(profile: ReferenceProfile, path: Path) -> Path:
    """Write ``profile`` to ``path`` atomically."""
    from genai_flywheel.workspace import atomic_write_json

    return atomic_write_json(profile.to_dict(), path)


def reference_infos(
    tracking_uri: str, experiment_id: str, app: Application, start: datetime, end: datetime
) -> Iterable[pa.Table]:
    """The reference rows: at most ``per_hour`` trace infos (the earliest) of every hour of ``[start, end)``."""
    import pyarrow as pa

    from genai_flywheel.traces.extract import MAX_PAGE, info_to_row, iter_traces, window_filter
    from genai_flywheel.traces.schema import INFO_SCHEMA

    per_hour = app.segments.clusters.per_hour
    hour = to_utc(start)
    while hour < to_utc(end):
        lo, hi = int(hour.timestamp() * 1000), int(min(hour + timedelta(hours=1), to_utc(end)).timestamp() * 1000)
        rows = []
        for trace in iter_traces(
            tracking_uri, experiment_id, window_filter(lo, hi), include_spans=False, page_size=min(per_hour, MAX_PAGE)
        ):
            rows.append(info_to_row(trace.info, app=app.name))
            if len(rows) >= per_hour:
                break
        if rows:
            yield pa.Table.from_pylist(rows, schema=INFO_SCHEMA)
        hour += timedelta(hours=1)
