"""The watchdog: a monitor that stopped producing intervals must page someone too.

A ``kind: stale`` rule fires when the newest interval in the metrics store ended more than ``threshold`` hours
before the watchdog's check time. The monitor cannot raise this alert itself (it is the thing that stopped),
so a separate, small DAG runs the check on its own schedule with its run's data interval end as "now": a
re-run of a check gives the same result and the same notification ids.

State (firing since when, last notified) lives in ``alerts/app=<app>/watchdog.json``; the same episode
rules as the monitor's alerts apply: notify on firing, again after ``renotify_after``, and on resolve. A
re-run of a check returns the notification of its first run again (so a failed send can be retried).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.alerts.payload import Notification
from genai_flywheel.alerts.rules import AlertEvaluation
from genai_flywheel.metrics.intervals import iso, parse_iso, to_utc
from genai_flywheel.workspace import atomic_write_json

if TYPE_CHECKING:
    from genai_flywheel.config import AlertRule

DELAY_METRIC = "monitor.delay_hours"


@dataclass(frozen=True)
class Freshness:
    """How far behind the monitor is at one check."""

    newest_end: datetime | None  # end of the newest stored interval (None: nothing stored yet)
    delay_hours: float | None


def freshness(root: Path | str, app: str, interval: timedelta, now: datetime) -> Freshness:
    """The newest stored interval of ``app`` and its delay behind ``now`` (intervals of length ``interval``)."""
    from genai_flywheel.metrics.store import MetricsStore

    starts = MetricsStore(root).intervals(app)
    if not starts:
        return Freshness(None, None)
    newest_end = max(starts) + interval
    return Freshness(newest_end, (to_utc(now) - newest_end).total_seconds() / 3600.0)


def _evaluation(rule: AlertRule, fresh: Freshness) -> AlertEvaluation:
    base = {
        "rule": rule.name, "metric": DELAY_METRIC, "op": ">", "threshold": float(rule.threshold),
        "severity": rule.severity, "min_samples": 1, "ci_low": None, "ci_high": None, "kind": "stale",
    }  # fmt: skip
    if fresh.delay_hours is None:
        return AlertEvaluation(
            **base, state="insufficient_data", value=None, n=0, clears=None,
            reason="no interval stored yet: the monitor has not completed a run",
        )  # fmt: skip
    late = fresh.delay_hours > rule.threshold
    return AlertEvaluation(
        **base, state="firing" if late else "ok", value=round(fresh.delay_hours, 3), n=1, clears=not late,
        reason=f"newest monitored interval ended {iso(fresh.newest_end)}, {fresh.delay_hours:.1f} h before this "
        f"check ({'more' if late else 'not more'} than {rule.threshold:g} h): "
        + ("check the monitor DAG's runs and the scheduler" if late else "the monitor is keeping up"),
    )  # fmt: skip


def _transition(
    ev: AlertEvaluation, prev: dict[str, Any], now: datetime, fresh: Freshness, renotify_after: timedelta
) -> tuple[str | None, dict[str, Any]]:
    """The notification (if any) and the new status of one rule at one check."""
    last = parse_iso(prev["last_notified"]) if prev.get("last_notified") else None
    if ev.state == "firing" and prev["status"] != "firing":
        return "firing", {"status": "firing", "since": iso(fresh.newest_end), "last_notified": iso(now)}
    if ev.state == "firing" and (last is None or now - last >= renotify_after):
        return "still_firing", {**prev, "last_notified": iso(now)}
    if ev.state == "ok" and prev["status"] == "firing":
        return "resolved", {"status": "ok", "since": None, "last_notified": iso(now)}
    return None, prev


def check(
    root: Path | str,
    app: str,
    rules: list[AlertRule],
    interval: timedelta,
    check_start: datetime,
    check_end: datetime,
    renotify_after: timedelta,
) -> list[Notification]:
    """Evaluate the ``kind: stale`` rules of ``app`` at ``check_end``; the notifications to send now."""
    from genai_flywheel.alerts.state import AlertStore

    stale = [r for r in rules if r.kind == "stale"]
    if not stale:
        return []
    fresh = freshness(root, app, interval, check_end)
    store = AlertStore(root)
    path = store.app_dir(app) / "watchdog.json"
    notes: list[Notification] = []
    with store.locked(app):
        state: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        for rule in stale:
            ev = _evaluation(rule, fresh)
            prev = state.get(rule.name, {"status": "ok", "since": None, "last_notified": None})
            now = to_utc(check_end)
            if prev.get("checked") == iso(now):
                # A re-run of the same check (e.g. its notifier failed): the same notification again.
                kind = prev.get("kind")
            else:
                kind, prev = _transition(ev, prev, now, fresh, renotify_after)
                state[rule.name] = {**prev, "checked": iso(now), "kind": kind}
            if kind is not None:
                since = parse_iso(prev["since"]) if prev.get("since") else fresh.newest_end
                notes.append(Notification.from_evaluation(app, ev, kind, to_utc(check_start), now, since))
        atomic_write_json(state, path)
    return notes
