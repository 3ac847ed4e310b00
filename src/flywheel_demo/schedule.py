"""The pure part of the traffic simulator: when each request happens, who sends it, what goes wrong.

Everything here is a function of the arguments and the seed (no clock, no MLflow), so it is unit-tested
directly and two runs with the same arguments plan byte-identical traffic.

Planted incidents (windows are hour-aligned relative to ``start``, end-exclusive):

* ``smart_sync_wrong_answers``: from ``end - min(24 h, span / 2)`` to ``end`` production's index includes
  the archived Smart Sync notice, so Smart Sync questions get wrong answers. With ``days=3`` it covers the
  whole last day.
* ``error_spike``: 2 hours of 30% failed requests (mostly chat-model rate limiting), placed at the busiest
  hours of the first half of the time before the Smart Sync incident.
* ``chat_latency_regression``: 3 hours in which the CHAT_MODEL span is 4x slower, at the busiest hours of
  the second half of that time.

``Profile(incidents=False)`` plants none of them and keeps the traffic otherwise identical (a clean week
to count false alerts on): the same requests in the same milliseconds from the same sessions and users,
every request outside the incident windows planned exactly alike; inside them, the background error rate
and timings (a request whose fault only the spike caused draws its later values afresh).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flywheel_demo.app import RETRIEVAL_TIMEOUT_S, Fault
from flywheel_demo.queries import Query, sample_feature, sample_query

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Profile:
    """Traffic parameters. The defaults are what ``simulate`` uses."""

    base_error_rate: float = 0.02
    spike_error_rate: float = 0.30
    spike_hours: int = 2
    latency_factor: float = 4.0
    latency_hours: int = 3
    retrieval_median_ms: float = 60.0
    retrieval_sigma: float = 0.45
    chat_median_ms: float = 850.0
    chat_sigma: float = 0.30
    pii_rate: float = 0.04
    feedback_rate: float = 0.30  # share of answered requests whose user leaves a thumbs up/down
    feedback_rate_bad: float = 0.50  # users complain more often about wrong answers
    negative_rate_bad: float = 0.85
    negative_rate_good: float = 0.08
    negative_rate_unanswered: float = 0.50
    correction_rate: float = 0.25  # share of negative feedback on wrong answers that gets a correction
    follow_up_topic_switch: float = 0.30
    incidents: bool = True  # False: no planted incident, the traffic otherwise unchanged


PROFILE = Profile()


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        """Window start, epoch milliseconds."""
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        """Window end, epoch milliseconds."""
        return to_ms(self.end)

    def contains_ms(self, t_ms: int) -> bool:
        """Whether the epoch-millisecond time ``t_ms`` falls in the window."""
        return self.start_ms <= t_ms < self.end_ms

    def to_dict(self) -> dict[str, str]:
        """ISO-8601 start and end."""
        return {"start": iso(self.start), "end": iso(self.end)}


@dataclass(frozen=True)
class IncidentWindows:
    """When each planted incident happens."""

    smart_sync: Window
    error_spike: Window
    latency: Window


@dataclass(frozen=True)
class TracePlan:
    """Everything decided about one request before the app runs it."""

    index: int
    trace_id: str
    start_ns: int
    query: Query
    session_id: str
    user_id: str
    turn: int  # 0 for the first question of a session
    incident_index: bool  # production serves from the re-indexed (archived-pages) index
    fault: Fault | None  # "retrieval_timeout", "rate_limit" or None
    in_error_spike: bool
    in_latency_window: bool
    retrieval_ms: float
    chat_ms: float
    pre_ms: float  # root span work before the first child
    gap_ms: float  # between child spans
    post_ms: float  # root span work after the last child
    feedback_u: float  # uniform draws that decide the user's feedback once the answer is known
    value_u: float
    comment_u: float
    correction_u: float
    feedback_delay_s: float

    @property
    def timestamp_ms(self) -> int:
        """Trace start, epoch milliseconds."""
        return self.start_ns // 1_000_000


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(round(dt.timestamp() * 1000))


def from_ms(t_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC)


def iso(dt: datetime) -> str:
    """ISO-8601 in UTC, e.g. ``2026-01-05T14:00:00+00:00``."""
    return dt.astimezone(UTC).isoformat()


def utc(dt: datetime) -> datetime:
    """``dt`` as an aware UTC datetime; naive datetimes are taken as UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def default_end(now: datetime) -> datetime:
    """``now`` rounded down to the hour, UTC."""
    return utc(now).replace(minute=0, second=0, microsecond=0)


def diurnal_weight(hour_utc: int) -> float:
    """Relative request volume by hour of day (UTC): quiet nights, a peak mid-afternoon."""
    return 0.15 + math.exp(-0.5 * ((hour_utc - 15) / 4.0) ** 2)


def _busiest(start: datetime, lo_h: int, hi_h: int, length_h: int) -> Window:
    # The length_h-hour window inside hours [lo_h, hi_h) after start with the most expected traffic,
    # so an incident affects enough requests to be measurable; the earliest wins ties.
    best, best_w = lo_h, -1.0
    for s in range(lo_h, max(lo_h, hi_h - length_h) + 1):
        w = sum(diurnal_weight((start + timedelta(hours=s + k)).hour) for k in range(length_h))
        if w > best_w + 1e-12:
            best, best_w = s, w
    return Window(start + timedelta(hours=best), start + timedelta(hours=best + length_h))


def incident_windows(start: datetime, end: datetime, profile: Profile = PROFILE) -> IncidentWindows:
    """The planted incidents' windows for traffic in ``[start, end)`` (at least 12 hours)."""
    span = end - start
    if span < timedelta(hours=12):
        raise ValueError(f"the simulated period {start} .. {end} is shorter than 12 hours; use days >= 1")
    bug_start = end - min(timedelta(hours=24), span / 2)
    pre_hours = int((bug_start - start) / timedelta(hours=1))
    half = pre_hours // 2
    return IncidentWindows(
        smart_sync=Window(bug_start, end),
        error_spike=_busiest(start, 0, half, profile.spike_hours),
        latency=_busiest(start, half, pre_hours, profile.latency_hours),
    )


def namespace(experiment: str, seed: int, start: datetime, end: datetime, n_traces: int) -> str:
    """The identity of one simulation; trace and session ids derive from it, so re-runs reuse them."""
    return f"{experiment}|{seed}|{to_ms(start)}|{to_ms(end)}|{n_traces}"


def trace_id_for(ns: str, index: int) -> str:
    """The deterministic MLflow trace id of request ``index``: ``tr-`` + 32 hex digits."""
    return "tr-" + hashlib.sha256(f"{ns}/trace/{index}".encode()).hexdigest()[:32]


def session_id_for(ns: str, session_no: int) -> str:
    """The deterministic id of session ``session_no``."""
    return "sess-" + hashlib.sha256(f"{ns}/session/{session_no}".encode()).hexdigest()[:16]


def plan_traffic(
    *,
    experiment: str,
    start: datetime,
    end: datetime,
    n_traces: int,
    seed: int,
    profile: Profile = PROFILE,
) -> tuple[list[TracePlan], IncidentWindows]:
    """Plan ``n_traces`` requests in ``[start, end)``, sorted by time, and the incident windows (where
    the incidents are, or would be when ``profile.incidents`` is False).

    Sessions (1-4 questions, 20 s - 4 min apart, mostly on one topic) start at times drawn from the
    diurnal curve; users are drawn from a long-tailed pool.
    """
    start, end = utc(start), utc(end)
    if n_traces < 1:
        raise ValueError(f"n_traces must be >= 1, got {n_traces}")
    windows = incident_windows(start, end, profile)
    ns = namespace(experiment, seed, start, end, n_traces)
    rng = random.Random(f"{ns}/schedule")
    start_ms, end_ms = to_ms(start), to_ms(end)
    n_hours = math.ceil((end_ms - start_ms) / HOUR_MS)
    hour_cum: list[float] = []
    acc = 0.0
    for h in range(n_hours):
        acc += diurnal_weight(from_ms(start_ms + h * HOUR_MS).hour)
        hour_cum.append(acc)
    n_users = max(10, n_traces // 12)
    user_cum: list[float] = []
    acc = 0.0
    for k in range(n_users):
        acc += 1.0 / (k + 1) ** 0.9
        user_cum.append(acc)

    items: list[tuple[int, int, int, int, Query]] = []  # (t_ms, session_no, turn, user, query)
    session_no = 0
    while len(items) < n_traces:
        hour = rng.choices(range(n_hours), cum_weights=hour_cum)[0]
        t_ms = start_ms + hour * HOUR_MS + rng.randrange(HOUR_MS)
        n_turns = rng.choice((1, 1, 1, 1, 2, 2, 2, 3, 3, 4))
        user = rng.choices(range(n_users), cum_weights=user_cum)[0]
        feature = sample_feature(rng)
        for turn in range(n_turns):
            if turn:
                t_ms += rng.randrange(20_000, 240_000)
                if rng.random() < profile.follow_up_topic_switch:
                    feature = sample_feature(rng)
            if t_ms >= end_ms or len(items) >= n_traces:
                break
            items.append((t_ms, session_no, turn, user, sample_query(rng, feature, pii_rate=profile.pii_rate)))
        session_no += 1
    items.sort(key=lambda it: (it[0], it[1], it[2]))

    plans = [
        _plan_one(ns, index, t_ms, session_no, turn, user, query, windows, profile)
        for index, (t_ms, session_no, turn, user, query) in enumerate(items)
    ]
    return plans, windows


def _plan_one(
    ns: str,
    index: int,
    t_ms: int,
    session_no: int,
    turn: int,
    user: int,
    query: Query,
    windows: IncidentWindows,
    profile: Profile,
) -> TracePlan:
    # One generator per request, seeded by its identity: a request's draws do not depend on the others.
    rng = random.Random(f"{ns}/trace/{index}")
    # Without incidents every request draws exactly as it would outside the incident windows.
    in_spike = profile.incidents and windows.error_spike.contains_ms(t_ms)
    in_latency = profile.incidents and windows.latency.contains_ms(t_ms)
    fault: Fault | None = None
    if rng.random() < (profile.spike_error_rate if in_spike else profile.base_error_rate):
        # A spike is an upstream provider problem (rate limiting); background errors are mixed.
        fault = "rate_limit" if rng.random() < (0.9 if in_spike else 0.6) else "retrieval_timeout"
    retrieval_ms = rng.lognormvariate(math.log(profile.retrieval_median_ms), profile.retrieval_sigma)
    chat_ms = rng.lognormvariate(math.log(profile.chat_median_ms), profile.chat_sigma)
    if in_latency:
        chat_ms *= profile.latency_factor
    if fault == "retrieval_timeout":
        retrieval_ms = RETRIEVAL_TIMEOUT_S * 1000.0 + rng.uniform(0.0, 40.0)
    elif fault == "rate_limit":
        chat_ms = rng.uniform(25.0, 90.0)
    return TracePlan(
        index=index,
        trace_id=trace_id_for(ns, index),
        start_ns=t_ms * 1_000_000 + rng.randrange(1_000_000),
        query=query,
        session_id=session_id_for(ns, session_no),
        user_id=f"user-{user:04d}",
        turn=turn,
        incident_index=profile.incidents and windows.smart_sync.contains_ms(t_ms),
        fault=fault,
        in_error_spike=in_spike,
        in_latency_window=in_latency,
        retrieval_ms=retrieval_ms,
        chat_ms=chat_ms,
        pre_ms=rng.uniform(1.0, 6.0),
        gap_ms=rng.uniform(0.1, 0.8),
        post_ms=rng.uniform(0.5, 3.0),
        feedback_u=rng.random(),
        value_u=rng.random(),
        comment_u=rng.random(),
        correction_u=rng.random(),
        feedback_delay_s=rng.uniform(5.0, 900.0),
    )
