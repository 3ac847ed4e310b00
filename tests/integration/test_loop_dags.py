"""The improvement loop's DAGs end to end with ``dag.test()`` on simulated production traffic: curation
publishes a versioned dataset, the evaluation gates the fixed development version through and rejects the
unchanged one, the export writes valid chat-format JSONL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, SIM_END, write_config

APP = "support-assistant"


@pytest.fixture(scope="module")
def loop_env(tmp_path_factory, production, airflow_db):
    import os

    import yaml
    from flywheel_airflow.settings import flywheel_config

    base = tmp_path_factory.mktemp("loop")
    data_root = base / "data"
    cfg = write_config(base / "flywheel.yaml", production["uri"], data_root)
    data = yaml.safe_load(cfg.read_text())
    app = data["applications"][0]
    # Small caps keep mlflow.genai.evaluate (about 10 rows/s on SQLite) quick.
    for rule in app["curation"]["rules"]:
        rule["cap"] = min(rule["cap"], 12)
    cfg.write_text(yaml.safe_dump(data))
    old = {k: os.environ.get(k) for k in ("FLYWHEEL_CONFIG", "FLYWHEEL_DATA_ROOT")}
    os.environ["FLYWHEEL_CONFIG"], os.environ["FLYWHEEL_DATA_ROOT"] = str(cfg), str(data_root)
    flywheel_config.cache_clear()
    yield {"data_root": data_root, **production}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    flywheel_config.cache_clear()


def _dag(name: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"flywheel_{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[f"flywheel_{name}_{APP}"]


def _test(dag, conf: dict):
    return dag.test(logical_date=SIM_END, run_conf=conf)


@pytest.fixture(scope="module")
def curated(loop_env):
    from airflow.utils.state import DagRunState

    dr = _test(_dag("curate"), {"window_end": SIM_END.isoformat(), "lookback_days": 7})
    assert dr.state == DagRunState.SUCCESS
    return dr


def test_curation_publishes_a_versioned_dataset_with_lineage(loop_env, curated) -> None:
    from genai_flywheel.config import load_config
    from genai_flywheel.curation.datasets import load_dataset_version
    from genai_flywheel.loop import default_dataset

    app = load_config().app(APP)
    records, manifest = load_dataset_version(loop_env["data_root"], default_dataset(app), None)
    assert manifest["version"] == 1
    assert records.num_rows > 0
    rows = records.to_pylist()
    truth = set(loop_env["result"].ground_truth["incidents"]["smart_sync_wrong_answers"]["trace_ids"])
    assert all(r["source_trace_id"] and r["rule"] for r in rows)
    assert truth & {r["source_trace_id"] for r in rows}, "no record of the Smart Sync incident was curated"
    # A second run over the same window adds nothing: same version, same records.
    from airflow.utils.state import DagRunState

    dr = _dag("curate").test(
        logical_date=SIM_END + timedelta(hours=1), run_conf={"window_end": SIM_END.isoformat(), "lookback_days": 7}
    )
    assert dr.state == DagRunState.SUCCESS
    again, manifest2 = load_dataset_version(loop_env["data_root"], default_dataset(app), None)
    assert manifest2["version"] == 1 and again.num_rows == records.num_rows


def _gate(data_root: Path, run_id: str) -> dict:
    from genai_flywheel.loop import run_folder

    return json.loads((run_folder(data_root, "evaluations", APP, run_id) / "gate.json").read_text())


def test_fixed_version_passes_the_gate_and_unchanged_does_not(loop_env, curated) -> None:
    from airflow.utils.state import DagRunState

    dag = _dag("evaluate")
    fixed = dag.test(
        logical_date=SIM_END + timedelta(minutes=1), run_conf={"candidate": "flywheel_demo.app:predict_fixed"}
    )
    assert fixed.state == DagRunState.SUCCESS
    gate = _gate(loop_env["data_root"], fixed.run_id)
    assert gate["passed"] is True
    unchanged = dag.test(
        logical_date=SIM_END + timedelta(minutes=2),
        run_conf={"candidate": "flywheel_demo.app:predict_production"},
    )
    assert unchanged.state == DagRunState.FAILED  # the gate task fails: a verdict, not an error
    gate = _gate(loop_env["data_root"], unchanged.run_id)
    assert gate["passed"] is False
    assert any(not c["passed"] and c["criterion"] in ("min_improvement", "max_p_value") for c in gate["checks"])


def test_export_writes_valid_chat_jsonl(loop_env) -> None:
    from airflow.utils.state import DagRunState

    from genai_flywheel.export import validate_chat_jsonl
    from genai_flywheel.loop import run_folder

    dr = _dag("export").test(
        logical_date=SIM_END,
        run_conf={"window_start": (SIM_END - timedelta(days=2)).isoformat(), "window_end": SIM_END.isoformat()},
    )
    assert dr.state == DagRunState.SUCCESS
    out = run_folder(loop_env["data_root"], "exports", APP, dr.run_id)
    manifest = json.loads((out / "manifest.json").read_text())
    assert validate_chat_jsonl(out / "train.jsonl").valid
    assert manifest["counts"]["selected"] >= len((out / "train.jsonl").read_text().splitlines())
    lines = (out / "train.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["messages"][-1]["role"] == "assistant" for line in lines)
