"""Humans in the loop end to end on simulated production traffic (a copy of the session's MLflow store):
the Smart Sync wrong answers reach the review queue in the first curation run, the simulated reviewer's
corrections appear in the next dataset version and in the fine-tuning export, and the heuristic relevance
scorer's agreement with the reviewers is measured with its confidence interval."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.integration.conftest import SIM_END, write_config

APP = "support-assistant"


@pytest.fixture(scope="module")
def flow(tmp_path_factory, production):
    from genai_flywheel.config import load_config

    base = tmp_path_factory.mktemp("review_flow")
    shutil.copy(production["base"] / "mlflow.db", base / "mlflow.db")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    cfg = load_config(write_config(base / "flywheel.yaml", uri, base / "data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLYWHEEL_DATA_ROOT", str(base / "data"))  # the session's default data root is shared
        yield {
            "cfg": cfg,
            "app": cfg.app(APP),
            "data_root": cfg.data_path(),
            "truth": production["result"].ground_truth,
        }


def _score_relevance(tracking_uri: str, traces) -> None:
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    from genai_flywheel.scoring.heuristics import relevance_overlap

    code = AssessmentSource(source_type="CODE", source_id="flywheel")
    with _use_tracking_uri(tracking_uri):
        for row in traces.to_pylist():
            score = relevance_overlap(row["query"] or "", row["answer"] or "").score
            if score is not None:
                mlflow.log_feedback(trace_id=row["trace_id"], name="relevance", value=round(score, 6), source=code)


def _curate(run_id: str, cfg) -> dict:
    from genai_flywheel import loop

    loop.curate_extract(APP, run_id, interval_end=SIM_END, lookback_days=7, config=cfg)
    loop.curate_select(APP, run_id, config=cfg)
    loop.curate_build(APP, run_id, config=cfg)
    loop.curate_validate(APP, run_id, config=cfg)
    loop.curate_merge(APP, run_id, config=cfg)
    return loop.review_enqueue(APP, run_id, config=cfg)


def test_reviews_flow_back_into_the_dataset_the_export_and_the_calibration(flow) -> None:
    from flywheel_demo.reviewer import review_queue
    from genai_flywheel import loop
    from genai_flywheel.curation.datasets import load_dataset_version
    from genai_flywheel.review.stages import mlflow_backend
    from genai_flywheel.workspace import read_parquet

    cfg, app = flow["cfg"], flow["app"]
    wrong = set(flow["truth"]["incidents"]["smart_sync_wrong_answers"]["trace_ids"])

    # 1. The first curation run sends the Smart Sync wrong answers to the queue; a re-run adds nothing.
    first = _curate("run1", cfg)
    queue = first["queues"][0]
    assert queue["queue"] == f"{APP}.wrong-answers" and 0 < first["added"] <= 40
    backend = mlflow_backend(app)
    queued = {i.trace_id for i in backend.queue_items(queue["queue_id"])}
    assert len(queued & wrong) >= 5, "the Smart Sync wrong answers did not reach the review queue"
    assert loop.review_enqueue(APP, "run1", config=cfg)["added"] == 0

    # 2. The simulated reviewer answers part of the queue through MLflow's API.
    traces = read_parquet(
        loop.run_folder(flow["data_root"], "curation", APP, "run1") / "traces.parquet",
        columns=["trace_id", "query", "answer"],
    )
    queries = dict(zip(traces.column("trace_id").to_pylist(), traces.column("query").to_pylist(), strict=True))
    outcome = review_queue(backend, app.review, queue["queue_id"], queries, wrong, share=0.7)
    assert outcome.corrections >= 3

    # The monitor's write-back is not run here: score the queued traces with the heuristic relevance scorer
    # and log its values as the monitor does (CODE feedback named after the scorer).
    _score_relevance(
        app.mlflow.tracking_uri, traces.filter(pc.is_in(traces.column("trace_id"), pa.array(sorted(queued))))
    )

    # 3. Collection: labels and the relevance scorer's calibration against the reviewers.
    now = datetime.now(UTC).replace(microsecond=0)
    collected = loop.review_collect(
        APP, "review1", interval_start=now - timedelta(hours=1), interval_end=now + timedelta(minutes=1), config=cfg
    )
    assert collected["labels"] == outcome.answered and collected["corrections"] == outcome.corrections
    # Most reviewed items are the ones the curation rules flagged: their agreement is reported apart from the
    # weighted calibration sample's (a handful of items here, fewer than min_labels).
    agreement = collected["metrics"].get("calibration.relevance.agreement_flagged")
    assert agreement is not None, collected["metrics"]
    assert 0 < collected["sample_labels"] < collected["labels"]
    print(f"relevance agreement with the reviewers: {collected['metrics']}")  # noqa: T201 - the measured figure

    # 4. The next curation run makes a new dataset version whose records carry the corrections.
    _, before = load_dataset_version(flow["data_root"], loop.default_dataset(app), None)
    _curate("run2", cfg)
    records, after = load_dataset_version(flow["data_root"], loop.default_dataset(app), None)
    assert after["version"] == before["version"] + 1
    corrected = [r for r in records.to_pylist() if r["expectations"] and "expected_answer" in r["expectations"]]
    assert {r["source_trace_id"] for r in corrected} & wrong

    # 5. The export turns the reviewed corrections into corrected examples.
    loop.export_select(APP, "export1", interval_start=SIM_END - timedelta(days=7), interval_end=SIM_END, config=cfg)
    examples = read_parquet(loop.run_folder(flow["data_root"], "exports", APP, "export1") / "examples.parquet")
    reviewed = {i.trace_id for i in backend.queue_items(queue["queue_id"], status="complete") if i.trace_id in wrong}
    corrections = {e["trace_id"] for e in examples.to_pylist() if e["source"] == "correction"}
    assert reviewed <= corrections
