"""Judge health in the metrics: failed calls make an alertable error rate; budget skips are counted apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from genai_flywheel.metrics import aggregate
from genai_flywheel.traces.schema import SCORE_SCHEMA, TRACE_SCHEMA


def _scores(outcomes: list[str | None], source: str = "LLM_JUDGE") -> pa.Table:
    rows = []
    for i, error in enumerate(outcomes):
        rows.append(
            {
                "trace_id": f"tr-{i:04d}",
                "app": "a",
                "timestamp_ms": 1,
                "scorer": "relevance_to_query",
                "scorer_version": "j1",
                "source_type": source,
                "value": None if error else '"yes"',
                "numeric": None if error else 1.0,
                "passed": None if error else True,
                "rationale": None,
                "error": error,
                "stratum": "base",
                "weight": 1.0,
                "assessment_id": f"a-{i}",
            }
        )
    return pa.Table.from_pylist(rows, schema=SCORE_SCHEMA)


def _metrics(scores: pa.Table) -> dict[str, dict]:
    out = aggregate(
        TRACE_SCHEMA.empty_table(),
        scores,
        app="a",
        interval_start=datetime(2026, 1, 1, tzinfo=UTC),
        interval_end=datetime(2026, 1, 1, 1, tzinfo=UTC),
        prices={},
    )
    return {r["metric"]: r for r in out.to_pylist()}


def test_judge_outage_is_an_error_rate_with_ci_and_budget_skips_apart() -> None:
    outcomes = ["judge unavailable after 3 retries: HTTP 500"] * 16 + [None] * 4
    outcomes += ["skipped: judge budget of $1.00 per run reached"] * 3
    m = _metrics(_scores(outcomes))
    assert m["judge.error_rate"]["value"] == pytest.approx(0.8)
    assert m["judge.error_rate"]["n"] == 20  # budget skips are not calls
    assert m["judge.error_rate"]["ci_low"] > 0.5
    assert m["judge.skipped_budget"]["value"] == 3


def test_no_judge_metrics_without_judges() -> None:
    m = _metrics(_scores([None, "boom"], source="CODE"))
    assert "judge.error_rate" not in m
