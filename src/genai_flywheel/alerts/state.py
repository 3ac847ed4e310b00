"""Alert state across intervals: when to notify, derived by replaying recorded evaluations in order.

The rule that makes backfills and re-runs safe:

1. Each processed interval's evaluations are **recorded**, keyed by the interval start. Re-processing an
   interval replaces its record (idempotent); processing intervals in any order yields the same records.
2. The alert status and every notification are **derived** by replaying the records in interval order
   (never in processing order) through the state machine below. So the final state, and the full
   notification history, are the same whether intervals ran in order or as an out-of-order backfill.
3. The notifications to send now are those the replay places at the interval being processed. A re-run
   of an interval returns them again, with the same ids (see :class:`~.payload.Notification`), so a failed
   send can be retried and a receiver can de-duplicate. (What was already sent cannot be unsent: when an
   earlier interval is backfilled after a later one, the later one may have notified although the final
   replay places that notification earlier. Run the monitor DAG with ``max_active_runs=1`` for an
   exactly-in-order notification stream.)

A per-segment rule (:mod:`genai_flywheel.alerts.segments`) records one evaluation per segment; its state is
keyed by (rule, segment) (:attr:`~.rules.AlertEvaluation.key`), so each segment runs the state machine below
on its own, and the notifications of its segments in one interval are grouped into one message per state
(:func:`~.payload.group_segments`). A segment missing from an interval's table (it left the top-K) is, like a
rule absent from a record, left as it was.

State machine per rule (or rule and segment), per recorded interval (time is interval time, never the wall clock):

* evaluation ``firing`` while ``ok`` -> status ``firing``, notify **firing**; with ``sustained: {k, n}``, only
  once ``k`` of the rule's last ``n`` recorded evaluations (this one included) were ``firing``; before that
  the event is **pending** and nothing is sent;
* ``firing`` while ``firing`` -> notify **still_firing** only if ``renotify_after`` has passed between the end
  of the last notified interval and the end of this one;
* an evaluation that clears the alert while ``firing`` -> status ``ok``, notify **resolved** (``ok``
  clears it, or with a ``resolve_threshold`` only an estimate back past that threshold; an ``ok`` that does
  not clear it keeps it firing);
* ``insufficient_data`` (or a rule absent from the record) -> nothing changes and nothing is sent (for
  ``sustained`` it counts as an interval without the condition).

Records older than ``history`` before the newest recorded interval are folded into a baseline status so
the state file stays small; processing an interval before that baseline is refused with a warning (its
metrics are still stored; only alerting skips it).

Files under the data root: ``alerts/app=<app>/state.json`` (the :class:`AlertState`, canonical JSON) and
``alerts/app=<app>/events.parquet`` (one row per recorded interval and rule, replaced atomically: rows of
retained intervals are re-derived, rows of folded intervals are kept as they are).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from genai_flywheel.alerts.payload import Notification, NotificationState, group_segments
from genai_flywheel.alerts.rules import AlertEvaluation, evaluate_rules
from genai_flywheel.exceptions import DataContractError, StoreError
from genai_flywheel.metrics.intervals import iso, parse_iso, to_utc
from genai_flywheel.metrics.store import check_name
from genai_flywheel.workspace import atomic_write_json, atomic_write_parquet, dumps_json, read_parquet

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import AlertRule

log = logging.getLogger(__name__)

STATE_VERSION = 1
DEFAULT_HISTORY = timedelta(days=35)

Status = Literal["ok", "firing"]
EventKind = Literal["fired", "still_firing", "resolved", "ok", "pending", "insufficient_data"]


@dataclass(frozen=True)
class RuleStatus:
    """Where one rule stands after some interval of the replay."""

    status: Status = "ok"
    since: datetime | None = None  # start of the first firing interval of the current episode
    last_notified: datetime | None = None  # end of the interval whose notification was the latest
    recent: tuple[str, ...] = ()  # the last evaluation states, newest last (as many as ``sustained.n``)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "status": self.status,
            "since": iso(self.since) if self.since else None,
            "last_notified": iso(self.last_notified) if self.last_notified else None,
            "recent": list(self.recent),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleStatus:
        """Inverse of :meth:`to_dict`."""
        return cls(
            status=data["status"],
            since=parse_iso(data["since"]) if data.get("since") else None,
            last_notified=parse_iso(data["last_notified"]) if data.get("last_notified") else None,
            recent=tuple(data.get("recent") or ()),
        )


def rule_status(statuses: dict[str, RuleStatus], rule: str) -> RuleStatus | None:
    """Where ``rule`` stands in ``statuses`` (:attr:`AlertState.alerts`), None if it was never evaluated. A
    per-segment rule's statuses are keyed by segment: it is firing while any segment fires (since the earliest
    of them), else ok."""
    if rule in statuses:
        return statuses[rule]
    mine = [status for key, status in statuses.items() if key.startswith(f"{rule}[")]
    firing = [status for status in mine if status.status == "firing"]
    if firing:
        return min(firing, key=lambda status: (status.since is None, status.since or 0))
    return RuleStatus() if mine else None


@dataclass(frozen=True)
class IntervalRecord:
    """The evaluations of one processed interval (sorted by rule name)."""

    interval_start: datetime
    interval_end: datetime
    evaluations: tuple[AlertEvaluation, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "interval_start": iso(self.interval_start),
            "interval_end": iso(self.interval_end),
            "evaluations": [e.to_dict() for e in self.evaluations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntervalRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            interval_start=parse_iso(data["interval_start"]),
            interval_end=parse_iso(data["interval_end"]),
            evaluations=tuple(AlertEvaluation.from_dict(e) for e in data["evaluations"]),
        )


@dataclass(frozen=True)
class AlertState:
    """The persisted alert state of one application.

    ``records`` are the retained per-interval evaluations (ascending), ``baseline`` the rule statuses after
    the folded older records (all before ``baseline_until``), and ``alerts`` the current status of every
    rule after replaying everything (derived; kept for humans and dashboards).
    """

    app: str
    records: tuple[IntervalRecord, ...] = ()
    baseline: dict[str, RuleStatus] = field(default_factory=dict)
    baseline_until: datetime | None = None
    alerts: dict[str, RuleStatus] = field(default_factory=dict)

    @classmethod
    def empty(cls, app: str) -> AlertState:
        """The state of an application that was never evaluated."""
        return cls(app=app)

    def firing(self) -> list[str]:
        """Names of the rules currently firing."""
        return sorted(rule for rule, status in self.alerts.items() if status.status == "firing")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "version": STATE_VERSION,
            "app": self.app,
            "alerts": {rule: s.to_dict() for rule, s in sorted(self.alerts.items())},
            "baseline": {rule: s.to_dict() for rule, s in sorted(self.baseline.items())},
            "baseline_until": iso(self.baseline_until) if self.baseline_until else None,
            "records": [r.to_dict() for r in self.records],
        }

    def to_json(self) -> str:
        """Canonical JSON (same state, same text)."""
        return dumps_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertState:
        """Inverse of :meth:`to_dict`."""
        if data.get("version") != STATE_VERSION:
            raise StoreError(f"alert state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(
            app=data["app"],
            records=tuple(IntervalRecord.from_dict(r) for r in data["records"]),
            baseline={rule: RuleStatus.from_dict(s) for rule, s in data["baseline"].items()},
            baseline_until=parse_iso(data["baseline_until"]) if data.get("baseline_until") else None,
            alerts={rule: RuleStatus.from_dict(s) for rule, s in data["alerts"].items()},
        )

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class AlertEvent:
    """One rule in one recorded interval, as the replay saw it (a row of ``events.parquet``)."""

    app: str
    rule: str
    metric: str
    severity: str
    op: str
    threshold: float
    interval_start: datetime
    interval_end: datetime
    evaluation: str  # firing / ok / insufficient_data
    kind: EventKind
    status: Status  # after this interval
    notified: bool
    firing_since: datetime | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    reason: str
    dimension: str | None = None  # a per-segment rule's dimension, segment key and label
    segment: str | None = None
    label: str | None = None


def _step(
    prev: RuleStatus, evaluation: AlertEvaluation, start: datetime, end: datetime, renotify_after: timedelta
) -> tuple[RuleStatus, EventKind, NotificationState | None]:
    window = max(1, evaluation.sustain_n)
    recent = (*prev.recent, evaluation.state)[-window:] if window > 1 else ()
    prev = replace(prev, recent=recent)
    if evaluation.state == "insufficient_data":
        # No evidence either way: a firing alert stays firing (silently), an ok one stays ok.
        return prev, "insufficient_data", None
    if prev.status == "firing":
        clears = evaluation.clears if evaluation.clears is not None else evaluation.state == "ok"
        if clears:
            return RuleStatus("ok", since=None, last_notified=end, recent=recent), "resolved", "resolved"
        if prev.last_notified is None or end - prev.last_notified >= renotify_after:
            return replace(prev, last_notified=end), "still_firing", "still_firing"
        return prev, "still_firing", None
    if evaluation.state == "firing":
        hits = recent.count("firing") if window > 1 else 1
        if hits >= evaluation.sustain_k:
            return RuleStatus("firing", since=start, last_notified=end, recent=recent), "fired", "firing"
        return prev, "pending", None
    return prev, "ok", None


def _replay_record(
    app: str, statuses: dict[str, RuleStatus], record: IntervalRecord, renotify_after: timedelta
) -> tuple[list[AlertEvent], list[Notification]]:
    """Advance ``statuses`` (in place) over one record; its events and notifications."""
    events: list[AlertEvent] = []
    notifications: list[Notification] = []
    start, end = record.interval_start, record.interval_end
    for ev in record.evaluations:
        prev = statuses.get(ev.key, RuleStatus())
        new, kind, notify = _step(prev, ev, start, end, renotify_after)
        statuses[ev.key] = new
        since = new.since if new.status == "firing" else prev.since
        events.append(
            AlertEvent(
                app=app, rule=ev.rule, metric=ev.metric, severity=ev.severity, op=ev.op,
                threshold=ev.threshold, interval_start=start, interval_end=end, evaluation=ev.state,
                kind=kind, status=new.status, notified=notify is not None, firing_since=since,
                value=ev.value, ci_low=ev.ci_low, ci_high=ev.ci_high, n=ev.n, reason=ev.reason,
                dimension=ev.dimension, segment=ev.segment, label=ev.label,
            )
        )  # fmt: skip
        if notify is not None:
            notifications.append(Notification.from_evaluation(app, ev, notify, start, end, since))
    return events, group_segments(notifications)


def replay(state: AlertState, renotify_after: timedelta) -> tuple[list[AlertEvent], list[Notification]]:
    """Every event and notification of the retained records, in interval order, from the baseline."""
    statuses = dict(state.baseline)
    events: list[AlertEvent] = []
    notifications: list[Notification] = []
    for record in state.records:
        ev, notes = _replay_record(state.app, statuses, record, renotify_after)
        events += ev
        notifications += notes
    return events, notifications


def update_state(
    state: AlertState,
    evaluations: Sequence[AlertEvaluation],
    interval_start: datetime,
    interval_end: datetime,
    renotify_after: timedelta,
    *,
    history: timedelta = DEFAULT_HISTORY,
) -> tuple[AlertState, list[AlertEvent], list[Notification]]:
    """Record one interval's evaluations and derive the new state, its events and its notifications.

    Pure and deterministic: the result depends only on the arguments. Re-running an interval replaces its
    record, so it returns the same state, events and notifications as the first run. Intervals older
    than the folded baseline (more than ``history`` behind the newest recorded interval) are refused with
    a warning: the state is returned unchanged with no events or notifications.
    """
    start, end = to_utc(interval_start), to_utc(interval_end)
    if end <= start:
        raise ValueError(f"interval_end {iso(end)} must be after interval_start {iso(start)}")
    if renotify_after < timedelta(0):
        raise ValueError(f"renotify_after must not be negative, got {renotify_after}")
    keys = [e.key for e in evaluations]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise DataContractError(
            f"rule(s) {dupes} evaluated twice for {iso(start)}; rule names (and a rule's segments) must be unique"
        )
    if state.baseline_until is not None and start < state.baseline_until:
        log.warning(
            "app %s: interval %s is older than the alert history kept (from %s); not alerting on it. "
            "Its metrics are stored; raise the history to alert on older backfills",
            state.app,
            iso(start),
            iso(state.baseline_until),
        )
        return state, [], []

    records = {r.interval_start: r for r in state.records}
    records[start] = IntervalRecord(start, end, tuple(sorted(evaluations, key=lambda e: e.key)))
    ordered = sorted(records.values(), key=lambda r: r.interval_start)
    cutoff = ordered[-1].interval_start - history

    statuses = dict(state.baseline)
    baseline, baseline_until = dict(state.baseline), state.baseline_until
    kept: list[IntervalRecord] = []
    events: list[AlertEvent] = []
    notifications: list[Notification] = []
    for record in ordered:
        ev, notes = _replay_record(state.app, statuses, record, renotify_after)
        if record.interval_start == start:
            events, notifications = ev, notes
        if record.interval_start < cutoff:
            # Folded: later replays start from the status after this record.
            baseline, baseline_until = dict(statuses), record.interval_end
        else:
            kept.append(record)
    new_state = AlertState(
        app=state.app,
        records=tuple(kept),
        baseline=baseline,
        baseline_until=baseline_until,
        alerts=dict(statuses),
    )
    return new_state, events, notifications


def events_schema() -> pa.Schema:
    """Arrow schema of ``events.parquet``."""
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    return pa.schema(
        [
            pa.field("app", pa.string(), nullable=False),
            pa.field("interval_start", ts, nullable=False),
            pa.field("interval_end", ts, nullable=False),
            pa.field("rule", pa.string(), nullable=False),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("severity", pa.string(), nullable=False),
            pa.field("op", pa.string(), nullable=False),
            pa.field("threshold", pa.float64(), nullable=False),
            pa.field("evaluation", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("notified", pa.bool_(), nullable=False),
            pa.field("firing_since", ts),
            pa.field("value", pa.float64()),
            pa.field("ci_low", pa.float64()),
            pa.field("ci_high", pa.float64()),
            pa.field("n", pa.int64(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            # Per-segment rules (null for app-level rules); added later, so read_events fills them in.
            pa.field("dimension", pa.string()),
            pa.field("segment", pa.string()),
            pa.field("label", pa.string()),
        ]
    )


def events_table(events: Sequence[AlertEvent]) -> pa.Table:
    """``events`` as an :func:`events_schema` table sorted by (interval_start, rule, segment)."""
    import pyarrow as pa

    schema = events_schema()
    rows = sorted(events, key=lambda e: (e.interval_start, e.rule, e.segment or ""))
    return pa.table({name: [getattr(e, name) for e in rows] for name in schema.names}, schema=schema)


class AlertStore:
    """Alert state and event log of every application under ``root/alerts``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def app_dir(self, app: str) -> Path:
        """``root/alerts/app=<app>``."""
        return self.root / "alerts" / f"app={check_name(app)}"

    def state_path(self, app: str) -> Path:
        """Where the state JSON of ``app`` lives."""
        return self.app_dir(app) / "state.json"

    def events_path(self, app: str) -> Path:
        """Where the event log of ``app`` lives."""
        return self.app_dir(app) / "events.parquet"

    def load(self, app: str) -> AlertState:
        """The saved state of ``app``, or an empty one if it was never saved."""
        path = self.state_path(app)
        if not path.is_file():
            return AlertState.empty(app)
        try:
            state = AlertState.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StoreError(
                f"cannot read alert state {path}: {err}; restore it from a backup or delete it (alerts then "
                "restart from 'ok' and re-notify what still fires)"
            ) from err
        if state.app != app:
            raise StoreError(f"{path} holds the state of app {state.app!r}, not {app!r}; move it back")
        return state

    def save(self, state: AlertState) -> Path:
        """Write ``state`` atomically as canonical JSON."""
        return atomic_write_json(state.to_dict(), self.state_path(state.app))

    def read_events(self, app: str) -> pa.Table:
        """The event log of ``app`` (empty table if none)."""
        import pyarrow as pa

        path = self.events_path(app)
        if not path.is_file():
            return events_schema().empty_table()
        schema = events_schema()
        try:
            table = read_parquet(path)
            for name in ("dimension", "segment", "label"):
                if name not in table.column_names:  # an event log written before per-segment rules
                    table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
            return table.cast(schema)
        except (OSError, pa.ArrowException) as err:
            raise StoreError(f"cannot read alert events {path}: {err}; delete it to rebuild it") from err

    def write_events(self, state: AlertState, renotify_after: timedelta) -> Path:
        """Rewrite the event log: rows of folded intervals kept, rows of retained intervals re-derived."""
        import pyarrow as pa
        import pyarrow.compute as pc

        derived = events_table(replay(state, renotify_after)[0])
        old = self.read_events(state.app)
        if state.records:
            first = pa.scalar(state.records[0].interval_start, events_schema().field("interval_start").type)
            old = old.filter(pc.less(old.column("interval_start"), first))
        # Null segments (app-level rules) sort first among a rule's rows, as "" does in events_table.
        order = [("interval_start", "ascending"), ("rule", "ascending"), ("segment", "ascending", "at_start")]
        table = pa.concat_tables([old, derived]).sort_by(order)
        return atomic_write_parquet(table, self.events_path(state.app))

    @contextlib.contextmanager
    def locked(self, app: str) -> Iterator[None]:
        """Hold an exclusive lock on ``app``'s alert files (serialises concurrent runs on one host)."""
        directory = self.app_dir(app)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, runs must not overlap
            yield
            return
        fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _check_interval(table: pa.Table, app: str, interval_start: datetime, what: str, source: str) -> None:
    """Refuse a table that holds another app's or another interval's rows."""
    if not table.num_rows:
        return
    import pyarrow.compute as pc

    apps = pc.unique(table.column("app")).to_pylist()
    starts = [to_utc(s) for s in pc.unique(table.column("interval_start")).to_pylist()]
    if apps != [app] or starts != [to_utc(interval_start)]:
        raise DataContractError(
            f"{what} of app(s) {apps} for interval(s) {[iso(s) for s in starts]} cannot be alerted as "
            f"{app!r} {iso(interval_start)}; pass {source} of this app and interval"
        )


def process_interval(
    root: Path | str,
    app: str,
    metrics: pa.Table,
    rules: Sequence[AlertRule],
    interval_start: datetime,
    interval_end: datetime,
    renotify_after: timedelta,
    *,
    history: timedelta = DEFAULT_HISTORY,
    segments: pa.Table | None = None,
) -> list[Notification]:
    """The alert stage: evaluate ``rules`` on one interval's ``metrics`` (and the per-segment rules on its
    ``segments`` table, ``segments_schema``), persist state and events under ``root``, and return the
    notifications to send for this interval (same ones on a re-run)."""
    _check_interval(metrics, app, interval_start, "metrics", "MetricsStore.read()")
    if segments is not None:
        _check_interval(segments, app, interval_start, "segment metrics", "MetricsStore.read_segments()")
    from genai_flywheel.alerts.baseline import read_history, read_segment_history
    from genai_flywheel.alerts.segments import evaluate_segment_rules

    def baseline_rows(rule: AlertRule) -> list[dict[str, Any]]:
        return read_history(root, app, rule.metric, interval_start, rule.baseline_spec)

    # No metrics at all: every threshold or baseline rule is insufficient_data, a no_data rule fires. Stale
    # rules are the watchdog's (genai_flywheel.alerts.watchdog): a monitor cannot notice it stopped.
    evaluations = evaluate_rules(metrics, [r for r in rules if r.kind != "stale" and r.segment is None], baseline_rows)
    per_segment = [r for r in rules if r.segment is not None]
    if per_segment:
        if segments is None:
            from genai_flywheel.metrics.segment_schema import segments_schema

            segments = segments_schema().empty_table()
        evaluations += evaluate_segment_rules(
            segments, per_segment, lambda rule: read_segment_history(root, app, rule, interval_start)
        )
    store = AlertStore(root)
    with store.locked(app):
        state = store.load(app)
        new_state, events, notifications = update_state(
            state, evaluations, interval_start, interval_end, renotify_after, history=history
        )
        if new_state is not state:
            store.save(new_state)
            store.write_events(new_state, renotify_after)
    log.info(
        "app %s interval %s: %d rule(s), firing now: %s; %d notification(s)",
        app,
        iso(interval_start),
        len(events),
        ", ".join(new_state.firing()) or "none",
        len(notifications),
    )
    return notifications
