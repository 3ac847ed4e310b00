"""Versioned snapshots of curated evaluation datasets (MLflow OSS datasets have no versions of their own).

Each curation run produces the dataset's full content after the run. It is stored under the data root as an
immutable snapshot::

    datasets/<dataset_name>/v<N>/records.parquet
    datasets/<dataset_name>/v<N>/manifest.json

``N`` is the previous version + 1 only when the content digest changed; an unchanged digest keeps the newest
version (nothing is written). ``manifest.json`` is written last and is the commit marker: a directory
without it (a crashed run) is not a version and is overwritten by the next run.

The digest is ``sha256:`` + the SHA-256 of the records' canonical JSON lines (sorted by ``record_id``,
every column, keys sorted, compact separators), so it does not depend on Parquet encoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.records import canonical_lines, record_schema
from genai_flywheel.exceptions import ConfigError, StoreError

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

DATASETS_DIR = "datasets"
RECORDS_FILE = "records.parquet"
MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")
_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def dataset_name(prefix: str, app: str, ruleset: str) -> str:
    """``<prefix>_<app>_<ruleset>``, checked to be a safe directory and MLflow dataset name."""
    name = f"{prefix}_{app}_{ruleset}"
    return check_dataset_name(name)


def check_dataset_name(name: str) -> str:
    """``name`` if it is usable as a directory and MLflow dataset name, else a ConfigError."""
    if not _DATASET_NAME.match(name):
        raise ConfigError(
            f"dataset name {name!r} is not usable; use letters, digits, '_', '-' or '.' "
            "(check curation.dataset_prefix, the application name and the rule set name)"
        )
    return name


def snapshot_digest(records: pa.Table) -> str:
    """``sha256:<hex>`` of the records' canonical JSON lines (order-independent, encoding-independent), over
    the record columns the table has (a snapshot written before a column was added keeps its digest)."""
    digest = hashlib.sha256()
    for line in canonical_lines(records, [c for c in record_schema().names if c in records.column_names]):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def dataset_dir(data_root: Path | str, name: str) -> Path:
    """Where the snapshots of dataset ``name`` live."""
    return Path(data_root) / DATASETS_DIR / check_dataset_name(name)


def list_versions(data_root: Path | str, name: str) -> list[int]:
    """Committed versions (those with a manifest) of dataset ``name``, ascending."""
    base = dataset_dir(data_root, name)
    if not base.is_dir():
        return []
    versions = []
    for child in base.iterdir():
        match = _VERSION_DIR.match(child.name)
        if match and (child / MANIFEST_FILE).is_file():
            versions.append(int(match.group(1)))
    return sorted(versions)


def read_manifest(data_root: Path | str, name: str, version: int) -> dict[str, Any]:
    """The manifest of version ``version`` of dataset ``name``."""
    path = dataset_dir(data_root, name) / f"v{version}" / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(
            f"dataset {name!r} has no version {version} under {path.parent.parent}; "
            f"available: {list_versions(data_root, name) or 'none'}"
        ) from None
    except ValueError as err:
        raise StoreError(f"{path} is not valid JSON ({err}); restore it or delete the version directory") from err


def load_dataset_version(
    data_root: Path | str, name: str, version: int | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    """The records (``RECORD_SCHEMA`` Arrow table, sorted by ``record_id``) and manifest of a dataset version.

    ``version=None`` loads the newest. The records' digest is checked against the manifest, so a modified
    snapshot fails loudly instead of silently changing an evaluation.
    """
    import pyarrow as pa

    from genai_flywheel.workspace import read_parquet

    versions = list_versions(data_root, name)
    if not versions:
        raise StoreError(
            f"no curated versions of dataset {name!r} under {dataset_dir(data_root, name)}; "
            "run the curation DAG first or check the data root and dataset name"
        )
    chosen = versions[-1] if version is None else int(version)
    manifest = read_manifest(data_root, name, chosen)
    path = dataset_dir(data_root, name) / f"v{chosen}" / RECORDS_FILE
    try:
        records = read_parquet(path)
    except (OSError, ValueError) as err:
        raise StoreError(f"cannot read {path}: {err}; the snapshot of version {chosen} is damaged") from err
    schema = record_schema()
    present = [c for c in schema.names if c in records.column_names]
    records = records.select(present).cast(pa.schema([schema.field(c) for c in present]))
    digest = snapshot_digest(records)
    if digest != manifest.get("digest"):
        raise StoreError(
            f"dataset {name!r} v{chosen}: records digest {digest} differs from the manifest's "
            f"{manifest.get('digest')}; the snapshot was modified after it was written"
        )
    # An older snapshot lacks the columns added since (the assessment-id lineage): they are null there.
    for column in schema.names:
        if column not in present:
            records = records.append_column(schema.field(column), pa.nulls(records.num_rows, schema.field(column).type))
    return records.select(schema.names), manifest


@dataclass(frozen=True)
class SnapshotInfo:
    """A committed snapshot: its version, directory, digest, manifest, and whether this call wrote it."""

    version: int
    path: Path
    digest: str
    manifest: dict[str, Any]
    created: bool


def latest_snapshot(data_root: Path | str, name: str) -> tuple[pa.Table | None, dict[str, Any] | None]:
    """The newest committed snapshot's records and manifest, or (None, None) for a new dataset."""
    if not list_versions(data_root, name):
        return None, None
    return load_dataset_version(data_root, name, None)


def commit_snapshot(data_root: Path | str, name: str, records: pa.Table, manifest: dict[str, Any]) -> SnapshotInfo:
    """Store ``records`` as the next version of ``name`` unless the newest version has the same digest.

    ``manifest`` holds the caller's fields (dataset id, counts, rules, lineage); ``dataset``, ``version``,
    ``previous_version``, ``digest``, ``records``, ``schema_version`` and ``files`` are filled in here.
    """
    from genai_flywheel.workspace import atomic_write_json, atomic_write_parquet

    records = records.select(record_schema().names).cast(record_schema())
    records = records.sort_by("record_id")
    digest = snapshot_digest(records)
    versions = list_versions(data_root, name)
    if versions:
        newest = read_manifest(data_root, name, versions[-1])
        if newest.get("digest") == digest:
            logger.info("dataset %s: content unchanged (digest %s), stays at v%d", name, digest, versions[-1])
            path = dataset_dir(data_root, name) / f"v{versions[-1]}"
            return SnapshotInfo(versions[-1], path, digest, newest, created=False)
    version = (versions[-1] + 1) if versions else 1
    path = dataset_dir(data_root, name) / f"v{version}"
    records_path = atomic_write_parquet(records, path / RECORDS_FILE)
    full = dict(manifest)
    full.update(
        {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "dataset": name,
            "version": version,
            "previous_version": versions[-1] if versions else None,
            "digest": digest,
            "records": records.num_rows,
            "files": {RECORDS_FILE: "sha256:" + hashlib.sha256(records_path.read_bytes()).hexdigest()},
        }
    )
    atomic_write_json(full, path / MANIFEST_FILE)
    logger.info("dataset %s: wrote v%d (%d records, digest %s)", name, version, records.num_rows, digest)
    return SnapshotInfo(version, path, digest, full, created=True)
