"""Interval timestamps: normalised to UTC milliseconds, and rendered as path-safe partition labels."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from genai_flywheel.exceptions import StoreError

_LABEL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$")
_LABEL_FORMAT = "%Y-%m-%dT%H-%M-%SZ"


def to_utc(value: datetime | str) -> datetime:
    """``value`` in UTC (see :func:`genai_flywheel.workspace.to_utc`), truncated to milliseconds, the
    resolution of the metrics store's timestamps; a naive datetime is taken to be UTC already.

    (Python would read a naive datetime as local time, which differs between a laptop and a worker.)
    """
    from genai_flywheel.workspace import to_utc as utc

    value = utc(value)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def iso(value: datetime) -> str:
    """``2026-11-20T00:00:00Z`` (milliseconds appended only when present)."""
    value = to_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`."""
    return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def interval_label(value: datetime) -> str:
    """The partition label of an interval start, ``2026-11-20T00-00-00Z`` (colons are not path-safe)."""
    value = to_utc(value)
    if value.microsecond:
        raise StoreError(
            f"interval start {iso(value)} has a sub-second part; partitions are keyed to the second, so "
            "align the schedule to whole seconds"
        )
    return value.strftime(_LABEL_FORMAT)


def parse_interval_label(label: str) -> datetime | None:
    """Inverse of :func:`interval_label`; ``None`` when ``label`` is not one."""
    if not _LABEL.match(label):
        return None
    try:
        return datetime.strptime(label, _LABEL_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
