"""Fine-tuning export end to end: simulated production traces in a SQLite MLflow store -> JSONL in MLflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genai_flywheel.config import Application, Export, MlflowTarget
from genai_flywheel.export import stages
from genai_flywheel.export.finetune import validate_chat_jsonl

END = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """One day of simulated production traffic (60 traces, with the Smart Sync incident) in a SQLite store."""
    from mlflow import MlflowClient

    from flywheel_demo.simulate import simulate

    base = tmp_path_factory.mktemp("sim")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    # Artifacts in the temp folder: a SQLite store's default artifact root is ./mlruns in the working dir.
    MlflowClient(uri).create_experiment("acme-prod", artifact_location=(base / "artifacts").as_uri())
    return uri, simulate(uri, "acme-prod", days=1, traces_per_day=60, end=END, progress=False)


def test_export_from_simulated_traces(tmp_path: Path, simulated: tuple[str, Any]) -> None:
    from mlflow import MlflowClient

    from genai_flywheel.workspace import to_ms

    uri, sim = simulated
    assert sim.n_expectations >= 1  # the simulator plants at least one human correction
    app = Application(
        name="acme",
        mlflow=MlflowTarget(tracking_uri=uri, experiment="acme-prod"),
        export=Export(validation_fraction=0.3, system_prompt="You are the Acme Cloud support assistant."),
    )
    run_dir = tmp_path / "export"
    selected = stages.select_examples(run_dir, app, start_ms=to_ms(sim.start), end_ms=to_ms(sim.end))
    assert selected["traces"] == 60
    assert selected["selected_by_source"]["correction"] == sim.n_expectations
    assert selected["selected_by_source"]["high_quality"] >= 5  # positive feedback

    built = stages.build_jsonl(run_dir, app)
    assert built["train"] + built["validation"] >= 5
    for name in ("train.jsonl", "validation.jsonl"):
        check = validate_chat_jsonl(run_dir / name)
        assert check.valid, check.errors
    lines = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    lines += [json.loads(line) for line in (run_dir / "validation.jsonl").read_text().splitlines()]
    assert all(line["messages"][0]["role"] == "system" for line in lines)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["counts"]["traces"] == 60 and manifest["app"] == "acme"
    assert (
        manifest["counts"]["by_source_split"]["correction"]["train"]
        + manifest["counts"]["by_source_split"]["correction"]["validation"]
        <= sim.n_expectations
    )
    assert sum(manifest["counts"]["skipped_by_reason"].values()) + selected["selected"] == 60
    # The correction replaced the wrong production answer.
    texts = {line["messages"][-1]["content"] for line in lines}
    assert not any(t.startswith("Smart Sync is not supported") for t in texts)

    logged = stages.log_export(run_dir, app)
    client = MlflowClient(uri)
    run = client.get_run(logged["run_id"])
    assert run.info.run_name == "finetune-export-acme-2026-03-02" and run.info.status == "FINISHED"
    assert run.data.tags["flywheel.export.digest"] == manifest["digest"]
    assert run.data.metrics["train_examples"] == built["train"]
    artifacts = {a.path for a in client.list_artifacts(logged["run_id"], "finetune")}
    assert artifacts == {f"finetune/{name}" for name in ("train.jsonl", "validation.jsonl", "rejected.jsonl",
                                                         "manifest.json")}  # fmt: skip
    # A retried task finds its run instead of logging a second one.
    assert stages.log_export(run_dir, app)["run_id"] == logged["run_id"]


def test_adhoc_evaluation_records_from_production_traces(tmp_path: Path, simulated: tuple[str, Any]) -> None:
    """The evaluation's quick check: records straight from production traces matching a filter."""
    from genai_flywheel.evaluation.stages import load_stage
    from genai_flywheel.workspace import to_ms

    uri, sim = simulated
    app = Application(name="acme", mlflow=MlflowTarget(tracking_uri=uri, experiment="acme-prod"))
    params = {
        "candidate": "flywheel_demo.app:predict_fixed",
        "filter": "inputs.query CONTAINS 'Smart Sync' AND trace.status = 'OK'",
        "sample_size": 5,
        "lookback_days": 1,
        "window_end_ms": to_ms(sim.end),
        "scorers": ["relevance"],
    }
    out = load_stage(tmp_path, app, params, data_root=tmp_path / "unused")
    assert out["dataset"] == "adhoc" and out["version"] is None and 1 <= out["records"] <= 5
    records = json.loads((tmp_path / "dataset.json").read_text())
    # trace.status = 'OK' is pushed down to MLflow: the failed traces are never read.
    assert records["source"] == "adhoc" and records["traces_extracted"] == 60 - sim.ground_truth["n_errors"]
    again = load_stage(tmp_path / "again", app, params, data_root=tmp_path / "unused")
    assert again["digest"] == out["digest"]  # same window, same filter, same sample
