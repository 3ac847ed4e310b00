"""aggregate_window(): the monitor's streaming aggregation over trace infos and a fetched sample."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.metrics import stats
from genai_flywheel.metrics.aggregate import FETCHED_COLUMNS, aggregate, aggregate_window
from genai_flywheel.traces.schema import INFO_SCHEMA, SCORE_SCHEMA, TRACE_SCHEMA
from tests.unit.metrics.test_metrics_aggregate import END, PRICES, START, feedback, span, trace


def _window(n: int, seed: int = 3) -> pa.Table:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        failed = rng.random() < 0.1
        rows.append(
            trace(
                i,
                status="ERROR" if failed else "OK",
                error_type=rng.choice(["RateLimitError", "Timeout", None]) if failed else None,
                execution_time_ms=rng.randint(50, 5_000),
                spans=[span("LLM", rng.uniform(10, 900)), span("RETRIEVER", rng.uniform(1, 80))]
                + ([span("RETRIEVER", rng.uniform(1, 80))] if i % 4 == 0 else []),
                input_tokens=rng.randint(1, 500),
                output_tokens=rng.randint(1, 300),
                total_tokens=None,
                assessments=[feedback("user_feedback", rng.choice(['"positive"', '"negative"']), i)] if i % 5 else [],
            )
        )
    return pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)


def _metrics(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in table.to_pylist()}


def _stream(window: pa.Table, fetched: pa.Table, batch: int, *, shuffle: bool = False) -> pa.Table:
    infos = window.select(INFO_SCHEMA.names)
    parts = [infos.slice(i, batch) for i in range(0, infos.num_rows, batch)]
    fparts = [fetched.slice(i, batch) for i in range(0, fetched.num_rows, batch)]
    if shuffle:
        random.Random(1).shuffle(parts)
        random.Random(2).shuffle(fparts)
    return aggregate_window(
        parts,
        fparts,
        SCORE_SCHEMA.empty_table(),
        app="bot",
        interval_start=START,
        interval_end=END,
        prices=PRICES,
    )


def _fetched(window: pa.Table, keep: np.ndarray, weight: np.ndarray) -> pa.Table:
    rows = window.filter(pa.array(keep)).select(list(FETCHED_COLUMNS[:-1]))
    return rows.append_column("weight", pa.array(weight[keep], pa.float64()))


def test_streaming_over_infos_with_every_trace_read_equals_the_full_read() -> None:
    window = _window(700)
    reference = aggregate(
        window, SCORE_SCHEMA.empty_table(), app="bot", interval_start=START, interval_end=END, prices=PRICES
    )
    everything = _fetched(window, np.ones(700, bool), np.ones(700))
    assert _stream(window, everything, 64).equals(reference)
    # Neither the batching nor the order of batches changes a byte.
    assert _stream(window, everything, 700).equals(reference)
    assert _stream(window, everything, 33, shuffle=True).equals(reference)


def test_a_sample_keeps_the_exact_metrics_and_estimates_span_latency_with_a_ci() -> None:
    window = _window(3_000)
    reference = _metrics(
        aggregate(window, SCORE_SCHEMA.empty_table(), app="bot", interval_start=START, interval_end=END, prices=PRICES)
    )
    status = np.asarray(window.column("status").to_pylist())
    u = np.asarray([stats_u(i) for i in range(window.num_rows)])
    pi = np.where(status == "ERROR", 1.0, 0.25)  # every failure read, a quarter of the rest
    keep = u < pi
    sample = _metrics(_stream(window, _fetched(window, keep, 1.0 / pi), 500))
    exact = [m for m in reference if not m.startswith("span.")]
    for m in exact:
        assert sample[m] == reference[m], m  # error types too: every failed trace was read
    for p in ("p50", "p90", "p95"):
        est, ref = sample[f"span.LLM.latency_{p}_ms"], reference[f"span.LLM.latency_{p}_ms"]
        assert est["n"] == int(keep.sum())
        assert est["ci_low"] <= ref["value"] <= est["ci_high"], p
        assert est["value"] != ref["value"]  # an estimate, not the full read's value


def stats_u(i: int) -> float:
    from genai_flywheel.traces.sampling import unit_hash

    return unit_hash("test", str(i))


def test_error_types_are_estimated_when_failures_are_sampled() -> None:
    window = _window(4_000, seed=8)
    reference = _metrics(
        aggregate(window, SCORE_SCHEMA.empty_table(), app="bot", interval_start=START, interval_end=END, prices=PRICES)
    )
    u = np.asarray([stats_u(i) for i in range(window.num_rows)])
    keep = u < 0.5
    sample = _metrics(_stream(window, _fetched(window, keep, np.full(window.num_rows, 2.0)), 1000))
    assert sample["error_rate"] == reference["error_rate"]  # from the infos: exact
    for name in [m for m in reference if m.startswith("error_rate.")]:
        est, ref = sample[name], reference[name]
        assert est["n"] == 4_000 and est["ci_low"] < est["value"] < est["ci_high"]
        assert est["ci_low"] <= ref["value"] <= est["ci_high"], name


def test_fetched_rows_need_a_weight_of_at_least_one() -> None:
    window = _window(10)
    bad = _fetched(window, np.ones(10, bool), np.full(10, 0.5))
    with pytest.raises(DataContractError, match="1 / pi >= 1"):
        _stream(window, bad, 10)


def test_weighted_quantile_with_equal_weights_is_the_lower_sample_quantile() -> None:
    values = np.arange(1.0, 101.0)
    value, (low, high) = stats.weighted_quantile_ci(values, np.ones(100), 0.5)
    assert value == 50.0
    # Woodruff on n = 100: the CDF band 0.5 +- 1.96 * 0.05 maps to the 41st and 60th values.
    assert (low, high) == (41.0, 60.0)
    # Doubling every weight changes nothing; a tiny sample cannot bound p99.
    assert stats.weighted_quantile_ci(values, np.full(100, 2.0), 0.5) == (value, (low, high))
    assert stats.weighted_quantile_ci(values[:10], np.ones(10), 0.99)[1] == (None, None)


def test_weighted_quantile_weights_the_values() -> None:
    # Value 1 stands for 9 traces, value 10 for one: the median is 1 and p95 is 10.
    assert stats.weighted_quantile_ci([1.0, 10.0], [9.0, 1.0], 0.5)[0] == 1.0
    assert stats.weighted_quantile_ci([10.0, 1.0], [1.0, 9.0], 0.95)[0] == 10.0
    with pytest.raises(ValueError, match="differ in length"):
        stats.weighted_quantile_ci([1.0], [1.0, 2.0], 0.5)


def test_values_past_float32_widen_the_per_trace_columns_and_keep_every_figure_exact() -> None:
    # Whole milliseconds and token counts are held as float32 while every one is a float32 exactly; past 2**24
    # they are not, and the column widens: the figures are those of the float64 values, however batched.
    rng = random.Random(9)
    latencies = [rng.randint(50, 5_000) for _ in range(300)]
    tokens = [rng.randint(1, 900) for _ in range(300)]
    latencies[250], tokens[260] = 2**24 + 1, 2**24 + 3  # in a late batch
    window = pa.Table.from_pylist(
        [
            trace(i, execution_time_ms=ms, input_tokens=t // 3, output_tokens=t - t // 3, total_tokens=t)
            for i, (ms, t) in enumerate(zip(latencies, tokens, strict=True))
        ],
        schema=TRACE_SCHEMA,
    )
    everything = _fetched(window, np.ones(300, bool), np.ones(300))
    metrics = _metrics(_stream(window, everything, 40))
    assert float(np.float32(2**24 + 1)) != 2**24 + 1  # the premise: float32 cannot hold it
    values = np.sort(np.array(latencies, dtype=np.float64))
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        row = metrics[f"latency_{label}_ms"]
        assert row["value"] == stats.quantile(values, q)
        assert (row["ci_low"], row["ci_high"]) == stats.quantile_ci(values, q)
    mean, (low, high) = stats.mean_ci(values)
    assert (metrics["latency_mean_ms"]["value"], metrics["latency_mean_ms"]["ci_high"]) == (mean, high)
    per_trace = np.sort(np.array(tokens, dtype=np.float64))
    assert metrics["tokens_total"]["value"] == math.fsum(tokens) == float(sum(tokens))
    assert metrics["tokens_per_trace"]["value"] == stats.mean_ci(per_trace)[0]
    # The cost is summed exactly, batch by batch, without a per-trace column: math.fsum of every trace's cost.
    costs = [(t // 3) / 1000.0 * 1.0 + (t - t // 3) / 1000.0 * 2.0 for t in tokens]
    assert metrics["cost_usd"]["value"] == math.fsum(costs) and metrics["cost_usd"]["n"] == 300
