"""Query clusters with stable ids: the clusters of a reference profile, and the assignment of a question to
one of them (:mod:`genai_flywheel.segments.reference` learns them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ReferenceCluster:
    """One query cluster of the reference: its stable id, key terms, label and reference count."""

    cluster_id: str
    key: tuple[str, ...]
    label: str
    count: int


class ClusterAssigner:
    """Assigns a question to the reference cluster whose key terms it contains (the most frequent one in the
    reference; ties: the smaller id), :data:`~genai_flywheel.metrics.segment_schema.NEW` when it contains none, and
    :data:`~genai_flywheel.metrics.segment_schema.MISSING` when it has no content terms."""

    def __init__(self, clusters: Sequence[ReferenceCluster]) -> None:
        self._by_key = {c.key: c for c in clusters}
        self._sizes = sorted({len(c.key) for c in clusters}, reverse=True)
        self.labels = {c.cluster_id: c.label for c in clusters}

    def assign_terms(self, terms: tuple[str, ...]) -> str:
        """The segment key of a question with content ``terms`` (sorted, as ``query_terms`` gives them)."""
        from itertools import combinations

        from genai_flywheel.metrics.segment_schema import MISSING, NEW

        if not terms:
            return MISSING
        best: ReferenceCluster | None = None
        for size in self._sizes:
            if size > len(terms):
                continue
            for combo in combinations(terms, size):
                found = self._by_key.get(combo)
                if found is None:
                    continue
                if best is None or (-found.count, found.cluster_id) < (-best.count, best.cluster_id):
                    best = found
        return best.cluster_id if best is not None else NEW

    def assign(self, queries: Iterable[str | None]) -> list[str]:
        """The segment key of every question (see the class docstring)."""
        from genai_flywheel.curation.text import batch_query_terms

        return [self.assign_terms(terms) for terms in batch_query_terms(queries)]
