"""Helpers shared by the report's and the GenAI Quality page's tests: chart points, a metrics partition
built from a dict of rows, and the cells of an HTML table."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

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
