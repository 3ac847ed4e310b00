"""The Parquet metrics store and the atomic-write helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_flywheel.exceptions import StoreError
from genai_flywheel.metrics.aggregate import metrics_schema
from genai_flywheel.metrics.store import MetricsStore
from genai_flywheel.workspace import atomic_write_json, atomic_write_parquet, atomic_write_text

T0 = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)


def metrics(app: str, start: datetime, values: dict[str, float | None]) -> pa.Table:
    names = list(values)
    count = len(names)
    schema = metrics_schema()
    return pa.Table.from_arrays(
        [
            pa.array([app] * count, pa.string()),
            pa.array([start] * count, schema.field("interval_start").type),
            pa.array([start + HOUR] * count, schema.field("interval_end").type),
            pa.array(names, pa.string()),
            pa.array([values[n] for n in names], pa.float64()),
            pa.array([10] * count, pa.int64()),
            pa.array([None] * count, pa.float64()),
            pa.array([None] * count, pa.float64()),
        ],
        schema=schema,
    )


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_partition_layout_and_round_trip(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    path = store.write_partition(metrics("bot", T0, {"volume": 10.0, "error_rate": 0.1}))
    assert path == tmp_path / "metrics" / "app=bot" / "interval=2026-11-20T00-00-00Z" / "part.parquet"
    table = store.read("bot")
    assert table.schema.equals(metrics_schema())
    assert table.column("metric").to_pylist() == ["error_rate", "volume"]  # sorted
    assert store.intervals("bot") == [T0]
    assert store.read("nobody").num_rows == 0 and store.intervals("nobody") == []


def test_rewrite_is_byte_identical_whatever_the_row_order_or_chunking(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    table = metrics("bot", T0, {"volume": 10.0, "latency_p50_ms": 120.5, "error_rate": None})
    path = store.write_partition(table)
    first = path.read_bytes()
    store.write_partition(table)
    assert path.read_bytes() == first
    reordered = pa.concat_tables([table.slice(2), table.slice(0, 2)])  # other order, two chunks
    store.write_partition(reordered)
    assert path.read_bytes() == first
    store.write_partition(metrics("bot", T0, {"volume": 11.0, "latency_p50_ms": 120.5, "error_rate": None}))
    assert path.read_bytes() != first  # the comparison can fail: different content, different bytes


def test_rerun_replaces_the_partition(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    store.write_partition(metrics("bot", T0, {"volume": 10.0, "old_metric": 1.0}))
    store.write_partition(metrics("bot", T0, {"volume": 12.0}))
    table = store.read("bot")
    assert table.column("metric").to_pylist() == ["volume"]
    assert table.column("value").to_pylist() == [12.0]


def test_read_filters_by_interval_and_metric(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    for h in range(4):
        store.write_partition(metrics("bot", T0 + h * HOUR, {"volume": float(h), "error_rate": h / 10}))
    store.write_partition(metrics("other", T0, {"volume": 99.0}))
    assert store.intervals("bot") == [T0 + h * HOUR for h in range(4)]
    window = store.read("bot", start=T0 + HOUR, end=T0 + 3 * HOUR, metrics=["volume"])
    assert window.column("value").to_pylist() == [1.0, 2.0]  # [start, end): hour 3 excluded
    assert store.read("bot", start=datetime(2026, 11, 20, 2)).num_rows == 4  # naive = UTC; 2 intervals x 2


def test_write_rejects_tables_that_are_not_one_partition(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    two = pa.concat_tables([metrics("bot", T0, {"volume": 1.0}), metrics("bot", T0 + HOUR, {"volume": 2.0})])
    with pytest.raises(StoreError, match="interval"):
        store.write_partition(two)
    with pytest.raises(StoreError, match="twice"):
        store.write_partition(pa.concat_tables([metrics("bot", T0, {"volume": 1.0})] * 2))
    with pytest.raises(StoreError, match="empty"):
        store.write_partition(metrics_schema().empty_table())
    with pytest.raises(StoreError, match="lacks"):
        store.write_partition(pa.table({"app": ["bot"]}))
    with pytest.raises(StoreError, match="directory name"):
        store.write_partition(metrics("../etc", T0, {"volume": 1.0}))


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MetricsStore(tmp_path)
    path = store.write_partition(metrics("bot", T0, {"volume": 10.0}))
    before = path.read_bytes()

    def crash_midway(table: pa.Table, where: object, **kwargs: object) -> None:
        where.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise RuntimeError("worker killed mid-write")

    monkeypatch.setattr(pq, "write_table", crash_midway)
    with pytest.raises(RuntimeError, match="mid-write"):
        store.write_partition(metrics("bot", T0, {"volume": 11.0}))
    assert path.read_bytes() == before
    assert leftovers(path.parent) == []
    new_path = tmp_path / "fresh" / "x.parquet"
    with pytest.raises(RuntimeError):
        atomic_write_parquet(metrics("bot", T0, {"volume": 1.0}), new_path)
    assert not new_path.exists() and leftovers(new_path.parent) == []


def test_os_errors_become_store_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="writable"):
        atomic_write_text("x", blocker / "sub" / "out.txt")


def test_atomic_text_and_json(tmp_path: Path) -> None:
    path = atomic_write_json({"b": 1, "a": [1.5, None]}, tmp_path / "deep" / "x.json")
    text = path.read_text()
    assert json.loads(text) == {"a": [1.5, None], "b": 1}
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")
    atomic_write_json({"a": [1.5, None], "b": 1}, path)
    assert path.read_text() == text
    with pytest.raises(ValueError):
        atomic_write_json({"x": float("nan")}, path)  # NaN is not JSON
    assert path.read_text() == text
    assert atomic_write_text("héllo", tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert oct((tmp_path / "t.txt").stat().st_mode & 0o777) == oct(0o644)


def test_corrupt_partition_is_a_store_error(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    path = store.write_partition(metrics("bot", T0, {"volume": 1.0}))
    path.write_bytes(b"garbage")
    with pytest.raises(StoreError, match="re-run"):
        store.read("bot")


def test_sub_second_interval_start_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="sub-second"):
        MetricsStore(tmp_path).partition_path("bot", T0 + timedelta(milliseconds=5))
