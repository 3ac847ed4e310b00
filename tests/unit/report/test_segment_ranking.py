"""The worst segments of the latest interval and a segment's history, from a synthetic store."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from genai_flywheel.metrics.store import MetricsStore
from genai_flywheel.report.segments import gap, segment_history, trace_links, worst_segments
from tests.unit.report.segment_helpers import APP, FEEDBACK, S0, SOURCES, STEP, N, write_segment_store

pytestmark = pytest.mark.unit

TRACES = "http://mlflow:5000/#/experiments/7/traces"


def _query(url: str) -> dict[str, list[str]]:
    """The query of an MLflow UI address (it sits in the fragment: the UI routes with #/...)."""
    return parse_qs(urlsplit(url).fragment.partition("?")[2])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MetricsStore:
    return MetricsStore(write_segment_store(tmp_path_factory.mktemp("segments")))


def test_gap_uses_the_ci_bound_nearest_the_app_value_on_the_bad_side() -> None:
    assert gap(FEEDBACK, 0.92, 0.0, 0.49) == pytest.approx(0.43)
    assert gap("error_rate", 0.03, 0.12, 0.30) == pytest.approx(0.09)
    assert gap("error_rate", 0.03, None, None) is None
    assert gap(FEEDBACK, None, 0.0, 0.49) is None


def test_worst_segments_rank_by_gap_with_baseline_app_value_and_links(store: MetricsStore) -> None:
    worst = worst_segments(store, APP, traces_url=TRACES, sources=SOURCES)
    assert worst.interval == (S0 + (N - 1) * STEP, S0 + N * STEP)
    topic = worst.dimensions["topic"]
    # new has no CI at all: not ranked; then by score: c-bill's error-rate CI starts 0.02 below the app's
    # value, other's 0.024 below
    assert [r.segment for r in topic] == ["c-sync", "c-bill", "other"]
    assert topic[1].score == pytest.approx(-0.02) and topic[2].score == pytest.approx(-0.024)
    sync = topic[0]
    assert sync.label == "smart sync" and sync.volume == 40
    top = sync.worst
    assert top is not None and top.metric == FEEDBACK
    assert (top.value, top.n, top.ci_low, top.ci_high) == (0.0, 4, 0.0, 0.49)
    assert top.app_value == pytest.approx(0.92) and top.gap == pytest.approx(0.43)
    assert top.baseline == pytest.approx(0.92) and top.baseline_n == 4 * (N - 1)
    # a query cluster links its example traces one by one
    assert [t for t, _ in sync.links] == ["tr-c-sync-0", "tr-c-sync-1"]
    assert _query(sync.links[0][1])["traceId"] == ["tr-c-sync-0"]
    version = worst.dimensions["app_version"]
    assert [r.segment for r in version] == ["1.4.0", "1.3.9"]
    assert version[0].worst is not None and version[0].worst.metric == "error_rate"
    assert version[0].score == pytest.approx(0.09)
    assert version[0].links == ((
        "traces in MLflow", TRACES + "?filter=TAG%3A%3A%3D%3A%3A1.4.0%3A%3Aapp_version"),)  # fmt: skip
    assert worst.to_dict()["dimensions"]["topic"][0]["significant"] is True


def test_limit_keeps_the_worst(store: MetricsStore) -> None:
    worst = worst_segments(store, APP, limit=1)
    assert {d: [r.segment for r in rows] for d, rows in worst.dimensions.items()} == {
        "app_version": ["1.4.0"],
        "topic": ["c-sync"],
    }


def test_no_segment_file_gives_no_rows(tmp_path: Path) -> None:
    worst = worst_segments(MetricsStore(tmp_path), APP)
    assert worst.interval is None and worst.dimensions == {}


def test_trace_links_per_source() -> None:
    assert trace_links(None, "model", "gpt", ["t1"]) == ()
    (model,) = trace_links(TRACES, "model", "gpt-4o", ["t1"])
    assert _query(model[1])["filter"] == ["TAG::=::gpt-4o::model"]
    (meta,) = trace_links(TRACES, "metadata.tier", "gold", ["t1"])
    assert _query(meta[1])["filter"] == ["custom_metadata:tier::=::gold"]
    # the pooled remainder has no filter: its examples
    assert [t for t, _ in trace_links(TRACES, "tags.app_version", "other", ["t1", "t2"])] == ["t1", "t2"]


def test_segment_history_is_per_interval_with_ci(store: MetricsStore) -> None:
    label, points = segment_history(store, APP, "topic", "c-sync", days=7)
    assert label == "smart sync"
    feedback = [p for p in points if p.metric == FEEDBACK]
    assert [p.interval_start for p in feedback] == [S0 + i * STEP for i in range(N)]
    assert (feedback[-1].value, feedback[-1].ci_low, feedback[-1].ci_high, feedback[-1].n) == (0.0, 0.0, 0.49, 4)
    assert {p.metric for p in points} == {"volume", "error_rate", FEEDBACK, "scorer.relevance.pass_rate"}
    _, recent = segment_history(store, APP, "topic", "c-sync", days=1)
    assert len({p.interval_start for p in recent}) == 4
