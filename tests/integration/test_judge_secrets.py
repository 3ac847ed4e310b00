"""A monitor run with an LLM judge behind an Airflow Connection: the judge is really called, its verdicts
land on the traces, and the API key appears nowhere — not in task logs, XCom, MLflow params, tags,
assessments or artifacts."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, SIM_END, write_config

SECRET = "sk-flywheel-secret-7c1f0e9a2b"
INTERVAL = timedelta(hours=6)


@pytest.fixture
def judged_run(tmp_path: Path, production: dict, airflow_db, openai_stub, monkeypatch, capfd):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState
    from flywheel_airflow.settings import flywheel_config

    data_root = tmp_path / "data"
    scorers = [{"name": "relevance"}, {"name": "relevance_to_query", "sample_rate": 1.0}]
    cfg = write_config(
        tmp_path / "flywheel.yaml",
        production["uri"],
        data_root,
        judge={"conn_id": "flywheel_judge", "model": "judge-model", "max_retries": 1},
    )
    text = cfg.read_text()
    import yaml

    data = yaml.safe_load(text)
    data["applications"][0]["scorers"] = scorers
    # Rules on scorers this run leaves out would fail the config check.
    data["applications"][0]["alerts"] = [
        a for a in data["applications"][0]["alerts"] if "freshness" not in a.get("metric", "")
    ]
    data["applications"][0]["sampling"]["rate"] = 0.1
    cfg.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("FLYWHEEL_CONFIG", str(cfg))
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(data_root))
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYWHEEL_JUDGE",
        json.dumps({"conn_type": "http", "host": openai_stub.base_url, "password": SECRET}),
    )
    flywheel_config.cache_clear()
    bag = DagBag(dag_folder=str(ROOT / "dags" / "flywheel_monitor.py"))
    dag = bag.dags["flywheel_monitor_support-assistant"]
    start = SIM_END - timedelta(hours=12)  # day 2: the monitor DAG test uses day 1
    dr = dag.test(logical_date=start + INTERVAL)
    out, err = capfd.readouterr()
    flywheel_config.cache_clear()
    assert dr.state == DagRunState.SUCCESS
    return {"start": start, "run": dr, "logs": out + err, "data_root": data_root, "stub": openai_stub, **production}


def test_judge_scores_land_on_traces(judged_run) -> None:
    from genai_flywheel.traces.extract import get_experiment_id, iter_traces, window_filter
    from genai_flywheel.workspace import to_ms

    assert judged_run["stub"].auth_headers, "the judge endpoint was never called"
    assert all(h == f"Bearer {SECRET}" for h in judged_run["stub"].auth_headers)
    uri, start = judged_run["uri"], judged_run["start"]
    traces = list(
        iter_traces(
            uri,
            get_experiment_id(uri, "support-prod"),
            window_filter(to_ms(start), to_ms(start + INTERVAL)),
            include_spans=False,
        )
    )
    judged = [a for t in traces for a in t.info.assessments if a.name == "relevance_to_query"]
    assert judged and all(str(a.source.source_type) == "LLM_JUDGE" for a in judged)


def test_api_key_appears_nowhere(judged_run) -> None:
    import sqlalchemy
    from mlflow import MlflowClient

    assert SECRET not in judged_run["logs"]
    # Task logs on disk, every file the run wrote under the data root.
    for root in (Path(os.environ["AIRFLOW_HOME"]), judged_run["data_root"]):
        for f in root.rglob("*"):
            if f.is_file() and f.suffix != ".db":
                assert SECRET.encode() not in f.read_bytes(), f
    # XCom: every value every task returned.
    engine = sqlalchemy.create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as conn:
        values = [str(v) for (v,) in conn.execute(sqlalchemy.text("SELECT value FROM xcom"))]
    assert values and not any(SECRET in v for v in values)
    # MLflow: runs' params and tags, artifacts, and the assessments on the traces.
    client = MlflowClient(tracking_uri=judged_run["uri"])
    exp = client.get_experiment_by_name("support-prod")
    for run in client.search_runs([exp.experiment_id]):
        assert SECRET not in json.dumps(run.data.params) + json.dumps(run.data.tags)
    for f in Path.cwd().rglob("*"):  # SQLite stores keep artifacts under ./mlruns of the working directory
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    db = Path(judged_run["uri"].removeprefix("sqlite:///")).read_bytes()
    assert SECRET.encode() not in db
