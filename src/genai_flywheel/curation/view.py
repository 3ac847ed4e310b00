"""A read-only, per-table cache of the Python values the curation rules look at.

Rules, clustering and the cluster report all need the same decoded columns (ids, timestamps, queries,
assessments); decoding them once per table keeps selection linear in the number of traces.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from genai_flywheel.curation.assessments import TraceAssessments, decode_value, parse_assessments
from genai_flywheel.curation.text import canonical_inputs, query_terms

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")


class TraceView:
    """Lazily decoded columns of a trace table (``TRACE_SCHEMA`` or a subset of it)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._derived: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return self.table.num_rows

    def _column(self, name: str) -> list[Any]:
        if name not in self.table.column_names:
            return [None] * self.table.num_rows
        return self.table.column(name).to_pylist()

    @cached_property
    def trace_ids(self) -> list[str]:
        """Column ``trace_id``."""
        return [str(t) for t in self._column("trace_id")]

    @cached_property
    def timestamps(self) -> list[int]:
        """Column ``timestamp_ms`` (missing values as 0)."""
        return [int(t or 0) for t in self._column("timestamp_ms")]

    @cached_property
    def statuses(self) -> list[str | None]:
        """Column ``status``."""
        return self._column("status")

    @cached_property
    def queries(self) -> list[str | None]:
        """Column ``query``."""
        return self._column("query")

    @cached_property
    def assessments(self) -> list[TraceAssessments]:
        """Decoded latest assessments per trace."""
        return [parse_assessments(cell) for cell in self._column("assessments")]

    @cached_property
    def input_keys(self) -> list[str]:
        """Canonical inputs of each trace (the deduplication key; see ``text.canonical_inputs``)."""
        keys = []
        for request, query in zip(self._column("request"), self.queries, strict=True):
            inputs = decode_value(request)
            keys.append(canonical_inputs(inputs if inputs is not None else {"query": query}))
        return keys

    @cached_property
    def terms(self) -> list[tuple[str, ...]]:
        """Normalised content terms of each query (see :func:`genai_flywheel.curation.text.query_terms`)."""
        return [query_terms(q) for q in self.queries]

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A value derived from this table by another module (e.g. a query clustering per method): computed
        by ``compute()`` the first time ``key`` is asked for, cached with the view after that."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def quality(self, index: int, scores: tuple[str, ...], feedback: str | None) -> float | None:
        """How good trace ``index`` looks: the lowest of its numeric ``scores``; negative feedback is 0.0.

        None when the trace has neither a score nor a feedback verdict. Positive feedback alone counts as
        1.0 so a thumbs-up without scores still ranks as good.
        """
        found = self.assessments[index]
        values = [v for v in (found.numeric(name) for name in scores) if v is not None]
        verdict = found.polarity(feedback) if feedback else None
        if verdict == -1:
            return 0.0
        if values:
            return min(values)
        if verdict == 1:
            return 1.0
        return None
