"""MetricsStore.read_segments over many interval files: filters, order, range and unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_flywheel.exceptions import StoreError
from genai_flywheel.metrics.store import MetricsStore
from tests.unit.report.segment_helpers import APP, FEEDBACK, S0, STEP, N, write_segment_store

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> MetricsStore:
    return MetricsStore(write_segment_store(tmp_path))


def test_reads_every_interval_sorted_and_filtered(store: MetricsStore) -> None:
    everything = store.read_segments(APP)
    columns = ("interval_start", "dimension", "segment", "metric")
    keys = list(zip(*(everything.column(c).to_pylist() for c in columns), strict=True))
    assert keys == sorted(keys) and len({k[0] for k in keys}) == N
    one = store.read_segments(APP, dimension="topic", segment="c-sync", metrics=[FEEDBACK])
    assert one.num_rows == N
    assert set(one.column("segment").to_pylist()) == {"c-sync"} and set(one.column("metric").to_pylist()) == {FEEDBACK}
    assert one.column("value").to_pylist()[-1] == 0.0


def test_reads_only_the_intervals_in_range(store: MetricsStore) -> None:
    table = store.read_segments(APP, S0 + 2 * STEP, S0 + 4 * STEP, dimension="app_version")
    assert sorted({t.isoformat() for t in table.column("interval_start").to_pylist()}) == [
        (S0 + 2 * STEP).isoformat(),
        (S0 + 3 * STEP).isoformat(),
    ]
    assert store.read_segments(APP, S0 + 100 * STEP).num_rows == 0
    assert store.read_segments("unknown-app").num_rows == 0


def test_an_unreadable_file_is_named(store: MetricsStore) -> None:
    bad = store.segments_path(APP, S0 + 3 * STEP)
    bad.write_bytes(b"not parquet")
    with pytest.raises(StoreError, match=r"interval=2026-01-05T18-00-00Z/segments.parquet.*re-run that interval"):
        store.read_segments(APP)


def test_large_segment_files_are_split_in_sorted_row_groups_and_rewritten_byte_identical(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from genai_flywheel.metrics.store import SEGMENT_ROW_GROUP_ROWS
    from tests.unit.report.report_helpers import metrics_partition
    from tests.unit.report.segment_helpers import segment_table

    metrics = ("error_rate", "latency_p95_ms", "share", "volume", FEEDBACK)
    rows = [
        {"dimension": f"d{d}", "segment": f"s{s:02d}", "label": "x", "metric": m, "value": 0.5, "n": 10}
        for d in range(5)
        for s in range(50)
        for m in metrics
    ]
    assert len(rows) == SEGMENT_ROW_GROUP_ROWS + 250
    table = segment_table(APP, S0, S0 + STEP, rows[::-1])  # unsorted on purpose
    store = MetricsStore(tmp_path)
    # the store lists an interval by its metrics partition: write one beside
    store.write_partition(metrics_partition(APP, S0, S0 + STEP, {"volume": (1.0, 1, None, None)}))
    path = store.write_segments(table, app=APP, interval_start=S0)
    first = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 2
    dimension = meta.schema.to_arrow_schema().get_field_index("dimension")
    stats = [meta.row_group(g).column(dimension).statistics for g in range(2)]
    assert (stats[0].min, stats[0].max, stats[1].min, stats[1].max) == ("d0", "d3", "d4", "d4")
    one = store.read_segments(APP, dimension="d4", segment="s07")
    assert one.column("metric").to_pylist() == sorted(metrics)
    store.write_segments(table, app=APP, interval_start=S0)
    assert path.read_bytes() == first
