"""Production traffic simulator: days of past traces, user feedback and planted incidents, in MLflow.

``simulate(tracking_uri, experiment)`` plans the traffic (:mod:`flywheel_demo.schedule`), runs every
request through the real app with a :class:`~flywheel_demo.app.RecordingTracer`, and writes the
recorded spans with simulated past timings.

Why not just call the traced app: MLflow's fluent tracing stamps spans with the current time, its
asynchronous export drops traces under load, and synchronous span-by-span logging manages ~20 traces/s.
Instead the spans are built as ``mlflow.entities.Span`` objects (explicit start/end ns and deterministic
ids) and written in batches with the tracking store's ``log_spans``, the call behind MLflow's OTLP
endpoint: the store creates each trace's info from its spans (status from the root span, token usage
summed from ``mlflow.chat.tokenUsage``, request/response previews from the root inputs/outputs, session and
user from the root's ``session.id`` / ``user.id`` attributes, tags from ``mlflow.traceTag.*`` attributes,
exactly as for an app exporting over OTLP). It works on ``sqlite:///`` stores (SqlAlchemyStore) and on
``http://`` servers (RestStore posts OTLP protobuf).

Re-running with the same arguments writes nothing new: trace ids derive from the arguments, and traces
and assessments already in the experiment are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from flywheel_demo.app import (
    APP_NAME,
    CHAT_SPAN_NAME,
    MODEL_NAME,
    SESSION_METADATA_KEY,
    USER_METADATA_KEY,
    VERSIONS,
    RateLimitError,
    RecordedSpan,
    RecordingTracer,
    SupportAssistant,
)
from flywheel_demo.corpus import INCIDENT_FEATURE
from flywheel_demo.schedule import (
    PROFILE,
    IncidentWindows,
    Profile,
    TracePlan,
    default_end,
    iso,
    plan_traffic,
    to_ms,
    utc,
)
from genai_flywheel.exceptions import SimulationError

logger = logging.getLogger(__name__)

FEEDBACK_NAME = "user_feedback"
EXPECTATION_NAME = "expected_answer"
CORRECTION_SOURCE_ID = "support-team"
BATCH_TRACES = 100
HTTP_FEEDBACK_THREADS = 8

# MLflow span log levels (mlflow.entities.SpanLogLevel): LiveSpan gives CHAIN spans DEBUG, retriever and
# model spans INFO, and any span an exception passed through ERROR. Checked against a live trace in
# tests/integration/test_simulator.py.
_LOG_LEVEL = {"RETRIEVER": 20, "CHAT_MODEL": 20, "LLM": 20, "TOOL": 20}
_LOG_LEVEL_DEFAULT = 10
_LOG_LEVEL_ERROR = 40

_COMMENTS = {
    ("bad", False): (
        "This is wrong, Smart Sync works fine on my devices.",
        "Smart Sync is definitely supported, I use it every day.",
        "Not helpful: it just says the feature is not supported.",
        "This did not answer my question at all.",
    ),
    ("good", False): ("Not what I asked.", "Too vague, I still do not know what to do."),
    ("good", True): ("Thanks, that worked!", "Perfect, thank you.", "Clear and quick, thanks."),
    ("unanswered", False): ("Useless.", "Can you not answer anything?"),
    ("unanswered", True): ("Fair enough.",),
    ("bad", True): ("ok",),
}


@dataclass(frozen=True)
class Outcome:
    """What the app did with one planned request, and how its user reacted."""

    plan: TracePlan
    spans: list[RecordedSpan]
    tags: dict[str, str]
    metadata: dict[str, str]
    answer: str | None
    error_type: str | None
    quality: str  # "good", "bad" (wrong Smart Sync answer), "unanswered" (no page found) or "error"
    feedback: bool | None  # thumbs up / down; None if the user left none
    comment: str | None
    expected_answer: str | None  # a support agent's correction of a wrong answer

    @property
    def end_ns(self) -> int:
        """End of the root span."""
        return layout(self.plan, self.spans)[0][1]


@dataclass(frozen=True)
class SimulationResult:
    """What ``simulate`` planned and wrote. ``n_traces`` / ``n_feedback`` count the whole simulation;
    ``n_written`` / ``n_feedback_written`` only what this call added (0 on an idempotent re-run)."""

    experiment_id: str
    n_traces: int
    n_feedback: int
    start: datetime
    end: datetime
    ground_truth: dict[str, Any]
    n_expectations: int = 0
    n_written: int = 0
    n_feedback_written: int = 0
    write_seconds: float = 0.0

    @property
    def traces_per_second(self) -> float:
        """Trace write throughput of this call (0 when nothing was written)."""
        return self.n_written / self.write_seconds if self.write_seconds > 0 else 0.0


# --- running the app ------------------------------------------------------------------------------------


class _Apps:
    """The app instances the simulation needs, built once."""

    def __init__(self) -> None:
        self.before = SupportAssistant("production", include_archived=False)  # before the re-index
        self.incident = SupportAssistant("production")  # production since the re-index
        self.fixed = SupportAssistant("fixed")


def run_plan(plan: TracePlan, apps: _Apps, profile: Profile = PROFILE) -> Outcome:
    """Run one planned request through the app, recording its spans, and decide the user's feedback."""
    app = apps.incident if plan.incident_index else apps.before
    rec = RecordingTracer()
    answer: str | None = None
    error_type: str | None = None
    try:
        answer = app.run(plan.query.text, rec, session_id=plan.session_id, user_id=plan.user_id, fault=plan.fault)
    except (TimeoutError, RateLimitError) as exc:
        error_type = type(exc).__name__
    quality = _quality(rec.spans) if answer is not None else "error"
    feedback, comment, expected = _user_reaction(plan, quality, apps, profile)
    return Outcome(plan, rec.spans, rec.tags, rec.metadata, answer, error_type, quality, feedback, comment, expected)


def _quality(spans: list[RecordedSpan]) -> str:
    docs = next((s.outputs for s in spans if s.span_type == "RETRIEVER"), None) or []
    if not docs:
        return "unanswered"
    # The model answers from the top page: an archived page means an outdated, wrong answer.
    return "bad" if docs[0]["metadata"]["status"] == "archived" else "good"


def _user_reaction(
    plan: TracePlan, quality: str, apps: _Apps, profile: Profile
) -> tuple[bool | None, str | None, str | None]:
    if quality == "error":
        return None, None, None
    rate = profile.feedback_rate_bad if quality == "bad" else profile.feedback_rate
    if plan.feedback_u >= rate:
        return None, None, None
    negative = {
        "bad": profile.negative_rate_bad,
        "good": profile.negative_rate_good,
        "unanswered": profile.negative_rate_unanswered,
    }[quality]
    value = plan.value_u >= negative
    comments = _COMMENTS[(quality, value)]
    comment = comments[int(plan.comment_u * 10) % len(comments)] if plan.comment_u < 0.4 else None
    expected = None
    if quality == "bad" and not value and plan.correction_u < profile.correction_rate:
        expected = apps.fixed.run(plan.query.text)
    return value, comment, expected


# --- building spans -------------------------------------------------------------------------------------


def layout(plan: TracePlan, spans: list[RecordedSpan]) -> list[tuple[int, int]]:
    """Simulated (start_ns, end_ns) per recorded span: children run one after another inside the root."""
    children: dict[int, list[int]] = {s.index: [] for s in spans}
    for s in spans:
        if s.parent is not None:
            children[s.parent].append(s.index)
    times: list[tuple[int, int]] = [(0, 0)] * len(spans)

    def ms(x: float) -> int:
        return int(round(x * 1_000_000))

    def place(i: int, t0: int) -> int:
        kids = children[i]
        if kids:
            cursor = t0 + ms(plan.pre_ms)
            for k in kids:
                cursor = place(k, cursor + ms(plan.gap_ms))
            end = cursor + ms(plan.post_ms)
        else:
            kind = spans[i].span_type
            end = t0 + ms(plan.retrieval_ms if kind == "RETRIEVER" else plan.chat_ms if kind == "CHAT_MODEL" else 0.5)
        times[i] = (t0, end)
        return end

    place(0, plan.start_ns)
    return times


def _dump(value: Any) -> str:
    # What mlflow.tracing.utils.dump_span_attribute_value produces for JSON-native values.
    return json.dumps(value, ensure_ascii=False)


def _b64(value: int, length: int) -> str:
    return base64.b64encode(value.to_bytes(length, "big")).decode()


def span_id_for(trace_id: str, index: int) -> int:
    """Deterministic, non-zero 64-bit span id."""
    return int(hashlib.sha256(f"{trace_id}/span/{index}".encode()).hexdigest()[:16], 16) or 1


def span_dicts(outcome: Outcome) -> list[dict[str, Any]]:
    """The trace's spans in MLflow's ``Span.to_dict`` format (``Span.from_dict`` builds them)."""
    plan = outcome.plan
    trace_id = plan.trace_id
    otel_trace_id = _b64(int(trace_id.removeprefix("tr-"), 16), 16)
    times = layout(plan, outcome.spans)
    out = []
    for s in outcome.spans:
        start_ns, end_ns = times[s.index]
        attrs: dict[str, Any] = {
            "mlflow.traceRequestId": _dump(trace_id),
            "mlflow.spanType": _dump(s.span_type),
        }
        if s.inputs is not None:
            attrs["mlflow.spanInputs"] = _dump(s.inputs)
        if s.outputs is not None:
            attrs["mlflow.spanOutputs"] = _dump(s.outputs)
        for key, value in s.attributes.items():
            attrs[key] = _dump(value)
        attrs["mlflow.spanLogLevel"] = _dump(
            _LOG_LEVEL_ERROR if s.error else _LOG_LEVEL.get(s.span_type, _LOG_LEVEL_DEFAULT)
        )
        if s.parent is None:
            # Trace-level fields travel on the root span, as MLflow's OTLP exporter sends them; the store
            # turns them into the trace's session/user metadata and tags.
            if session := outcome.metadata.get(SESSION_METADATA_KEY):
                attrs["session.id"] = _dump(session)
            if user := outcome.metadata.get(USER_METADATA_KEY):
                attrs["user.id"] = _dump(user)
            for key, value in {**outcome.tags, "mlflow.traceName": s.name}.items():
                attrs[f"mlflow.traceTag.{key}"] = value
        events = []
        status = {"code": "STATUS_CODE_OK", "message": ""}
        if s.error is not None:
            events.append(
                {
                    "name": "exception",
                    "time_unix_nano": end_ns,
                    "attributes": {
                        "exception.message": str(s.error),
                        "exception.type": type(s.error).__name__,
                        "exception.stacktrace": s.stacktrace or repr(s.error),
                    },
                }
            )
            status = {"code": "STATUS_CODE_ERROR", "message": f"{type(s.error).__name__}: {s.error}"}
        out.append(
            {
                "trace_id": otel_trace_id,
                "span_id": _b64(span_id_for(trace_id, s.index), 8),
                "parent_span_id": _b64(span_id_for(trace_id, s.parent), 8) if s.parent is not None else None,
                "name": s.name,
                "start_time_unix_nano": start_ns,
                "end_time_unix_nano": end_ns,
                "events": events,
                "status": status,
                "attributes": attrs,
                "links": [],
            }
        )
    return out


# --- ground truth ---------------------------------------------------------------------------------------


def ground_truth(
    outcomes: list[Outcome],
    windows: IncidentWindows,
    *,
    experiment: str,
    seed: int,
    days: int,
    traces_per_day: int,
    start: datetime,
    end: datetime,
    profile: Profile = PROFILE,
) -> dict[str, Any]:
    """What was planted, as JSON-ready data: the incident windows and the traces each one affected (no
    incident when ``profile.incidents`` is False)."""
    errors = [o for o in outcomes if o.error_type]
    feedback = [o for o in outcomes if o.feedback is not None]
    bad = [o for o in outcomes if o.quality == "bad"]
    bad_fb = [o for o in bad if o.feedback is not None]
    spike = [o for o in outcomes if o.plan.in_error_spike]
    slow = [o for o in outcomes if o.plan.in_latency_window]
    truth: dict[str, Any] = {
        "format": "genai-flywheel-demo-ground-truth/1",
        "experiment": experiment,
        "seed": seed,
        "days": days,
        "traces_per_day": traces_per_day,
        "start": iso(start),
        "end": iso(end),
        "app": {
            "name": APP_NAME,
            "app_version": VERSIONS["production"].app_version,
            "fixed_app_version": VERSIONS["fixed"].app_version,
            "model": MODEL_NAME,
        },
        "n_traces": len(outcomes),
        "n_errors": len(errors),
        "error_types": dict(sorted(Counter(o.error_type for o in errors).items())),
        "n_feedback": len(feedback),
        "n_negative_feedback": sum(1 for o in feedback if o.feedback is False),
        "n_expectations": sum(1 for o in outcomes if o.expected_answer is not None),
        "features": dict(sorted(Counter(o.plan.query.feature for o in outcomes).items())),
        "pii_trace_ids": [o.plan.trace_id for o in outcomes if o.plan.query.has_pii],
        "baseline": {
            "error_rate": profile.base_error_rate,
            "retrieval_median_ms": profile.retrieval_median_ms,
            "chat_median_ms": profile.chat_median_ms,
        },
        "incidents": {
            "smart_sync_wrong_answers": {
                "kind": "quality",
                **windows.smart_sync.to_dict(),
                "feature": INCIDENT_FEATURE,
                "cause": "docs re-index put the archived 2021 'Smart Sync' retirement notice back in "
                "production's index; it outranks the current pages and the answer says Smart Sync is "
                "not supported",
                "app_version": VERSIONS["production"].app_version,
                "fixed_in": VERSIONS["fixed"].app_version,
                "n_traces": len(bad),
                "n_feedback": len(bad_fb),
                "n_negative_feedback": sum(1 for o in bad_fb if o.feedback is False),
                "trace_ids": [o.plan.trace_id for o in bad],
            },
            "error_spike": {
                "kind": "errors",
                **windows.error_spike.to_dict(),
                "error_rate": profile.spike_error_rate,
                "n_traces": len(spike),
                "n_errors": sum(1 for o in spike if o.error_type),
                "trace_ids": [o.plan.trace_id for o in spike if o.error_type],
            },
            "chat_latency_regression": {
                "kind": "latency",
                **windows.latency.to_dict(),
                "span_type": "CHAT_MODEL",
                "span_name": CHAT_SPAN_NAME,
                "factor": profile.latency_factor,
                "n_traces": len(slow),
                "trace_ids": [o.plan.trace_id for o in slow],
            },
        },
    }
    if not profile.incidents:
        truth["incidents"] = {}
    return truth


def write_ground_truth(data: dict[str, Any], path: Path) -> None:
    """Write the ground truth as stable JSON (sorted keys), creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- writing to MLflow ----------------------------------------------------------------------------------


def _chunks(items: list[Outcome], size: int) -> Iterator[list[Outcome]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _experiment_id(tracking_uri: str, experiment: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        exp = client.get_experiment_by_name(experiment)
    except Exception as exc:
        raise SimulationError(
            f"cannot read experiment {experiment!r} from {tracking_uri}: {exc}; check the tracking URI "
            "(sqlite:///path/mlflow.db or http://host:port) and that the server is running"
        ) from exc
    if exp is None:
        logger.info("creating experiment %r at %s", experiment, tracking_uri)
        return client.create_experiment(experiment)
    if exp.lifecycle_stage != "active":
        raise SimulationError(
            f"experiment {experiment!r} at {tracking_uri} is deleted; restore it or pick another name"
        )
    return exp.experiment_id


def _list_traces(tracking_uri: str, experiment_id: str, start_ms: int, end_ms: int) -> dict[str, set[str]]:
    """Trace id -> names of its assessments, for the experiment's traces that started in the window."""
    from genai_flywheel.traces.extract import iter_traces, window_filter

    return {
        t.info.trace_id: {a.name for a in t.info.assessments or []}
        for t in iter_traces(tracking_uri, experiment_id, window_filter(start_ms, end_ms), include_spans=False)
    }


def _write_traces(client: Any, experiment_id: str, outcomes: list[Outcome], bar: Any, describe: str) -> None:
    from mlflow.entities import Span

    for batch in _chunks(outcomes, BATCH_TRACES):
        spans = [Span.from_dict(d) for o in batch for d in span_dicts(o)]
        try:
            client.log_spans(experiment_id, spans)
        except NotImplementedError as exc:
            raise SimulationError(
                f"{describe} cannot store spans ({exc}); use a database store such as "
                "sqlite:///path/mlflow.db or an MLflow server backed by one"
            ) from exc
        except Exception as exc:
            raise SimulationError(
                f"writing traces {batch[0].plan.index}..{batch[-1].plan.index} to {describe} failed: {exc}; "
                "re-run simulate with the same arguments to resume (traces already written are skipped)"
            ) from exc
        bar.update(len(batch))


def _assessments(outcomes: Iterable[Outcome], existing: dict[str, set[str]], end_ms: int) -> list[Any]:
    from mlflow.entities import AssessmentSource, Expectation, Feedback

    out = []
    for o in outcomes:
        have = existing.get(o.plan.trace_id, set())
        trace_end_ms = o.end_ns // 1_000_000
        # Users react minutes after the answer, a support agent an hour later; never after the simulated
        # "now" (``end``).
        latest_ms = max(end_ms, trace_end_ms)
        at_ms = min(trace_end_ms + int(o.plan.feedback_delay_s * 1000), latest_ms)
        if o.feedback is not None and FEEDBACK_NAME not in have:
            fb = Feedback(
                name=FEEDBACK_NAME,
                value=o.feedback,
                source=AssessmentSource(source_type="HUMAN", source_id=o.plan.user_id),
                rationale=o.comment,
                create_time_ms=at_ms,
                last_update_time_ms=at_ms,
            )
            out.append((o.plan.trace_id, fb))
        if o.expected_answer is not None and EXPECTATION_NAME not in have:
            at_ms = min(at_ms + 3_600_000, latest_ms)
            exp = Expectation(
                name=EXPECTATION_NAME,
                value=o.expected_answer,
                source=AssessmentSource(source_type="HUMAN", source_id=CORRECTION_SOURCE_ID),
                create_time_ms=at_ms,
                last_update_time_ms=at_ms,
            )
            out.append((o.plan.trace_id, exp))
    return out


def _log_assessments(client: Any, items: list[Any], threads: int, bar: Any, describe: str) -> None:
    def one(item: Any) -> None:
        trace_id, assessment = item
        try:
            client.log_assessment(trace_id, assessment)
        except Exception as exc:
            raise SimulationError(
                f"logging {assessment.name!r} on trace {trace_id} to {describe} failed: {exc}; "
                "re-run simulate with the same arguments to resume"
            ) from exc
        bar.update(1)

    if threads > 1:
        # No batch call exists for assessments; over HTTP, parallel requests hide the round trips.
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="simulate-feedback") as pool:
            for _ in pool.map(one, items):
                pass
    else:
        for item in items:
            one(item)


def simulate(
    tracking_uri: str,
    experiment: str,
    *,
    days: int = 3,
    traces_per_day: int = 400,
    end: datetime | None = None,
    seed: int = 7,
    ground_truth_path: Path | None = None,
    progress: bool = True,
    incidents: bool = True,
) -> SimulationResult:
    """Write ``days`` days of the demo app's production traffic, ending at ``end``, to MLflow.

    ``end`` defaults to now rounded down to the hour (UTC). Writes ``days * traces_per_day`` traces with
    diurnal timing, user feedback and corrections, and the planted incidents described in
    :mod:`flywheel_demo.schedule` (none with ``incidents=False``: the same traffic, clean);
    ``ground_truth_path`` receives the ground truth as JSON. Same
    arguments, same traces: a re-run into the same experiment adds nothing. Raises SimulationError if a
    write fails or if any generated trace is missing from the experiment afterwards.
    """
    if not isinstance(days, int) or days < 1:
        raise SimulationError(f"days must be a whole number >= 1, got {days!r}")
    if not isinstance(traces_per_day, int) or traces_per_day < 1:
        raise SimulationError(f"traces_per_day must be a whole number >= 1, got {traces_per_day!r}")
    end = utc(end) if end is not None else default_end(datetime.now(UTC))
    end = end.replace(microsecond=(end.microsecond // 1000) * 1000)  # MLflow keeps milliseconds
    start = end - timedelta(days=days)
    n_traces = days * traces_per_day

    profile = replace(PROFILE, incidents=incidents)
    plans, windows = plan_traffic(
        experiment=experiment, start=start, end=end, n_traces=n_traces, seed=seed, profile=profile
    )
    apps = _Apps()
    outcomes = [run_plan(p, apps, profile) for p in plans]
    truth = ground_truth(
        outcomes,
        windows,
        experiment=experiment,
        seed=seed,
        days=days,
        traces_per_day=traces_per_day,
        start=start,
        end=end,
        profile=profile,
    )
    if ground_truth_path is not None:
        write_ground_truth(truth, Path(ground_truth_path))

    import mlflow.entities  # noqa: F401  (imported before the write timer: the first import takes seconds)

    from genai_flywheel.mlflow_compat import tracing_client

    describe = f"experiment {experiment!r} at {tracking_uri}"
    experiment_id = _experiment_id(tracking_uri, experiment)
    client = tracing_client(tracking_uri)
    start_ms, end_ms = to_ms(start), to_ms(end)
    existing = _list_traces(tracking_uri, experiment_id, start_ms, end_ms)
    todo = [o for o in outcomes if o.plan.trace_id not in existing]
    logger.info(
        "simulating %d traces (%s .. %s) into %s: %d already present, %d to write",
        n_traces,
        iso(start),
        iso(end),
        describe,
        n_traces - len(todo),
        len(todo),
    )
    t0 = time.perf_counter()
    with tqdm(total=len(todo), desc="traces", unit="trace", file=sys.stderr, disable=not progress) as bar:
        _write_traces(client, experiment_id, todo, bar, describe)
    write_seconds = time.perf_counter() - t0
    if todo:
        logger.info("wrote %d traces in %.1f s (%.0f traces/s)", len(todo), write_seconds, len(todo) / write_seconds)

    items = _assessments(outcomes, existing, end_ms)
    threads = HTTP_FEEDBACK_THREADS if tracking_uri.startswith(("http://", "https://")) else 1
    with tqdm(total=len(items), desc="feedback", unit="item", file=sys.stderr, disable=not progress) as bar:
        _log_assessments(client, items, threads, bar, describe)

    _verify(tracking_uri, experiment_id, outcomes, start_ms, end_ms, describe)
    n_feedback = sum(1 for o in outcomes if o.feedback is not None)
    return SimulationResult(
        experiment_id=experiment_id,
        n_traces=n_traces,
        n_feedback=n_feedback,
        start=start,
        end=end,
        ground_truth=truth,
        n_expectations=truth["n_expectations"],
        n_written=len(todo),
        n_feedback_written=sum(1 for _, a in items if a.name == FEEDBACK_NAME),
        write_seconds=write_seconds,
    )


def _verify(
    tracking_uri: str, experiment_id: str, outcomes: list[Outcome], start_ms: int, end_ms: int, describe: str
) -> None:
    found = _list_traces(tracking_uri, experiment_id, start_ms, end_ms)
    missing = [o.plan.trace_id for o in outcomes if o.plan.trace_id not in found]
    if missing:
        raise SimulationError(
            f"{len(missing)} of {len(outcomes)} generated traces are missing from {describe} "
            f"(e.g. {', '.join(missing[:3])}); re-run simulate with the same arguments to write them"
        )
    no_feedback = [
        o.plan.trace_id
        for o in outcomes
        if o.feedback is not None and FEEDBACK_NAME not in found.get(o.plan.trace_id, set())
    ]
    if no_feedback:
        raise SimulationError(
            f"{len(no_feedback)} generated {FEEDBACK_NAME!r} assessments are missing from {describe} "
            f"(e.g. on {', '.join(no_feedback[:3])}); re-run simulate with the same arguments to write them"
        )
