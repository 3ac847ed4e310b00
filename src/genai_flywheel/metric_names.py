"""The names of the metrics the monitor writes: a public contract (alert rules, charts and the API use them).

Dependency-free, so the configuration can check an alert rule's metric when it loads. The meaning of each
family is documented in :mod:`genai_flywheel.metrics.aggregate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PERCENTILE = r"(p50|p90|p95|p99)"

# Metrics that are statistical estimates: they carry a CI whenever the sample is large enough.
_ESTIMATE = re.compile(
    rf"^(error_rate(\..+)?|latency_({_PERCENTILE[1:-1]}|mean)_ms|span\..+\.latency_{_PERCENTILE}_ms"
    r"|tokens_per_trace|feedback\..+\.positive_rate|scorer\..+\.(mean|pass_rate)"
    r"|calibration\.[^.]+\.(agreement|kappa|correlation)(_flagged)?(_rolling)?)$"
)

_FAMILIES = re.compile(
    rf"^(volume|quarantined|sampled|error_rate(\.[^.]+)?|latency_({_PERCENTILE[1:-1]}|mean)_ms"
    rf"|span\.[^.]+\.latency_{_PERCENTILE}_ms|tokens_(input|output|total)|tokens_per_trace|cost_usd"
    r"|cost_unpriced_traces|feedback\.[^.]+\.positive_rate|judge\.(error_rate|skipped_budget)"
    r"|scorer\.(?P<scorer>[^.]+)\.(mean|pass_rate|n|errors)"
    # The review DAG's judge calibration (genai_flywheel.review.calibration), beside the monitor's metrics.
    r"|calibration\.(sample_)?labels(_rolling)?"
    r"|calibration\.(?P<calibrated>[^.]+)\.(agreement|kappa|correlation)(_flagged)?(_rolling)?"
    # Drift of the traffic's mix and of the scores against the reference window (genai_flywheel.segments.drift).
    r"|drift\.scorer\.(?P<drifted>[^.]+)\.psi|drift\.(?P<dimension>[^.]+)\.(psi|new_share|new_clusters))$"
)

#: The metrics computed per segment (genai_flywheel.metrics.segment_schema); all but volume are estimates.
_SEGMENT_FAMILIES = re.compile(
    r"^(volume|share|error_rate|latency_p50_ms|latency_p95_ms|feedback\.[^.]+\.positive_rate"
    r"|scorer\.(?P<scorer>[^.]+)\.(pass_rate|mean))$"
)
SEGMENT_EXAMPLES = "volume, share, error_rate, latency_p95_ms, feedback.<name>.positive_rate, scorer.<scorer>.pass_rate"

EXAMPLES = (
    "volume, error_rate, error_rate.<ExceptionType>, latency_p95_ms, span.<SPAN_TYPE>.latency_p95_ms, "
    "tokens_total, cost_usd, feedback.<name>.positive_rate, scorer.<scorer>.pass_rate, scorer.<scorer>.mean, "
    "judge.error_rate, calibration.<scorer>.agreement[_rolling]"
)


def is_review_metric(metric: str) -> bool:
    """True for the review DAG's judge-calibration metrics (``calibration.*``): the review DAG, not the monitor,
    computes them and evaluates the alert rules on them."""
    return metric.startswith("calibration.")


def is_estimate(metric: str) -> bool:
    """True when ``metric`` is a statistical estimate with a CI (a null CI then means too few samples).

    False for counts and sums (``volume``, ``tokens_total``, ``cost_usd``, ``scorer.<name>.n``, ...), whose
    value is exact and which never carry a CI.
    """
    return bool(_ESTIMATE.match(metric))


def unknown_metric(metric: str, scorers: Iterable[str], dimensions: Iterable[str] = ()) -> str | None:
    """Why ``metric`` is not a metric the monitor writes for an app with ``scorers`` and segment
    ``dimensions``, or None if it is."""
    match = _FAMILIES.match(metric)
    if match is None:
        return f"{metric!r} is not a metric the monitor computes; use one of: {EXAMPLES}"
    scorer = match.group("scorer") or match.group("calibrated") or match.group("drifted")
    known = sorted(scorers)
    if scorer is not None and scorer not in known:
        return f"{metric!r} names scorer {scorer!r}, which is not configured; the scorers are {known}"
    dimension = match.group("dimension")
    declared = sorted(dimensions)
    if dimension is not None and dimension not in declared:
        return (
            f"{metric!r} names segment dimension {dimension!r}, which is not declared; declare it under "
            f"segments.dimensions (declared: {declared})"
        )
    return None


def unknown_segment_metric(metric: str, scorers: Iterable[str]) -> str | None:
    """Why ``metric`` is not a metric computed per segment for an app with ``scorers``, or None if it is."""
    match = _SEGMENT_FAMILIES.match(metric)
    if match is None:
        return f"{metric!r} is not computed per segment; use one of: {SEGMENT_EXAMPLES}"
    scorer = match.group("scorer")
    known = sorted(scorers)
    if scorer is not None and scorer not in known:
        return f"{metric!r} names scorer {scorer!r}, which is not configured; the scorers are {known}"
    return None
