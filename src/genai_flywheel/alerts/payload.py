"""The notification payload: what a webhook, Slack message or e-mail says about an alert.

``Notification.to_json()`` is canonical JSON (sorted keys) with a deterministic ``id`` derived from
(app, rule, interval, state): re-running an interval re-sends the same id, so a receiver can drop
duplicates while a sender can safely retry (at-least-once delivery).
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

_VERB = {"firing": "FIRING", "still_firing": "STILL FIRING", "resolved": "RESOLVED"}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


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
        """Build the payload of ``evaluation`` (the interval's evaluation of the rule)."""
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
        ci = "" if self.ci_low is None or self.ci_high is None else f" [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}]"
        return (
            f"[{self.severity.upper()}] {self.app}/{self.rule} {_VERB[self.state]}: {condition}; "
            f"value {_fmt(self.value)}{ci}, n={self.n}"
        )

    def with_links(self, dashboard_url: str | None = None, traces_url: str | None = None) -> Notification:
        """A copy with the link fields filled in."""
        return replace(self, dashboard_url=dashboard_url, traces_url=traces_url)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready payload."""
        return {
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

    def to_json(self) -> str:
        """Canonical JSON of :meth:`to_dict` (sorted keys; same notification, same text)."""
        return dumps_json(self.to_dict())
