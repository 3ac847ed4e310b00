"""Metrics: aggregate an interval's traces and scores into a long metrics table, and store it as Parquet.

See :mod:`genai_flywheel.metrics.aggregate` for the metric names (a public contract) and
:mod:`genai_flywheel.metrics.store` for the on-disk layout and the atomic-write helpers other stages reuse.
"""

from genai_flywheel.metrics.aggregate import aggregate, is_estimate, metrics_schema
from genai_flywheel.metrics.store import (
    MetricsStore,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
)

__all__ = [
    "MetricsStore",
    "aggregate",
    "atomic_write_json",
    "atomic_write_parquet",
    "atomic_write_text",
    "is_estimate",
    "metrics_schema",
]
