"""Pass one keeps each trace id once without holding the window's ids: only those of the current millisecond."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from genai_flywheel.traces import extract
from genai_flywheel.traces.extract import distinct_infos, extract_infos


def _trace(trace_id: str, ms: int) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(trace_id=trace_id, request_time=ms))


def _window(n: int) -> Iterator[SimpleNamespace]:
    """``n`` traces, one per millisecond, each id a fresh string (as pages of a real store give them)."""
    for i in range(n):
        yield _trace(f"tr-{i:032x}", 1_000 + i)


def test_a_repeat_within_a_millisecond_is_dropped_and_order_kept() -> None:
    # OFFSET paging inside one millisecond that a late trace was written into repeats a row of it.
    traces = [_trace("a", 1), _trace("b", 1), _trace("a", 1), _trace("c", 2), _trace("c", 2), _trace("d", 3)]
    assert [i.trace_id for i in distinct_infos(traces)] == ["a", "b", "c", "d"]


def test_the_ids_kept_do_not_grow_with_the_window() -> None:
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            for _ in distinct_infos(_window(n)):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(50_000)
    # A set of every id seen holds 50,000 ids (over 5 MB); the current millisecond's ids stay a few KB.
    assert large < 200_000, large
    assert large < 2 * small + 50_000


class _CountingWriter:
    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.ids: list[str] = []
        self.rows = 0

    def write(self, table) -> None:
        self.rows += table.num_rows
        if self.keep:
            self.ids.extend(table.column("trace_id").to_pylist())


@pytest.fixture
def fake_pager(monkeypatch: pytest.MonkeyPatch):
    def install(traces) -> None:
        monkeypatch.setattr(extract, "iter_window_traces", lambda *a, **k: iter(traces))
        monkeypatch.setattr(
            extract,
            "info_to_row",
            lambda info, app: {"trace_id": info.trace_id, "app": app, "timestamp_ms": info.request_time},
        )

    return install


def test_extract_infos_writes_each_trace_once(fake_pager) -> None:
    fake_pager([_trace("a", 1), _trace("b", 1), _trace("a", 1), _trace("c", 2)])
    writer = _CountingWriter()
    assert extract_infos("sqlite://", "0", 0, 10, writer, app="x", page_size=2) == 3
    assert writer.ids == ["a", "b", "c"]


def test_extract_infos_memory_does_not_grow_with_the_window(fake_pager) -> None:
    def peak(n: int) -> int:
        fake_pager(_window(n))
        writer = _CountingWriter(keep=False)
        tracemalloc.start()
        try:
            assert extract_infos("sqlite://", "0", 0, 10**9, writer, app="x", page_size=500) == n
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000), peak(40_000)
    # Memory holds one page of rows; a set of every id seen would add 40,000 ids (several MB).
    assert large < small * 1.5 + 200_000, (small, large)
