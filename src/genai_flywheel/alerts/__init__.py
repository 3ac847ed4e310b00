"""Alerts: CI-aware rule evaluation, alert state replayed in interval order, and notification payloads."""

from genai_flywheel.alerts.payload import Notification
from genai_flywheel.alerts.rules import AlertEvaluation, evaluate_rule, evaluate_rules
from genai_flywheel.alerts.state import (
    AlertEvent,
    AlertState,
    AlertStore,
    process_interval,
    replay,
    update_state,
)

__all__ = [
    "AlertEvaluation",
    "AlertEvent",
    "AlertState",
    "AlertStore",
    "Notification",
    "evaluate_rule",
    "evaluate_rules",
    "process_interval",
    "replay",
    "update_state",
]
