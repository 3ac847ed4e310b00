"""Versioned snapshots, the merge stage against an in-memory dataset store, and the stage chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curation_tables import table, trace

from genai_flywheel.config import Application
from genai_flywheel.curation import stages
from genai_flywheel.curation.dataset_store import mlflow_input_hash
from genai_flywheel.curation.datasets import (
    commit_snapshot,
    dataset_name,
    list_versions,
    load_dataset_version,
    snapshot_digest,
)
from genai_flywheel.curation.records import build_records
from genai_flywheel.exceptions import ConfigError, StoreError


class MemoryStore:
    """In-memory ``DatasetStore``: records keyed by MLflow's input hash, like the SQL store."""

    def __init__(self) -> None:
        self.datasets: dict[str, dict[str, Any]] = {}
        self.runs: list[dict[str, Any]] = []
        self.upserts = 0

    def experiment_id(self, experiment: str) -> str:
        return "1"

    def find_datasets(self, name: str) -> list[str]:
        return sorted(i for i, d in self.datasets.items() if d["name"] == name)

    def create_dataset(self, name: str, experiment_id: str, tags: dict[str, str]) -> str:
        dataset_id = f"d-{len(self.datasets)}"
        self.datasets[dataset_id] = {"name": name, "tags": dict(tags), "records": {}}
        return dataset_id

    def upsert_records(self, dataset_id: str, records: list[dict[str, Any]]) -> None:
        self.upserts += len(records)
        for record in records:
            key = mlflow_input_hash(record["inputs"])
            merged = self.datasets[dataset_id]["records"].setdefault(key, {})
            merged.update(record)

    def input_hashes(self, dataset_id: str) -> dict[str, int]:
        return {k: 1 for k in self.datasets[dataset_id]["records"]}

    def set_dataset_tags(self, dataset_id: str, tags: dict[str, str]) -> None:
        self.datasets[dataset_id]["tags"].update(tags)

    def find_run(self, experiment_id: str, tags: dict[str, str]) -> str | None:
        for run in self.runs:
            if all(run["tags"].get(k) == v for k, v in tags.items()):
                return run["run_id"]
        return None

    def log_run(self, experiment_id: str, run_name: str, **kwargs: Any) -> str:
        run_id = f"run-{len(self.runs)}"
        self.runs.append({"run_id": run_id, "name": run_name, **kwargs})
        return run_id


def app() -> Application:
    return Application.model_validate(
        {"name": "demo", "mlflow": {"tracking_uri": "sqlite:///unused.db", "experiment": "demo"}}
    )


def records_of(rows: list[dict], rule: str = "negative_feedback", priority: int = 10) -> pa.Table:
    t = table(rows)
    n = len(rows)
    t = t.append_column("rule", pa.array([rule] * n, pa.string()))
    t = t.append_column("rule_priority", pa.array([priority] * n, pa.int32()))
    t = t.append_column("cluster_id", pa.array([None] * n, pa.string()))
    t = t.append_column("selection_rank", pa.array(range(n), pa.int32()))
    return build_records(t, app="demo", airflow_run_id="r1", interval_start_ms=0, interval_end_ms=1)


def test_dataset_name_and_bad_names() -> None:
    assert dataset_name("flywheel", "demo", "default") == "flywheel_demo_default"
    with pytest.raises(ConfigError, match="not usable"):
        dataset_name("flywheel", "demo", "a/b")


def test_digest_ignores_row_order_and_sees_content() -> None:
    records = records_of([trace("t1", "q one"), trace("t2", "q two")])
    reversed_rows = records.take(pa.array([1, 0]))
    assert snapshot_digest(records) == snapshot_digest(reversed_rows)
    other = records_of([trace("t1", "q one"), trace("t2", "q two", answer="different")])
    assert snapshot_digest(other) != snapshot_digest(records)


def test_version_bumps_only_when_the_digest_changes(tmp_path: Path) -> None:
    first = records_of([trace("t1", "q one")])
    v1 = commit_snapshot(tmp_path, "ds", first, {"note": "x"})
    assert (v1.version, v1.created) == (1, True)
    same = commit_snapshot(tmp_path, "ds", first.take(pa.array([0])), {"note": "y"})
    assert (same.version, same.created) == (1, False)
    assert same.manifest["note"] == "x"  # an immutable snapshot is never rewritten
    v2 = commit_snapshot(tmp_path, "ds", records_of([trace("t1", "q one"), trace("t2", "q two")]), {})
    assert (v2.version, v2.created) == (2, True)
    assert v2.manifest["previous_version"] == 1 and v2.manifest["records"] == 2
    assert list_versions(tmp_path, "ds") == [1, 2]
    bytes_v1 = (tmp_path / "datasets/ds/v1/records.parquet").read_bytes()
    commit_snapshot(tmp_path / "again", "ds", first, {"note": "x"})
    assert (tmp_path / "again/datasets/ds/v1/records.parquet").read_bytes() == bytes_v1


def test_load_dataset_version_newest_or_explicit(tmp_path: Path) -> None:
    commit_snapshot(tmp_path, "ds", records_of([trace("t1", "q one")]), {})
    commit_snapshot(tmp_path, "ds", records_of([trace("t1", "q one"), trace("t2", "q two")]), {})
    newest, manifest = load_dataset_version(tmp_path, "ds")
    assert manifest["version"] == 2 and newest.num_rows == 2
    old, manifest1 = load_dataset_version(tmp_path, "ds", 1)
    assert manifest1["version"] == 1 and old.num_rows == 1
    with pytest.raises(StoreError, match="no version 7"):
        load_dataset_version(tmp_path, "ds", 7)
    with pytest.raises(StoreError, match="no curated versions"):
        load_dataset_version(tmp_path, "other")


def test_a_crashed_version_without_manifest_is_not_a_version(tmp_path: Path) -> None:
    commit_snapshot(tmp_path, "ds", records_of([trace("t1", "q one")]), {})
    (tmp_path / "datasets/ds/v2").mkdir()
    (tmp_path / "datasets/ds/v2/records.parquet").write_bytes(b"partial")
    assert list_versions(tmp_path, "ds") == [1]
    info = commit_snapshot(tmp_path, "ds", records_of([trace("t2", "q two")]), {})
    assert info.version == 2 and load_dataset_version(tmp_path, "ds")[0].num_rows == 1


def test_a_modified_snapshot_fails_to_load(tmp_path: Path) -> None:
    info = commit_snapshot(tmp_path, "ds", records_of([trace("t1", "q one")]), {})
    path = info.path / "records.parquet"
    tampered = pq.read_table(path).set_column(2, "outputs", pa.array(['{"answer":"edited"}']))
    pq.write_table(tampered, path)
    with pytest.raises(StoreError, match="differs from the manifest"):
        load_dataset_version(tmp_path, "ds")


def _prepare_run(run_dir: Path, valid: pa.Table, quarantined: int = 0) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(valid, run_dir / stages.VALID_FILE)
    (run_dir / stages.VALIDATION_FILE).write_text(json.dumps({"quarantined": quarantined}))


def test_merge_stage_creates_dataset_snapshot_and_run_and_is_idempotent(tmp_path: Path) -> None:
    store = MemoryStore()
    valid = records_of([trace("t1", "q one"), trace("t2", "q two", expectations={"expected_answer": "x"})])
    _prepare_run(tmp_path / "run1", valid, quarantined=1)
    first = stages.merge_stage(tmp_path / "run1", app(), data_root=tmp_path / "data", store=store)
    assert first["dataset"] == "flywheel_demo_default"
    assert (first["version"], first["records"], first["added"], first["quarantined"]) == (1, 2, 2, 1)
    assert first["per_rule"] == {"negative_feedback": 2}
    dataset = store.datasets[first["dataset_id"]]
    assert len(dataset["records"]) == 2
    assert dataset["tags"]["flywheel.version"] == "1" and dataset["tags"]["flywheel.digest"] == first["digest"]
    record = next(r for r in dataset["records"].values() if r["inputs"] == {"query": "q two"})
    assert record["expectations"] == {"expected_answer": "x"}
    assert record["tags"]["flywheel.source_trace_id"] == "t2"
    assert json.loads(record["tags"]["flywheel.expectation_ids"]) == {"expected_answer": "a-expected_answer-0"}
    assert record["source"] == {"source_type": "TRACE", "source_data": {"trace_id": "t2"}}
    assert [r["name"] for r in store.runs] == ["curation-flywheel_demo_default-v1"]
    assert store.runs[0]["params"]["dataset_digest"] == first["digest"]

    # The same records again (a retry, or the next day's overlapping lookback): nothing changes.
    upserts = store.upserts
    _prepare_run(tmp_path / "run2", valid)
    again = stages.merge_stage(tmp_path / "run2", app(), data_root=tmp_path / "data", store=store)
    assert (again["version"], again["records"], again["added"], again["digest"]) == (1, 2, 0, first["digest"])
    assert store.upserts == upserts and len(store.runs) == 1 and len(dataset["records"]) == 2

    # One new record: a new version with one more record; only that record is upserted.
    _prepare_run(tmp_path / "run3", records_of([trace("t3", "q three")], rule="errors", priority=30))
    third = stages.merge_stage(tmp_path / "run3", app(), data_root=tmp_path / "data", store=store)
    assert (third["version"], third["records"], third["added"]) == (2, 3, 1)
    assert store.upserts == upserts + 1
    assert third["per_rule"] == {"errors": 1, "negative_feedback": 2}
    assert stages.publish_stage(tmp_path / "run3") == {
        k: third[k]
        for k in (
            "dataset",
            "dataset_id",
            "version",
            "digest",
            "records",
            "added",
            "per_rule",
            "quarantined",
            "snapshot",
        )
    }


def test_merge_stage_restores_records_missing_from_mlflow(tmp_path: Path) -> None:
    store = MemoryStore()
    valid = records_of([trace("t1", "q one"), trace("t2", "q two")])
    _prepare_run(tmp_path / "run1", valid)
    first = stages.merge_stage(tmp_path / "run1", app(), data_root=tmp_path / "data", store=store)
    records = store.datasets[first["dataset_id"]]["records"]
    records.pop(next(iter(records)))
    again = stages.merge_stage(tmp_path / "run1", app(), data_root=tmp_path / "data", store=store)
    assert again["upserted"] == 1 and len(records) == 2 and again["version"] == 1


def test_merge_stage_refuses_a_dataset_name_held_twice(tmp_path: Path) -> None:
    store = MemoryStore()
    store.create_dataset("flywheel_demo_default", "1", {})
    store.create_dataset("flywheel_demo_default", "1", {})
    _prepare_run(tmp_path / "run", records_of([trace("t1", "q")]))
    with pytest.raises(StoreError, match="2 MLflow datasets are named 'flywheel_demo_default'"):
        stages.merge_stage(tmp_path / "run", app(), data_root=tmp_path / "data", store=store)


def _parses(text: str | None) -> bool:
    try:
        return isinstance(json.loads(text or ""), dict)
    except ValueError:
        return False


def test_stage_chain_select_build_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_flywheel.quality import contract

    def fake_validate(records: pa.Table, suite: str, **kwargs: Any) -> contract.ContractResult:
        # Stand-in for the GX suite (slow to import): quarantine records whose inputs are not JSON.
        ok = [_parses(r) for r in records.column("inputs").to_pylist()]
        bad = [not o for o in ok]
        quarantine = records.filter(pa.array(bad)).append_column(
            "reasons", pa.array([["inputs is not valid JSON"]] * sum(bad), pa.list_(pa.string()))
        )
        return contract.ContractResult(valid=records.filter(pa.array(ok)), quarantine=quarantine, report={})

    monkeypatch.setattr(contract, "validate_records", fake_validate)
    rows = [
        trace("t1", "how do I enable smart sync", feedback=False),
        trace("t2", "How do I enable Smart Sync?", feedback=False, minute=2),
        trace("t3", "broken", request="{oops", status="ERROR"),
        trace("t4", "export my invoice", scores={"relevance": 0.9}, feedback=True),
    ]
    pq.write_table(table(rows), tmp_path / stages.TRACES_FILE)
    selected = stages.select_stage(tmp_path, app())
    assert selected["selected"] == 4
    assert selected["per_rule"]["negative_feedback"] == 2
    assert pq.read_table(tmp_path / stages.CLUSTERS_FILE).num_rows >= 2
    built = stages.build_stage(tmp_path, app(), airflow_run_id="manual__1")
    assert (built["records"], built["duplicates_merged"]) == (3, 1)
    checked = stages.validate_stage(tmp_path)
    assert (checked["valid"], checked["quarantined"]) == (2, 1)
    assert checked["reasons"] == {"inputs is not valid JSON": 1}
    assert pq.read_table(tmp_path / stages.QUARANTINE_FILE).column("source_trace_id").to_pylist() == ["t3"]


def test_missing_input_file_names_the_stage_to_run(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run the extract stage"):
        stages.select_stage(tmp_path, app())


def test_select_stage_rewrites_identical_bytes(tmp_path: Path) -> None:
    rows = [
        trace("t1", "how do I enable smart sync", feedback=False),
        trace("t2", "export my invoice", scores={"relevance": 0.9}, feedback=True),
        trace("t3", "timeout", status="ERROR"),
    ]
    pq.write_table(table(rows), tmp_path / stages.TRACES_FILE)
    stages.select_stage(tmp_path, app())
    names = (stages.SELECTED_FILE, stages.CLUSTERS_FILE, stages.SELECTION_FILE)
    first = {n: (tmp_path / n).read_bytes() for n in names}
    stages.select_stage(tmp_path, app())
    assert {n: (tmp_path / n).read_bytes() for n in names} == first


def test_an_empty_window_gives_an_empty_first_version_and_no_churn(tmp_path: Path) -> None:
    store = MemoryStore()
    pq.write_table(table([]), tmp_path / stages.TRACES_FILE)
    assert stages.select_stage(tmp_path, app())["selected"] == 0
    assert stages.build_stage(tmp_path, app())["records"] == 0
    _prepare_run(tmp_path, pq.read_table(tmp_path / stages.RECORDS_FILE))
    first = stages.merge_stage(tmp_path, app(), data_root=tmp_path / "data", store=store)
    assert (first["version"], first["records"], first["added"]) == (1, 0, 0)
    again = stages.merge_stage(tmp_path, app(), data_root=tmp_path / "data", store=store)
    assert again["version"] == 1 and len(store.runs) == 1


def test_a_snapshot_written_before_the_assessment_id_columns_still_loads(tmp_path: Path) -> None:
    from genai_flywheel.workspace import atomic_write_json

    current = records_of([trace("t1", "q one", expectations={"expected_answer": "x"})])
    older = current.drop_columns(["expectation_ids", "label_ids"])
    base = tmp_path / "datasets" / "ds" / "v1"
    base.mkdir(parents=True)
    pq.write_table(older, base / "records.parquet")
    atomic_write_json({"version": 1, "digest": snapshot_digest(older)}, base / "manifest.json")
    records, _ = load_dataset_version(tmp_path, "ds")
    assert records.column_names[-2:] == ["expectation_ids", "label_ids"]
    assert records.column("expectation_ids").to_pylist() == [None]
    assert records.drop_columns(["expectation_ids", "label_ids"]).equals(older)
