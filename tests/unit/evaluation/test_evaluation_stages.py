"""Evaluation stages without MLflow: params, loading a curated version or ad-hoc traces, compare, gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genai_flywheel.config import Application, Evaluation, Gate, MlflowTarget, ScorerSpec
from genai_flywheel.evaluation import stages
from genai_flywheel.exceptions import ConfigError, GateFailedError

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _app(**evaluation: Any) -> Application:
    return Application(
        name="demo",
        mlflow=MlflowTarget(tracking_uri="sqlite:///unused.db", experiment="demo-prod"),
        scorers=[ScorerSpec(name="relevance"), ScorerSpec(name="pii")],
        evaluation=Evaluation(**evaluation),
    )


def _record(rid: str, query: str, rule: str, scores: dict[str, Any]) -> dict[str, Any]:
    return {
        "record_id": rid,
        "inputs": json.dumps({"query": query}),
        "outputs": json.dumps(f"production answer to {query}"),
        "expectations": json.dumps({"expected_answer": "x"}),
        "source_trace_id": f"t-{rid}",
        "source_trace_ids": [f"t-{rid}"],
        "rule": rule,
        "rules": [rule],
        "rule_priority": 10,
        "query": query,
        "status": "OK",
        "source_timestamp_ms": BASE_MS,
        "labels": "{}",
        "scores": json.dumps(scores),
        "rationales": "{}",
        "cluster_id": None,
        "app": "demo",
        "airflow_run_id": None,
        "interval_start_ms": None,
        "interval_end_ms": None,
    }


def test_resolve_params_fills_application_defaults() -> None:
    app = _app(candidate="pkg.mod:fn", gates=[Gate(scorer="relevance", min_improvement=0.1)])
    params = stages.resolve_params(app, {"dataset": "ds", "filter": ""})
    assert params["candidate"] == "pkg.mod:fn"
    assert params["scorers"] is None  # evaluation.scorers empty -> every scorer the app loads
    assert params["gates"] == [{"scorer": "relevance", "min_improvement": 0.1}]
    assert params["experiment"] == "demo-prod-dev-eval"
    assert params["filter"] is None and params["lookback_days"] == 7
    override = stages.resolve_params(
        app, {"dataset": "ds", "scorers": ["pii"], "gates": [], "experiment": "mine", "candidate": "a.b:c"}
    )
    assert override["scorers"] == ["pii"] and override["gates"] == [] and override["experiment"] == "mine"
    assert override["candidate"] == "a.b:c"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dataset": "ds"}, "no candidate"),
        ({"candidate": "a.b:c"}, "nothing to evaluate on"),
        ({"candidate": "a.b:c", "dataset": "ds", "filter": "trace.status = 'OK'"}, "not both"),
        ({"candidate": "a.b:c", "filter": "trace.status = 'OK'"}, "window_end_ms"),
        ({"candidate": "a.b:c", "dataset": "ds", "sample_sise": 3}, "sample_sise"),
        (
            {"candidate": "a.b:c", "dataset": "ds", "gates": [{"scorer": "relevance", "max_p_value": 0}]},
            "gates",
        ),
    ],
)
def test_resolve_params_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stages.resolve_params(_app(), params)


def test_load_stage_reads_a_curated_version(tmp_path: Path) -> None:
    import pyarrow as pa

    from genai_flywheel.curation.datasets import commit_snapshot
    from genai_flywheel.curation.records import record_schema

    rows = [_record("r1", "Smart Sync?", "incident", {"relevance": 0.2}), _record("r2", "Hi", "guard", {})]
    data_root = tmp_path / "data"
    info = commit_snapshot(data_root, "flywheel_demo_default", pa.Table.from_pylist(rows, schema=record_schema()), {})
    run_dir = tmp_path / "run"
    out = stages.load_stage(run_dir, _app(candidate="a.b:c"), {"dataset": "flywheel_demo_default"}, data_root=data_root)
    assert out == {
        "records": 2,
        "dataset": "flywheel_demo_default",
        "version": 1,
        "digest": info.digest,
        "path": str(run_dir / "records.parquet"),
    }
    dataset = json.loads((run_dir / "dataset.json").read_text())
    assert dataset["source"] == "curated" and dataset["version"] == 1
    assert json.loads((run_dir / "eval_params.json").read_text())["candidate"] == "a.b:c"
    with pytest.raises(Exception, match="no version 9"):
        stages.load_stage(
            run_dir, _app(candidate="a.b:c"), {"dataset": "flywheel_demo_default", "dataset_version": 9},
            data_root=data_root,
        )  # fmt: skip


def _trace(trace_id: str, query: str, minute: int) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "app": "demo",
        "timestamp_ms": BASE_MS + minute * 60_000,
        "status": "OK",
        "request": json.dumps({"query": query}),
        "response": json.dumps("answer"),
        "query": query,
        "answer": "answer",
        "tags": "{}",
        "metadata": "{}",
        "assessments": [],
    }


def test_adhoc_records_filter_sample_and_dedupe() -> None:
    import pyarrow as pa

    from genai_flywheel.traces.schema import TRACE_SCHEMA

    rows = [_trace(f"t{i}", f"Smart Sync question {i % 4}", i) for i in range(10)]
    rows += [_trace("other", "billing", 11)]
    traces = pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)
    kwargs = {"seed": "s", "app": "demo", "start_ms": BASE_MS, "end_ms": BASE_MS + 3_600_000}
    records = stages.adhoc_records(traces, filter_text="inputs.query CONTAINS 'Smart Sync'", sample_size=6, **kwargs)
    assert records.num_rows <= 4  # four distinct questions among the sampled traces
    assert set(records.column("rule").to_pylist()) == {"adhoc"}
    assert "other" not in records.column("source_trace_id").to_pylist()
    again = stages.adhoc_records(traces, filter_text="inputs.query CONTAINS 'Smart Sync'", sample_size=6, **kwargs)
    assert again.equals(records)  # deterministic
    everything = stages.adhoc_records(traces, filter_text="inputs.query CONTAINS 'Smart'", sample_size=100, **kwargs)
    assert everything.num_rows == 4


def _write_run(run_dir: Path, *, candidate_scores: list[float], gates: list[dict]) -> None:
    """The files load and run_candidate leave behind, for 12 incident records."""
    import pyarrow as pa

    from genai_flywheel.evaluation.run import outputs_schema, scores_schema
    from genai_flywheel.workspace import atomic_write_json, atomic_write_parquet

    records = [_record(f"r{i:02d}", f"Smart Sync {i}", "incident", {}) for i in range(len(candidate_scores))]
    scores, outputs = [], []
    for rec, cand in zip(records, candidate_scores, strict=True):
        for side, value in (("production", 0.2), ("candidate", cand)):
            scores.append({"record_id": rec["record_id"], "side": side, "scorer": "relevance",
                           "value": json.dumps(value), "numeric": value, "rationale": f"{side} rationale",
                           "error": None, "origin": "direct"})  # fmt: skip
        outputs.append({"record_id": rec["record_id"], "trace_id": "c", "output": '"new"', "error": None})
    params = stages.resolve_params(_app(candidate="a.b:c"), {"dataset": "ds", "gates": gates})
    atomic_write_json(params, run_dir / stages.PARAMS_FILE)
    atomic_write_json({"name": "ds", "version": 2, "digest": "sha256:d", "source": "curated"}, run_dir / "dataset.json")
    run_info = {
        "run_id": "run1",
        "run_name": "dev-eval-c-ds-v2",
        "candidate": "a.b:c",
        "scorers": ["relevance"],
    }
    atomic_write_json(run_info, run_dir / "eval_run.json")
    from genai_flywheel.curation.records import record_schema

    atomic_write_parquet(pa.Table.from_pylist(records, schema=record_schema()), run_dir / "records.parquet")
    atomic_write_parquet(pa.Table.from_pylist(scores, schema=scores_schema()), run_dir / "scores.parquet")
    atomic_write_parquet(pa.Table.from_pylist(outputs, schema=outputs_schema()), run_dir / "candidate_outputs.parquet")


GATE = {"scorer": "relevance", "min_improvement": 0.1, "max_p_value": 0.05, "rule": "incident"}


def test_compare_then_gate_passes_for_a_real_improvement(tmp_path: Path) -> None:
    _write_run(tmp_path, candidate_scores=[0.9] * 10 + [0.2, 0.1], gates=[GATE])
    out = stages.compare_stage(tmp_path)
    assert out["records"] == 12
    rel = out["scorers"]["relevance"]
    assert (rel["wins"], rel["losses"], rel["ties"]) == (10, 1, 1)
    assert rel["p_value"] < 0.05 and rel["improvement"] > 0.5
    first = {name: (tmp_path / name).read_bytes() for name in ("summary.json", "summary.md", "comparison.parquet")}
    stages.compare_stage(tmp_path)
    assert first == {name: (tmp_path / name).read_bytes() for name in first}  # byte-identical re-run
    assert "## Rule `incident`" in first["summary.md"].decode()
    gate = stages.gate_stage(tmp_path)
    assert gate["passed"] and gate["failed"] == []
    assert json.loads((tmp_path / "gate.json").read_text())["passed"] is True


def test_gate_stage_raises_and_leaves_the_verdict(tmp_path: Path) -> None:
    _write_run(tmp_path, candidate_scores=[0.2] * 11 + [0.25], gates=[GATE])
    stages.compare_stage(tmp_path)
    with pytest.raises(GateFailedError, match=r"relevance\[rule=incident\]: improvement over production"):
        stages.gate_stage(tmp_path)
    verdict = json.loads((tmp_path / "gate.json").read_text())
    assert verdict["passed"] is False
    assert {c["criterion"] for c in verdict["checks"] if not c["passed"]} == {
        "min_improvement",
        "max_p_value",
    }
    assert stages.gate_stage(tmp_path, enforce=False)["passed"] is False


def test_stage_without_its_input_names_the_missing_stage(tmp_path: Path) -> None:
    from genai_flywheel.exceptions import StoreError

    with pytest.raises(StoreError, match="run the load stage"):
        stages.compare_stage(tmp_path)


def test_run_name_and_metrics() -> None:
    assert stages.run_name_for("predict_fixed", {"name": "ds", "version": 3}) == "dev-eval-predict_fixed-ds-v3"
    adhoc = {"name": "adhoc", "version": None, "digest": "sha256:0123456789"}
    assert stages.run_name_for("m-3", adhoc) == "dev-eval-m-3-adhoc-01234567"
    summary = {
        "n_records": 2,
        "candidate_errors": 0,
        "scorers": {"relevance": {"n": 2, "improvement": 0.5, "ci_low": None, "p_value": 0.1}},
        "rules": {"incident": {"relevance": {"n": 2, "improvement": 0.5, "p_value": 0.1}}},
    }
    metrics = stages.summary_metrics(summary)
    assert metrics["relevance/improvement"] == 0.5 and "relevance/ci_low" not in metrics
    assert metrics["rule/incident/relevance/p_value"] == 0.1 and metrics["records"] == 2.0
