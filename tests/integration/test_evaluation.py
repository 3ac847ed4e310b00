"""Development evaluation end to end on a real MLflow SQLite store: the demo's fixed version vs production.

Records are built directly from the demo app (production version, i.e. with the Smart Sync bug) and stored
as a curated dataset version; the candidate runs through ``mlflow.genai.evaluate`` with the built-in
``relevance`` scorer; production outputs are scored directly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from genai_flywheel.config import Application, MlflowTarget, ScorerSpec
from genai_flywheel.evaluation import stages
from genai_flywheel.exceptions import GateFailedError

INCIDENT_RULE = "smart-sync-incident"
GUARD_RULE = "regression-guard"
DATASET = "flywheel_acme_default"
GATE = {"scorer": "relevance", "min_improvement": 0.1, "max_p_value": 0.05}


def _record(query: str, answer: str, rule: str) -> dict[str, Any]:
    from genai_flywheel.curation.text import canonical_json, record_id_for

    inputs = {"query": query}
    rid = record_id_for(inputs)
    return {
        "record_id": rid,
        "inputs": canonical_json(inputs),
        "outputs": canonical_json({"answer": answer}),
        "expectations": None,
        "source_trace_id": f"tr-{rid[:16]}",
        "source_trace_ids": [f"tr-{rid[:16]}"],
        "rule": rule,
        "rules": [rule],
        "rule_priority": 10,
        "query": query,
        "status": "OK",
        "source_timestamp_ms": 1_767_225_600_000,
        "labels": "{}",
        "scores": "{}",
        "rationales": "{}",
        "cluster_id": None,
        "app": "acme",
        "airflow_run_id": None,
        "interval_start_ms": None,
        "interval_end_ms": None,
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tracking store, an app config and a curated dataset: 14 Smart Sync records + 6 others."""
    import pyarrow as pa

    from flywheel_demo import queries
    from flywheel_demo.app import make_app
    from genai_flywheel.curation.datasets import commit_snapshot
    from genai_flywheel.curation.records import record_schema

    root = tmp_path_factory.mktemp("eval")
    production = make_app("production")  # answers from the retired Smart Sync page, like the incident
    rng = random.Random(3)
    rows = [
        _record(q, production.run(q), INCIDENT_RULE)
        for q in (queries.render(t, rng) for t in queries.TEMPLATES["smart-sync"][:14])
    ]
    rows += [
        _record(q, production.run(q), GUARD_RULE)
        for q in (queries.render(t, rng) for t in queries.TEMPLATES["billing"][:3] + queries.TEMPLATES["sso"][:3])
    ]
    rows = list({r["record_id"]: r for r in rows}.values())
    data_root = root / "data"
    commit_snapshot(data_root, DATASET, pa.Table.from_pylist(rows, schema=record_schema()), {})
    app = Application(
        name="acme",
        mlflow=MlflowTarget(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="acme-prod"),
        scorers=[ScorerSpec(name="relevance")],
    )
    from mlflow import MlflowClient

    # Artifacts in the temp folder: a SQLite store's default artifact root is ./mlruns in the working dir.
    client = MlflowClient(app.mlflow.tracking_uri)
    for name in ("acme-prod-dev-eval", "acme-errors"):
        client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())
    return {"root": root, "data_root": data_root, "app": app, "records": len(rows)}


def _evaluate(env: dict[str, Any], candidate: str, name: str, gates: list[dict]) -> Path:
    run_dir = env["root"] / name
    params = {"candidate": candidate, "dataset": DATASET, "gates": gates, "max_workers": 2}
    stages.load_stage(run_dir, env["app"], params, data_root=env["data_root"])
    stages.run_candidate_stage(run_dir, env["app"])
    stages.compare_stage(run_dir)
    stages.log_stage(run_dir, env["app"])
    return run_dir


def test_fixed_version_wins_on_the_incident_and_passes_the_gate(env: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    gates = [{**GATE, "rule": INCIDENT_RULE}, GATE]
    run_dir = _evaluate(env, "flywheel_demo.app:predict_fixed", "fixed", gates)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_records"] == env["records"] and summary["candidate_errors"] == 0
    incident = summary["rules"][INCIDENT_RULE]["relevance"]
    assert incident["n"] == 14 and incident["wins"] >= 10 and incident["wins"] > 3 * incident["losses"]
    assert incident["improvement"] > 0.2 and incident["p_value"] < 0.01 and incident["ci_low"] > 0
    guard = summary["rules"][GUARD_RULE]["relevance"]
    assert guard["ties"] == guard["n"] == 6  # the fix leaves other answers untouched
    verdict = stages.gate_stage(run_dir, env["app"])
    assert verdict["passed"], verdict["failed"]

    run_id = json.loads((run_dir / "eval_run.json").read_text())["run_id"]
    run = MlflowClient(env["app"].mlflow.tracking_uri).get_run(run_id)
    assert run.info.run_name.startswith("dev-eval-predict_fixed-flywheel_acme_default-v1")
    assert run.data.metrics["relevance/improvement"] == pytest.approx(summary["scorers"]["relevance"]["improvement"])
    assert run.data.metrics[f"rule/{INCIDENT_RULE}/relevance/p_value"] == pytest.approx(incident["p_value"])
    assert run.data.params["dataset_version"] == "1" and run.data.params["candidate"].endswith("predict_fixed")
    assert run.data.tags["flywheel.gate"] == "passed"
    assert int(run.data.tags["flywheel.source_trace_count"]) == env["records"]
    artifacts = {a.path for a in MlflowClient(env["app"].mlflow.tracking_uri).list_artifacts(run_id, "flywheel")}
    assert {
        "flywheel/summary.md",
        "flywheel/comparison.parquet",
        "flywheel/source_trace_ids.json",
    } <= artifacts
    # Evaluation traces stay out of the production experiment.
    assert (
        MlflowClient(env["app"].mlflow.tracking_uri).get_experiment(run.info.experiment_id).name == "acme-prod-dev-eval"
    )


def test_unchanged_production_version_does_not_pass(env: dict[str, Any]) -> None:
    run_dir = _evaluate(env, "flywheel_demo.app:predict_production", "production", [{**GATE, "rule": INCIDENT_RULE}])
    summary = json.loads((run_dir / "summary.json").read_text())
    incident = summary["rules"][INCIDENT_RULE]["relevance"]
    assert incident["wins"] == 0 and incident["losses"] == 0 and incident["p_value"] == 1.0
    with pytest.raises(GateFailedError, match="improvement over production 0"):
        stages.gate_stage(run_dir, env["app"])
    assert json.loads((run_dir / "gate.json").read_text())["passed"] is False


def _flaky(query: str) -> str:
    if "Smart" in query:
        raise RuntimeError("backend down")
    return f"You asked: {query}"


def test_predict_errors_and_lost_rows_are_reported(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from genai_flywheel.evaluation.candidate import Candidate
    from genai_flywheel.evaluation.run import EvalRecord, evaluate_candidate
    from genai_flywheel.exceptions import StoreError
    from genai_flywheel.scoring import load_scorers

    records = [
        EvalRecord(f"r{i}", {"query": q}, {"answer": "old"}, {}, None)
        for i, q in enumerate(["Smart Sync help", "Billing help", "SSO help"])
    ]
    candidate = Candidate("tests:flaky", "flaky", _flaky, "entry_point")
    scorers = load_scorers(env["app"])
    kwargs = {"tracking_uri": env["app"].mlflow.tracking_uri, "experiment": "acme-errors", "max_workers": 1}
    outcome = evaluate_candidate(records, candidate, scorers, run_name="dev-eval-flaky", **kwargs)
    assert outcome.errors == 1
    by_id = {o["record_id"]: o for o in outcome.outputs}
    assert by_id["r0"]["error"] == "RuntimeError: backend down" and by_id["r1"]["error"] is None
    assert json.loads(by_id["r1"]["output"]) in (
        "You asked: Billing help",
        {"answer": "You asked: Billing help"},
    )

    real = mlflow.genai.evaluate

    def lossy(*args: Any, **kw: Any) -> Any:
        result = real(*args, **kw)
        result.result_df = result.result_df.iloc[1:]  # what a starved SQLite connection pool does
        return result

    monkeypatch.setattr(mlflow.genai, "evaluate", lossy)
    with pytest.raises(StoreError, match="returned no result for 1 of 3 record"):
        evaluate_candidate(records, candidate, scorers, run_name="dev-eval-lossy", **kwargs)
