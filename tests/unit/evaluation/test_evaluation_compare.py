"""Comparison rows, per-scorer and per-rule summaries, worst regressions and the Markdown report."""

from __future__ import annotations

import json

import pytest

from genai_flywheel.evaluation.compare import (
    MISSING,
    build_comparison,
    query_of,
    record_rules,
    render_markdown,
    summarize,
)


def _records() -> list[dict]:
    return [
        {"record_id": "r1", "rule": "incident", "rules": ["incident", "negative"],
         "inputs": json.dumps({"query": "How does Smart Sync work?"}), "outputs": json.dumps("wrong"),
         "source_trace_id": "t1"},
        {"record_id": "r2", "rule": "incident", "rules": None,
         "inputs": json.dumps({"query": "Smart Sync conflicts?"}), "outputs": json.dumps("wrong too"),
         "source_trace_id": "t2"},
        {"record_id": "r3", "rule": "guard", "rules": ["guard"], "query": "Reset password",
         "inputs": json.dumps({"query": "Reset password"}), "outputs": json.dumps("fine"),
         "source_trace_id": "t3"},
    ]  # fmt: skip


def _score(rid: str, side: str, scorer: str, numeric: float | None, rationale: str | None = None) -> dict:
    return {"record_id": rid, "side": side, "scorer": scorer, "numeric": numeric, "rationale": rationale}


def _scores() -> list[dict]:
    return [
        _score("r1", "production", "relevance", 0.1, "off topic"),
        _score("r1", "candidate", "relevance", 0.9, "on topic"),
        _score("r2", "production", "relevance", 0.2),
        _score("r2", "candidate", "relevance", 0.8),
        _score("r3", "production", "relevance", 0.9, "good"),
        _score("r3", "candidate", "relevance", 0.6, "worse"),
        _score("r1", "production", "latency", 900.0),
        _score("r1", "candidate", "latency", 300.0),
        _score("r2", "production", "latency", 800.0),
        _score("r2", "candidate", "latency", None),
        _score("r3", "production", "latency", 100.0),
        _score("r3", "candidate", "latency", 100.0),
    ]


OUTPUTS = [
    {"record_id": "r1", "trace_id": "c1", "output": json.dumps("right"), "error": None},
    {"record_id": "r2", "trace_id": "c2", "output": json.dumps("right"), "error": None},
    {"record_id": "r3", "trace_id": "c3", "output": json.dumps("meh"), "error": None},
]


def _comparison() -> list[dict]:
    return build_comparison(
        _records(), _scores(), OUTPUTS, scorers=["relevance", "latency"], lower_is_better=["latency"]
    )


def test_rows_per_record_and_scorer_with_outcomes() -> None:
    rows = _comparison()
    assert [(r["record_id"], r["scorer"]) for r in rows] == [
        ("r1", "relevance"), ("r1", "latency"), ("r2", "relevance"), ("r2", "latency"),
        ("r3", "relevance"), ("r3", "latency"),
    ]  # fmt: skip
    by_key = {(r["record_id"], r["scorer"]): r for r in rows}
    assert by_key["r1", "relevance"]["outcome"] == "win"
    assert by_key["r1", "relevance"]["improvement"] == pytest.approx(0.8)
    assert by_key["r3", "relevance"]["outcome"] == "loss"
    # Lower latency is better: 900 -> 300 is an improvement of +600.
    assert by_key["r1", "latency"]["improvement"] == pytest.approx(600.0)
    assert by_key["r1", "latency"]["outcome"] == "win"
    assert by_key["r2", "latency"]["outcome"] == MISSING and by_key["r2", "latency"]["improvement"] is None
    assert by_key["r3", "latency"]["outcome"] == "tie"
    assert by_key["r1", "relevance"]["candidate_trace_id"] == "c1"
    assert by_key["r3", "relevance"]["query"] == "Reset password"


def test_summary_per_scorer_and_rule() -> None:
    summary = summarize(
        _comparison(),
        scorers=["relevance", "latency"],
        lower_is_better=["latency"],
        context={"candidate": "x:y"},
    )
    assert summary["candidate"] == "x:y" and summary["n_records"] == 3
    rel = summary["scorers"]["relevance"]
    assert (rel["n"], rel["wins"], rel["losses"], rel["ties"], rel["n_missing"]) == (3, 2, 1, 0, 0)
    assert rel["improvement"] == pytest.approx((0.8 + 0.6 - 0.3) / 3)
    assert rel["candidate_mean"] == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    lat = summary["scorers"]["latency"]
    assert lat["n"] == 2 and lat["n_missing"] == 1 and lat["direction"] == "lower_is_better"
    # r1 is in both of its rules; r2 (rules=None) falls back to its primary rule.
    assert sorted(summary["rules"]) == ["guard", "incident", "negative"]
    incident = summary["rules"]["incident"]["relevance"]
    assert (incident["n"], incident["wins"], incident["losses"]) == (2, 2, 0)
    assert summary["rules"]["negative"]["relevance"]["n"] == 1
    assert summary["rules"]["guard"]["relevance"]["losses"] == 1
    json.dumps(summary, allow_nan=False)  # JSON-able, no NaN


def test_worst_regressions_sorted_with_rationales() -> None:
    scores = _scores() + [_score("r2", "candidate", "extra", 0.0), _score("r2", "production", "extra", 1.0)]
    rows = build_comparison(_records(), scores, OUTPUTS, scorers=["relevance", "extra"])
    summary = summarize(rows, scorers=["relevance", "extra"], worst_k=5)
    worst = summary["worst_regressions"]
    assert [(w["record_id"], w["scorer"]) for w in worst] == [("r2", "extra"), ("r3", "relevance")]
    assert worst[1]["production_rationale"] == "good" and worst[1]["candidate_rationale"] == "worse"
    assert worst[1]["candidate_output"] == "meh"  # JSON string shown as text
    assert summarize(rows, scorers=["relevance"], worst_k=0)["worst_regressions"] == []


def test_markdown_report_is_readable_and_deterministic() -> None:
    summary = summarize(
        _comparison(),
        scorers=["relevance", "latency"],
        lower_is_better=["latency"],
        context={
            "candidate": "pkg.app:predict_fixed",
            "dataset": {"name": "ds", "version": 3, "digest": "sha256:ab"},
        },
    )
    text = render_markdown(summary)
    assert text == render_markdown(json.loads(json.dumps(summary)))
    assert "# Development evaluation: `pkg.app:predict_fixed` vs production" in text
    assert "`ds` v3 (sha256:ab)" in text
    assert "## Rule `incident`" in text and "## Worst regressions" in text
    assert "| relevance | 3 |" in text
    assert "| latency | 2 (+1 unscored) |" in text
    assert "production rationale: good" in text


def test_output_text() -> None:
    from genai_flywheel.evaluation.compare import output_text

    assert output_text(json.dumps({"answer": "A"})) == "A"
    assert output_text(json.dumps("B")) == "B"
    assert output_text(json.dumps({"x": 1})) == '{"x": 1}'
    assert output_text("raw") == "raw" and output_text(None) is None


def test_query_and_rules_helpers() -> None:
    assert query_of({"inputs": json.dumps({"question": "Q?"})}) == "Q?"
    assert query_of({"inputs": json.dumps({"x": 1, "text": "T"})}) == "T"
    assert query_of({"inputs": "not json"}) == "not json"
    assert query_of({"inputs": None}) is None
    assert record_rules({"rule": "b", "rules": ["a"]}) == ["a", "b"]
    assert record_rules({"rule": None, "rules": None}) == ["(none)"]


def test_failed_production_trace_is_not_a_win_for_the_candidate() -> None:
    from genai_flywheel.evaluation.compare import MISSING, build_comparison

    records = [
        {"record_id": "r1", "outputs": None, "rule": "errors"},
        {"record_id": "r2", "outputs": '{"answer": "ok"}', "rule": "x"},
    ]
    scores = [
        {"record_id": r, "side": side, "scorer": "relevance", "numeric": v}
        for r, side, v in (
            ("r1", "production", 0.0),
            ("r1", "candidate", 0.9),
            ("r2", "production", 0.5),
            ("r2", "candidate", 0.7),
        )
    ]
    rows = build_comparison(records, scores, [], scorers=["relevance"])
    assert rows[0]["outcome"] == MISSING and rows[0]["improvement"] is None
    assert rows[1]["improvement"] == pytest.approx(0.2)
