"""Records: lineage, expectations, labels, scores, record ids, deduplication, merging across runs."""

from __future__ import annotations

import json

import pyarrow as pa
from curation_tables import BASE_MS, assessment, table, trace

from genai_flywheel.curation.records import (
    build_records,
    deduplicate,
    merge_record,
    merge_snapshot,
    record_schema,
)
from genai_flywheel.curation.text import record_id_for


def selected(rows: list[dict], rules: list[tuple[str, int]]) -> pa.Table:
    """A ``selection_table``-shaped table: trace rows plus rule columns."""
    t = table(rows)
    t = t.append_column("rule", pa.array([r for r, _ in rules], pa.string()))
    t = t.append_column("rule_priority", pa.array([p for _, p in rules], pa.int32()))
    t = t.append_column("cluster_id", pa.array(["c-1"] * len(rows), pa.string()))
    return t.append_column("selection_rank", pa.array(range(len(rows)), pa.int32()))


def build(rows: list[dict], rules: list[tuple[str, int]], run: str = "run-1") -> pa.Table:
    return build_records(selected(rows, rules), app="demo", airflow_run_id=run, interval_start_ms=1, interval_end_ms=2)


def test_record_carries_inputs_outputs_expectations_labels_scores_and_lineage() -> None:
    row = trace(
        "tr-1",
        "How do I enable Smart Sync?",
        minute=3,
        answer="Smart Sync is not supported.",
        feedback=False,
        scores={"relevance": 0.2, "pii": False},
        expectations={"expected_answer": "Open Settings > Smart Sync and switch it on."},
    )
    record = build([row], [("negative_feedback", 10)]).to_pylist()[0]
    assert json.loads(record["inputs"]) == {"query": "How do I enable Smart Sync?"}
    assert json.loads(record["outputs"]) == {"answer": "Smart Sync is not supported."}
    assert json.loads(record["expectations"]) == {"expected_answer": "Open Settings > Smart Sync and switch it on."}
    assert json.loads(record["labels"]) == {"user_feedback": False}
    assert json.loads(record["scores"]) == {"pii": False, "relevance": 0.2}
    assert json.loads(record["rationales"])["relevance"] == "relevance says 0.2"
    assert record["source_trace_id"] == "tr-1" and record["source_trace_ids"] == ["tr-1"]
    assert record["rule"] == "negative_feedback" and record["rules"] == ["negative_feedback"]
    assert record["rule_priority"] == 10
    assert (record["app"], record["airflow_run_id"]) == ("demo", "run-1")
    assert (record["interval_start_ms"], record["interval_end_ms"]) == (1, 2)
    assert record["source_timestamp_ms"] == BASE_MS + 3 * 60_000
    assert record["record_id"] == record_id_for({"query": "How do I enable Smart Sync?"})


def test_record_without_expectations_or_outputs_has_nulls() -> None:
    record = build([trace("tr-2", "timeout please", status="ERROR")], [("errors", 30)]).to_pylist()[0]
    assert record["expectations"] is None
    assert record["outputs"] is None
    assert record["status"] == "ERROR"
    assert json.loads(record["labels"]) == {} and json.loads(record["scores"]) == {}


def test_record_id_ignores_case_whitespace_and_trailing_punctuation_only() -> None:
    assert record_id_for({"query": "How do I  enable Smart Sync?"}) == record_id_for(
        {"query": "how do i enable smart sync"}
    )
    assert record_id_for({"query": "enable smart sync"}) != record_id_for({"query": "disable smart sync"})
    assert record_id_for({"a": 1, "b": "x"}) == record_id_for({"b": "X", "a": 1})


def test_unparsable_inputs_are_kept_raw_with_a_trace_based_id() -> None:
    rows = [trace("tr-a", "x", request="{not json"), trace("tr-b", "y", request="{not json")]
    records = build(rows, [("errors", 30), ("errors", 30)]).to_pylist()
    assert [r["inputs"] for r in records] == ["{not json", "{not json"]
    assert records[0]["record_id"] != records[1]["record_id"]  # not merged into each other


def test_deduplicate_keeps_the_first_rule_and_merges_lineage() -> None:
    rows = [
        trace("tr-1", "How do I export?", minute=5, feedback=False),
        trace("tr-2", "how do i export", minute=9, expectations={"expected_answer": "new"}),
        trace("tr-3", "How do I export", minute=1, expectations={"expected_answer": "old", "note": "n"}),
        trace("tr-4", "something else", minute=2),
    ]
    records = build(rows, [("negative_feedback", 10), ("low_judge_scores", 20), ("bad_query_clusters", 40), ("x", 50)])
    deduped, merged = deduplicate(records)
    assert merged == 2
    assert deduped.num_rows == 2
    first = deduped.to_pylist()[0]
    assert first["source_trace_id"] == "tr-1" and first["rule"] == "negative_feedback"
    assert first["source_trace_ids"] == ["tr-1", "tr-2", "tr-3"]
    assert first["rules"] == ["bad_query_clusters", "low_judge_scores", "negative_feedback"]
    # Per name, the newest source trace's expectation wins (tr-2 at minute 9 over tr-3 at minute 1).
    assert json.loads(first["expectations"]) == {"expected_answer": "new", "note": "n"}
    assert json.loads(first["inputs"]) == {"query": "How do I export?"}
    assert deduped.schema == record_schema()


def test_merge_snapshot_is_idempotent_and_counts_added_records() -> None:
    current = build([trace("tr-1", "q one"), trace("tr-2", "q two")], [("a", 10), ("a", 10)])
    first = merge_snapshot(None, current)
    assert len(first.added) == 2 and first.updated == []
    again = merge_snapshot(first.records, current)
    assert again.added == [] and again.updated == []
    assert again.records.equals(first.records)
    ids = first.records.column("record_id").to_pylist()
    assert ids == sorted(ids)


def test_merge_keeps_first_seen_origin_and_refreshes_the_same_trace() -> None:
    old = build([trace("tr-1", "q one", scores={"relevance": 0.2})], [("low", 20)], run="run-1").to_pylist()[0]
    new = build([trace("tr-1", "q one", scores={"relevance": 0.3})], [("low", 20)], run="run-2").to_pylist()[0]
    merged = merge_record(old, new)
    assert json.loads(merged["scores"]) == {"relevance": 0.3}  # a re-scored trace refreshes its record
    assert merged["airflow_run_id"] == "run-1"  # first curated by run-1
    assert merge_record(merged, new) == merged


def test_merge_switches_primary_only_for_a_higher_priority_rule() -> None:
    old = build([trace("tr-1", "Q one")], [("guard", 90)]).to_pylist()[0]
    lower = build([trace("tr-2", "q one", feedback=True)], [("other", 95)], run="run-2").to_pylist()[0]
    kept = merge_record(old, lower)
    assert kept["source_trace_id"] == "tr-1" and kept["rule"] == "guard"
    assert kept["source_trace_ids"] == ["tr-1", "tr-2"] and kept["rules"] == ["guard", "other"]
    higher = build([trace("tr-3", "q one", feedback=False)], [("negative_feedback", 10)], run="run-3").to_pylist()[0]
    switched = merge_record(kept, higher)
    assert switched["source_trace_id"] == "tr-3" and switched["rule"] == "negative_feedback"
    assert switched["airflow_run_id"] == "run-3"
    assert switched["inputs"] == old["inputs"]  # MLflow keys records by their exact inputs
    assert switched["source_trace_ids"] == ["tr-1", "tr-2", "tr-3"]


def test_new_expectations_override_per_name() -> None:
    old = build([trace("tr-1", "q", expectations={"expected_answer": "a", "k": 1})], [("r", 10)]).to_pylist()[0]
    new = build([trace("tr-2", "q", expectations={"expected_answer": "b"})], [("r", 10)]).to_pylist()[0]
    assert json.loads(merge_record(old, new)["expectations"]) == {"expected_answer": "b", "k": 1}


def _reviewed(trace_id: str, query: str, *, minute: int, fix: str) -> dict:
    """A trace a reviewer answered: the verdict (HUMAN feedback) and the corrected answer (HUMAN expectation)."""
    row = trace(trace_id, query, minute=minute, expectations={"expected_answer": fix}, scores={"relevance": 0.9})
    verdict = assessment("answer_correct", "incorrect", source="HUMAN", at=minute)
    return {**row, "assessments": [*row["assessments"], verdict]}


def test_a_reviewed_trace_carries_the_reviewers_assessment_ids() -> None:
    record = build([_reviewed("tr-1", "q", minute=4, fix="the fix")], [("human_review", 5)]).to_pylist()[0]
    assert json.loads(record["expectations"]) == {"expected_answer": "the fix"}
    assert json.loads(record["expectation_ids"]) == {"expected_answer": "a-expected_answer-4"}
    assert json.loads(record["label_ids"]) == {"answer_correct": "a-answer_correct-4"}
    plain = build([trace("tr-2", "other", scores={"relevance": 0.9})], [("r", 5)]).to_pylist()[0]
    assert plain["expectation_ids"] is None and plain["label_ids"] is None  # automated scores are not labels


def test_a_rerun_gives_the_same_record_bytes(tmp_path) -> None:
    from genai_flywheel.workspace import atomic_write_parquet

    rows = [_reviewed("tr-1", "q", minute=4, fix="the fix"), trace("tr-2", "other", feedback=False)]
    first = atomic_write_parquet(build(rows, [("human_review", 5), ("negative_feedback", 10)]), tmp_path / "a.parquet")
    again = atomic_write_parquet(build(rows, [("human_review", 5), ("negative_feedback", 10)]), tmp_path / "b.parquet")
    assert first.read_bytes() == again.read_bytes()


def test_a_newer_correction_replaces_the_old_one_and_its_assessment_id() -> None:
    old = build([_reviewed("tr-1", "q", minute=1, fix="a")], [("r", 10)]).to_pylist()[0]
    new = build([_reviewed("tr-2", "q", minute=2, fix="b")], [("r", 10)]).to_pylist()[0]
    merged = merge_record(old, new)
    assert json.loads(merged["expectations"]) == {"expected_answer": "b"}
    assert json.loads(merged["expectation_ids"]) == {"expected_answer": "a-expected_answer-2"}
    assert merge_record(merged, new) == merged  # idempotent
    # duplicates within one run: the newest source trace's expectation and id win
    deduped, _ = deduplicate(
        build([_reviewed("tr-2", "q", minute=2, fix="b"), _reviewed("tr-1", "q", minute=1, fix="a")], [("r", 1)] * 2)
    )
    assert json.loads(deduped.to_pylist()[0]["expectation_ids"]) == {"expected_answer": "a-expected_answer-2"}
