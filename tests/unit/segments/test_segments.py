"""Segment metrics: query-cluster assignment, the reference profile, per-segment accumulation and drift."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from genai_flywheel.config import QueryClusters, Segments
from genai_flywheel.exceptions import ConfigError, StoreError
from genai_flywheel.metrics.aggregate import _scorer_rows
from genai_flywheel.metrics.segment_schema import MISSING, NEW, OTHER
from genai_flywheel.segments.accumulate import SegmentAccumulator, columns_for
from genai_flywheel.segments.clusters import ClusterAssigner, ReferenceCluster
from genai_flywheel.segments.drift import drift_rows, psi, score_psi
from genai_flywheel.segments.reference import (
    ReferenceProfile,
    learn_profile,
    period_start,
    profile_path,
    reference_window,
)
from genai_flywheel.traces.extract import preview_query
from genai_flywheel.traces.schema import INFO_SCHEMA, SCORE_SCHEMA

START = datetime(2026, 11, 19, 6, tzinfo=UTC)
END = datetime(2026, 11, 19, 12, tzinfo=UTC)
SEGMENTS = Segments.model_validate(
    {
        "top_k": 2,
        "dimensions": [
            {"name": "version", "source": "tags.app_version"},
            {"name": "topic", "source": "query_cluster"},
        ],
        "clusters": {"min_size": 2},
    }
)


def _info(i: int, *, version: str | None, query: str | None, status: str = "OK", latency: int = 100, fb=None):
    tags = {"app_version": version} if version else {}
    assessments = []
    if fb is not None:
        assessments.append(
            {
                "assessment_id": f"a-{i}",
                "name": "user_feedback",
                "kind": "feedback",
                "value": json.dumps(fb),
                "source_type": "HUMAN",
                "source_id": "u",
                "rationale": None,
                "error": None,
                "create_time_ms": 1,
            }
        )
    return {
        "trace_id": f"tr-{i:04d}",
        "app": "app",
        "timestamp_ms": 1,
        "status": status,
        "execution_time_ms": latency,
        "tags": json.dumps(tags),
        "metadata": "{}",
        "assessments": assessments,
        "query": query,
    }


def _table(rows):
    return pa.Table.from_pylist(rows, schema=INFO_SCHEMA)


def _scores(rows):
    full = [
        {
            "trace_id": r["trace_id"],
            "app": "app",
            "timestamp_ms": 1,
            "scorer": r["scorer"],
            "scorer_version": "1",
            "source_type": "CODE",
            "value": "1",
            "numeric": r["numeric"],
            "passed": r["passed"],
            "rationale": None,
            "error": None,
            "stratum": "base",
            "weight": r.get("weight", 1.0),
            "assessment_id": None,
        }
        for r in rows
    ]
    return pa.Table.from_pylist(full, schema=SCORE_SCHEMA)


def _profile(clusters=(), counts=None, scores=None):
    return ReferenceProfile(
        app="app",
        reference_start=START,
        reference_end=END,
        traces=100,
        clusters=tuple(clusters),
        counts=counts or {},
        scores=scores or {},
    )


SYNC = ReferenceCluster("c-sync", ("smart", "sync"), "smart sync", 30)
DARK = ReferenceCluster("c-dark", ("dark", "mode"), "dark mode", 10)
SYNC_ONLY = ReferenceCluster("c-syncw", ("sync",), "sync", 50)


def test_a_question_goes_to_the_most_frequent_reference_cluster_it_contains() -> None:
    assigner = ClusterAssigner([SYNC, DARK, SYNC_ONLY])
    assert assigner.assign(["Smart Sync keeps failing"]) == ["c-syncw"]  # "sync" alone is seen more often
    assert ClusterAssigner([SYNC, DARK]).assign(["Smart Sync keeps failing"]) == ["c-sync"]
    assert assigner.assign(["How do I turn on dark mode?", "refund my invoice", None, "the of and"]) == [
        "c-dark",
        NEW,
        MISSING,
        MISSING,
    ]


def test_refresh_periods_are_aligned_to_the_epoch_and_the_reference_precedes_them() -> None:
    spec = QueryClusters(refresh_hours=24, reference_days=7)
    assert period_start(START, spec) == datetime(2026, 11, 19, tzinfo=UTC)
    assert period_start(datetime(2026, 11, 19, 23, 59, tzinfo=UTC), spec) == datetime(2026, 11, 19, tzinfo=UTC)
    assert reference_window(START, spec) == (datetime(2026, 11, 12, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC))


def test_airflow_pendulum_datetimes_give_the_same_periods_and_paths(tmp_path: Path) -> None:
    """Airflow hands tasks pendulum DateTimes, whose difference cannot be floor-divided by a timedelta."""
    import pendulum

    from genai_flywheel.workspace import IntervalWorkspace, to_utc

    spec = QueryClusters(refresh_hours=24, reference_days=7)
    start = pendulum.datetime(2026, 11, 19, 12, tz="UTC")
    assert type(to_utc(start)) is datetime and to_utc(start) == datetime(2026, 11, 19, 12, tzinfo=UTC)
    assert period_start(start, spec) == datetime(2026, 11, 19, tzinfo=UTC)
    ws = IntervalWorkspace.of(tmp_path, "app", start, start.add(hours=6))
    assert type(ws.start) is datetime and type(ws.end) is datetime
    plain = datetime(2026, 11, 19, 12, tzinfo=UTC)
    assert profile_path(tmp_path, "app", start, spec) == profile_path(tmp_path, "app", plain, spec)


def test_a_profile_is_learned_deterministically_and_round_trips() -> None:
    rows = [_info(i, version="v1" if i % 3 else "v2", query="Smart Sync is broken") for i in range(6)]
    rows += [_info(10 + i, version="v1", query="dark mode please") for i in range(3)]
    rows.append(_info(20, version=None, query="something unique entirely"))
    rows[0]["assessments"] = [
        {
            "assessment_id": "s1",
            "name": "relevance",
            "kind": "feedback",
            "value": "0.25",
            "source_type": "CODE",
            "source_id": "relevance@1",
            "rationale": None,
            "error": None,
            "create_time_ms": 5,
        }
    ]
    profile = learn_profile("app", [_table(rows[:5]), _table(rows[5:])], SEGMENTS, ["relevance"], START, END)
    assert [c.label for c in profile.clusters] == ["broken smart sync", "dark mode"]
    assert profile.counts["version"] == {"v1": 7, "v2": 2, MISSING: 1}
    assert sum(profile.counts["topic"].values()) == 10 and profile.counts["topic"][NEW] == 1
    assert profile.scores == {"relevance": (0.25,)}
    again = learn_profile("app", [_table(rows)], SEGMENTS, ["relevance"], START, END)
    assert json.dumps(again.to_dict()) == json.dumps(profile.to_dict())
    assert ReferenceProfile.from_dict(profile.to_dict()) == profile
    with pytest.raises(StoreError, match="format"):
        ReferenceProfile.from_dict({**profile.to_dict(), "format": 99})


def _window():
    rng = random.Random(7)
    rows = []
    for i in range(200):
        version = ["v1", "v1", "v1", "v2", "v3", None][i % 6]
        topic = "Smart Sync fails" if i % 4 == 0 else ("dark mode" if i % 4 == 1 else "a new question about sso")
        bad = topic.startswith("Smart") and i % 8 == 0
        rows.append(
            _info(
                i,
                version=version,
                query=topic,
                status="ERROR" if i % 10 == 0 else "OK",
                latency=rng.randint(50, 5000),
                fb=(not bad) if i % 3 == 0 else None,
            )
        )
    scores = _scores(
        [
            {
                "trace_id": r["trace_id"],
                "scorer": "relevance",
                "numeric": 0.2 if i % 8 == 0 else 0.9,
                "passed": i % 8 != 0,
                "weight": 2.0,
            }
            for i, r in enumerate(rows)
            if i % 2 == 0
        ]
    )
    return rows, scores


def _accumulate(rows, scores, batches):
    profile = _profile([SYNC, DARK], counts={"version": {"v1": 50, "v2": 50}, "topic": {"c-sync": 30, "c-dark": 70}})
    acc = SegmentAccumulator(
        app="app", segments=SEGMENTS, profile=profile, scored_ids=pa.array(sorted({r["trace_id"] for r in rows}))
    )
    for batch in batches:
        acc.add_traces(_table(batch).select(columns_for(SEGMENTS)))
    return acc, acc.table(scores, interval_start=START, interval_end=END), profile


def test_segment_metrics_equal_a_direct_count_and_do_not_depend_on_batch_order() -> None:
    rows, scores = _window()
    acc, table, _ = _accumulate(rows, scores, [rows[:70], rows[70:]])
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    _, again, _ = _accumulate(rows, scores, [shuffled[i : i + 33] for i in range(0, 200, 33)])
    assert again.equals(table)

    got = {(r["dimension"], r["segment"], r["metric"]): r for r in table.to_pylist()}
    # top_k = 2: v1 and the larger of v2/v3 by volume (tie -> smaller key) are kept, v3 pooled; (none) never is.
    versions = sorted({s for d, s, _ in got if d == "version"})
    assert versions == [MISSING, OTHER, "v1", "v2"]
    mine = [r for r in rows if (json.loads(r["tags"]).get("app_version") or MISSING) == "v1"]
    assert got[("version", "v1", "volume")]["value"] == len(mine)
    assert got[("version", OTHER, "volume")]["value"] == sum(1 for r in rows if r["tags"] == '{"app_version": "v3"}')
    errors = sum(r["status"] == "ERROR" for r in mine)
    assert got[("version", "v1", "error_rate")]["value"] == pytest.approx(errors / len(mine))
    assert got[("version", "v1", "share")]["value"] == pytest.approx(len(mine) / 200)
    # Smart Sync: the feedback of the bad answers shows in its segment only.
    sync = [i for i, r in enumerate(rows) if r["query"].startswith("Smart")]
    rated = [i for i in sync if i % 3 == 0]
    positive = sum(1 for i in rated if i % 8 != 0)
    fb = got[("topic", "c-sync", "feedback.user_feedback.positive_rate")]
    assert (fb["value"], fb["n"]) == (pytest.approx(positive / len(rated)), len(rated))
    assert fb["ci_low"] <= fb["value"] <= fb["ci_high"]
    assert got[("topic", NEW, "volume")]["value"] == sum(1 for r in rows if "sso" in r["query"])
    assert got[("topic", "c-sync", "volume")]["examples"] == sorted(rows[i]["trace_id"] for i in sync)[:5]
    assert got[("topic", "c-sync", "share")]["examples"] is None
    # The scorer rows are the app-level estimator over the segment's scored traces.
    sync_ids = {rows[i]["trace_id"] for i in sync}
    expected = {
        r.metric: r
        for r in _scorer_rows(scores.filter(pa.array([t in sync_ids for t in scores["trace_id"].to_pylist()])))
    }
    row = got[("topic", "c-sync", "scorer.relevance.pass_rate")]
    assert (row["value"], row["n"], row["ci_low"]) == (
        expected["scorer.relevance.pass_rate"].value,
        expected["scorer.relevance.pass_rate"].n,
        expected["scorer.relevance.pass_rate"].ci_low,
    )
    latency = np.sort([r["execution_time_ms"] for r in mine])
    assert got[("version", "v1", "latency_p50_ms")]["value"] == pytest.approx(float(np.quantile(latency, 0.5)))
    assert acc.dimension_volumes()["version"] == {
        key: int(got[("version", key, "volume")]["value"]) for key in versions
    }


def test_the_score_arrays_own_ids_give_the_same_table_without_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow.compute as pc

    from genai_flywheel.metrics.scores import ScoreArrays

    rows, scores = _window()
    _, separate, profile = _accumulate(rows, scores, [rows[:70], rows[70:]])
    # As the monitor does: the score arrays' own trace ids are the scored ids, and the columns are sized.
    arrays = ScoreArrays.of(scores)
    acc = SegmentAccumulator(
        app="app", segments=SEGMENTS, profile=profile, scored_ids=arrays.trace_ids, capacity=len(rows)
    )
    for batch in (rows[:70], rows[70:]):
        acc.add_traces(_table(batch).select(columns_for(SEGMENTS)))
    lookups = []
    real = pc.index_in
    monkeypatch.setattr(pc, "index_in", lambda *a, **k: lookups.append(1) or real(*a, **k))
    shared = acc.table(arrays, interval_start=START, interval_end=END)
    assert shared.equals(separate)
    assert not lookups  # positions in the arrays' ids are their trace codes


def test_a_dimension_with_more_values_than_int16_codes_hold_widens_them() -> None:
    from genai_flywheel.metrics.scores import ScoreArrays

    segments = Segments.model_validate({"top_k": 3, "dimensions": [{"name": "user", "source": "tags.user"}]})
    users = [f"u{i % 33_000}" for i in range(40_000)]  # 33,000 values: past int16's 32,767 codes
    users[:6] = ["hot"] * 6  # the top values by volume
    users[6:10] = ["warm"] * 4
    users[-8:] = ["late"] * 8  # first met last: a code past 32,767, and the top value by volume
    rows = [_info(i, version=None, query="q") | {"tags": json.dumps({"user": u})} for i, u in enumerate(users)]
    # Scored: two "hot" traces (small codes), two pooled in "other" and the eight "late" ones.
    scored = [rows[0], rows[1], *rows[-10:]]
    arrays = ScoreArrays.of(
        _scores([{"trace_id": r["trace_id"], "scorer": "relevance", "numeric": 0.5, "passed": True} for r in scored])
    )
    acc = SegmentAccumulator(app="app", segments=segments, profile=None, scored_ids=arrays.trace_ids, capacity=10)
    for start in range(0, len(rows), 15_000):
        acc.add_traces(_table(rows[start : start + 15_000]).select(columns_for(segments)))
    assert acc.dims[0].all_codes().dtype == np.int32
    volumes = acc.dimension_volumes()["user"]
    assert sum(volumes.values()) == 40_000
    assert (
        volumes["late"] == 8
        and volumes["hot"] == 6
        and volumes["warm"] == 4
        and volumes[OTHER] == 40_000 - sum(n for key, n in volumes.items() if key != OTHER)
    )
    table = acc.table(arrays, interval_start=START, interval_end=END).to_pylist()
    n = {(r["segment"], r["metric"]): r["n"] for r in table}
    assert n[("late", "scorer.relevance.pass_rate")] == 8 and n[("hot", "scorer.relevance.pass_rate")] == 2
    assert n[(OTHER, "scorer.relevance.pass_rate")] == 2


def test_a_segment_spanning_the_window_reads_the_latency_column_itself_and_changes_no_other_segment() -> None:
    from genai_flywheel.metrics import stats

    rows, scores = _window()
    for r in rows:
        r["model"] = "chat-1"  # one model: its segment is every trace of the window
    declared = SEGMENTS.model_dump()
    declared["dimensions"].insert(0, {"name": "m", "source": "model"})  # first: its sort must wait for the others
    spanning = Segments.model_validate(declared)
    profile = _profile([SYNC, DARK], counts={"version": {"v1": 50, "v2": 50}, "topic": {"c-sync": 30, "c-dark": 70}})
    from genai_flywheel.metrics.scores import ScoreArrays

    arrays = ScoreArrays.of(scores)
    tables = {}
    for name, segments in (("without", SEGMENTS), ("with", spanning)):
        acc = SegmentAccumulator(app="app", segments=segments, profile=profile, scored_ids=arrays.trace_ids)
        for batch in (rows[:90], rows[90:]):
            acc.add_traces(_table(batch).select(columns_for(segments)))
        tables[name] = acc.table(arrays, interval_start=START, interval_end=END)
    with_model = tables["with"].filter(pa.compute.not_equal(tables["with"]["dimension"], "m"))
    assert with_model.equals(tables["without"])  # the other segments' latencies were read before the sort
    got = {r["metric"]: r for r in tables["with"].to_pylist() if r["dimension"] == "m"}
    latency = np.sort(np.array([r["execution_time_ms"] for r in rows], dtype=float))
    assert got["volume"]["value"] == len(rows)
    for metric, q in (("latency_p50_ms", 0.5), ("latency_p95_ms", 0.95)):
        assert got[metric]["value"] == stats.quantile(latency, q)
        assert (got[metric]["ci_low"], got[metric]["ci_high"]) == stats.quantile_ci(latency, q)
    # Its scorer rows are the app-level ones: every scored trace is in the window.
    app_level = {r.metric: (r.value, r.n, r.ci_low, r.ci_high) for r in _scorer_rows(arrays)}
    for metric in ("scorer.relevance.pass_rate", "scorer.relevance.mean"):
        assert (got[metric]["value"], got[metric]["n"], got[metric]["ci_low"], got[metric]["ci_high"]) == app_level[
            metric
        ]
    with pytest.raises(RuntimeError, match="once"):
        acc.table(arrays, interval_start=START, interval_end=END)  # its latency column is sorted now


def test_psi_is_zero_for_the_same_mix_and_matches_a_hand_computation() -> None:
    assert psi([1000, 2000, 3000], [100, 200, 300]) == pytest.approx(0.0, abs=1e-3)
    p = [(90 + 0.5) / 101, (10 + 0.5) / 101]
    q = [(50 + 0.5) / 101, (50 + 0.5) / 101]
    assert psi([90, 10], [50, 50]) == pytest.approx(sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True)))
    with pytest.raises(ValueError, match="one length"):
        psi([1], [1, 2])
    same = np.linspace(0, 1, 200)
    assert score_psi(same, same) == pytest.approx(0.0, abs=1e-9)
    assert score_psi(np.zeros(50), np.ones(50)) > 1.0  # pass/fail values: two bins
    assert score_psi(same[:5], same) is None


def test_drift_rows_name_the_mix_the_new_questions_and_the_scores() -> None:
    rows, scores = _window()
    acc, _, profile = _accumulate(rows, scores, [rows])
    profile = _profile(profile.clusters, profile.counts, scores={"relevance": tuple(np.linspace(0.5, 1, 40))})
    got = {r.metric: r for r in drift_rows(acc, profile, scores, SEGMENTS)}
    assert set(got) == {
        "drift.version.psi",
        "drift.topic.psi",
        "drift.topic.new_share",
        "drift.topic.new_clusters",
        "drift.scorer.relevance.psi",
    }
    new = sum(1 for r in rows if "sso" in r["query"])
    assert got["drift.topic.new_share"].value == pytest.approx(new / 200)
    assert got["drift.topic.new_clusters"].value == 1.0  # the sso questions form one new pattern
    assert got["drift.topic.psi"].value > 0.25  # a third of the traffic is new
    assert got["drift.scorer.relevance.psi"].n == len(scores)


def test_the_query_of_a_request_preview_is_read_even_when_cut_short() -> None:
    assert preview_query('{"query": "How do I enable Smart Sync?"}') == "How do I enable Smart Sync?"
    assert preview_query('{"question": "How do I en') == "How do I en"
    assert preview_query('{"messages": [{"role": "user", "content": "hi"}]}') == "hi"
    assert preview_query(None) is None and preview_query("not json") is None


def test_segment_configuration_is_checked(tmp_path) -> None:
    from genai_flywheel.config import load_config

    base = tmp_path / "f.yaml"
    text = (Path(__file__).resolve().parents[3] / "flywheel.yaml").read_text()
    base.write_text(text.replace("name: topic", "name: scorer"))
    with pytest.raises(ConfigError, match="reserved"):
        load_config(base)
    base.write_text(text.replace("source: query_cluster", "source: tags.app_version"))
    with pytest.raises(ConfigError, match="unique"):
        load_config(base)
    base.write_text(text.replace("metric: error_rate\n", "metric: drift.nosuch.psi\n", 1))
    with pytest.raises(ConfigError, match="not declared"):
        load_config(base)


def test_one_byte_codes_widen_past_127_values_and_a_latency_past_float32_widens_its_column() -> None:
    from collections import Counter

    from genai_flywheel.metrics import stats

    segments = Segments.model_validate({"top_k": 200, "dimensions": [{"name": "user", "source": "tags.user"}]})
    users = [f"u{i % 260:03d}" for i in range(1_000)]
    users[:40] = ["hot"] * 40  # the top value by volume, met first
    latencies = [100 + (i * 37) % 900 for i in range(1_000)]
    latencies[-1] = 2**24 + 1  # in the last batch: float32 cannot hold it
    rows = [
        _info(i, version=None, query="q", latency=ms) | {"tags": json.dumps({"user": u})}
        for i, (u, ms) in enumerate(zip(users, latencies, strict=True))
    ]
    acc = SegmentAccumulator(app="app", segments=segments, profile=None, capacity=1_000)
    acc.add_traces(_table(rows[:100]).select(columns_for(segments)))  # 61 values: one byte a code
    assert acc.dims[0].all_codes().dtype == np.int8 and acc._latency.dtype == np.float32
    for start in range(100, 1_000, 300):
        acc.add_traces(_table(rows[start : start + 300]).select(columns_for(segments)))
    assert acc.dims[0].all_codes().dtype == np.int16 and acc._latency.dtype == np.float64
    # The codes met before the widening kept their values: every segment's volume is the count of its traces.
    expected = Counter(users)
    volumes = acc.dimension_volumes()["user"]
    kept = sorted(expected, key=lambda u: (-expected[u], u))[:200]
    assert {u: volumes[u] for u in kept} == {u: expected[u] for u in kept}
    assert volumes[OTHER] == 1_000 - sum(expected[u] for u in kept)
    table = acc.table(SCORE_SCHEMA.empty_table(), interval_start=START, interval_end=END).to_pylist()
    assert len({r["segment"] for r in table}) == 201  # 200 kept and other: two-byte segment indices
    # u219 is kept (four traces); its last one is the latency float32 cannot hold, which its p95 interpolates.
    late = users[-1]
    assert late == "u219" and late in kept
    mine = np.array([ms for u, ms in zip(users, latencies, strict=True) if u == late], dtype=np.float64)
    p95 = next(r for r in table if r["segment"] == late and r["metric"] == "latency_p95_ms")
    assert p95["value"] == stats.quantile(mine, 0.95) != stats.quantile(mine.astype(np.float32), 0.95)
    whole = next(r for r in table if r["segment"] == "hot" and r["metric"] == "volume")
    assert whole["value"] == 40
