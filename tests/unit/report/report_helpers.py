"""Helpers shared by the report's and the GenAI Quality page's tests: chart points, a metrics partition
built from a dict of rows, and the cells of an HTML table."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genai_flywheel.config import AlertRule
from genai_flywheel.report.charts import Point

T0 = datetime(2026, 1, 5, tzinfo=UTC)
H = timedelta(hours=1)

# metric -> (value, n, ci_low, ci_high)
MetricRows = Mapping[str, tuple[float | None, int, float | None, float | None]]


def points(
    values: Sequence[float | None], *, half_ci: float | None = 0.05, skip: Collection[int] = ()
) -> tuple[Point, ...]:
    """One point per hourly interval from :data:`T0` (those at an index in ``skip`` left out, a gap), each
    with a CI of +- ``half_ci`` around its value (no CI with None), n=50."""
    return tuple(
        Point(
            T0 + i * H,
            T0 + (i + 1) * H,
            v,
            None if v is None or half_ci is None else v - half_ci,
            None if v is None or half_ci is None else v + half_ci,
            50,
        )
        for i, v in enumerate(values)
        if i not in skip
    )


def metrics_partition(app: str, start: datetime, end: datetime, rows: MetricRows) -> Any:
    """The metrics table of one interval of ``app`` (what ``MetricsStore.write_partition`` takes)."""
    import pyarrow as pa

    from genai_flywheel.metrics import metrics_schema

    names = sorted(rows)
    return pa.table(
        {
            "app": [app] * len(names),
            "interval_start": [start] * len(names),
            "interval_end": [end] * len(names),
            "metric": names,
            "value": [rows[m][0] for m in names],
            "n": [rows[m][1] for m in names],
            "ci_low": [rows[m][2] for m in names],
            "ci_high": [rows[m][3] for m in names],
        },
        schema=metrics_schema(),
    )


def table_rows(html: str, table_class: str) -> list[list[str]]:
    """The cells (inner HTML) of each body row of the first ``<table class="table_class">`` in ``html``."""
    table = re.search(rf'<table class="{table_class}">.*?</table>', html, re.S)
    assert table, f"no table {table_class}"
    body = table.group(0).split("<tbody>")[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)]


# --- a small alerted metrics store: six hourly intervals, a latency spike in two of them -------------------

APP = "support"
HOUR = H
N_INTERVALS = 6
SPIKE = (2, 3)  # intervals whose latency p95 is far above the rule's threshold
RULES = [
    AlertRule(name="latency-p95", metric="latency_p95_ms", op=">", threshold=3000, min_samples=10),
    AlertRule(name="errors-high", metric="error_rate", op=">", threshold=0.5, min_samples=10),
]


def report_partition(i: int) -> Any:
    spike = i in SPIKE
    lat = 5000.0 if spike else 1000.0
    # The last interval has a latency estimate without a CI (too few samples): the band must break there.
    lat_ci = (None, None) if i == N_INTERVALS - 1 else (lat * 0.8, lat * 1.2)
    rows: dict[str, tuple[float | None, int, float | None, float | None]] = {
        "volume": (100.0, 100, None, None),
        "sampled": (20.0, 20, None, None),
        "latency_p95_ms": (lat, 100, *lat_ci),
        "span.LLM.latency_p95_ms": (lat * 0.7, 100, lat * 0.6, lat * 0.8),
        "error_rate": (0.02, 100, 0.005, 0.07),
        "error_rate.TimeoutError": (0.02, 100, 0.005, 0.07),
        "scorer.relevance.pass_rate": (0.9, 20, 0.7, 0.97),
        "scorer.relevance.n": (20.0, 20, None, None),
        "scorer.relevance.errors": (1.0, 21, None, None),
        "feedback.user_feedback.positive_rate": (0.75, 12, 0.47, 0.91),
        "cost_usd": (0.25, 100, None, None),
        "tokens_total": (5000.0, 100, None, None),
    }
    start = T0 + i * HOUR
    return metrics_partition(APP, start, start + HOUR, rows)


def write_report_store(root: Path) -> Path:
    """Six hourly intervals of :data:`APP` under ``root``, written with MetricsStore and alert-processed
    with the alerts API (:data:`RULES`; the latency rule fires in the :data:`SPIKE` intervals)."""
    from genai_flywheel.alerts import process_interval
    from genai_flywheel.metrics import MetricsStore

    store = MetricsStore(root)
    for i in range(N_INTERVALS):
        store.write_partition(report_partition(i))
        start = T0 + i * HOUR
        process_interval(root, APP, store.read(APP, start, start + HOUR), RULES, start, start + HOUR, HOUR * 24)
    return root


# --- the review DAG's judge calibration: two daily review intervals and the newest run's disagreements -------

DAY = timedelta(days=1)
# The newest review interval's calibration metrics (the older one holds agreement 0.9, which must not show).
CALIBRATION: MetricRows = {
    "calibration.labels": (39.0, 39, None, None),
    "calibration.sample_labels": (24.0, 24, None, None),
    "calibration.labels_rolling": (59.0, 59, None, None),
    "calibration.sample_labels_rolling": (44.0, 44, None, None),
    "calibration.relevance.agreement": (0.42, 24, 0.25, 0.61),
    "calibration.relevance.agreement_rolling": (0.55, 44, 0.4, 0.69),
    "calibration.relevance.kappa_rolling": (0.12, 44, -0.1, 0.34),
    "calibration.relevance.agreement_flagged": (0.3, 15, 0.14, 0.53),
    "calibration.relevance.agreement_flagged_rolling": (0.31, 15, 0.15, 0.52),
}
DISAGREEING = [
    {"scorer": "relevance", "trace_id": "tr-<1>", "scorer_passed": True, "correct": False, "source": "calibration"},
    {"scorer": "relevance", "trace_id": "tr-2", "scorer_passed": False, "correct": True, "source": "low_judge_scores"},
]


def write_calibration(root: Path, app: str) -> None:
    """Two daily review intervals of ``app``'s ``calibration.*`` metrics (written with MetricsStore under
    ``review/``) and ``review/app=<app>/run1/disagreements.json``."""
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.review.stages import DISAGREEMENTS_FILE, calibration_store_root
    from genai_flywheel.workspace import atomic_write_json

    store = MetricsStore(calibration_store_root(root))
    store.write_partition(
        metrics_partition(app, T0, T0 + DAY, {"calibration.relevance.agreement": (0.9, 20, 0.7, 0.97)})
    )
    store.write_partition(metrics_partition(app, T0 + DAY, T0 + 2 * DAY, CALIBRATION))
    atomic_write_json(
        {"window_days": 28, "traces": DISAGREEING}, root / "review" / f"app={app}" / "run1" / DISAGREEMENTS_FILE
    )
