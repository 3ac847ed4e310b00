"""The segment key of every trace of a batch, for one dimension (``segments.dimensions[].source``).

``tags.<key>`` and ``metadata.<key>`` read the trace's tag or request-metadata value, ``model`` the trace's
model and ``query_cluster`` the reference cluster of the user's question (see
:class:`genai_flywheel.segments.reference.ClusterAssigner`). A trace without the value is in
:data:`~genai_flywheel.metrics.segment_schema.MISSING`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from genai_flywheel.exceptions import DataContractError

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import SegmentDimension
    from genai_flywheel.segments.clusters import ClusterAssigner

#: The pass-one columns a dimension reads, by source kind.
COLUMNS = {"tags": "tags", "metadata": "metadata", "model": "model", "query_cluster": "query"}


def source_column(dim: SegmentDimension) -> str:
    """The pass-one column ``dim`` is read from."""
    return COLUMNS[dim.source.split(".", 1)[0]]


def _json_value(text: str | None, key: str, cache: dict[str | None, str]) -> str:
    from genai_flywheel.metrics.segment_schema import MISSING

    if text in cache:
        return cache[text]
    try:
        mapping = json.loads(text) if text else {}
    except ValueError:
        mapping = {}
    value = mapping.get(key) if isinstance(mapping, dict) else None
    key_value = MISSING if value is None or value == "" else str(value)
    cache[text] = key_value
    return key_value


def dimension_keys(table: pa.Table, dim: SegmentDimension, assigner: ClusterAssigner | None) -> list[str]:
    """The segment key of every row of ``table`` (pass-one rows) in dimension ``dim``."""
    from genai_flywheel.metrics.segment_schema import MISSING

    column = source_column(dim)
    if column not in table.column_names:
        raise DataContractError(
            f"segment dimension {dim.name!r} ({dim.source}) reads column {column!r}, which the trace table lacks; "
            "pass the extract stage's rows"
        )
    values = table.column(column).to_pylist()
    kind = dim.source.split(".", 1)[0]
    if kind == "query_cluster":
        if assigner is None:
            raise DataContractError(f"segment dimension {dim.name!r} needs the reference profile's query clusters")
        return assigner.assign(values)
    if kind == "model":
        return [MISSING if v is None or v == "" else str(v) for v in values]
    key = dim.source.split(".", 1)[1]
    # Traces of one app share a handful of tag sets: parse each distinct JSON text once.
    cache: dict[str | None, str] = {}
    return [_json_value(v, key, cache) for v in values]
