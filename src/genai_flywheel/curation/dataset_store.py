"""The MLflow side of curation: evaluation datasets (``mlflow.genai.datasets``) and the version's run.

Everything MLflow is behind :class:`DatasetStore`, so unit tests use an in-memory store and integration tests
the real :class:`MlflowDatasetStore`.

MLflow facts this relies on (mlflow 3.17, OSS):

* ``merge_records`` keys records by ``sha256(json.dumps(inputs, sort_keys=True))``: merging the same inputs
  again updates outputs, expectations and tags instead of adding a record.
* Two datasets may share a name (then ``get_dataset(name=...)`` fails), so the name is searched first and a
  dataset is created only when absent; two matches are an error for a human to resolve.
* ``EvaluationDataset.merge_records`` writes through the *global* tracking URI, so calls are wrapped in
  MLflow's ``_use_tracking_uri`` context.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from genai_flywheel.exceptions import StoreError

logger = logging.getLogger(__name__)

TAG_PREFIX = "flywheel."
MAX_TAG_TRACE_IDS = 20


class DatasetStore(Protocol):
    """What curation needs from MLflow."""

    def experiment_id(self, experiment: str) -> str:
        """The id of an existing experiment."""
        ...

    def find_datasets(self, name: str) -> list[str]:
        """Ids of the datasets named exactly ``name``."""
        ...

    def create_dataset(self, name: str, experiment_id: str, tags: dict[str, str]) -> str:
        """Create a dataset linked to an experiment; return its id."""
        ...

    def upsert_records(self, dataset_id: str, records: list[dict[str, Any]]) -> None:
        """``merge_records`` (insert or update by inputs)."""
        ...

    def input_hashes(self, dataset_id: str) -> dict[str, int]:
        """Count of the dataset's records per MLflow input hash (see :func:`mlflow_input_hash`)."""
        ...

    def set_dataset_tags(self, dataset_id: str, tags: dict[str, str]) -> None:
        """Set (merge) dataset tags."""
        ...

    def find_run(self, experiment_id: str, tags: dict[str, str]) -> str | None:
        """A finished run carrying all ``tags``, if any."""
        ...

    def log_run(
        self,
        experiment_id: str,
        run_name: str,
        *,
        params: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: Sequence[Path],
        artifact_path: str,
    ) -> str:
        """Create a finished run with params, metrics, tags and artifacts; return its id."""
        ...


def mlflow_input_hash(inputs: dict[str, Any]) -> str:
    """The key MLflow's SQL store gives a dataset record: sha256 of ``json.dumps(inputs, sort_keys=True)``."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _join_ids(ids: Sequence[str]) -> str:
    shown = ",".join(ids[:MAX_TAG_TRACE_IDS])
    more = len(ids) - MAX_TAG_TRACE_IDS
    return f"{shown} (+{more} more)" if more > 0 else shown


def to_mlflow_record(row: dict[str, Any]) -> dict[str, Any]:
    """An MLflow dataset record (``inputs``, ``outputs``, ``expectations``, ``tags``, ``source``) of a row.

    Lineage goes into the record's tags (``flywheel.*``; the source trace list is truncated there, complete
    in the snapshot; ``flywheel.expectation_ids`` / ``flywheel.label_ids`` name the assessments the values
    came from) and its source is the primary trace.
    """
    tags = {
        f"{TAG_PREFIX}record_id": row["record_id"],
        f"{TAG_PREFIX}rule": row["rule"],
        f"{TAG_PREFIX}rules": ",".join(row["rules"] or ()),
        f"{TAG_PREFIX}source_trace_id": row["source_trace_id"],
        f"{TAG_PREFIX}source_trace_ids": _join_ids(list(row["source_trace_ids"] or ())),
        f"{TAG_PREFIX}app": row["app"] or "",
        f"{TAG_PREFIX}airflow_run_id": row["airflow_run_id"] or "",
        f"{TAG_PREFIX}labels": row["labels"] or "{}",
        f"{TAG_PREFIX}scores": row["scores"] or "{}",
        # The MLflow assessments the expectations and labels were copied from (a reviewer's answers).
        f"{TAG_PREFIX}expectation_ids": row.get("expectation_ids") or "{}",
        f"{TAG_PREFIX}label_ids": row.get("label_ids") or "{}",
    }
    record: dict[str, Any] = {
        "inputs": json.loads(row["inputs"]),
        "outputs": json.loads(row["outputs"]) if row["outputs"] is not None else None,
        "tags": tags,
        "source": {"source_type": "TRACE", "source_data": {"trace_id": row["source_trace_id"]}},
    }
    if row["expectations"]:
        record["expectations"] = json.loads(row["expectations"])
    return record


def _str_tags(tags: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in tags.items()}


class MlflowDatasetStore:
    """:class:`DatasetStore` on a real MLflow tracking server or database."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri

    @property
    def client(self) -> Any:
        """An ``MlflowClient`` bound to this store's tracking URI."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    @contextlib.contextmanager
    def _global_uri(self) -> Iterator[None]:
        # merge_records/to_df resolve the store from the global tracking URI; scope it to this call.
        from genai_flywheel.mlflow_compat import use_tracking_uri

        with use_tracking_uri(self.tracking_uri):
            yield

    def experiment_id(self, experiment: str) -> str:
        """The id of ``experiment`` (ConfigError naming it when missing)."""
        from genai_flywheel.traces.extract import get_experiment_id

        return get_experiment_id(self.tracking_uri, experiment)

    def find_datasets(self, name: str) -> list[str]:
        """Ids of the datasets named exactly ``name`` (searched across all experiments)."""
        quoted = "'" + name.replace("'", "''") + "'"
        try:
            found = self.client.search_datasets(filter_string=f"name = {quoted}", max_results=10)
        except Exception as err:  # MLflow raises many kinds; the task retries on StoreError
            raise StoreError(f"search_datasets(name={name!r}) failed on {self.tracking_uri}: {err}") from err
        return sorted(d.dataset_id for d in found if d.name == name)

    def create_dataset(self, name: str, experiment_id: str, tags: dict[str, str]) -> str:
        """Create dataset ``name`` linked to ``experiment_id``."""
        try:
            created = self.client.create_dataset(name=name, experiment_id=[experiment_id], tags=_str_tags(tags))
        except Exception as err:
            raise StoreError(f"create_dataset({name!r}) failed on {self.tracking_uri}: {err}") from err
        return created.dataset_id

    def _dataset(self, dataset_id: str) -> Any:
        from mlflow.genai.datasets import EvaluationDataset

        return EvaluationDataset(self.client.get_dataset(dataset_id))

    def upsert_records(self, dataset_id: str, records: list[dict[str, Any]]) -> None:
        """``merge_records`` in batches (one transaction each on a SQL store)."""
        batch = 500
        try:
            with self._global_uri():
                dataset = self._dataset(dataset_id)
                for start in range(0, len(records), batch):
                    dataset.merge_records(records[start : start + batch])
        except Exception as err:
            raise StoreError(f"merge_records into dataset {dataset_id} failed: {err}") from err

    def input_hashes(self, dataset_id: str) -> dict[str, int]:
        """Records per input hash, read back with ``to_df()``."""
        try:
            with self._global_uri():
                frame = self._dataset(dataset_id).to_df()
        except Exception as err:
            raise StoreError(f"reading dataset {dataset_id} failed: {err}") from err
        counts: dict[str, int] = {}
        for inputs in frame["inputs"] if len(frame) else []:
            key = mlflow_input_hash(inputs)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def set_dataset_tags(self, dataset_id: str, tags: dict[str, str]) -> None:
        """Merge ``tags`` into the dataset's tags."""
        try:
            self.client.set_dataset_tags(dataset_id, _str_tags(tags))
        except Exception as err:
            raise StoreError(f"set_dataset_tags({dataset_id}) failed: {err}") from err

    def find_run(self, experiment_id: str, tags: dict[str, str]) -> str | None:
        """The oldest FINISHED run of ``experiment_id`` carrying every tag in ``tags``."""
        clauses = [f"tags.`{k}` = '{str(v).replace(chr(39), chr(39) * 2)}'" for k, v in sorted(tags.items())]
        clauses.append("attributes.status = 'FINISHED'")
        runs = self.client.search_runs(
            [experiment_id], filter_string=" AND ".join(clauses), order_by=["attributes.start_time ASC"]
        )
        return runs[0].info.run_id if runs else None

    def log_run(
        self,
        experiment_id: str,
        run_name: str,
        *,
        params: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: Sequence[Path],
        artifact_path: str,
    ) -> str:
        """One finished run; marked FAILED (and StoreError raised) if anything fails midway."""
        from mlflow.entities import Metric, Param, RunTag

        client = self.client
        run = client.create_run(experiment_id, run_name=run_name, tags=_str_tags(tags))
        run_id = run.info.run_id
        # Metric timestamps take the run's own start time: no second clock reading.
        stamp = int(run.info.start_time or 0)
        try:
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), stamp, 0) for k, v in sorted(metrics.items())],
                params=[Param(k, str(v)) for k, v in sorted(params.items())],
                tags=[RunTag(k, v) for k, v in sorted(_str_tags(tags).items())],
            )
            for path in artifacts:
                client.log_artifact(run_id, str(path), artifact_path=artifact_path)
        except Exception as err:
            client.set_terminated(run_id, status="FAILED")
            raise StoreError(f"logging curation run {run_name!r} failed: {err}") from err
        client.set_terminated(run_id, status="FINISHED")
        return run_id
