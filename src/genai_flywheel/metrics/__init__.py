"""Metrics: aggregate an interval's traces and scores into a long metrics table, and store it as Parquet.

See :mod:`genai_flywheel.metrics.aggregate` for the metric names (a public contract) and
:mod:`genai_flywheel.metrics.store` for the on-disk layout (files are written by :mod:`genai_flywheel.workspace`).
"""

from genai_flywheel.metrics.aggregate import aggregate, is_estimate, metrics_schema
from genai_flywheel.metrics.store import MetricsStore

__all__ = [
    "MetricsStore",
    "aggregate",
    "is_estimate",
    "metrics_schema",
]
