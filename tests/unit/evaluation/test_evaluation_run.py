"""MLflow-free parts of running a candidate: record decoding, scorer selection, known production scores."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from genai_flywheel.evaluation.run import production_scores, score_row, scorer_name, to_eval_records
from genai_flywheel.evaluation.stages import select_scorers
from genai_flywheel.exceptions import ConfigError, DataContractError, ScorerError


def _row(rid: str, inputs: str | None, scores: dict | None = None) -> dict:
    return {
        "record_id": rid,
        "inputs": inputs,
        "outputs": json.dumps({"answer": "A"}),
        "expectations": json.dumps({"expected_answer": "E"}),
        "source_trace_id": "t1",
        "scores": json.dumps(scores or {}),
        "rationales": json.dumps({"relevance": "because"}),
    }


def test_records_are_decoded() -> None:
    (record,) = to_eval_records([_row("r1", json.dumps({"query": "Q"}), {"relevance": 0.5})])
    assert record.inputs == {"query": "Q"} and record.outputs == {"answer": "A"}
    assert record.expectations == {"expected_answer": "E"} and record.scores == {"relevance": 0.5}


def test_records_without_object_inputs_are_a_contract_error() -> None:
    rows = [_row("ok", json.dumps({"query": "Q"})), _row("raw", "not json"), _row("none", None)]
    with pytest.raises(DataContractError, match=r"2 record\(s\) have inputs that are not a JSON object"):
        to_eval_records(rows)


def test_known_production_scores_are_reused_without_calling_the_scorer() -> None:
    records = to_eval_records([_row("r1", json.dumps({"query": "Q"}), {"relevance": "yes", "pii": False})])
    scorers = [SimpleNamespace(name="relevance"), SimpleNamespace(name="pii")]
    rows = production_scores(records, scorers)
    assert [(r["scorer"], r["numeric"], r["origin"]) for r in rows] == [
        ("relevance", 1.0, "records"),
        ("pii", 0.0, "records"),
    ]
    assert rows[0]["rationale"] == "because" and rows[0]["value"] == '"yes"'


def test_score_rows_and_names() -> None:
    row = score_row("relevance", None, None, "boom", record_id="r", side="candidate", origin="evaluate")
    assert row["numeric"] is None and row["error"] == "boom"
    assert score_row("x", True, 3, None, record_id="r", side="production", origin="direct")["rationale"] is None
    assert scorer_name(SimpleNamespace(name="relevance")) == "relevance"
    with pytest.raises(ScorerError, match="has no name"):
        scorer_name(object())


def test_select_scorers_keeps_param_order_and_names_unknown_ones() -> None:
    loaded = [SimpleNamespace(name="relevance"), SimpleNamespace(name="pii")]
    assert [s.name for s in select_scorers(loaded, ["pii", "relevance"])] == ["pii", "relevance"]
    with pytest.raises(ConfigError, match=r"\['groundedness'\] are not loaded.*available: \['pii', 'relevance'\]"):
        select_scorers(loaded, ["groundedness"])
