"""scoped_environ sets and removes variables for one block and restores them, also on error."""

from __future__ import annotations

import os

import pytest

from genai_flywheel.environ import scoped_environ
from genai_flywheel.traces.extract import _is_sql_uri


def test_scoped_environ_sets_removes_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_KEEP", "before")
    monkeypatch.setenv("FW_GONE", "there")
    monkeypatch.delenv("FW_NEW", raising=False)
    with pytest.raises(RuntimeError), scoped_environ({"FW_KEEP": "during", "FW_GONE": None, "FW_NEW": "x"}):
        assert (os.environ["FW_KEEP"], os.environ.get("FW_GONE"), os.environ["FW_NEW"]) == ("during", None, "x")
        raise RuntimeError("the block fails")
    assert (os.environ["FW_KEEP"], os.environ["FW_GONE"], os.environ.get("FW_NEW")) == ("before", "there", None)


@pytest.mark.parametrize(
    ("uri", "sql"),
    [
        ("sqlite:////tmp/mlflow.db", True),
        ("postgresql+psycopg2://u@h/db", True),
        ("postgresql://u@h/db", True),
        ("mysql+pymysql://u@h/db", True),
        ("http://127.0.0.1:5000", False),
        ("https://mlflow.example", False),
        ("databricks", False),
        ("file:///tmp/mlruns", False),
    ],
)
def test_sql_tracking_uris_are_told_from_servers(uri: str, sql: bool) -> None:
    assert _is_sql_uri(uri) is sql


class _Page(list):
    token = None


@pytest.mark.parametrize(
    ("uri", "include_spans", "expected"),
    [
        ("sqlite:////tmp/m.db", True, ("1", "250")),  # one batch per page on one thread
        ("sqlite:////tmp/m.db", False, (None, None)),  # no spans: nothing to load
        # MLflow's batches suit a server; its 32 threads overflow its 10-connection HTTP pool.
        ("http://127.0.0.1:5000", True, ("8", None)),
    ],
)
def test_span_loading_is_set_only_around_a_sql_stores_search(
    monkeypatch: pytest.MonkeyPatch, uri: str, include_spans: bool, expected: tuple
) -> None:
    from genai_flywheel.traces import extract

    keys = ("MLFLOW_SEARCH_TRACES_MAX_THREADS", "MLFLOW_SEARCH_TRACES_MAX_BATCH_SIZE")
    for key in keys:
        monkeypatch.delenv(key, raising=False)
    seen = []

    class Client:
        def search_traces(self, **kwargs):
            seen.append(tuple(os.environ.get(k) for k in keys))
            return _Page(["t1", "t2"])

    monkeypatch.setattr(extract, "client", lambda tracking_uri: Client())
    got = []
    for trace in extract.iter_traces(uri, "1", "", include_spans=include_spans, page_size=250):
        got.append((trace, tuple(os.environ.get(k) for k in keys)))
    assert seen == [expected]
    assert got == [("t1", (None, None)), ("t2", (None, None))]  # never set while the caller runs
