"""Deterministic stratified sampling: same traces on every re-run, oversampled strata, unbiased weights."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from genai_flywheel.config import Sampling, ScorerSpec, Stratum
from genai_flywheel.traces.sampling import plan_sample, rows_for_scorer, shard_of, unit_hash
from genai_flywheel.traces.schema import TRACE_SCHEMA


def _judge(sample_rate: float) -> ScorerSpec:
    """An LLM judge (``judge`` needs its prompt) sampled at ``sample_rate``."""
    return ScorerSpec(
        name="judge", sample_rate=sample_rate, options={"instructions": "Does {{ outputs }} answer {{ inputs }}?"}
    )


SCORERS = [ScorerSpec(name="relevance"), _judge(0.05)]


def _table(n: int, error_every: int = 10) -> pa.Table:
    rows = []
    for i in range(n):
        feedback = []
        if i % 7 == 0:
            feedback = [
                {
                    "assessment_id": f"a-{i}",
                    "name": "user_feedback",
                    "kind": "feedback",
                    "value": "false",
                    "source_type": "HUMAN",
                    "source_id": "u",
                    "rationale": None,
                    "error": None,
                    "create_time_ms": 1,
                }
            ]
        rows.append(
            {
                "trace_id": f"tr-{i:032x}",
                "app": "a",
                "timestamp_ms": 1_700_000_000_000 + i,
                "status": "ERROR" if i % error_every == 0 else "OK",
                "execution_time_ms": 10,
                "request": json.dumps({"query": f"q{i}"}),
                "assessments": feedback,
            }
        )
    return pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)


def _sampling(**kw) -> Sampling:
    return Sampling(
        rate=0.2,
        shards=3,
        strata=[
            Stratum(name="errors", filter="trace.status = 'ERROR'", rate=1.0),
            Stratum(name="negative", filter="assessments.user_feedback.value = 'negative'", rate=1.0),
        ],
        **kw,
    )


def test_unit_hash_is_stable_and_uniform() -> None:
    assert unit_hash("flywheel", "tr-1", "relevance") == unit_hash("flywheel", "tr-1", "relevance")
    values = [unit_hash("s", str(i)) for i in range(4000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.45 < sum(values) / len(values) < 0.55


def test_same_traces_on_rerun_and_independent_of_row_order() -> None:
    table = _table(500)
    first = plan_sample(table, _sampling(), SCORERS).table
    shuffled = table.take(pa.array(list(reversed(range(table.num_rows)))))
    second = plan_sample(shuffled, _sampling(), SCORERS).table
    assert _decisions(first) == _decisions(second)


def _decisions(t: pa.Table) -> list[tuple[str, tuple[str, ...]]]:
    ids, scorers = t.column("trace_id").to_pylist(), t.column("scorers").to_pylist()
    return sorted(zip(ids, map(tuple, scorers), strict=True))


def test_strata_are_oversampled_and_weighted() -> None:
    plan = plan_sample(_table(1000), _sampling(), SCORERS)
    rows = plan.table.to_pylist()
    errors = [r for r in rows if r["stratum"] == "errors"]
    assert len(errors) == 100  # every failed trace, for every scorer
    assert all(set(r["scorers"]) == {"relevance", "judge"} and r["weight"] == 1.0 for r in errors)
    negative = [r for r in rows if r["stratum"] == "negative"]
    assert negative and all(r["sample_rate"] == 1.0 for r in negative)
    base = [r for r in rows if r["stratum"] == "base"]
    assert all(r["weight"] == pytest.approx(5.0) for r in base)
    # The base rate holds approximately for the rest.
    n_base_total = 1000 - 100 - sum(1 for i in range(1000) if i % 7 == 0 and i % 10 != 0)
    relevance_base = sum(1 for r in base if "relevance" in r["scorers"])
    assert 0.15 < relevance_base / n_base_total < 0.25


def test_scorer_rate_overrides_base_rate_and_sets_its_weight() -> None:
    plan = plan_sample(_table(2000), _sampling(), SCORERS)
    judged = rows_for_scorer(plan.table, _sampling(), SCORERS[1]).to_pylist()
    base = [r for r in judged if r["stratum"] == "base"]
    assert base and all(r["weight"] == pytest.approx(20.0) for r in base)
    assert plan.per_scorer["judge"] < plan.per_scorer["relevance"]


def test_filter_limits_eligible_traces() -> None:
    plan = plan_sample(_table(100), _sampling(filter="trace.status = 'OK'"), SCORERS)
    assert plan.eligible == 90
    assert "ERROR" not in plan.table.column("status").to_pylist()


def test_empty_window_gives_typed_empty_sample() -> None:
    plan = plan_sample(_table(0), _sampling(), SCORERS)
    assert plan.table.num_rows == 0
    assert plan.table.schema.field("scorers").type == pa.list_(pa.string())


def test_shards_are_stable_and_in_range() -> None:
    shards = [shard_of(f"tr-{i}", 4) for i in range(400)]
    assert set(shards) == {0, 1, 2, 3}
    assert shards == [shard_of(f"tr-{i}", 4) for i in range(400)]


def test_scorer_samples_are_coordinated_so_only_the_highest_rate_is_read() -> None:
    from genai_flywheel.traces.sampling import trace_rate

    scorers = [
        ScorerSpec(name="a", sample_rate=0.5),
        ScorerSpec(name="b", sample_rate=0.5),
        ScorerSpec(name="c", sample_rate=0.5),
        _judge(0.1),
    ]
    sampling = Sampling(rate=0.5, shards=2)
    plan = plan_sample(_table(4000), sampling, scorers)
    rows = plan.table.to_pylist()
    # Independent draws would read 1 - 0.5^3 * 0.9 = 89% of the window; one permanent number per trace, 50%.
    assert 0.46 < len(rows) / 4000 < 0.54
    assert trace_rate(sampling, scorers, "base") == 0.5
    assert all(r["sample_rate"] == 0.5 and r["weight"] == 2.0 for r in rows)
    # Every trace read is scored by the three 50% scorers; the judge's sample lies inside theirs.
    assert all({"a", "b", "c"} <= set(r["scorers"]) for r in rows)
    judged = [r for r in rows if "judge" in r["scorers"]]
    assert 0.08 < len(judged) / 4000 < 0.12
    assert plan.per_scorer == {"a": len(rows), "b": len(rows), "c": len(rows), "judge": len(judged)}


def test_a_trace_is_read_at_the_highest_rate_even_when_no_scorer_takes_it() -> None:
    from genai_flywheel.traces.sampling import trace_rate

    sampling = Sampling(rate=0.3, shards=1)
    scorers = [_judge(0.05)]
    plan = plan_sample(_table(2000), sampling, scorers)
    rows = plan.table.to_pylist()
    # Read at the base rate for the operational estimates (span latency, error types), weighted 1 / 0.3.
    assert trace_rate(sampling, scorers, "base") == 0.3
    assert 0.26 < len(rows) / 2000 < 0.34
    assert all(r["weight"] == pytest.approx(1 / 0.3) for r in rows)
    assert any(r["scorers"] == [] for r in rows)
    # A scorer's own higher rate raises the trace's inclusion probability.
    assert trace_rate(sampling, [ScorerSpec(name="cheap", sample_rate=0.9)], "base") == 0.9


def test_planning_batch_by_batch_gives_the_plan_of_the_whole_window() -> None:
    table = _table(900)
    whole = plan_sample(table, _sampling(), SCORERS).table
    parts = [plan_sample(table.slice(i, 250), _sampling(), SCORERS).table for i in range(0, 900, 250)]
    assert pa.concat_tables(parts).equals(whole)


def test_a_quiet_interval_is_sampled_at_a_rate_that_gives_min_traces() -> None:
    from genai_flywheel.traces.sampling import interval_sampling

    configured = _sampling(min_traces=150)
    # 1,000 traces: 20% already gives 200, the configuration is kept as it is.
    assert interval_sampling(configured, 1_000) is configured
    # 300 traces: the base rate rises to 150 / 300; strata and scorer rates are unchanged.
    quiet = interval_sampling(configured, 300)
    assert quiet.rate == 0.5 and quiet.strata == configured.strata and quiet.min_traces == 150
    # 100 traces: every one, weight 1. Without min_traces, or for an empty interval, nothing changes.
    assert interval_sampling(configured, 100).rate == 1.0
    assert interval_sampling(_sampling(), 100).rate == 0.2 and interval_sampling(configured, 0) is configured
    table = _table(300)
    low, high = plan_sample(table, configured, SCORERS).table, plan_sample(table, quiet, SCORERS).table
    base = [r for r in high.to_pylist() if r["stratum"] == "base"]
    assert base and all(r["sample_rate"] == 0.5 and r["weight"] == 2.0 for r in base)
    # Still coordinated: the higher rate keeps every trace the configured rate picks, for every scorer.
    picked = dict(_decisions(high))
    assert all(set(names) <= set(picked.get(trace_id, ())) for trace_id, names in _decisions(low))
    assert len(picked) > low.num_rows
    everything = plan_sample(_table(100), interval_sampling(configured, 100), SCORERS).table
    assert everything.num_rows == 100 and set(everything.column("weight").to_pylist()) <= {1.0}
