"""aggregate() on hand-made trace and score tables."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from genai_flywheel.config import Price
from genai_flywheel.exceptions import DataContractError
from genai_flywheel.metrics import stats
from genai_flywheel.metrics.aggregate import aggregate, feedback_polarity, is_estimate, metrics_schema
from genai_flywheel.traces.schema import SCORE_SCHEMA, TRACE_SCHEMA

START = datetime(2026, 11, 20, tzinfo=UTC)
END = datetime(2026, 11, 20, 1, tzinfo=UTC)
PRICES = {"gpt-x": Price(input_per_1k=1.0, output_per_1k=2.0)}


def span(span_type: str | None, ms: float | None) -> dict[str, Any]:
    return {"name": "s", "span_type": span_type, "duration_ms": ms, "status": "OK"}


def feedback(name: str, value: str, t: int, source: str = "HUMAN", error: str | None = None) -> dict[str, Any]:
    return {
        "assessment_id": f"a-{name}-{t}",
        "name": name,
        "kind": "feedback",
        "value": value,
        "source_type": source,
        "create_time_ms": t,
        "error": error,
    }


def trace(i: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "trace_id": f"tr-{i:03d}",
        "app": "bot",
        "timestamp_ms": 1_000 + i,
        "status": "OK",
        "execution_time_ms": 100 * (i + 1),
        "spans": [],
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "model": "gpt-x",
        "assessments": [],
    }
    row.update(overrides)
    return row


def score(i: int, scorer: str, numeric: float | None, passed: bool | None, **overrides: Any) -> dict[str, Any]:
    row = {
        "trace_id": f"tr-{i:03d}",
        "app": "bot",
        "timestamp_ms": 1_000 + i,
        "scorer": scorer,
        "scorer_version": "1",
        "source_type": "CODE",
        "numeric": numeric,
        "passed": passed,
        "error": None,
        "weight": 1.0,
        "assessment_id": f"as-{scorer}-{i}",
    }
    row.update(overrides)
    return row


def traces_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)


def scores_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCORE_SCHEMA)


def run(traces: pa.Table, scores: pa.Table | None = None, **kwargs: Any) -> dict[str, dict[str, Any]]:
    table = aggregate(
        traces,
        scores if scores is not None else SCORE_SCHEMA.empty_table(),
        app="bot",
        interval_start=START,
        interval_end=END,
        prices=kwargs.pop("prices", PRICES),
        **kwargs,
    )
    assert table.schema.equals(metrics_schema())
    metrics = table.column("metric").to_pylist()
    assert metrics == sorted(metrics) and len(set(metrics)) == len(metrics)
    return {row["metric"]: row for row in table.to_pylist()}


@pytest.fixture
def window() -> pa.Table:
    rows = [trace(i) for i in range(10)]
    rows[0].update(status="ERROR", error_type="TimeoutError")
    rows[1].update(status="ERROR", error_type="TimeoutError")
    rows[2].update(status="ERROR", error_type=None)
    rows[3].update(execution_time_ms=None)
    # Spans: two LLM calls in trace 0 are summed; trace 1 has an untyped span.
    rows[0]["spans"] = [span("LLM", 30.0), span("LLM", 50.0), span("RETRIEVER", 5.0)]
    rows[1]["spans"] = [span("LLM", 40.0), span(None, 7.0)]
    rows[2]["spans"] = [span("LLM", 100.0), span("RETRIEVER", None)]
    # Tokens: trace 4 unknown model, trace 5 no usage at all, trace 6 only a total (cannot be priced).
    rows[4]["model"] = "mystery"
    rows[5].update(input_tokens=None, output_tokens=None, total_tokens=None, model=None)
    rows[6].update(input_tokens=None, output_tokens=None, total_tokens=300)
    # Feedback: trace 0 changed its mind (latest counts); a judge's and an errored one are ignored.
    rows[0]["assessments"] = [feedback("thumbs", "true", 1), feedback("thumbs", '"negative"', 2)]
    rows[1]["assessments"] = [
        feedback("thumbs", '"Positive"', 1),
        feedback("thumbs", "false", 5, "LLM_JUDGE"),
    ]
    rows[2]["assessments"] = [feedback("thumbs", "true", 1, error="bad")]
    rows[3]["assessments"] = [feedback("thumbs", "4", 1), feedback("comment", '"great"', 1)]
    rows[4]["assessments"] = [feedback("thumbs", "true", 3)]
    return traces_table(rows)


def test_volume_errors_and_quarantine(window: pa.Table) -> None:
    m = run(window, quarantined=4)
    assert m["volume"]["value"] == 10 and m["volume"]["ci_low"] is None
    assert m["quarantined"]["value"] == 4 and m["quarantined"]["n"] == 14
    assert m["error_rate"]["value"] == pytest.approx(0.3) and m["error_rate"]["n"] == 10
    low, high = stats.wilson_interval(3, 10)
    assert (m["error_rate"]["ci_low"], m["error_rate"]["ci_high"]) == pytest.approx((low, high))
    assert m["error_rate.TimeoutError"]["value"] == pytest.approx(0.2)
    assert m["error_rate.unknown"]["value"] == pytest.approx(0.1)


def test_latency_percentiles_and_cis(window: pa.Table) -> None:
    m = run(window)
    latencies = [100.0 * (i + 1) for i in range(10) if i != 3]
    assert m["latency_p50_ms"]["n"] == 9
    assert m["latency_p50_ms"]["value"] == pytest.approx(np.quantile(latencies, 0.5))
    assert m["latency_p95_ms"]["value"] == pytest.approx(np.quantile(latencies, 0.95))
    assert (m["latency_p50_ms"]["ci_low"], m["latency_p50_ms"]["ci_high"]) == stats.quantile_ci(latencies, 0.5)
    assert m["latency_p50_ms"]["ci_low"] is not None
    assert m["latency_p99_ms"]["ci_low"] is None and m["latency_p99_ms"]["ci_high"] is None  # n = 9 < 368
    assert m["latency_mean_ms"]["value"] == pytest.approx(np.mean(latencies))
    assert m["latency_mean_ms"]["ci_low"] < m["latency_mean_ms"]["value"] < m["latency_mean_ms"]["ci_high"]


def test_span_type_latencies_sum_per_trace(window: pa.Table) -> None:
    m = run(window)
    assert m["span.LLM.latency_p50_ms"]["n"] == 3
    assert m["span.LLM.latency_p50_ms"]["value"] == pytest.approx(80.0)  # median of 80, 40, 100
    assert m["span.LLM.latency_p99_ms"]["value"] == pytest.approx(np.quantile([80, 40, 100], 0.99))
    assert m["span.RETRIEVER.latency_p50_ms"]["n"] == 1  # the null duration is skipped
    assert m["span.UNKNOWN.latency_p50_ms"]["value"] == pytest.approx(7.0)
    assert "span.LLM.latency_mean_ms" not in m


def test_tokens_and_cost(window: pa.Table) -> None:
    m = run(window)
    assert m["tokens_input"]["value"] == 800 and m["tokens_input"]["n"] == 8
    assert m["tokens_output"]["value"] == 160
    assert m["tokens_total"]["value"] == 8 * 120 + 300 and m["tokens_total"]["n"] == 9
    assert m["tokens_per_trace"]["value"] == pytest.approx((8 * 120 + 300) / 9)
    # 7 priced traces x (100/1000 x $1 + 20/1000 x $2); the unknown model and the unsplit total are unpriced.
    assert m["cost_usd"]["value"] == pytest.approx(7 * 0.14) and m["cost_usd"]["n"] == 7
    assert m["cost_unpriced_traces"]["value"] == 2 and m["cost_unpriced_traces"]["n"] == 9
    assert run(window, prices={})["cost_unpriced_traces"]["value"] == 9


def test_human_feedback_latest_per_trace(window: pa.Table) -> None:
    m = run(window)
    rate = m["feedback.thumbs.positive_rate"]
    # trace 0: latest "negative"; trace 1: "Positive" (judge ignored); trace 4: true; 2 errored, 3 not binary.
    assert rate["n"] == 3 and rate["value"] == pytest.approx(2 / 3)
    assert (rate["ci_low"], rate["ci_high"]) == pytest.approx(stats.wilson_interval(2, 3))
    assert "feedback.comment.positive_rate" not in m
    assert feedback_polarity("true") is True and feedback_polarity('"NEGATIVE"') is False
    assert feedback_polarity("positive") is True and feedback_polarity("0.5") is None


def test_weighted_scorer_metrics(window: pa.Table) -> None:
    rows = [
        score(0, "relevance", 1.0, True, weight=1.0),
        score(1, "relevance", 0.0, False, weight=3.0),
        score(2, "relevance", 0.5, True, weight=2.0),
        score(3, "relevance", None, None, error="judge unavailable", weight=1.0),
        score(0, "safety", None, True),
        score(1, "safety", None, False),
    ]
    m = run(window, scores_table(rows))
    assert m["sampled"]["value"] == 4
    mean = m["scorer.relevance.mean"]
    assert mean["value"] == pytest.approx((1.0 * 1 + 0.0 * 3 + 0.5 * 2) / 6) and mean["n"] == 3
    expected = stats.weighted_mean_ci([1.0, 0.0, 0.5], [1.0, 3.0, 2.0])[1]
    assert (mean["ci_low"], mean["ci_high"]) == pytest.approx(expected)
    rate = m["scorer.relevance.pass_rate"]
    assert rate["value"] == pytest.approx(3 / 6) and rate["n"] == 3
    n_eff = stats.kish_effective_n([1.0, 3.0, 2.0])
    assert (rate["ci_low"], rate["ci_high"]) == pytest.approx(stats.wilson_interval(0.5 * n_eff, n_eff))
    assert m["scorer.relevance.n"]["value"] == 3
    assert m["scorer.relevance.errors"]["value"] == 1 and m["scorer.relevance.errors"]["n"] == 4
    assert m["scorer.safety.mean"]["value"] is None and m["scorer.safety.mean"]["n"] == 0
    assert m["scorer.safety.pass_rate"]["value"] == pytest.approx(0.5)


def test_duplicate_score_rows_count_once_and_scored_row_wins(window: pa.Table) -> None:
    rows = [
        score(0, "rel", None, None, error="timeout"),
        score(0, "rel", 1.0, True, assessment_id="as-rel-0b"),
        score(1, "rel", 0.0, False),
        score(1, "rel", 0.0, False),
    ]
    m = run(window, scores_table(rows))
    assert m["scorer.rel.n"]["value"] == 2 and m["scorer.rel.errors"]["value"] == 0
    assert m["scorer.rel.mean"]["value"] == pytest.approx(0.5)


def test_empty_window_gives_volume_zero_and_null_estimates() -> None:
    m = run(TRACE_SCHEMA.empty_table(), SCORE_SCHEMA.empty_table())
    assert m["volume"]["value"] == 0 and m["sampled"]["value"] == 0
    for name in ("error_rate", "latency_p50_ms", "latency_mean_ms", "tokens_per_trace"):
        assert m[name]["value"] is None and m[name]["n"] == 0 and m[name]["ci_low"] is None
    assert m["cost_usd"]["value"] == 0 and m["tokens_total"]["value"] == 0
    assert not any(k.startswith(("span.", "feedback.", "scorer.", "error_rate.")) for k in m)


def test_result_does_not_depend_on_row_order(window: pa.Table) -> None:
    scores = scores_table([score(i, "rel", i / 7, i % 2 == 0, weight=1.0 + i % 3) for i in range(10)])
    order = np.random.default_rng(1).permutation(10)
    first = aggregate(window, scores, app="bot", interval_start=START, interval_end=END, prices=PRICES)
    shuffled = aggregate(
        pa.concat_tables([window.take(order[:4]), window.take(order[4:])]),
        scores.take(order[::-1].copy()),
        app="bot",
        interval_start=START,
        interval_end=END,
        prices=PRICES,
        run_id="another-run",
    )
    assert first.equals(shuffled)


def test_interval_columns_are_utc_milliseconds(window: pa.Table) -> None:
    table = aggregate(
        window,
        SCORE_SCHEMA.empty_table(),
        app="bot",
        interval_start=datetime(2026, 11, 20, 0, 0, 0, 123456),  # naive means UTC
        interval_end=END,
        prices=PRICES,
    )
    assert table.column("interval_start")[0].as_py() == datetime(2026, 11, 20, 0, 0, 0, 123000, tzinfo=UTC)


def test_contract_violations_name_the_problem(window: pa.Table) -> None:
    with pytest.raises(DataContractError, match="'other'"):
        run(traces_table([trace(0, app="other")]))
    with pytest.raises(DataContractError, match="spans"):
        run(window.drop_columns(["spans"]))
    with pytest.raises(DataContractError, match="weight"):
        run(window, scores_table([score(0, "rel", 1.0, True, weight=0.0)]))
    with pytest.raises(ValueError, match="after interval_start"):
        aggregate(window, SCORE_SCHEMA.empty_table(), app="bot", interval_start=END, interval_end=START, prices={})


def test_is_estimate_splits_estimates_from_counts() -> None:
    estimates = ["error_rate", "error_rate.TimeoutError", "latency_p99_ms", "span.LLM.latency_p50_ms"]
    estimates += [
        "tokens_per_trace",
        "feedback.thumbs.positive_rate",
        "scorer.rel.mean",
        "scorer.rel.pass_rate",
    ]
    for name in estimates:
        assert is_estimate(name), name
    for name in (
        "volume",
        "quarantined",
        "tokens_total",
        "cost_usd",
        "sampled",
        "scorer.rel.n",
        "scorer.rel.errors",
    ):
        assert not is_estimate(name), name


def test_metrics_schema_constant() -> None:
    from genai_flywheel.metrics.aggregate import METRICS_SCHEMA

    assert METRICS_SCHEMA.names == [
        "app",
        "interval_start",
        "interval_end",
        "metric",
        "value",
        "n",
        "ci_low",
        "ci_high",
    ]
    assert str(METRICS_SCHEMA.field("interval_start").type) == "timestamp[ms, tz=UTC]"


def test_no_nan_reaches_the_table(window: pa.Table) -> None:
    table = aggregate(
        window, SCORE_SCHEMA.empty_table(), app="bot", interval_start=START, interval_end=END, prices=PRICES
    )
    for column in ("value", "ci_low", "ci_high"):
        assert not any(isinstance(v, float) and math.isnan(v) for v in table.column(column).to_pylist())
