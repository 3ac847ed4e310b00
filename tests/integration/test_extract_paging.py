"""Keyset paging of a window: the same traces in the same order as OFFSET paging, no page re-read, and a
millisecond holding more traces than a page still read whole."""

from __future__ import annotations

import pytest


def _store(uri: str) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import TraceInfo, TraceLocation, TraceState

    from genai_flywheel.mlflow_compat import tracing_client

    experiment_id = MlflowClient(uri).create_experiment("paging")
    store = tracing_client(uri).store
    times = [1_000 + i for i in range(20)] + [2_000] * 13 + [2_001, 2_002] + [3_000] * 5
    for i, ts in enumerate(times):
        info = TraceInfo(
            trace_id=f"tr-{(i * 7919) % 1000:032x}",  # ids not in timestamp order
            trace_location=TraceLocation.from_experiment_id(experiment_id),
            request_time=ts,
            execution_duration=5,
            state=TraceState.OK,
            trace_metadata={},
            tags={},
        )
        store.start_trace(info)
    return experiment_id


def test_keyset_paging_reads_the_window_as_offset_paging_does(sqlite_tracking_uri: str, monkeypatch) -> None:
    from mlflow import MlflowClient

    from genai_flywheel.traces.extract import iter_traces, iter_window_traces, window_filter

    experiment_id = _store(sqlite_tracking_uri)
    pages = iter_traces(sqlite_tracking_uri, experiment_id, window_filter(0, 10_000), include_spans=False, page_size=5)
    offset = [t.info.trace_id for t in pages]
    tokens: list[object] = []
    search = MlflowClient.search_traces

    def spy(self, *args, **kwargs):
        tokens.append(kwargs.get("page_token"))
        return search(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "search_traces", spy)
    keyset = [
        t.info.trace_id
        for t in iter_window_traces(sqlite_tracking_uri, experiment_id, 0, 10_000, include_spans=False, page_size=5)
    ]
    assert keyset == offset and len(keyset) == 40 and len(set(keyset)) == 40
    # OFFSET tokens only inside the one millisecond that holds more traces (13) than a page (5).
    assert sum(1 for t in tokens if t is not None) <= 3
    assert len(tokens) < 2 * len(offset) / 5 + 6


@pytest.mark.parametrize(("start", "end", "n"), [(1_005, 1_010, 5), (2_000, 2_001, 13), (2_001, 3_000, 2), (0, 1, 0)])
def test_keyset_paging_keeps_the_window_bounds(sqlite_tracking_uri: str, start: int, end: int, n: int) -> None:
    from genai_flywheel.traces.extract import iter_window_traces

    experiment_id = _store(sqlite_tracking_uri)
    got = list(iter_window_traces(sqlite_tracking_uri, experiment_id, start, end, include_spans=False, page_size=4))
    assert len(got) == n and all(start <= t.info.request_time < end for t in got)
