"""Alerts: CI-aware rule evaluation, alert state replayed in interval order, and notification payloads.

Modules: :mod:`.rules` (threshold, no_data and baseline rules on one interval's metrics), :mod:`.baseline` (the
trailing-baseline test), :mod:`.segments` (per-segment rules), :mod:`.state` (the state machine, replayed in
interval order), :mod:`.payload` (what a notification says), :mod:`.watchdog` (``kind: stale``).

Per-segment rules (``segment: <dimension>``, ``fdr``): the rule's condition is tested on every segment of the
dimension in the interval's segment table. Each segment with ``n >= min_samples`` gets a one-sided p-value of
H0 "the metric is on the good side of the threshold": the score test of a proportion for shares of traces
(the test the Wilson CI inverts, so the segment's CI and its p-value agree), a z-test with the standard error
of the row's 95 % CI for other estimates, a direct comparison for exact counts, or the segment against its
own trailing baseline for ``kind: baseline``. Thinner segments are ``insufficient_data`` and left out of the
family. The Benjamini-Hochberg procedure (``scipy.stats.false_discovery_control``) over the family's
p-values decides which segments fire, holding the expected share of false alarms among them at ``fdr``. The
state is kept per (rule, segment), and one message per rule and state lists the interval's segments.
"""

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
