"""Review queues against a real MLflow SQLite store: schemas and queue created once, items added once,
a reviewer's answers read back as HUMAN assessments."""

from __future__ import annotations

import json
import warnings

import pytest

from genai_flywheel.config import parse_config
from genai_flywheel.exceptions import ConfigError
from genai_flywheel.review.backend import COMPLETE, PENDING, MlflowReviewBackend
from genai_flywheel.review.schemas import ensure_schemas


def _review_config(uri: str):
    return parse_config(
        {
            "applications": [
                {
                    "name": "demo",
                    "mlflow": {"tracking_uri": uri, "experiment": "demo"},
                    "review": {
                        "label_schemas": [
                            {"name": "is_correct", "input": "categorical", "options": ["correct", "incorrect"]},
                            {"name": "corrected_answer", "type": "expectation", "input": "text"},
                            {"name": "quality", "input": "numeric", "min_value": 1, "max_value": 5},
                        ],
                        "queues": [{"name": "wrong-answers", "schemas": ["is_correct", "corrected_answer"]}],
                    },
                }
            ]
        }
    ).app("demo")


@pytest.fixture
def store(sqlite_tracking_uri: str) -> tuple[MlflowReviewBackend, list[str]]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    warnings.filterwarnings("ignore", module="mlflow")
    experiment_id = MlflowClient(tracking_uri=sqlite_tracking_uri).create_experiment("demo")
    with _use_tracking_uri(sqlite_tracking_uri):
        mlflow.set_experiment(experiment_id=experiment_id)
        ids = []
        for i in range(3):
            with mlflow.start_span("root") as span:
                span.set_inputs({"query": f"q{i}"})
                ids.append(span.trace_id)
        mlflow.flush_trace_async_logging()
    return MlflowReviewBackend(sqlite_tracking_uri, experiment_id), ids


def test_queue_items_and_labels_round_trip(store) -> None:
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.genai import review_queues as rq
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    backend, trace_ids = store
    app = _review_config(backend.tracking_uri)
    schema_ids = ensure_schemas(backend, app.review)
    assert ensure_schemas(backend, app.review) == schema_ids  # the second run finds them
    queue_id = backend.ensure_queue("demo.wrong-answers", list(schema_ids.values())[:2], ["alice"], "k")
    assert backend.ensure_queue("demo.wrong-answers", [], [], "k") == queue_id
    backend.add_items(queue_id, trace_ids[:2])
    backend.add_items(queue_id, trace_ids[:2])  # idempotent
    assert sorted(i.trace_id for i in backend.queue_items(queue_id)) == sorted(trace_ids[:2])
    assert {i.status for i in backend.queue_items(queue_id)} == {PENDING}

    human = AssessmentSource(source_type="HUMAN", source_id="alice")
    with _use_tracking_uri(backend.tracking_uri):
        mlflow.log_feedback(trace_id=trace_ids[0], name="is_correct", value="incorrect", source=human)
        mlflow.log_expectation(trace_id=trace_ids[0], name="corrected_answer", value="the fix", source=human)
        rq.set_review_queue_item_status(queue_id, item_id=trace_ids[0], status="complete", completed_by="alice")
    done = backend.queue_items(queue_id, status=COMPLETE)
    assert [(i.trace_id, i.completed_by) for i in done] == [(trace_ids[0], "alice")]
    labels = {a.name: a for a in backend.assessments(trace_ids[0])}
    assert labels["is_correct"].value == "incorrect" and labels["is_correct"].source_type == "HUMAN"
    assert labels["corrected_answer"].kind == "expectation" and labels["corrected_answer"].value == "the fix"
    assert labels["is_correct"].source_id == "alice" and labels["is_correct"].assessment_id.startswith("a-")


def test_a_conflicting_existing_schema_names_the_config_key(store) -> None:
    backend, _ = store
    app = _review_config(backend.tracking_uri)
    ensure_schemas(backend, app.review)
    changed = app.review.label_schemas[0].model_copy(update={"options": ["yes", "no"]})
    with pytest.raises(ConfigError, match=r"review\.label_schemas\.is_correct: .*does not match"):
        backend.ensure_label_schema(changed, "review.label_schemas.is_correct")


def test_a_queue_mlflow_rejects_names_the_config_key(store) -> None:
    backend, _ = store
    with pytest.raises(ConfigError, match=r"review\.queues\.default: MLflow rejected review queue 'default'"):
        backend.ensure_queue("default", [], [], "review.queues.default")  # a reserved name


def test_collect_reads_reviews_back_and_stores_calibration(store, tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.genai import review_queues as rq
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    from genai_flywheel.config import parse_config
    from genai_flywheel.review.stages import collect_stage

    backend, trace_ids = store
    base = _review_config(backend.tracking_uri).model_dump(mode="json")
    base["review"].update(correct_schema="is_correct", correct_value="correct", correction_schema="corrected_answer")
    base["review"]["min_labels"] = 2
    base["scorers"] = [{"name": "relevance", "threshold": 0.5}]
    app = parse_config({"applications": [base]}).app("demo")
    schema_ids = ensure_schemas(backend, app.review)
    queue_id = backend.ensure_queue(
        "demo.wrong-answers", [schema_ids["is_correct"], schema_ids["corrected_answer"]], [], "k"
    )
    backend.add_items(queue_id, trace_ids)
    human = AssessmentSource(source_type="HUMAN", source_id="alice")
    code = AssessmentSource(source_type="CODE", source_id="flywheel")
    verdicts = ["incorrect", "correct", "incorrect"]
    with _use_tracking_uri(backend.tracking_uri):
        for trace_id, verdict, score in zip(trace_ids, verdicts, [0.9, 0.8, 0.1], strict=True):
            mlflow.log_feedback(trace_id=trace_id, name="relevance", value=score, source=code)
            mlflow.log_feedback(trace_id=trace_id, name="is_correct", value=verdict, source=human)
            if verdict == "incorrect":
                mlflow.log_expectation(trace_id=trace_id, name="corrected_answer", value="right", source=human)
            rq.set_review_queue_item_status(queue_id, item_id=trace_id, status="complete", completed_by="alice")
    # The curation run's plan: the three items are the calibration sample (weight 1 each).
    plan = tmp_path / "curation" / "app=demo" / "run1" / "review_queue.json"
    plan.parent.mkdir(parents=True)
    items = [{"queue": "demo.wrong-answers", "trace_id": t, "source": "calibration", "weight": 1.0} for t in trace_ids]
    plan.write_text(json.dumps({"queues": [], "added": 3, "items": items}))
    now = datetime.now(UTC).replace(microsecond=0)
    out = collect_stage(
        app,
        backend,
        data_root=tmp_path,
        run_dir=tmp_path / "run",
        interval_start=now - timedelta(hours=1),
        interval_end=now + timedelta(minutes=1),
    )
    assert out["labels"] == 3 and out["corrections"] == 2
    assert out["metrics"]["calibration.relevance.agreement"] == pytest.approx(2 / 3)  # the first trace disagrees
    assert out["disagreements"] == 1
