"""Malformed traces are quarantined with their reasons, never dropped; a batch that breaks the contract as
a whole fails the validate stage and leaves its evidence behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genai_flywheel.exceptions import DataContractError

START = datetime(2026, 11, 19, 12, tzinfo=UTC)
END = START + timedelta(hours=6)


def _unfinished_trace(uri: str, experiment_id: str, when: datetime, inputs: str) -> str:
    """A trace still IN_PROGRESS (its app crashed before the root span ended), written as MLflow stores it."""
    from mlflow.entities import TraceInfo, TraceLocation, TraceState
    from mlflow.tracking._tracking_service.utils import _get_store

    trace_id = "tr-" + format(abs(hash((inputs, when.isoformat()))) % 16**32, "032x")
    info = TraceInfo(
        trace_id=trace_id,
        trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=int(when.timestamp() * 1000),
        state=TraceState.IN_PROGRESS,
        trace_metadata={"mlflow.traceInputs": inputs},
        tags={},
    )
    _get_store(uri).start_trace(info)
    return trace_id


@pytest.fixture
def store_with_bad_traces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    from flywheel_demo.simulate import simulate

    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(tmp_path / "data"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = simulate(
        uri, "support-prod", days=1, traces_per_day=60, end=START + timedelta(hours=12), seed=5, progress=False
    )
    bad = _unfinished_trace(uri, result.experiment_id, START + timedelta(hours=1), '{"query": "hi"}')
    return {"uri": uri, "bad": bad, "result": result}


def _config(tmp_path: Path, uri: str, **app_overrides):
    from genai_flywheel.config import load_config
    from tests.integration.conftest import write_config

    return load_config(write_config(tmp_path / "flywheel.yaml", uri, tmp_path / "data", **app_overrides))


def test_unfinished_trace_is_quarantined_with_its_reason(tmp_path: Path, store_with_bad_traces) -> None:
    from genai_flywheel import pipeline
    from genai_flywheel.workspace import read_parquet

    cfg = _config(tmp_path, store_with_bad_traces["uri"])
    extracted = pipeline.extract("support-assistant", START, END, config=cfg)
    out = pipeline.validate("support-assistant", START, END, config=cfg)
    assert out["quarantined"] == 1
    assert out["valid"] + out["quarantined"] == extracted["traces"]
    run_dir = Path(extracted["path"]).parent
    quarantine = read_parquet(run_dir / "quarantine.parquet").to_pylist()
    assert [q["trace_id"] for q in quarantine] == [store_with_bad_traces["bad"]]
    assert any("in progress" in r for r in quarantine[0]["reasons"])
    valid_ids = {r["trace_id"] for r in read_parquet(run_dir / "valid.parquet").to_pylist()}
    assert store_with_bad_traces["bad"] not in valid_ids
    # The quarantined trace still counts: the metrics report it.
    pipeline.sample("support-assistant", START, END, config=cfg)
    pipeline.reference("support-assistant", START, END, config=cfg)
    agg = pipeline.aggregate("support-assistant", START, END, config=cfg)
    metrics = {r["metric"]: r["value"] for r in read_parquet(Path(agg["path"])).to_pylist()}
    assert metrics["quarantined"] == 1


def test_batch_breaking_the_contract_fails_and_keeps_its_evidence(tmp_path: Path, store_with_bad_traces) -> None:
    from genai_flywheel import pipeline

    cfg = _config(tmp_path, store_with_bad_traces["uri"], contract={"max_bad_fraction": 0.0})
    extracted = pipeline.extract("support-assistant", START, END, config=cfg)
    with pytest.raises(DataContractError, match="quarantined"):
        pipeline.validate("support-assistant", START, END, config=cfg)
    run_dir = Path(extracted["path"]).parent
    assert (run_dir / "quarantine.parquet").exists()
    report = json.loads((run_dir / "contract.json").read_text())
    assert report["rows_quarantined"] == 1
    assert not (run_dir / "valid.parquet").exists()
