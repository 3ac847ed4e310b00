"""Fine-tuning export: selection, chat-format validation, dedup, deterministic split, rejected records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from genai_flywheel.config import Application, Export, MlflowTarget, PiiRedaction
from genai_flywheel.export import stages
from genai_flywheel.export.finetune import (
    BuildOptions,
    SelectionOptions,
    build_examples,
    examples_schema,
    normalize_message,
    select_from_traces,
    split_of,
    validate_chat_jsonl,
    validate_example,
)
from genai_flywheel.export.pii import Redactor

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _assessment(name: str, value: Any, kind: str = "feedback", source: str = "CODE", at: int = 0) -> dict:
    return {"assessment_id": f"a-{name}-{at}", "name": name, "kind": kind, "value": json.dumps(value),
            "source_type": source, "source_id": "t", "rationale": None, "error": None,
            "create_time_ms": BASE_MS + at}  # fmt: skip


def _trace(
    trace_id: str,
    query: str | None = "How do I reset my password?",
    *,
    minute: int = 0,
    answer: str | None = "Use the reset link.",
    status: str = "OK",
    scores: dict[str, Any] | None = None,
    feedback: bool | None = None,
    correction: Any = None,
    tags: dict[str, str] | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    found = [_assessment(k, v, at=minute) for k, v in (scores or {}).items()]
    if feedback is not None:
        found.append(_assessment("user_feedback", feedback, source="HUMAN", at=minute))
    if correction is not None:
        found.append(_assessment("expected_answer", correction, kind="expectation", source="HUMAN", at=minute))
    return {
        "trace_id": trace_id,
        "app": "demo",
        "timestamp_ms": BASE_MS + minute * 60_000,
        "status": status,
        "request": request if request is not None else (json.dumps({"query": query}) if query else None),
        "response": json.dumps(answer) if answer is not None else None,
        "query": query,
        "answer": answer,
        "tags": json.dumps(tags or {}),
        "metadata": "{}",
        "assessments": found,
    }


OPTIONS = SelectionOptions(min_score=0.7)


def test_selection_rules_and_skip_reasons() -> None:
    rows = [
        _trace("good", scores={"relevance": 0.9, "groundedness": 0.8}),
        _trace("liked", feedback=True),
        _trace("low", scores={"relevance": 0.9, "groundedness": 0.5}),
        _trace("disliked", scores={"relevance": 0.9}, feedback=False),
        _trace("silent"),
        _trace("failed", status="ERROR", scores={"relevance": 1.0}),
        _trace("fixed", scores={"relevance": 0.1}, feedback=False, correction="The right answer."),
        _trace("eval", scores={"relevance": 1.0}, tags={"mlflow.eval.requestId": "x"}),
        _trace("unrelated-score", scores={"pii": False}),
    ]
    selected, skipped = select_from_traces(rows, OPTIONS)
    assert {e["trace_id"]: e["source"] for e in selected} == {
        "good": "high_quality", "liked": "high_quality", "fixed": "correction",
    }  # fmt: skip
    assert skipped == {
        "evaluation_trace": 1,
        "low_score": 1,
        "negative_feedback": 1,
        "no_quality_signal": 2,
        "not_ok_status": 1,
    }
    fixed = next(e for e in selected if e["trace_id"] == "fixed")
    assert fixed["correction"] == "The right answer." and fixed["feedback"] == -1


def _examples(rows: list[dict]) -> list[dict]:
    return select_from_traces(rows, OPTIONS)[0]


def test_build_lines_redaction_and_system_prompt() -> None:
    rows = [
        _trace("t1", "My email is bob@corp.com, how do I export?", answer="Click Export.", feedback=True),
        _trace(
            "t2",
            "Card 4111 1111 1111 1111 declined",
            answer="Call +1 (555) 123-4567.",
            feedback=True,
            minute=1,
        ),
    ]
    result = build_examples(_examples(rows), BuildOptions(system_prompt="You are Support.", validation_fraction=0.0))
    assert result.validation == [] and len(result.train) == 2
    assert result.train[0] == {
        "messages": [
            {"role": "system", "content": "You are Support."},
            {"role": "user", "content": "My email is [EMAIL], how do I export?"},
            {"role": "assistant", "content": "Click Export."},
        ]
    }
    assert result.train[1]["messages"][1]["content"] == "Card [CARD] declined"
    assert result.train[1]["messages"][2]["content"] == "Call [PHONE]."
    assert result.pii.to_dict() == {
        "email": 1,
        "phone": 1,
        "card": 1,
        "iban": 0,
        "us_ssn": 0,
        "ip_address": 0,
        "extra": 0,
    }


def test_correction_replaces_the_answer_and_wins_duplicates() -> None:
    rows = [
        _trace("old-good", "How does Smart Sync work?", answer="Old answer", feedback=True, minute=1),
        _trace(
            "fixed",
            "how does  SMART sync work?",
            answer="Wrong",
            correction={"answer": "Fixed answer"},
            minute=2,
        ),
        _trace("new-good", "How does Smart Sync work? ", answer="Newer answer", feedback=True, minute=3),
    ]
    result = build_examples(_examples(rows), BuildOptions(validation_fraction=0.0))
    assert [line["messages"][-1]["content"] for line in result.train] == ["Fixed answer"]
    duplicates = [r for r in result.rejected if r["reason"] == "duplicate"]
    assert sorted(r["trace_id"] for r in duplicates) == ["new-good", "old-good"]
    assert all(r["duplicate_of"] == "fixed" for r in duplicates)
    assert result.by_source_split["correction"]["train"] == 1


def test_bad_records_are_rejected_with_reasons() -> None:
    rows = [
        _trace("empty", answer="   ", feedback=True),
        _trace("unparsable", query=None, request="{not json", feedback=True, minute=1),
        _trace("no-user", query=None, request=json.dumps({"context": 3}), feedback=True, minute=2),
        _trace("big", "Tell me everything", answer="x" * 500, feedback=True, minute=3),
        _trace("empty-fix", correction="", minute=4),
        _trace("ok", "Fine question", feedback=True, minute=5),
    ]
    result = build_examples(_examples(rows), BuildOptions(max_chars=200, validation_fraction=0.0))
    reasons = {r["trace_id"]: r["reason"] for r in result.rejected}
    assert reasons == {
        "empty": "empty_answer", "unparsable": "unparsable_inputs", "no-user": "no_user_message",
        "big": "oversize", "empty-fix": "empty_answer",
    }  # fmt: skip
    assert len(result.train) == 1
    assert result.counts()["rejected_by_reason"] == {
        "empty_answer": 2, "no_user_message": 1, "oversize": 1, "unparsable_inputs": 1,
    }  # fmt: skip
    assert all(r["detail"] for r in result.rejected)


def test_split_is_deterministic_and_by_question() -> None:
    assert normalize_message("  How   DO I\tReset?  ") == "how do i reset?"
    keys = [f"question number {i}" for i in range(400)]
    splits = [split_of(k, 0.25) for k in keys]
    assert splits == [split_of(k, 0.25) for k in keys]
    assert 60 < splits.count("validation") < 140  # ~100 expected
    assert all(split_of(k, 0.0) == "train" for k in keys)
    assert all(split_of(k, 1.0) == "validation" for k in keys)
    assert [split_of(k, 0.25, seed="other") for k in keys] != splits


def test_validate_example_rules() -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert validate_example(good) == []
    assert "'messages' must be a non-empty list" in validate_example({"messages": []})
    assert any("last message" in p for p in validate_example({"messages": good["messages"][:1]}))
    bad_role = {"messages": [{"role": "bot", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert any("role must be one of" in p for p in validate_example(bad_role))
    empty = {"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]}
    assert any("non-empty string" in p for p in validate_example(empty))
    late_system = {"messages": [*good["messages"][:1], {"role": "system", "content": "s"}, good["messages"][1]]}
    assert any("only the first message" in p for p in validate_example(late_system))
    assert any("unknown top-level key 'extra'" in p for p in validate_example({**good, "extra": 1}))
    assert validate_example([1]) == ["an example must be a JSON object, got list"]


def test_validate_chat_jsonl_reports_lines(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(good) + "\n" + "{oops\n" + "\n" + json.dumps({"messages": [{"role": "user"}]}) + "\n")
    result = validate_chat_jsonl(path)
    assert not result.valid and result.lines == 4
    assert result.errors[0].startswith("line 2: not valid JSON")
    assert result.errors[1] == "line 3: blank line"
    assert any(e.startswith("line 4: messages[0].content") for e in result.errors)
    path.write_text(json.dumps(good) + "\n")
    assert validate_chat_jsonl(path).valid


def _app(**export: Any) -> Application:
    return Application(
        name="demo",
        mlflow=MlflowTarget(tracking_uri="sqlite:///unused.db", experiment="demo-prod"),
        export=Export(**export),
    )


def _trace_table(rows: list[dict]) -> Any:
    import pyarrow as pa

    from genai_flywheel.traces.schema import TRACE_SCHEMA

    return pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)


def test_select_then_build_files_and_manifest(tmp_path: Path) -> None:
    rows = [
        _trace(f"t{i}", f"Question {i} from jane@x.io", answer=f"See ticket TCK-{i}.", feedback=True, minute=i)
        for i in range(30)
    ]
    rows += [
        _trace("dup", "question 0 from JANE@x.io", feedback=True, minute=40),
        _trace("bad", "Question without an answer", answer="", feedback=True, minute=41),
        _trace("low", "Question scored low", scores={"relevance": 0.2}, minute=42),
        _trace("billing", "Billing help", feedback=True, minute=43),
    ]
    app = _app(validation_fraction=0.2, system_prompt="Be brief.", pii=PiiRedaction(extra_patterns=[r"\bTCK-\d+"]))
    end_ms = BASE_MS + 86_400_000
    params = {"filter": "inputs.query CONTAINS 'uestion'"}
    out = stages.select_examples(
        tmp_path, app, start_ms=BASE_MS, end_ms=end_ms, params=params, traces=_trace_table(rows)
    )
    assert out["traces"] == 34 and out["selected"] == 32  # billing does not match the filter, low is skipped
    built = stages.build_jsonl(tmp_path, app)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert built["train"] + built["validation"] == 30 and built["rejected"] == 2
    assert manifest["counts"]["rejected_by_reason"] == {"duplicate": 1, "empty_answer": 1}
    assert manifest["counts"]["skipped_by_reason"] == {"low_score": 1}
    assert manifest["counts"]["matched_filter"] == 33
    # The newer "dup" replaced t0 (newest wins), and its answer names no ticket: 29 tickets, 30 e-mails.
    assert manifest["pii"]["redactions"] == {
        "email": 30,
        "phone": 0,
        "card": 0,
        "iban": 0,
        "us_ssn": 0,
        "ip_address": 0,
        "extra": 29,
    }
    assert manifest["filters"]["selection_filter"] == params["filter"] and manifest["filters"]["min_score"] == 0.7
    assert manifest["window"]["start"] == "2026-01-01T00:00:00Z"
    assert manifest["files"]["train.jsonl"]["lines"] == built["train"]
    assert manifest["digest"] == built["digest"] and manifest["digest"].startswith("sha256:")
    for name in ("train.jsonl", "validation.jsonl"):
        assert validate_chat_jsonl(tmp_path / name).valid
    text = (tmp_path / "train.jsonl").read_text()
    assert "jane@x.io" not in text and "[EMAIL]" in text and '"role":"system","content":"Be brief."' in text
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert {(r["trace_id"], r["reason"]) for r in rejected} == {("t0", "duplicate"), ("bad", "empty_answer")}
    # Same input, same bytes.
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".jsonl", ".json")}
    stages.build_jsonl(tmp_path, app)
    assert first == {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".jsonl", ".json")}


def test_export_params_are_validated(tmp_path: Path) -> None:
    from genai_flywheel.exceptions import ConfigError

    with pytest.raises(ConfigError, match="min_score"):
        stages.select_examples(tmp_path, _app(), start_ms=0, end_ms=1, params={"min_score": 2}, traces=_trace_table([]))
    with pytest.raises(ConfigError, match="quality_scorer"):
        stages.select_examples(
            tmp_path, _app(), start_ms=0, end_ms=1, params={"quality_scorer": ["x"]}, traces=_trace_table([])
        )
    assert stages.run_name_for("demo", BASE_MS + 5) == "finetune-export-demo-2026-01-01"


def test_redactor_is_built_from_config() -> None:
    redactor = Redactor.from_config(PiiRedaction(phones=False))
    assert redactor.redact("555-123-4567")[0] == "555-123-4567"


def test_a_correction_example_keeps_the_reviewers_assessment_id() -> None:
    rows = [
        _trace("fixed", feedback=False, correction="The right answer.", minute=2),
        _trace("good", scores={"relevance": 0.9}),
    ]
    selected = {e["trace_id"]: e for e in _examples(rows)}
    assert selected["fixed"]["correction_assessment_id"] == "a-expected_answer-2"
    assert selected["good"]["correction_assessment_id"] is None  # the app's own answer: no correction
    table = pa.Table.from_pylist(list(selected.values()), schema=examples_schema())
    ids = table.column("correction_assessment_id").to_pylist()
    stored = dict(zip(table.column("trace_id").to_pylist(), ids, strict=True))
    assert stored == {"fixed": "a-expected_answer-2", "good": None}
