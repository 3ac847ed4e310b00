"""The notification payload: what a webhook, Slack message or e-mail says about an alert.

``Notification.to_json()`` is canonical JSON (sorted keys) with a deterministic ``id`` derived from
(app, rule, interval, state): re-running an interval re-sends the same id, so a receiver can drop
duplicates while a sender can safely retry (at-least-once delivery).

A per-segment rule's notifications of one interval are grouped (:func:`group_segments`): one message per rule
and state lists every segment that fired (or is still firing, or resolved) in ``segments``, the most
significant first; its top-level ``value``, ``ci`` and ``n`` are those of that first segment. Only such a
message carries the ``dimension`` and ``segments`` keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from genai_flywheel.metrics.intervals import iso
from genai_flywheel.metrics.stats import CONFIDENCE
from genai_flywheel.workspace import dumps_json

if TYPE_CHECKING:
    from genai_flywheel.alerts.rules import AlertEvaluation

NotificationState = Literal["firing", "still_firing", "resolved"]
PAYLOAD_SCHEMA = "genai-flywheel/alert-notification/v1"

_TITLE_SEGMENTS = 3  # segments named in a grouped title; the payload lists them all

_VERB = {"firing": "FIRING", "still_firing": "STILL FIRING", "resolved": "RESOLVED"}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _ci(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" [{_fmt(low)}, {_fmt(high)}]"


@dataclass(frozen=True)
class SegmentAlert:
    """One segment of a per-segment rule's notification."""

    segment: str
    label: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    p_value: float | None
    firing_since: datetime | None
    reason: str

    @property
    def name(self) -> str:
        """What a person reads: the label, with the key when they differ."""
        return self.segment if not self.label or self.label == self.segment else f"{self.label} ({self.segment})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready entry of the payload's ``segments`` list."""
        return {
            "segment": self.segment,
            "label": self.label,
            "value": self.value,
            "ci": {"low": self.ci_low, "high": self.ci_high, "confidence": CONFIDENCE},
            "n": self.n,
            "p_value": self.p_value,
            "firing_since": iso(self.firing_since) if self.firing_since else None,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Notification:
    """One message to send: an alert started firing, is still firing, or resolved.

    ``dashboard_url`` and ``traces_url`` are placeholders the notifying task fills in (see
    :meth:`with_links`); the alert logic knows no URLs.
    """

    app: str
    rule: str
    severity: str
    state: NotificationState
    metric: str
    op: str
    threshold: float
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    interval_start: datetime
    interval_end: datetime
    firing_since: datetime | None
    reason: str
    dashboard_url: str | None = None
    traces_url: str | None = None
    dimension: str | None = None  # a per-segment rule's dimension
    segments: tuple[SegmentAlert, ...] = ()

    @classmethod
    def from_evaluation(
        cls,
        app: str,
        evaluation: AlertEvaluation,
        state: NotificationState,
        interval_start: datetime,
        interval_end: datetime,
        firing_since: datetime | None,
    ) -> Notification:
        """Build the payload of ``evaluation`` (the interval's evaluation of the rule, or of one segment)."""
        segments = ()
        if evaluation.segment is not None:
            segments = (
                SegmentAlert(
                    segment=evaluation.segment, label=evaluation.label, value=evaluation.value,
                    ci_low=evaluation.ci_low, ci_high=evaluation.ci_high, n=evaluation.n,
                    p_value=evaluation.p_value, firing_since=firing_since, reason=evaluation.reason,
                ),
            )  # fmt: skip
        return cls(
            app=app,
            rule=evaluation.rule,
            severity=evaluation.severity,
            state=state,
            metric=evaluation.metric,
            op=evaluation.op,
            threshold=evaluation.threshold,
            value=evaluation.value,
            ci_low=evaluation.ci_low,
            ci_high=evaluation.ci_high,
            n=evaluation.n,
            interval_start=interval_start,
            interval_end=interval_end,
            firing_since=firing_since,
            reason=evaluation.reason,
            dimension=evaluation.dimension,
            segments=segments,
        )

    @property
    def id(self) -> str:
        """Deterministic id of this notification: the same for a re-run of the same interval."""
        key = "\x1f".join((self.app, self.rule, iso(self.interval_start), self.state))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]

    @property
    def title(self) -> str:
        """One line for a chat message or an e-mail subject."""
        condition = f"{self.metric} {self.op} {_fmt(self.threshold)}"
        head = f"[{self.severity.upper()}] {self.app}/{self.rule} {_VERB[self.state]}"
        if self.dimension is not None:
            shown = "; ".join(
                f"{s.name} {_fmt(s.value)}{_ci(s.ci_low, s.ci_high)}, n={s.n}" for s in self.segments[:_TITLE_SEGMENTS]
            )
            more = len(self.segments) - _TITLE_SEGMENTS
            return f"{head} in {len(self.segments)} {self.dimension} segment(s): {condition}; {shown}" + (
                f"; and {more} more" if more > 0 else ""
            )
        return f"{head}: {condition}; value {_fmt(self.value)}{_ci(self.ci_low, self.ci_high)}, n={self.n}"

    def with_links(self, dashboard_url: str | None = None, traces_url: str | None = None) -> Notification:
        """A copy with the link fields filled in."""
        return replace(self, dashboard_url=dashboard_url, traces_url=traces_url)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready payload."""
        payload = {
            "schema": PAYLOAD_SCHEMA,
            "id": self.id,
            "title": self.title,
            "app": self.app,
            "rule": self.rule,
            "severity": self.severity,
            "state": self.state,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "ci": {"low": self.ci_low, "high": self.ci_high, "confidence": CONFIDENCE},
            "n": self.n,
            "interval": {"start": iso(self.interval_start), "end": iso(self.interval_end)},
            "firing_since": iso(self.firing_since) if self.firing_since else None,
            "reason": self.reason,
            "links": {"dashboard": self.dashboard_url, "traces": self.traces_url},
        }
        if self.dimension is not None:
            payload["dimension"] = self.dimension
            payload["segments"] = [s.to_dict() for s in self.segments]
        return payload

    def to_json(self) -> str:
        """Canonical JSON of :meth:`to_dict` (sorted keys; same notification, same text)."""
        return dumps_json(self.to_dict())


def group_segments(notifications: list[Notification]) -> list[Notification]:
    """One notification per (rule, state) for the segments of per-segment rules, in the order each group
    first appears; app-level notifications pass through as they are."""
    groups: dict[tuple[str, str], list[Notification]] = {}
    order: list[Notification | tuple[str, str]] = []
    for note in notifications:
        if note.dimension is None:
            order.append(note)
            continue
        key = (note.rule, note.state)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(note)
    out: list[Notification] = []
    for item in order:
        if isinstance(item, Notification):
            out.append(item)
            continue
        members = groups[item]
        segments = tuple(
            sorted(
                (s for note in members for s in note.segments),
                key=lambda s: (1.0 if s.p_value is None else s.p_value, s.segment),
            )
        )
        first = segments[0]
        since = [s.firing_since for s in segments if s.firing_since is not None]
        labels = ", ".join(s.name for s in segments)
        out.append(
            replace(
                members[0], value=first.value, ci_low=first.ci_low, ci_high=first.ci_high, n=first.n,
                firing_since=min(since) if since else None, segments=segments,
                reason=first.reason if len(segments) == 1 else f"{len(segments)} segments: {labels}",
            )
        )  # fmt: skip
    return out
