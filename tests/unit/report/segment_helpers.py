"""A small store with segment metrics for the report's and the GenAI Quality page's tests.

Eight 6-hour intervals of ``support-assistant`` from :data:`S0`, each with an app-level partition and a
``segments.parquet``. In the latest interval (index 7):

* dimension ``topic`` (a query cluster): ``c-sync`` ("smart sync") has 0 positive of 4 rated answers, CI
  0 to 0.49, against 0.92 for the app (gap 0.43, the worst); ``c-bill`` is fine; ``other`` has a slightly
  low pass rate whose CI still covers the app's value; ``new`` holds no rated answer (not ranked);
* dimension ``app_version`` (``tags.app_version``): ``1.4.0`` fails 20 % of its traces, CI 0.12 to 0.30,
  against 0.03 (gap 0.09); ``1.3.9`` is fine.

Earlier intervals hold every segment at the app's level, so the baselines are those levels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.unit.report.report_helpers import metrics_partition

APP = "support-assistant"
S0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(hours=6)
N = 8
FEEDBACK = "feedback.user_feedback.positive_rate"
PASS = "scorer.relevance.pass_rate"
APP_LEVEL = {"error_rate": 0.03, FEEDBACK: 0.92, PASS: 0.9}
SOURCES = {"topic": "query_cluster", "app_version": "tags.app_version"}

# (dimension, segment, label, volume, {metric: (value, n, ci_low, ci_high)}) of the latest interval
LATEST: list[tuple[str, str, str, int, dict[str, tuple[float, int, float | None, float | None]]]] = [
    ("app_version", "1.3.9", "1.3.9", 150, {"error_rate": (0.02, 150, 0.01, 0.05), FEEDBACK: (0.93, 30, 0.8, 0.98)}),
    ("app_version", "1.4.0", "1.4.0", 50, {"error_rate": (0.2, 50, 0.12, 0.30), FEEDBACK: (0.9, 10, 0.6, 0.98)}),
    ("topic", "c-bill", "billing <invoice>", 120,
     {"error_rate": (0.03, 120, 0.01, 0.07), FEEDBACK: (0.95, 20, 0.8, 0.99)}),
    ("topic", "c-sync", "smart sync", 40,
     {"error_rate": (0.025, 40, 0.004, 0.13), FEEDBACK: (0.0, 4, 0.0, 0.49), PASS: (0.85, 20, 0.64, 0.95)}),
    ("topic", "new", "new", 10, {"error_rate": (0.0, 10, None, None)}),
    ("topic", "other", "other", 30, {"error_rate": (0.03, 30, 0.006, 0.17), PASS: (0.8, 10, 0.49, 0.94)}),
]  # fmt: skip


def segment_table(app: str, start: datetime, end: datetime, rows: list[dict[str, Any]]) -> Any:
    """A ``segments_schema`` table of one interval from dicts with dimension, segment, label, metric,
    value, n, ci_low, ci_high and (optional) examples."""
    import pyarrow as pa

    from genai_flywheel.metrics.segment_schema import segments_schema

    return pa.table(
        {
            "app": [app] * len(rows),
            "interval_start": [start] * len(rows),
            "interval_end": [end] * len(rows),
            **{k: [r.get(k) for r in rows] for k in ("dimension", "segment", "label", "metric", "value", "n")},
            "ci_low": [r.get("ci_low") for r in rows],
            "ci_high": [r.get("ci_high") for r in rows],
            "examples": [r.get("examples") for r in rows],
        },
        schema=segments_schema(),
    )


def _rows(i: int) -> list[dict[str, Any]]:
    rows = []
    for dimension, segment, label, volume, metrics in LATEST:
        examples = [f"tr-{segment}-{k}" for k in range(2)]
        rows.append(dict(dimension=dimension, segment=segment, label=label, metric="volume", value=float(volume),
                         n=volume, examples=examples))  # fmt: skip
        for metric, (value, n, low, high) in metrics.items():
            if i < N - 1:  # before the latest interval every segment sits at the app's level
                value = APP_LEVEL[metric]
                low, high = (value - 0.05, min(1.0, value + 0.05)) if low is not None else (None, None)
            rows.append(dict(dimension=dimension, segment=segment, label=label, metric=metric, value=value, n=n,
                             ci_low=low, ci_high=high))  # fmt: skip
    return rows


def write_segment_store(root: Path, app: str = APP) -> Path:
    """Write the :data:`N` intervals (app-level partitions and segment files) under ``root``."""
    from genai_flywheel.metrics.store import MetricsStore

    store = MetricsStore(root)
    for i in range(N):
        start, end = S0 + i * STEP, S0 + (i + 1) * STEP
        app_rows = {m: (v, 200, v - 0.02, v + 0.02) for m, v in APP_LEVEL.items()}
        app_rows["volume"] = (200.0, 200, None, None)
        app_rows["drift.topic.psi"] = (0.05 if i < N - 1 else 0.31, 200, None, None)
        store.write_partition(metrics_partition(app, start, end, app_rows))
        store.write_segments(segment_table(app, start, end, _rows(i)), app=app, interval_start=start)
    return root
