"""Bulk loader: the demo simulator's traffic written straight into a SQLite MLflow store's tables.

``simulate`` (the demo's traffic simulator) writes through the tracking store's ``log_spans`` and
``log_assessment`` at ~100 traces/s; a million-trace benchmark store would take hours. This writes the same
traces (same plans, same app runs, same spans, same human feedback) as plain rows with ``executemany`` in
one transaction, at thousands of traces/s. ``tests/integration/test_bulkload.py`` proves the rows equal,
table by table and column by column, to what MLflow itself writes for the same traces.

How it stays fast without a second traffic model:

* Plans come from the simulator's ``plan_traffic`` and outcomes from its ``run_plan``. The app is
  deterministic in (version, question), so a fault-free run is recorded once per question and replayed
  (:class:`RecordedApp`); runs with a planted fault always run for real, so their stack traces are the
  app's own.
* The stored form of a trace's spans is computed by MLflow itself (``Span.from_dict`` and
  ``translate_span_when_storing``, what ``log_spans`` does) once per (app version, question, fault), and
  turned into a template whose per-trace fields (ids, times, session, user) are filled in per trace
  (:class:`TraceTemplate`). Everything that is not per trace (previews, token usage, tags, span columns)
  is taken from MLflow's own helpers, once per template.
* The secondary indexes of the five trace tables are dropped for the load and rebuilt at its end, in the
  same transaction, when the load at least doubles the store (building an index at the end is a sort;
  maintaining it row by row is random writes). The schema afterwards is byte-identical.

Memory: the plans are the simulator's, all in memory (~1.3 KB per trace); everything else is built and
written per chunk of ``chunk`` traces. Traces already in the store are skipped with their assessments,
so an interrupted load (nothing of it is committed) or a second run is safe.

Command line: ``.venv/bin/python benchmarks/bulkload.py sqlite:///path/traces.db --n 1000000``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import logging
import re
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run as a script from a checkout without an installed package
    sys.path.insert(1, str(ROOT / "src"))

# The demo package and the local-service supervisor, imported here only (benchmarks/monitor.py takes them
# from here): if they move, these two lines are the ones to change.
from flywheel_demo import (  # noqa: E402
    app as demo_app,
    schedule as demo_schedule,
    services as demo_services,  # noqa: E402, F401  (monitor.py --serve)
    simulate as demo_simulate,
)

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 2_000
# Distinct (app version, question) pairs worth keeping: the templates cover ~4,300 questions x 2 versions;
# questions carrying personal data are one-offs and simply cycle through.
CACHE_SIZE = 16_384
TABLES = ("trace_info", "trace_tags", "trace_request_metadata", "spans", "assessments")
SPAN_COLUMNS = (
    "trace_id",
    "experiment_id",
    "span_id",
    "parent_span_id",
    "name",
    "type",
    "status",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "content",
    "input_cost",
    "output_cost",
    "total_cost",
    "model_name",
    "model_provider",
)
KEY_VALUE_COLUMNS = ("key", "value", "request_id")
_PLACEHOLDER = re.compile(r'"@@(\w+)@@"|@@(\w+)@@')


# --- the app, recorded ----------------------------------------------------------------------------------


class RecordedApp:
    """One version of the demo app whose fault-free runs are recorded once per question and replayed.

    The app is deterministic in its question: a replay hands the tracer the very spans and tags a run
    would record. Runs with a fault run for real (their exception stack traces are the app's own).
    """

    def __init__(self, app: Any, cache_size: int = CACHE_SIZE) -> None:
        self._app = app
        self._record = functools.lru_cache(maxsize=cache_size)(self._record_uncached)

    def _record_uncached(self, query: str) -> tuple[list[Any], dict[str, str], str]:
        rec = demo_app.RecordingTracer()
        answer = self._app.run(query, rec)
        return rec.spans, rec.tags, answer

    def run(
        self,
        query: str,
        tracer: Any = None,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        fault: str | None = None,
    ) -> str:
        """What ``SupportAssistant.run`` returns and records (see there)."""
        if fault is not None:
            return self._app.run(query, tracer, session_id=session_id, user_id=user_id, fault=fault)
        spans, tags, answer = self._record(query)
        if tracer is not None:
            tracer.spans.extend(spans)
            metadata = {}
            if session_id:
                metadata[demo_app.SESSION_METADATA_KEY] = session_id
            if user_id:
                metadata[demo_app.USER_METADATA_KEY] = user_id
            tracer.update_trace(tags=tags, metadata=metadata)
        return answer


class RecordedApps:
    """The simulator's app instances (``before`` / ``incident`` / ``fixed``), each a :class:`RecordedApp`."""

    def __init__(self) -> None:
        apps = demo_simulate._Apps()
        self.before = RecordedApp(apps.before)
        self.incident = RecordedApp(apps.incident)
        self.fixed = RecordedApp(apps.fixed)


# --- templates: MLflow's stored form of a trace, with its per-trace fields left open ---------------------


def _double_escaped(value: str) -> str:
    # A string inside a JSON-encoded attribute value inside the span's JSON: escaped twice.
    return json.dumps(json.dumps(value)[1:-1])[1:-1]


@dataclass(frozen=True)
class SpanTemplate:
    """One span: its fixed columns and its stored JSON split around the per-trace fields."""

    index: int
    parent: int | None
    name: str
    type: str | None
    status: str
    input_cost: float | None
    output_cost: float | None
    total_cost: float | None
    model_name: str | None
    model_provider: str | None
    fragments: tuple[str, ...]  # text, field, text, field, ..., text
    fields: tuple[str, ...]

    def content(self, values: dict[str, str]) -> str:
        """The span's stored JSON with ``values`` (already encoded for their place) filled in."""
        out = [self.fragments[0]]
        for name, text in zip(self.fields, self.fragments[1:], strict=True):
            out.append(values[name])
            out.append(text)
        return "".join(out)


@dataclass(frozen=True)
class TraceTemplate:
    """Everything ``log_spans`` derives from a trace's spans that is the same for every trace of one
    (app version, question, fault): trace status, previews, name, token usage, cost, tags, span rows."""

    spans: tuple[SpanTemplate, ...]
    status: str
    request_preview: str | None
    response_preview: str | None
    trace_name: str | None
    usage_columns: dict[str, int]
    cost_columns: dict[str, float]
    tags: tuple[tuple[str, str], ...]


def _open_fields(span_dict: dict[str, Any]) -> dict[str, Any]:
    """``span_dict`` with its per-trace fields replaced by placeholders (the one list of them)."""
    out = dict(span_dict)
    out["trace_id"] = "@@otel_trace_id@@"
    out["span_id"] = "@@span_id@@"
    if out.get("parent_span_id") is not None:
        out["parent_span_id"] = "@@parent_span_id@@"
    out["start_time_unix_nano"] = "@@start@@"
    out["end_time_unix_nano"] = "@@end@@"
    out["events"] = [{**e, "time_unix_nano": "@@end@@"} for e in out.get("events", [])]
    attrs = dict(out.get("attributes", {}))
    attrs["mlflow.traceRequestId"] = '"@@trace_id@@"'
    if "session.id" in attrs:
        attrs["session.id"] = '"@@session@@"'
    if "user.id" in attrs:
        attrs["user.id"] = '"@@user@@"'
    out["attributes"] = attrs
    return out


def build_template(outcome: Any) -> TraceTemplate:
    """The template of ``outcome``'s trace, from what MLflow stores for it (``log_spans``' own helpers)."""
    from mlflow.entities import Span
    from mlflow.entities.span_status import SpanStatusCode
    from mlflow.entities.trace_state import TraceState
    from mlflow.store.tracking.sqlalchemy_store import _span_aggregation_node, _try_parse_json_string
    from mlflow.store.tracking.utils.trace_analytics import (
        COST_COLUMN_BY_KEY,
        TOKEN_COLUMN_BY_KEY,
        bounded_model_dimension,
        finite_float_or_none,
        token_count_or_none,
        validate_trace_name,
    )
    from mlflow.tracing.constant import SpanAttributeKey, TraceTagKey
    from mlflow.tracing.otel.translation import translate_span_when_storing
    from mlflow.tracing.utils import aggregate_cost_from_span_nodes, aggregate_usage_from_span_nodes
    from mlflow.tracing.utils.truncation import _get_truncated_preview

    spans = [Span.from_dict(d) for d in demo_simulate.span_dicts(outcome)]
    stored = [translate_span_when_storing(s) for s in spans]
    index_of = {s.span_id: i for i, s in enumerate(spans)}
    span_templates = []
    usage_nodes, cost_nodes = [], []
    root_attrs: dict[str, Any] = {}
    status = TraceState.IN_PROGRESS.value
    for i, (span, d) in enumerate(zip(spans, stored, strict=True)):
        attrs = d.get("attributes", {})
        usage_nodes.append(_span_aggregation_node(span.span_id, span.parent_id, attrs, SpanAttributeKey.CHAT_USAGE))
        cost_nodes.append(_span_aggregation_node(span.span_id, span.parent_id, attrs, SpanAttributeKey.LLM_COST))
        cost = json.loads(attrs[SpanAttributeKey.LLM_COST]) if attrs.get(SpanAttributeKey.LLM_COST) else {}
        if span.parent_id is None:
            root_attrs = attrs
            error = span.status.status_code == SpanStatusCode.ERROR
            status = TraceState.ERROR.value if error else TraceState.OK.value
        text = json.dumps(_open_fields(d), ensure_ascii=False)
        parts = _PLACEHOLDER.split(text)
        # re.split with two groups yields text, quoted-name, bare-name, text, ...
        fragments = tuple(parts[0::3])
        fields = tuple(q or b for q, b in zip(parts[1::3], parts[2::3], strict=True))
        span_templates.append(
            SpanTemplate(
                index=i,
                parent=index_of[span.parent_id] if span.parent_id is not None else None,
                name=span.name,
                type=span.span_type,
                status=str(getattr(span.status.status_code, "value", span.status.status_code)),
                input_cost=finite_float_or_none(cost.get("input_cost")),
                output_cost=finite_float_or_none(cost.get("output_cost")),
                total_cost=finite_float_or_none(cost.get("total_cost")),
                model_name=bounded_model_dimension(_try_parse_json_string(attrs.get(SpanAttributeKey.MODEL))),
                model_provider=bounded_model_dimension(
                    _try_parse_json_string(attrs.get(SpanAttributeKey.MODEL_PROVIDER))
                ),
                fragments=fragments,
                fields=fields,
            )
        )
    usage = aggregate_usage_from_span_nodes(usage_nodes) or {}
    costs = aggregate_cost_from_span_nodes(cost_nodes) or {}
    prefix = SpanAttributeKey.TRACE_TAG_PREFIX
    tags = {k[len(prefix) :]: str(_try_parse_json_string(v)) for k, v in root_attrs.items() if k.startswith(prefix)}
    trace_name = tags.pop(TraceTagKey.TRACE_NAME, None)
    inputs = root_attrs.get(SpanAttributeKey.INPUTS)
    outputs = root_attrs.get(SpanAttributeKey.OUTPUTS)
    return TraceTemplate(
        spans=tuple(span_templates),
        status=status,
        request_preview=_get_truncated_preview(inputs, role="user") if inputs else None,
        response_preview=_get_truncated_preview(outputs, role="assistant") if outputs else None,
        trace_name=validate_trace_name(trace_name) if trace_name is not None else None,
        usage_columns={
            col: v for key, col in TOKEN_COLUMN_BY_KEY.items() if (v := token_count_or_none(usage.get(key))) is not None
        },
        cost_columns={
            col: v for key, col in COST_COLUMN_BY_KEY.items() if (v := finite_float_or_none(costs.get(key))) is not None
        },
        tags=tuple(sorted(tags.items())),
    )


# --- rows -----------------------------------------------------------------------------------------------


def _columns(table: Any) -> tuple[str, ...]:
    # Computed columns (spans.duration_ns) are the database's to fill.
    return tuple(c.name for c in table.columns if c.computed is None)


@functools.cache
def table_columns() -> dict[str, tuple[str, ...]]:
    """Column names per table, from MLflow's SQLAlchemy models (so a schema change shows up here)."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlAssessments,
        SqlSpan,
        SqlTraceInfo,
        SqlTraceMetadata,
        SqlTraceTag,
    )

    models = (SqlTraceInfo, SqlTraceTag, SqlTraceMetadata, SqlSpan, SqlAssessments)
    return {m.__tablename__: _columns(m.__table__) for m in models}


def assessment_id_for(trace_id: str, name: str) -> str:
    """Deterministic assessment id (MLflow's own are random ``a-<uuid4 hex>``; same shape)."""
    return "a-" + hashlib.sha256(f"{trace_id}/assessment/{name}".encode()).hexdigest()[:32]


class RowBuilder:
    """Rows of every trace table for the simulator's outcomes, per chunk."""

    def __init__(self, experiment_id: str, artifact_location: str, end_ms: int) -> None:
        from mlflow.store.tracking.dbmodels.models import SqlAssessments
        from mlflow.tracing.constant import SpansLocation, TraceMetadataKey, TraceTagKey
        from mlflow.utils.mlflow_tags import MLFLOW_ARTIFACT_LOCATION
        from mlflow.utils.uri import append_to_uri_path

        self.experiment_id = int(experiment_id)
        # What MLflow's append_to_uri_path(location, "traces", trace_id, "artifacts") gives, joined once.
        self._traces_uri = append_to_uri_path(artifact_location, "traces")
        self._end_ms = end_ms
        self._artifact_tag = MLFLOW_ARTIFACT_LOCATION
        self._spans_location = (TraceTagKey.SPANS_LOCATION, SpansLocation.TRACKING_STORE.value)
        self._user_key = TraceMetadataKey.TRACE_USER
        self._sql_assessment = SqlAssessments
        self._templates: dict[tuple[Any, ...], TraceTemplate] = {}
        self.cols = table_columns()
        # rows() builds these tuples positionally, for speed.
        if self.cols["spans"] != SPAN_COLUMNS or self.cols["trace_tags"] != KEY_VALUE_COLUMNS:
            raise RuntimeError(f"MLflow's trace tables changed ({self.cols}); update benchmarks/bulkload.py")
        if self.cols["trace_request_metadata"] != KEY_VALUE_COLUMNS:
            raise RuntimeError(f"MLflow's trace tables changed ({self.cols}); update benchmarks/bulkload.py")

    def template(self, outcome: Any) -> TraceTemplate:
        """The template of ``outcome``: one per (app version, question, fault), the oldest evicted first."""
        plan = outcome.plan
        key = (plan.incident_index, plan.query.text, plan.fault)
        found = self._templates.get(key)
        if found is None:
            if len(self._templates) >= CACHE_SIZE:
                del self._templates[next(iter(self._templates))]
            found = self._templates[key] = build_template(outcome)
        return found

    def rows(self, outcomes: Sequence[Any]) -> dict[str, list[tuple[Any, ...]]]:
        """Rows per table for ``outcomes``, each row in :func:`table_columns` order."""
        from mlflow.store.tracking.utils.trace_analytics import validate_session_id

        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        info_cols = self.cols["trace_info"]
        exp = self.experiment_id
        timestamps: dict[str, int] = {}
        for o in outcomes:
            plan = o.plan
            trace_id = plan.trace_id
            t = self.template(o)
            times = demo_simulate.layout(plan, o.spans)
            start_ms = min(s for s, _ in times) // 1_000_000
            end_ms = max(e for _, e in times) // 1_000_000
            timestamps[trace_id] = start_ms
            ids = [demo_simulate.span_id_for(trace_id, s.index) for s in t.spans]
            common = {
                "otel_trace_id": json.dumps(demo_simulate._b64(int(trace_id.removeprefix("tr-"), 16), 16)),
                "trace_id": trace_id,
                "session": _double_escaped(plan.session_id),
                "user": _double_escaped(plan.user_id),
            }
            for s in t.spans:
                start_ns, end_ns = times[s.index]
                values = {
                    **common,
                    "span_id": json.dumps(demo_simulate._b64(ids[s.index], 8)),
                    "start": str(start_ns),
                    "end": str(end_ns),
                }
                if s.parent is not None:
                    values["parent_span_id"] = json.dumps(demo_simulate._b64(ids[s.parent], 8))
                out["spans"].append(
                    (
                        trace_id,
                        exp,
                        format(ids[s.index], "016x"),
                        format(ids[s.parent], "016x") if s.parent is not None else None,
                        s.name,
                        s.type,
                        s.status,
                        start_ns,
                        end_ns,
                        s.content(values),
                        s.input_cost,
                        s.output_cost,
                        s.total_cost,
                        s.model_name,
                        s.model_provider,
                    )
                )
            info = {
                "request_id": trace_id,
                "experiment_id": exp,
                "timestamp_ms": start_ms,
                "execution_time_ms": end_ms - start_ms,
                "status": t.status,
                "client_request_id": None,
                "request_preview": t.request_preview,
                "response_preview": t.response_preview,
                # 0 at creation, advanced once by log_spans' write (the trace's spans are in the store).
                "db_payload_generation": 1,
                "trace_name": t.trace_name,
                "session_id": validate_session_id(plan.session_id),
                **t.usage_columns,
                **t.cost_columns,
            }
            out["trace_info"].append(tuple(info.get(c) for c in info_cols))
            tags = [(self._artifact_tag, f"{self._traces_uri}/{trace_id}/artifacts"), self._spans_location, *t.tags]
            out["trace_tags"].extend((k, v, trace_id) for k, v in tags)
            out["trace_request_metadata"].append((self._user_key, plan.user_id, trace_id))
        assessment_cols = self.cols["assessments"]
        for trace_id, entity in demo_simulate._assessments(outcomes, {}, self._end_ms):
            entity.trace_id = trace_id
            entity.assessment_id = assessment_id_for(trace_id, entity.name)
            sql = self._sql_assessment.from_mlflow_entity(entity)
            sql.experiment_id = exp
            sql.trace_timestamp_ms = timestamps[trace_id]
            out["assessments"].append(tuple(getattr(sql, c) for c in assessment_cols))
        return out


# --- the load -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What :func:`bulkload` wrote."""

    experiment_id: str
    n_traces: int
    n_written: int
    n_assessments: int
    plan_seconds: float
    write_seconds: float  # everything after planning: rows_seconds + insert_seconds + index_seconds + commit
    rows_seconds: float  # running the plans and building rows
    insert_seconds: float  # executemany
    index_seconds: float  # rebuilding the dropped indexes
    rebuilt_indexes: bool

    @property
    def seconds(self) -> float:
        """Planning plus writing."""
        return self.plan_seconds + self.write_seconds

    @property
    def traces_per_second(self) -> float:
        """Traces written per second of the whole load (planning included); 0 when nothing was written."""
        return self.n_written / self.seconds if self.n_written and self.seconds > 0 else 0.0


def sqlite_file(tracking_uri: str) -> Path:
    """The database file of a ``sqlite:///`` tracking URI; anything else is refused."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        raise ValueError(
            f"the bulk loader writes SQLite stores only, got {tracking_uri!r}; pass sqlite:///path/to/mlflow.db "
            "(serve it with `mlflow server --backend-store-uri` to benchmark over HTTP)"
        )
    return Path(tracking_uri[len(prefix) :])


def _experiment(tracking_uri: str, name: str, artifact_location: Path | None) -> tuple[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)  # creates or migrates the store's schema
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = artifact_location.resolve().as_uri() if artifact_location is not None else None
        exp = client.get_experiment(client.create_experiment(name, artifact_location=location))
    if exp.lifecycle_stage != "active":
        raise ValueError(f"experiment {name!r} at {tracking_uri} is deleted; restore it or pick another name")
    return exp.experiment_id, exp.artifact_location


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _secondary_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    marks = ",".join("?" * len(TABLES))
    return conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks}) "
        "ORDER BY name",
        TABLES,
    ).fetchall()


def _present(conn: sqlite3.Connection, trace_ids: Sequence[str]) -> set[str]:
    marks = ",".join("?" * len(trace_ids))
    return {r[0] for r in conn.execute(f"SELECT request_id FROM trace_info WHERE request_id IN ({marks})", trace_ids)}


def bulkload(
    tracking_uri: str,
    experiment: str,
    *,
    days: int = 1,
    traces_per_day: int,
    end: datetime,
    seed: int,
    artifact_location: Path | None = None,
    chunk: int = DEFAULT_CHUNK,
    rebuild_indexes: bool | None = None,
    progress: bool = False,
    incidents: bool = True,
) -> LoadResult:
    """Write what ``simulate(tracking_uri, experiment, days=, traces_per_day=, end=, seed=, incidents=)``
    writes, as rows.

    ``rebuild_indexes`` (default: when the load at least doubles the store's spans) drops the trace
    tables' secondary indexes for the load and recreates them before the commit. The experiment is
    created (at ``artifact_location`` if given) when missing.
    """
    from tqdm import tqdm

    if days < 1 or traces_per_day < 1 or chunk < 1:
        raise ValueError(f"need days, traces_per_day and chunk >= 1, got {days}, {traces_per_day}, {chunk}")
    db = sqlite_file(tracking_uri)
    end = end.astimezone(UTC).replace(microsecond=(end.microsecond // 1000) * 1000)
    start = end - timedelta(days=days)
    experiment_id, location = _experiment(tracking_uri, experiment, artifact_location)

    t0 = time.perf_counter()
    profile = replace(demo_schedule.PROFILE, incidents=incidents)
    plans, _ = demo_schedule.plan_traffic(
        experiment=experiment, start=start, end=end, n_traces=days * traces_per_day, seed=seed, profile=profile
    )
    plan_seconds = time.perf_counter() - t0

    apps = RecordedApps()
    builder = RowBuilder(experiment_id, location, demo_schedule.to_ms(end))
    cols = builder.cols
    inserts = {t: f"INSERT INTO {t} ({', '.join(cols[t])}) VALUES ({', '.join('?' * len(cols[t]))})" for t in TABLES}
    written = assessments = 0
    rows_seconds = insert_seconds = index_seconds = 0.0
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    with contextlib.closing(conn):
        # Durability is the commit's; a crash mid-load leaves the store as it was (rollback journal).
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the primary-key indexes stay in memory
        existing_spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        if rebuild_indexes is None:
            rebuild_indexes = len(plans) * 3 >= existing_spans
        conn.execute("BEGIN IMMEDIATE")
        try:
            indexes = _secondary_indexes(conn) if rebuild_indexes else []
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            bar = tqdm(total=len(plans), desc="bulk load", unit="trace", file=sys.stderr, disable=not progress)
            with bar:
                for batch in _chunks(plans, chunk):
                    present = _present(conn, [p.trace_id for p in batch])
                    todo = [p for p in batch if p.trace_id not in present]
                    t1 = time.perf_counter()
                    outcomes = [demo_simulate.run_plan(p, apps, profile) for p in todo]
                    rows = builder.rows(outcomes)
                    t2 = time.perf_counter()
                    for table in TABLES:
                        conn.executemany(inserts[table], rows[table])
                    rows_seconds += t2 - t1
                    insert_seconds += time.perf_counter() - t2
                    written += len(todo)
                    assessments += len(rows["assessments"])
                    bar.update(len(batch))
            t1 = time.perf_counter()
            for _, sql in indexes:
                conn.execute(sql)
            index_seconds = time.perf_counter() - t1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    write_seconds = time.perf_counter() - t0
    result = LoadResult(
        experiment_id,
        len(plans),
        written,
        assessments,
        plan_seconds,
        write_seconds,
        rows_seconds,
        insert_seconds,
        index_seconds,
        rebuild_indexes,
    )
    log.info(
        "bulk-loaded %d of %d traces (%d assessments) in %.1f s (plan %.1f s): %.0f traces/s",
        written,
        len(plans),
        assessments,
        result.seconds,
        plan_seconds,
        result.traces_per_second,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: load N simulated traces into a SQLite store and print the throughput."""
    import resource

    p = argparse.ArgumentParser(description="Write the demo simulator's traffic straight into a SQLite MLflow store.")
    p.add_argument("tracking_uri", help="sqlite:///path/to/mlflow.db (created if missing)")
    p.add_argument("--n", type=int, required=True, help="traces per day")
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--experiment", default="flywheel-bench")
    p.add_argument("--end", default="2026-11-20T00:00:00+00:00", help="end of the simulated period (ISO 8601)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = bulkload(
        args.tracking_uri,
        args.experiment,
        days=args.days,
        traces_per_day=args.n,
        end=datetime.fromisoformat(args.end),
        seed=args.seed,
        chunk=args.chunk,
        progress=not args.quiet,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{result.n_written} of {result.n_traces} traces, {result.n_assessments} assessments in "
        f"{result.seconds:.1f} s (plan {result.plan_seconds:.1f} s, rows {result.rows_seconds:.1f} s, "
        f"insert {result.insert_seconds:.1f} s, indexes {result.index_seconds:.1f} s): "
        f"{result.traces_per_second:.0f} traces/s; peak RSS {peak:.0f} MB; indexes rebuilt: {result.rebuilt_indexes}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
