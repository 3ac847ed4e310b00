from __future__ import annotations

import pyarrow as pa
import pytest
from review_config import REVIEW, application

from genai_flywheel.exceptions import ConfigError
from genai_flywheel.review.backend import COMPLETE, InMemoryReviewBackend, TraceAssessment
from genai_flywheel.review.queue import CALIBRATION, calibration_candidates, enqueue, reviewed_traces
from genai_flywheel.review.schemas import ensure_schemas
from genai_flywheel.review.stages import enqueue_stage
from tests.unit.curation.curation_tables import assessment, table, trace


def _traces(n: int = 20) -> pa.Table:
    rows = [trace(f"tr-{i:02d}", f"question {i}", minute=i, feedback=False if i < 8 else None) for i in range(n)]
    return table(rows)


def _selected(ids: list[str], rule: str = "negative_feedback") -> pa.Table:
    return pa.table({"trace_id": ids, "rule": [rule] * len(ids)})


def _enqueue(backend: InMemoryReviewBackend, app, traces: pa.Table, selected: pa.Table):
    spec = app.review.queues[0]
    ids = ensure_schemas(backend, app.review)
    return enqueue(
        backend, app.name, spec, [ids[s] for s in spec.schemas], selected=selected, traces=traces, sampling=app.sampling
    )


def test_rule_picks_first_then_calibration_up_to_the_cap() -> None:
    app = application()
    backend = InMemoryReviewBackend()
    result = _enqueue(backend, app, _traces(), _selected(["tr-00", "tr-01", "tr-02"]))
    sources = [c.source for c in result.added]
    assert sources == ["negative_feedback"] * 3 + [CALIBRATION] * 2  # calibration_cap 2, cap 5
    assert result.queue == "demo.wrong-answers"
    queue_id, schema_ids, _ = backend.queues["demo.wrong-answers"]
    assert len(schema_ids) == 3
    assert {i.trace_id for i in backend.queue_items(queue_id)} == {c.trace_id for c in result.added}


def test_cap_limits_new_items_per_run() -> None:
    app = application()
    backend = InMemoryReviewBackend()
    result = _enqueue(backend, app, _traces(), _selected([f"tr-{i:02d}" for i in range(8)]))
    # Rules that would fill the cap leave the calibration sample its place: the judges' only unbiased labels.
    assert [c.source for c in result.added] == ["negative_feedback"] * 3 + [CALIBRATION] * 2
    assert result.over_cap == 5  # five rule picks wait for the next run


def test_rerun_adds_nothing_twice() -> None:
    app = application()
    backend = InMemoryReviewBackend()
    traces, selected = _traces(), _selected(["tr-00", "tr-01"])
    first = _enqueue(backend, app, traces, selected)
    queue_id = first.queue_id
    before = len(backend.queue_items(queue_id))
    second = _enqueue(backend, app, traces, selected)
    assert second.already_queued == 2
    assert all(c.source == CALIBRATION for c in second.added)  # only the next calibration traces
    assert not {c.trace_id for c in second.added} & {c.trace_id for c in first.added}
    assert len(backend.queue_items(queue_id)) == before + len(second.added)
    assert len(backend.queues) == 1 and len(backend.schemas) == 3


def test_a_trace_already_reviewed_is_not_queued_again() -> None:
    app = application()
    rows = [trace("tr-00", "q", feedback=False), trace("tr-01", "q2", feedback=False)]
    rows[0]["assessments"].append(assessment("is_correct", "incorrect", source="HUMAN"))
    traces = table(rows)
    assert reviewed_traces(traces, ["is_correct"]) == {"tr-00"}
    result = _enqueue(InMemoryReviewBackend(), app, traces, _selected(["tr-00", "tr-01"]))
    assert [c.trace_id for c in result.added] == ["tr-01"]
    assert result.already_reviewed == 1


def test_calibration_sample_is_deterministic_stratified_and_weighted() -> None:
    app = application(
        sampling={"strata": [{"name": "negative", "filter": "feedback.user_feedback = 'negative'", "rate": 1.0}]}
    )
    spec = app.review.queues[0].model_copy(update={"calibration_rate": 1.0, "calibration_cap": 4})
    traces = _traces(40)  # 8 with negative feedback, 32 in the base stratum
    first = calibration_candidates(traces, spec, app.sampling, set(), app="demo")
    assert first == calibration_candidates(traces, spec, app.sampling, set(), app="demo")
    by_stratum = {s: [c for c in first if c.stratum == s] for s in ("negative", "base")}
    assert len(by_stratum["negative"]) == 2 and len(by_stratum["base"]) == 2  # round robin over the strata
    assert {c.weight for c in by_stratum["negative"]} == {4.0}  # 8 eligible / 2 picked
    assert {c.weight for c in by_stratum["base"]} == {16.0}  # 32 eligible / 2 picked
    half = calibration_candidates(
        traces, spec.model_copy(update={"calibration_rate": 0.5}), app.sampling, set(), app="demo"
    )
    assert 0 < len(half) <= 4 and all(c.weight >= 1.0 for c in half)
    excluded = calibration_candidates(traces, spec, app.sampling, {first[0].trace_id}, app="demo")
    assert first[0].trace_id not in {c.trace_id for c in excluded}


def test_a_schema_changed_under_the_same_name_is_a_config_error_naming_the_key() -> None:
    backend = InMemoryReviewBackend()
    ensure_schemas(backend, application().review)
    review = {
        **REVIEW,
        "label_schemas": [
            {"name": "is_correct", "input": "categorical", "options": ["yes", "no"]},
            *REVIEW["label_schemas"][1:],
        ],
    }
    with pytest.raises(ConfigError, match=r"review\.label_schemas\.is_correct: .*options \['correct', 'incorrect'\]"):
        ensure_schemas(backend, application({**review, "correct_value": "yes"}).review)


def test_a_queue_mlflow_rejects_names_the_config_key() -> None:
    backend = InMemoryReviewBackend(reject={"demo.wrong-answers"})
    with pytest.raises(ConfigError, match=r"review\.queues\.wrong-answers: MLflow rejected review queue"):
        _enqueue(backend, application(), _traces(), _selected([]))


def test_enqueue_stage_reads_the_curation_run_and_records_the_items(tmp_path) -> None:
    import pyarrow.parquet as pq

    from genai_flywheel.workspace import read_stage_json

    app = application()
    pq.write_table(_traces(), tmp_path / "traces.parquet")
    pq.write_table(_selected(["tr-03"]), tmp_path / "selected.parquet")
    backend = InMemoryReviewBackend()
    out = enqueue_stage(tmp_path, app, backend)
    assert out["added"] == 3
    written = read_stage_json(tmp_path / "review_queue.json", "enqueue")
    assert [i["trace_id"] for i in written["items"]][0] == "tr-03"
    assert {i["source"] for i in written["items"]} == {"negative_feedback", CALIBRATION}
    # A reviewed item stays complete; re-running the same curation run adds nothing.
    queue_id = out["queues"][0]["queue_id"]
    backend.answer(queue_id, "tr-03", "alice", {"is_correct": ("feedback", "incorrect")})
    again = enqueue_stage(tmp_path, app, backend)
    assert again["added"] == 0 and again["replayed"] is True
    assert backend.items[queue_id]["tr-03"].status == COMPLETE
    assert isinstance(backend.assessments("tr-03")[0], TraceAssessment)


def test_a_retry_after_a_failed_add_attaches_exactly_the_planned_items(tmp_path) -> None:
    import pyarrow.parquet as pq

    app = application()
    pq.write_table(_traces(), tmp_path / "traces.parquet")
    pq.write_table(_selected(["tr-03", "tr-04"]), tmp_path / "selected.parquet")

    class FailingAdd(InMemoryReviewBackend):
        def add_items(self, queue_id, trace_ids):  # noqa: ANN001, ANN202 - the interface's signature
            raise ConnectionError("tracking server went away")

    failing = FailingAdd()
    with pytest.raises(ConnectionError):
        enqueue_stage(tmp_path, app, failing)
    backend = InMemoryReviewBackend(schemas=failing.schemas, queues=failing.queues, items=failing.items)
    out = enqueue_stage(tmp_path, app, backend)
    queue_id = out["queues"][0]["queue_id"]
    assert out["replayed"] is True and out["added"] == 4  # two rule picks and two calibration traces
    assert {"tr-03", "tr-04"} <= {i.trace_id for i in backend.queue_items(queue_id)}


def test_enqueue_stage_without_queues_does_nothing(tmp_path) -> None:
    assert enqueue_stage(tmp_path, application({}), InMemoryReviewBackend()) == {"queues": [], "added": 0}
