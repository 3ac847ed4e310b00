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
