"""Curation end to end on simulated production traffic in a real MLflow SQLite store.

Simulate two days of the demo app (the Smart Sync incident covers the last day), score relevance the way the
monitor does (score, write back onto the traces), then run every curation stage. Measures each rule against
the simulator's ground truth and checks the MLflow dataset and its snapshot versions are idempotent.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genai_flywheel.config import Application, CurationRule
from genai_flywheel.curation import stages
from genai_flywheel.curation.datasets import load_dataset_version
from genai_flywheel.curation.rules import default_rules, select

END = datetime(2026, 3, 4, tzinfo=UTC)
END_MS = int(END.timestamp() * 1000)
EXPERIMENT = "demo-production"


def _app(uri: str) -> Application:
    return Application.model_validate(
        {
            "name": "demo",
            "mlflow": {"tracking_uri": uri, "experiment": EXPERIMENT},
            "scorers": [{"name": "relevance"}],
            "curation": {"lookback_days": 2},
        }
    )


def _score_like_the_monitor(app: Application, traces_path: Path) -> None:
    """Score every trace with the configured code scorers and write the scores back as assessments."""
    from genai_flywheel.scoring.registry import load_scorers
    from genai_flywheel.scoring.runner import score_table
    from genai_flywheel.traces.writeback import write_back

    scores = score_table(pq.read_table(traces_path), load_scorers(app))
    write_back(app.mlflow.tracking_uri, scores, existing_ids=set(), run_context={"flywheel.run": "test"})


def _rule(name: str):
    return next(r for r in default_rules() if r.name == name)


def _recall_precision(picked: set[str], truth: set[str]) -> tuple[float, float]:
    hits = len(picked & truth)
    return hits / len(truth), (hits / len(picked) if picked else 0.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """Two simulated days (150 traces/day) in a SQLite store, relevance-scored like the monitor does."""
    import mlflow

    from flywheel_demo.simulate import simulate

    root = tmp_path_factory.mktemp("curation-world")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.MlflowClient(uri).create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    result = simulate(uri, EXPERIMENT, days=2, traces_per_day=150, end=END, seed=7, progress=False)
    app = _app(uri)
    stages.extract_stage(root / "score", app, interval_end_ms=END_MS)
    _score_like_the_monitor(app, root / "score" / stages.TRACES_FILE)
    return uri, result.ground_truth


def test_curation_end_to_end_against_ground_truth(world: tuple[str, dict], tmp_path: Path) -> None:
    sqlite_tracking_uri, simulated = world
    app = _app(sqlite_tracking_uri)
    data_root = tmp_path / "data"
    incident = set(simulated["incidents"]["smart_sync_wrong_answers"]["trace_ids"])
    assert len(incident) >= 8

    run1 = tmp_path / "run1"
    extracted = stages.extract_stage(run1, app, interval_end_ms=END_MS)
    assert extracted["traces"] == simulated["n_traces"]
    traces = pq.read_table(run1 / stages.TRACES_FILE)
    assert any(a["name"] == "relevance" for cell in traces["assessments"].to_pylist() for a in cell)
    errors = {
        t for t, s in zip(traces["trace_id"].to_pylist(), traces["status"].to_pylist(), strict=True) if s == "ERROR"
    }

    # Each rule alone against the ground truth.
    measured = {}
    for name, truth in (
        ("negative_feedback", incident),
        ("bad_query_clusters", incident),
        ("low_judge_scores", incident),
        ("errors", errors),
    ):
        chosen = select([_rule(name)], traces)
        picked = {traces["trace_id"][i].as_py() for i in chosen.rows}
        measured[name] = _recall_precision(picked, truth)
        print(f"{name}: selected={len(picked)} recall={measured[name][0]:.2f} precision={measured[name][1]:.2f}")
        if name == "bad_query_clusters":
            worst = chosen.cluster_stats[0]
            print(f"  worst cluster {worst.label!r}: volume={worst.volume} negative_rate={worst.negative_rate}")
            assert worst.bad and "smart sync" in worst.label

    negatives_on_incident = simulated["incidents"]["smart_sync_wrong_answers"]["n_negative_feedback"]
    # Negative feedback finds every incident trace users complained about (and other complaints).
    assert measured["negative_feedback"][0] == pytest.approx(negatives_on_incident / len(incident))
    # The bad-cluster rule also finds the incident traces nobody gave feedback on.
    assert measured["bad_query_clusters"][0] >= 0.7
    assert measured["errors"] == (1.0, 1.0)

    # The full pipeline with the default rules.
    selected = stages.select_stage(run1, app)
    built = stages.build_stage(run1, app, airflow_run_id="scheduled__2026-03-04")
    checked = stages.validate_stage(run1)
    merged = stages.merge_stage(run1, app, data_root=data_root, airflow_run_id="scheduled__2026-03-04")
    published = stages.publish_stage(run1)
    print("select:", selected["per_rule"], "records:", built, "quarantined:", checked["quarantined"])
    print("publish:", json.dumps(published))
    assert published["version"] == 1 and published["dataset"] == "flywheel_demo_default"
    assert published["records"] == checked["valid"] == built["records"]
    assert set(published) == {"dataset", "dataset_id", "version", "digest", "records", "added"} | {
        "per_rule",
        "quarantined",
        "snapshot",
    }

    records, manifest = load_dataset_version(data_root, published["dataset"])
    covered = {t for ids in records["source_trace_ids"].to_pylist() for t in ids}
    union_recall = len(covered & incident) / len(incident)
    print(f"default rules: incident recall={union_recall:.2f} ({len(covered & incident)}/{len(incident)})")
    assert union_recall >= 0.85
    assert manifest["digest"] == published["digest"] and manifest["dataset_id"] == merged["dataset_id"]
    with_expectations = [e for e in records["expectations"].to_pylist() if e]
    assert len(with_expectations) >= 1  # support agents' corrections came along as expectations

    import mlflow

    mlflow.set_tracking_uri(sqlite_tracking_uri)
    dataset = mlflow.genai.datasets.get_dataset(dataset_id=published["dataset_id"])
    assert len(dataset.to_df()) == published["records"]
    assert dataset.tags["flywheel.version"] == "1"
    client = mlflow.MlflowClient(sqlite_tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id],
        filter_string="tags.`flywheel.dataset` = 'flywheel_demo_default'",
    )
    assert [r.info.run_name for r in runs] == ["curation-flywheel_demo_default-v1"]
    assert runs[0].data.params["dataset_digest"] == published["digest"]

    # Next day's run over the same window (a retry, or overlapping lookback): nothing changes anywhere.
    run2 = tmp_path / "run2"
    stages.extract_stage(run2, app, interval_end_ms=END_MS)
    stages.select_stage(run2, app)
    stages.build_stage(run2, app, airflow_run_id="scheduled__2026-03-05")
    stages.validate_stage(run2)
    again = stages.merge_stage(run2, app, data_root=data_root, airflow_run_id="scheduled__2026-03-05")
    assert (again["version"], again["digest"], again["records"], again["added"]) == (
        1,
        published["digest"],
        published["records"],
        0,
    )
    assert again["upserted"] == 0
    assert len(mlflow.genai.datasets.get_dataset(dataset_id=published["dataset_id"]).to_df()) == published["records"]
    assert len(os.listdir(data_root / "datasets" / published["dataset"])) == 1


def test_a_new_rule_adds_records_and_bumps_the_version(world: tuple[str, dict], tmp_path: Path) -> None:
    sqlite_tracking_uri, _ = world
    base = _app(sqlite_tracking_uri)
    data_root = tmp_path / "data"
    neg = _rule("negative_feedback")
    first = base.model_copy(update={"curation": base.curation.model_copy(update={"rules": [neg]})})
    run1 = tmp_path / "run1"
    stages.extract_stage(run1, first, interval_end_ms=END_MS)
    for stage in (stages.select_stage, stages.build_stage):
        stage(run1, first)
    # Break one record's inputs: the eval-dataset contract (Great Expectations) must quarantine it.
    records = pq.read_table(run1 / stages.RECORDS_FILE)
    broken = records["inputs"].to_pylist()
    broken[0] = "{not json"
    pq.write_table(
        records.set_column(records.schema.get_field_index("inputs"), "inputs", [broken]),
        run1 / stages.RECORDS_FILE,
    )
    checked = stages.validate_stage(run1)
    assert checked["quarantined"] == 1 and checked["valid"] == records.num_rows - 1
    print("quarantine reasons:", checked["reasons"])
    v1 = stages.merge_stage(run1, first, data_root=data_root, ruleset="feedback")
    assert v1["quarantined"] == 1 and v1["records"] == records.num_rows - 1

    errors = CurationRule(name="errors", filter="trace.status = 'ERROR'", priority=30, cap=100)
    second = base.model_copy(update={"curation": base.curation.model_copy(update={"rules": [neg, errors]})})
    run2 = tmp_path / "run2"
    stages.extract_stage(run2, second, interval_end_ms=END_MS)
    for stage in (stages.select_stage, stages.build_stage):
        stage(run2, second)
    stages.validate_stage(run2)
    v2 = stages.merge_stage(run2, second, data_root=data_root, ruleset="feedback")
    print("v1:", v1["records"], v1["per_rule"], "v2:", v2["records"], v2["per_rule"])
    assert (v1["version"], v2["version"]) == (1, 2)
    # The record quarantined in run 1 is valid again in run 2, so it is added now, with the error traces.
    assert v2["added"] == v2["per_rule"]["errors"] + 1 and v2["records"] == v1["records"] + v2["added"]
    import mlflow

    mlflow.set_tracking_uri(sqlite_tracking_uri)
    assert len(mlflow.genai.datasets.get_dataset(dataset_id=v2["dataset_id"]).to_df()) == v2["records"]
    old, manifest = load_dataset_version(data_root, v1["dataset"], 1)
    assert old.num_rows == v1["records"] and manifest["version"] == 1
