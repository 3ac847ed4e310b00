"""Where every stage's files live under the data root.

Intermediate data between tasks goes to files, never to XCom: a task returns the path and a few counts.
Layout (all below the data root)::

    runs/app=<app>/interval=<start>/traces.parquet        extract
    runs/app=<app>/interval=<start>/valid.parquet         validate (rows that meet the contract)
    runs/app=<app>/interval=<start>/quarantine.parquet    validate (rows that do not, with reasons)
    runs/app=<app>/interval=<start>/contract.json         validate (the GX report)
    runs/app=<app>/interval=<start>/sample.parquet        sample
    runs/app=<app>/interval=<start>/scores/shard=<k>.parquet   score
    runs/app=<app>/interval=<start>/writeback.json        write back
    runs/app=<app>/interval=<start>/metrics.parquet       aggregate
    metrics/app=<app>/interval=<start>/part.parquet       store (the metrics store)
    alerts/app=<app>/...                                  alert state and events
    datasets/<name>/v<N>/...                              curated evaluation-dataset snapshots
    evaluations/app=<app>/<run>/...                       development evaluations
    exports/app=<app>/<date>/...                          fine-tuning exports
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


def interval_key(start: datetime) -> str:
    """A file-system-safe, sortable name of an interval start, e.g. ``2026-11-20T13-00-00Z``."""
    return to_utc(start).strftime("%Y-%m-%dT%H-%M-%SZ")


def to_utc(value: datetime | str) -> datetime:
    """``value`` as an aware UTC datetime (naive input is taken as UTC; ISO strings are parsed)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_ms(value: datetime | str) -> int:
    """Epoch milliseconds of ``value``."""
    return int(to_utc(value).timestamp() * 1000)


@dataclass(frozen=True)
class IntervalWorkspace:
    """The files of one application's schedule interval [start, end)."""

    data_root: Path
    app: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, data_root: Path | str, app: str, start: datetime | str, end: datetime | str) -> IntervalWorkspace:
        s, e = to_utc(start), to_utc(end)
        if e <= s:
            raise ValueError(f"interval end {e.isoformat()} must be after its start {s.isoformat()}")
        return cls(Path(data_root), app, s, e)

    @property
    def key(self) -> str:
        return interval_key(self.start)

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)

    @property
    def run_dir(self) -> Path:
        return self.data_root / "runs" / f"app={self.app}" / f"interval={self.key}"

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def shard_path(self, shard: int) -> Path:
        return self.run_dir / "scores" / f"shard={shard:03d}.parquet"
