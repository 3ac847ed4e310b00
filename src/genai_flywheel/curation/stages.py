"""The curation DAG's stages: each one call, reading and writing files under one run folder.

=====================  ==========================================  ===========================================
stage                  reads (under ``run_dir``)                   writes
=====================  ==========================================  ===========================================
``extract_stage``      MLflow (lookback window of the app)         ``traces.parquet``, ``window.json``
``select_stage``       ``traces.parquet``                          ``selected.parquet``, ``clusters.parquet``,
                                                                   ``selection.json``
``build_stage``        ``selected.parquet`` (+ ``window.json``)    ``records.parquet`` (deduplicated)
``validate_stage``     ``records.parquet``                         ``valid_records.parquet``,
                                                                   ``quarantine.parquet``, ``validation.json``
``merge_stage``        ``valid_records.parquet`` + the previous    MLflow dataset records, the snapshot
                       snapshot under the data root                ``datasets/<name>/v<N>/``, an MLflow run,
                                                                   ``merge.json``
``publish_stage``      ``merge.json``                              (returns the Asset event extra)
=====================  ==========================================  ===========================================

Every stage returns a small JSON-able dict (paths, ids, counts) and writes its files atomically, so a retried
task overwrites its own output with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.config import Application, CurationRule
from genai_flywheel.curation.clusters import stats_to_table
from genai_flywheel.curation.dataset_store import (
    TAG_PREFIX,
    DatasetStore,
    MlflowDatasetStore,
    mlflow_input_hash,
    to_mlflow_record,
)
from genai_flywheel.curation.datasets import commit_snapshot, dataset_name, latest_snapshot
from genai_flywheel.curation.records import build_records, deduplicate, merge_snapshot
from genai_flywheel.curation.rules import effective_rules, select, selection_table
from genai_flywheel.exceptions import StoreError
from genai_flywheel.workspace import (
    atomic_write_json as _write_json,
    atomic_write_parquet as _write_parquet,
    read_stage_json as _read_json,
    read_stage_parquet as _read_parquet,
)

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: ``(rules, traces, start_ms, end_ms) -> (candidate mask per segment_alerts rule, segments it followed)``.
SegmentMasks = Callable[
    [Sequence[CurationRule], "pa.Table", int, int], tuple[dict[str, list[bool]], dict[str, list[dict[str, Any]]]]
]

DAY_MS = 86_400_000
TRACES_FILE = "traces.parquet"
WINDOW_FILE = "window.json"
SELECTED_FILE = "selected.parquet"
CLUSTERS_FILE = "clusters.parquet"
SELECTION_FILE = "selection.json"
RECORDS_FILE = "records.parquet"
VALID_FILE = "valid_records.parquet"
QUARANTINE_FILE = "quarantine.parquet"
VALIDATION_FILE = "validation.json"
MERGE_FILE = "merge.json"


def ruleset_name(app: Application) -> str:
    """The rule-set part of the dataset name: ``default`` for :func:`default_rules`, else ``custom``."""
    return "custom" if app.curation.rules else "default"


def rules_digest(rules: list[CurationRule]) -> str:
    """A short digest of a rule set's definitions (recorded in the manifest)."""
    text = json.dumps([r.model_dump(mode="json") for r in rules], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def extract_stage(
    run_dir: Path, app: Application, *, interval_end_ms: int, interval_start_ms: int | None = None
) -> dict[str, Any]:
    """Extract the app's traces of [end - ``curation.lookback_days``, end) into ``traces.parquet``.

    ``trace_json`` is dropped: curation reads root-span inputs/outputs and assessments, never full traces.
    """
    from genai_flywheel.traces.extract import extract_window

    run_dir = Path(run_dir)
    start = (
        interval_start_ms if interval_start_ms is not None else interval_end_ms - app.curation.lookback_days * DAY_MS
    )
    table = extract_window(app.mlflow.tracking_uri, app.mlflow.experiment, start, interval_end_ms, app=app.name)
    if "trace_json" in table.column_names:
        table = table.drop_columns(["trace_json"])
    path = _write_parquet(table, run_dir / TRACES_FILE)
    window = {"app": app.name, "interval_start_ms": int(start), "interval_end_ms": int(interval_end_ms)}
    _write_json(window, run_dir / WINDOW_FILE)
    return {"traces": table.num_rows, "path": str(path), **window}


def select_stage(run_dir: Path, app: Application, segment_masks: SegmentMasks | None = None) -> dict[str, Any]:
    """Apply the curation rules to ``traces.parquet``; write the selection and the cluster report.

    ``segment_masks(rules, traces, start_ms, end_ms)`` gives the candidates of the ``segment_alerts`` rules
    (they come from the monitor's alert events, see :func:`genai_flywheel.segments.alerted.segment_alert_masks`);
    required only when the rule set has one.
    """
    run_dir = Path(run_dir)
    traces = _read_parquet(run_dir / TRACES_FILE, "extract")
    rules = effective_rules(app)
    masks: dict[str, list[bool]] = {}
    followed: dict[str, list[dict[str, Any]]] = {}
    if any(r.kind == "segment_alerts" for r in rules):
        if segment_masks is None:
            raise ValueError(
                "segment_alerts curation rules read the monitor's alert events: pass segment_masks "
                "(genai_flywheel.segments.alerted.segment_alert_masks bound to the application and data root)"
            )
        window = json.loads((run_dir / WINDOW_FILE).read_text(encoding="utf-8"))
        masks, followed = segment_masks(rules, traces, window["interval_start_ms"], window["interval_end_ms"])
    selection = select(rules, traces, masks)
    selected = selection_table(traces, selection)
    clusters = stats_to_table(selection.cluster_stats, selected=selection.selected_clusters)
    _write_parquet(selected, run_dir / SELECTED_FILE)
    _write_parquet(clusters, run_dir / CLUSTERS_FILE)
    summary = {
        "traces": traces.num_rows,
        "selected": selected.num_rows,
        "per_rule": selection.per_rule,
        "clusters": clusters.num_rows,
        "bad_clusters": sum(1 for s in selection.cluster_stats if s.bad),
        "selected_clusters": selection.selected_clusters,
        "rules": [r.name for r in rules],
        **({"alerted_segments": followed} if followed else {}),
    }
    _write_json(summary, run_dir / SELECTION_FILE)
    return {**summary, "path": str(run_dir / SELECTED_FILE), "cluster_report": str(run_dir / CLUSTERS_FILE)}


def build_stage(
    run_dir: Path,
    app: Application,
    *,
    airflow_run_id: str | None = None,
    interval_start_ms: int | None = None,
    interval_end_ms: int | None = None,
) -> dict[str, Any]:
    """Build one record per selected trace and merge duplicates into ``records.parquet``.

    The interval defaults to the one the extract stage recorded in ``window.json``.
    """
    run_dir = Path(run_dir)
    selected = _read_parquet(run_dir / SELECTED_FILE, "select")
    window_path = run_dir / WINDOW_FILE
    window = json.loads(window_path.read_text(encoding="utf-8")) if window_path.is_file() else {}
    records = build_records(
        selected,
        app=app.name,
        airflow_run_id=airflow_run_id,
        interval_start_ms=interval_start_ms if interval_start_ms is not None else window.get("interval_start_ms"),
        interval_end_ms=interval_end_ms if interval_end_ms is not None else window.get("interval_end_ms"),
    )
    deduped, merged = deduplicate(records)
    path = _write_parquet(deduped, run_dir / RECORDS_FILE)
    logger.info(
        "built %d records from %d selected traces (%d duplicates merged)",
        deduped.num_rows,
        selected.num_rows,
        merged,
    )
    return {
        "selected": selected.num_rows,
        "records": deduped.num_rows,
        "duplicates_merged": merged,
        "path": str(path),
    }


def validate_stage(run_dir: Path, *, max_bad_fraction: float = 0.5) -> dict[str, Any]:
    """Check ``records.parquet`` against the ``eval_dataset`` contract; quarantine the bad records.

    The quarantine (records + ``reasons``) and the report are written before a batch-level failure is raised
    (DataContractError), so a failed task still leaves the evidence behind.
    """
    from genai_flywheel.quality.contract import validate_records

    run_dir = Path(run_dir)
    records = _read_parquet(run_dir / RECORDS_FILE, "build")
    result = validate_records(records, "eval_dataset", max_bad_fraction=max_bad_fraction, raise_on_failure=False)
    _write_parquet(result.valid, run_dir / VALID_FILE)
    _write_parquet(result.quarantine, run_dir / QUARANTINE_FILE)
    reasons: dict[str, int] = {}
    if result.quarantine.num_rows and "reasons" in result.quarantine.column_names:
        for row_reasons in result.quarantine.column("reasons").to_pylist():
            for reason in row_reasons or ():
                reasons[reason] = reasons.get(reason, 0) + 1
    summary = {
        "records": records.num_rows,
        "valid": result.valid.num_rows,
        "quarantined": result.quarantine.num_rows,
        "reasons": dict(sorted(reasons.items())),
        "failures": list(result.failures),
        "report": result.report,
    }
    _write_json(summary, run_dir / VALIDATION_FILE)
    if result.quarantine.num_rows:
        logger.warning(
            "quarantined %d of %d curated records: %s",
            result.quarantine.num_rows,
            records.num_rows,
            summary["reasons"],
        )
    result.raise_for_failures()
    return {k: summary[k] for k in ("records", "valid", "quarantined", "reasons")} | {
        "path": str(run_dir / VALID_FILE),
        "quarantine": str(run_dir / QUARANTINE_FILE),
    }


def _ensure_dataset(store: DatasetStore, name: str, experiment_id: str, app: Application, ruleset: str) -> str:
    found = store.find_datasets(name)
    if len(found) > 1:
        raise StoreError(
            f"{len(found)} MLflow datasets are named {name!r} ({', '.join(found)}); curation needs the name "
            "to be unique: delete or rename the extra ones (mlflow.genai.datasets.delete_dataset)"
        )
    if found:
        return found[0]
    tags = {
        f"{TAG_PREFIX}app": app.name,
        f"{TAG_PREFIX}ruleset": ruleset,
        f"{TAG_PREFIX}managed_by": "curation",
    }
    dataset_id = store.create_dataset(name, experiment_id, tags)
    logger.info("created MLflow dataset %s (%s)", name, dataset_id)
    return dataset_id


def _sync_records(store: DatasetStore, dataset_id: str, rows: list[dict[str, Any]], changed: set[str]) -> int:
    """Upsert the new/changed records and any the dataset is missing; verify every record is there once."""
    existing = store.input_hashes(dataset_id)
    hashes = {r["record_id"]: mlflow_input_hash(json.loads(r["inputs"])) for r in rows}
    todo = [to_mlflow_record(r) for r in rows if r["record_id"] in changed or hashes[r["record_id"]] not in existing]
    if todo:
        store.upsert_records(dataset_id, todo)
    after = store.input_hashes(dataset_id)
    missing = sorted(rid for rid, h in hashes.items() if h not in after)
    if missing:
        raise StoreError(
            f"MLflow dataset {dataset_id} lacks {len(missing)} records after merge_records "
            f"(e.g. {missing[:3]}); check the tracking server's logs and re-run the task"
        )
    repeated = sum(1 for h in hashes.values() if after.get(h, 0) > 1)
    if repeated:
        raise StoreError(f"MLflow dataset {dataset_id} holds {repeated} records more than once; inspect it")
    return len(todo)


def merge_stage(
    run_dir: Path,
    app: Application,
    *,
    data_root: Path,
    ruleset: str | None = None,
    airflow_run_id: str | None = None,
    store: DatasetStore | None = None,
) -> dict[str, Any]:
    """Merge the valid records into the app's MLflow dataset and commit a versioned snapshot.

    Steps: find or create the dataset ``<prefix>_<app>_<ruleset>`` (a name held by two datasets is an error);
    merge this run's records into the newest snapshot; upsert new, changed and missing records into MLflow
    and check each is there exactly once; commit the snapshot (a new version only when the digest changed);
    log the version as the run ``curation-<dataset>-v<N>`` (once per version) and tag the dataset with it.
    """
    run_dir = Path(run_dir)
    valid = _read_parquet(run_dir / VALID_FILE, "validate")
    validation = _read_json(run_dir / VALIDATION_FILE, "validate")
    selection_path = run_dir / SELECTION_FILE
    selected_per_rule = _read_json(selection_path, "select").get("per_rule", {}) if selection_path.is_file() else {}
    window_path = run_dir / WINDOW_FILE
    window = json.loads(window_path.read_text(encoding="utf-8")) if window_path.is_file() else {}

    rules = effective_rules(app)
    ruleset = ruleset or ruleset_name(app)
    name = dataset_name(app.curation.dataset_prefix, app.name, ruleset)
    store = store or MlflowDatasetStore(app.mlflow.tracking_uri)
    experiment_id = store.experiment_id(app.mlflow.experiment)
    dataset_id = _ensure_dataset(store, name, experiment_id, app, ruleset)

    previous, _ = latest_snapshot(data_root, name)
    merged = merge_snapshot(previous, valid)
    rows = merged.records.to_pylist()
    upserted = _sync_records(store, dataset_id, rows, set(merged.added) | set(merged.updated))

    per_rule: dict[str, int] = {}
    for row in rows:
        per_rule[row["rule"]] = per_rule.get(row["rule"], 0) + 1
    manifest = {
        "dataset_id": dataset_id,
        "app": app.name,
        "ruleset": ruleset,
        "rules": [r.model_dump(mode="json") for r in rules],
        "rules_digest": rules_digest(rules),
        "per_rule": dict(sorted(per_rule.items())),
        "added": len(merged.added),
        "updated": len(merged.updated),
        "quarantined": int(validation.get("quarantined", 0)),
        "selected_per_rule": selected_per_rule,
        "airflow_run_id": airflow_run_id,
        "interval_start_ms": window.get("interval_start_ms"),
        "interval_end_ms": window.get("interval_end_ms"),
    }
    snapshot = commit_snapshot(data_root, name, merged.records, manifest)

    run_tags = {
        f"{TAG_PREFIX}dataset": name,
        f"{TAG_PREFIX}dataset_version": str(snapshot.version),
        f"{TAG_PREFIX}digest": snapshot.digest,
    }
    run_id = store.find_run(experiment_id, run_tags)
    if run_id is None:
        params = {
            "dataset_name": name,
            "dataset_id": dataset_id,
            "dataset_version": str(snapshot.version),
            "dataset_digest": snapshot.digest,
            "ruleset": ruleset,
            "rules_digest": manifest["rules_digest"],
            "records_total": str(snapshot.manifest["records"]),
            **{f"records.{rule}": str(n) for rule, n in sorted(snapshot.manifest["per_rule"].items())},
        }
        metrics = {
            "records_total": float(snapshot.manifest["records"]),
            "records_added": float(snapshot.manifest.get("added", 0)),
            "records_updated": float(snapshot.manifest.get("updated", 0)),
            "records_quarantined": float(snapshot.manifest.get("quarantined", 0)),
            **{f"records.{rule}": float(n) for rule, n in snapshot.manifest["per_rule"].items()},
        }
        artifacts = [snapshot.path / "records.parquet", snapshot.path / "manifest.json"]
        if (run_dir / CLUSTERS_FILE).is_file():
            artifacts.append(run_dir / CLUSTERS_FILE)
        if (run_dir / QUARANTINE_FILE).is_file():
            artifacts.append(run_dir / QUARANTINE_FILE)
        run_id = store.log_run(
            experiment_id,
            f"curation-{name}-v{snapshot.version}",
            params=params,
            metrics=metrics,
            tags={
                **run_tags,
                f"{TAG_PREFIX}app": app.name,
                f"{TAG_PREFIX}airflow_run_id": airflow_run_id or "",
            },
            artifacts=artifacts,
            artifact_path="snapshot",
        )
    store.set_dataset_tags(
        dataset_id,
        {f"{TAG_PREFIX}version": str(snapshot.version), f"{TAG_PREFIX}digest": snapshot.digest},
    )
    result = {
        "dataset": name,
        "dataset_id": dataset_id,
        "version": snapshot.version,
        "new_version": snapshot.created,
        "digest": snapshot.digest,
        "records": merged.records.num_rows,
        "added": len(merged.added),
        "updated": len(merged.updated),
        "upserted": upserted,
        "per_rule": dict(sorted(per_rule.items())),
        "quarantined": int(validation.get("quarantined", 0)),
        "snapshot": str(snapshot.path),
        "mlflow_run_id": run_id,
    }
    _write_json(result, run_dir / MERGE_FILE)
    logger.info(
        "dataset %s v%d: %d records (%d added, %d updated)",
        name,
        snapshot.version,
        result["records"],
        result["added"],
        result["updated"],
    )
    return result


def publish_stage(run_dir: Path) -> dict[str, Any]:
    """The Asset event extra of this curation run (read from ``merge.json``)."""
    merge = _read_json(Path(run_dir) / MERGE_FILE, "merge")
    keys = (
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
    return {k: merge[k] for k in keys}
