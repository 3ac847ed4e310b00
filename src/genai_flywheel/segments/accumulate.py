"""Segment metrics of one application's interval, accumulated batch by batch over its trace infos.

For every configured dimension each trace gets a segment key (:mod:`genai_flywheel.segments.dimensions`);
the ``top_k`` keys by volume in the interval (ties: the smaller key) are segments of their own, the rest are
pooled as ``other``; ``(none)`` and ``new`` are never pooled (a missing value and a question no cluster takes
are findings in themselves). The metrics of a segment are those of :mod:`genai_flywheel.metrics.segment_schema`,
computed with the app-level statistics: exact counts and shares, Wilson intervals for shares, order-statistic
intervals for latency percentiles, and for the scorers the app-level weighted estimators
(:func:`genai_flywheel.metrics.aggregate._scorer_rows`) over the segment's sampled traces.

Memory: per trace and dimension a 1-byte segment code (2 past 127 values, 4 past 32,767), plus a latency
(a float32 while every one is exactly a float32, as whole milliseconds are), an error flag and a feedback
polarity per feedback name (about 9 bytes per trace for three dimensions: 9 MB per million traces),
and per scored trace its key codes (by its position in the score arrays' trace ids, not by its id); never
the traces themselves. A segment's scorer metrics read the window's score arrays through a mask, never a
copy of them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.memory import Column
from genai_flywheel.metrics import stats

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.config import SegmentDimension, Segments
    from genai_flywheel.metrics.scores import ScoreArrays
    from genai_flywheel.segments.reference import ReferenceProfile

log = logging.getLogger(__name__)

#: What :meth:`SegmentAccumulator.add_traces` reads besides each dimension's source column.
BASE_COLUMNS = ("trace_id", "status", "execution_time_ms", "assessments")
#: Segment metrics taken from the app-level scorer rows.
_SCORER_METRICS = (".mean", ".pass_rate")
_PERCENTILES = (("latency_p50_ms", 0.50), ("latency_p95_ms", 0.95))


def columns_for(segments: Segments) -> list[str]:
    """The pass-one columns the segment metrics of ``segments`` read."""
    from genai_flywheel.segments.dimensions import source_column

    return list(dict.fromkeys([*BASE_COLUMNS, *(source_column(d) for d in segments.dimensions)]))


class _Dimension:
    """One dimension's running state: the code of every key seen, and every trace's code."""

    def __init__(self, dim: SegmentDimension, top_k: int, capacity: int | None = None) -> None:
        import numpy as np

        self.dim = dim
        self.top_k = dim.top_k or top_k
        self.codes: dict[str, int] = {}
        self.keys: list[str] = []
        # One byte while the keys fit (a dimension's distinct values are few as a rule), then two, then four.
        self.trace_codes = Column(np.int8, capacity)
        self.examples: dict[int, list[str]] = {}

    def all_codes(self) -> np.ndarray:
        """Every trace's key code, in the order the traces came."""
        return self.trace_codes.values()

    def add(self, keys: list[str], trace_ids: list[str]) -> np.ndarray:
        import numpy as np

        codes = np.empty(len(keys), dtype=np.int32)
        for i, key in enumerate(keys):
            code = self.codes.get(key)
            if code is None:
                code = self.codes[key] = len(self.keys)
                self.keys.append(key)
            codes[i] = code
        while len(self.keys) > np.iinfo(self.trace_codes.dtype).max:
            self.trace_codes.widen(np.int16 if self.trace_codes.dtype == np.int8 else np.int32)
        self.trace_codes.append(codes)
        # The smallest trace ids of each key: examples that do not depend on the order of the batches.
        from genai_flywheel.metrics.segment_schema import EXAMPLES

        for code, trace_id in zip(codes.tolist(), trace_ids, strict=True):
            kept = self.examples.setdefault(code, [])
            if len(kept) < EXAMPLES:
                kept.append(trace_id)
                kept.sort()
            elif trace_id < kept[-1]:
                kept[-1] = trace_id
                kept.sort()
        return codes


class SegmentAccumulator:
    """The segment metrics of one interval: :meth:`add_traces` per batch of valid trace infos, then
    :meth:`table` with the interval's score table."""

    def __init__(
        self,
        *,
        app: str,
        segments: Segments,
        profile: ReferenceProfile | None,
        scored_ids: pa.Array | None = None,
        capacity: int | None = None,
    ) -> None:
        import numpy as np
        import pyarrow as pa

        self.app = app
        self.segments = segments
        self.profile = profile
        self.assigner = profile.assigner() if profile is not None else None
        if self.assigner is None and any(d.source == "query_cluster" for d in segments.dimensions):
            raise DataContractError(f"app {app!r}: the query_cluster dimension needs a reference profile")
        # ``capacity``: the interval's trace count when known, so the per-trace columns are allocated once.
        self.dims = [_Dimension(d, segments.top_k, capacity) for d in segments.dimensions]
        self.scored_ids = scored_ids if scored_ids is not None else pa.array([], pa.string())
        self.volume = 0
        self._errors = Column(bool, capacity)
        # Whole milliseconds fit a float32 exactly (half the bytes); the first value that does not widens it.
        self._latency = Column(np.float32, capacity, widen_to=np.float64)
        self._latency_reordered = False  # rows() sorted it in place for a segment spanning the window
        self._capacity = capacity
        self._feedback: dict[str, Column] = {}  # name -> per trace: 1 positive, 0 negative, -1 none
        # Per distinct scored trace (a position in ``scored_ids``): its key code per dimension, once seen.
        self._scored_seen = np.zeros(len(self.scored_ids), dtype=bool)
        self._scored_keys = {d.name: np.zeros(len(self.scored_ids), dtype=np.int16) for d in segments.dimensions}
        self.new_terms: list[tuple[str, ...]] = []

    def add_traces(self, batch: pa.Table | pa.RecordBatch) -> None:
        """Count one batch of the interval's valid trace infos (:func:`columns_for` columns)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from genai_flywheel.metrics.aggregate import latest_feedback
        from genai_flywheel.metrics.segment_schema import NEW
        from genai_flywheel.segments.dimensions import dimension_keys

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if table.num_rows == 0:
            return
        trace_ids = table.column("trace_id").to_pylist()
        codes = {}
        for state in self.dims:
            keys = dimension_keys(table, state.dim, self.assigner)
            codes[state.dim.name] = state.add(keys, trace_ids)
            if state.dim.source == "query_cluster" and len(self.new_terms) < MAX_NEW_QUESTIONS:
                from genai_flywheel.curation.text import batch_query_terms

                queries = table.column("query").to_pylist()
                self.new_terms.extend(batch_query_terms(queries[i] for i, key in enumerate(keys) if key == NEW))
                del self.new_terms[MAX_NEW_QUESTIONS:]
        is_error = pc.fill_null(pc.equal(pc.utf8_upper(table.column("status")), "ERROR"), False)
        self._errors.append(np.asarray(is_error.to_numpy(zero_copy_only=False), dtype=bool))
        latency = pc.cast(table.column("execution_time_ms"), pa.float64()).to_numpy(zero_copy_only=False)
        self._latency.append(np.asarray(latency, dtype=np.float64))
        polarities: dict[str, np.ndarray] = {}
        for (row, name), positive in latest_feedback(table).items():
            if name not in polarities:
                polarities[name] = np.full(table.num_rows, -1, dtype=np.int8)
            polarities[name][row] = int(positive)
        for name in polarities.keys() - self._feedback.keys():  # first met: none on the traces before
            self._feedback[name] = Column(np.int8, self._capacity)
            self._feedback[name].append(np.full(self.volume, -1, dtype=np.int8))
        for name, column in self._feedback.items():
            mine = polarities.get(name)
            column.append(mine if mine is not None else np.full(table.num_rows, -1, dtype=np.int8))
        self._add_scored(table, codes)
        self.volume += table.num_rows

    def _add_scored(self, table: pa.Table, codes: dict[str, np.ndarray]) -> None:
        """Keep the key codes of the batch's scored traces by their position in ``scored_ids`` (a few
        bytes per scored trace, never its id); a trace listed twice keeps its first row's codes."""
        import numpy as np
        import pyarrow.compute as pc

        if not len(self.scored_ids):
            return
        # The batch's ids hashed, the scored ids probed: a hash table of one batch, not of the whole sample.
        # index_in gives a value's first row in the batch, so a trace listed twice keeps its first row.
        found = pc.index_in(self.scored_ids, value_set=table.column("trace_id").combine_chunks())
        if found.null_count == len(found):
            return
        row_of = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        targets = np.flatnonzero((row_of >= 0) & ~self._scored_seen)
        rows = row_of[targets]
        self._scored_seen[targets] = True
        for name, batch_codes in codes.items():
            if self._scored_keys[name].itemsize < batch_codes.itemsize and batch_codes.max() > np.iinfo(np.int16).max:
                self._scored_keys[name] = self._scored_keys[name].astype(batch_codes.dtype)  # as the dimension widened
            self._scored_keys[name][targets] = batch_codes[rows]

    def _feedback_arrays(self) -> dict[str, np.ndarray]:
        return {name: column.values() for name, column in sorted(self._feedback.items())}

    def segment_codes(self, state: _Dimension) -> tuple[np.ndarray, list[str]]:
        """The segment index of every key code of the dimension, and the segment keys (top-K and the specials
        in key order, then ``other`` when values were pooled)."""
        import numpy as np

        from genai_flywheel.metrics.segment_schema import MISSING, NEW, OTHER

        codes = state.all_codes()
        volume = _count(codes, len(state.keys))
        special = [c for c, key in enumerate(state.keys) if key in (MISSING, NEW)]
        ordinary = sorted(
            (c for c, key in enumerate(state.keys) if key not in (MISSING, NEW)),
            key=lambda c: (-int(volume[c]), state.keys[c]),
        )
        kept = sorted(ordinary[: state.top_k] + special, key=lambda c: state.keys[c])
        segment_keys = [state.keys[c] for c in kept]
        # At most 200 kept (config) plus the specials and other: one byte a trace for the per-trace segment
        # arrays while they fit, two past that.
        dtype = np.int8 if len(kept) < np.iinfo(np.int8).max else np.int16
        mapping = np.full(len(state.keys), len(kept), dtype=dtype)  # default: other
        for index, code in enumerate(kept):
            mapping[code] = index
        if len(ordinary) > state.top_k:
            segment_keys.append(OTHER)
        return mapping, segment_keys

    def _traces_by_segment(self, state: _Dimension, mapping: np.ndarray) -> np.ndarray:

        codes = state.all_codes()
        return mapping[codes] if codes.size else codes

    def label(self, state: _Dimension, key: str, pooled: int) -> str:
        """What a person reads for a segment key."""
        from genai_flywheel.metrics.segment_schema import MISSING, NEW, OTHER

        if key == OTHER:
            return f"other ({pooled} values)"
        if key == NEW:
            return "new questions (no reference cluster)"
        if key == MISSING:
            return "(none)" if state.dim.source != "query_cluster" else "(no question terms)"
        if state.dim.source == "query_cluster" and self.assigner is not None:
            return self.assigner.labels.get(key, key)
        return key

    def rows(self, scores: pa.Table | ScoreArrays) -> list[dict[str, Any]]:
        """Every segment metric row (dimension, segment, label, metric, value, n, ci_low, ci_high, examples)."""
        import numpy as np

        from genai_flywheel.metrics.scores import ScoreArrays
        from genai_flywheel.metrics.segment_schema import OTHER

        if self._latency_reordered:
            raise RuntimeError("SegmentAccumulator.rows() reorders the latency column: call it (or table()) once")
        latency = self._latency.values()
        columns = {
            "errors": self._errors.values(),
            "latency": latency,
            "has_latency": None if not np.isnan(latency).any() else ~np.isnan(latency),  # None: every trace
        }
        feedback = self._feedback_arrays()
        arrays = scores if isinstance(scores, ScoreArrays) else ScoreArrays.of(scores)
        trace_codes, present = self._scored_codes(arrays)
        blocks: list[list[dict[str, Any]]] = []  # one per segment, in order
        # A segment holding every trace of the window (one model, one version) takes the latency column itself
        # (held in float64; a float32 column gives a float64 copy), sorted in place once the other segments
        # are done with it.
        spanning: list[tuple[int, dict[str, Any], list[str]]] = []
        for state in self.dims:
            mapping, keys = self.segment_codes(state)
            seg = self._traces_by_segment(state, mapping)
            pooled = len(state.keys) - (len(keys) - (1 if keys and keys[-1] == OTHER else 0))
            # Every score entry's segment (-1: a trace the infos did not hold), through its trace's code.
            if trace_codes:
                per_trace = np.where(present, mapping[trace_codes[state.dim.name]], -1).astype(np.int16)
                scored_segment = per_trace[arrays.trace]
                del per_trace
            else:
                scored_segment = None
            for index, key in enumerate(keys):
                mask = seg == index
                if not mask.any():
                    continue
                examples = sorted(t for c, ids in state.examples.items() if mapping[c] == index for t in ids)
                head = {"dimension": state.dim.name, "segment": key, "label": self.label(state, key, pooled)}
                entries = scored_segment == index if scored_segment is not None else None
                if columns["has_latency"] is None and mask.all():
                    spanning.append((len(blocks), head, examples))
                    blocks.append([])
                    continue
                metrics = self._metrics(mask, columns, feedback, arrays if entries is not None else None, entries)
                blocks.append(_segment_rows(head, examples, metrics))
        if spanning:
            self._latency_reordered = True
            mask = np.ones(self.volume, dtype=bool)
            # Such a segment's score entries are those of every scored trace the infos hold.
            entries = present[arrays.trace] if trace_codes else None
            scored = arrays if entries is not None else None
            for position, head, examples in spanning:
                metrics = self._metrics(mask, columns, feedback, scored, entries, whole=True)
                blocks[position] = _segment_rows(head, examples, metrics)
        return [row for block in blocks for row in block]

    def _scored_codes(self, scores: ScoreArrays) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per dimension the key code of every distinct scored trace (``scores.trace_ids``), and whether the
        trace is among the traces seen by :meth:`add_traces` (``{}`` when nothing was scored)."""
        import numpy as np
        import pyarrow.compute as pc

        if not self._scored_seen.any() or not len(scores):
            return {}, np.empty(0, dtype=bool)
        if scores.trace_ids is self.scored_ids:
            # The monitor passes the arrays' own ids as ``scored_ids``: positions are codes, no hash table of
            # the sample's ids (20 MB at a million traces) is needed to find them.
            return dict(self._scored_keys), self._scored_seen
        found = pc.index_in(scores.trace_ids, value_set=self.scored_ids)
        position = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        known = position >= 0
        position[~known] = 0  # any position: masked by ``present``
        present = known & self._scored_seen[position]
        return {name: keys[position] for name, keys in self._scored_keys.items()}, present

    def _metrics(
        self,
        mask: np.ndarray,
        columns: dict[str, np.ndarray | None],
        feedback: dict[str, np.ndarray],
        scores: ScoreArrays | None,
        entries: np.ndarray | None,
        whole: bool = False,
    ) -> list[tuple[str, float | None, int, float | None, float | None]]:
        """One segment's metrics (``volume`` first) from the traces in ``mask`` and its score ``entries``;
        ``whole``: the segment is every trace, each with a latency, and the latency column may be reordered."""

        import numpy as np

        from genai_flywheel.metrics.aggregate import _scorer_rows

        volume = int(mask.sum())
        failed = int(columns["errors"][mask].sum())
        out = [
            ("volume", float(volume), volume, None, None),
            ("share", volume / self.volume, self.volume, *stats.wilson_interval(volume, self.volume)),
            ("error_rate", failed / volume, volume, *stats.wilson_interval(failed, volume)),
        ]
        has_latency = columns["has_latency"]
        if whole:
            values = columns["latency"]
        else:
            values = columns["latency"][mask if has_latency is None else mask & has_latency]
        # Held as float32 when every latency is one exactly: the same values in float64, for the same figures.
        values = values.astype(np.float64, copy=False)
        # The segment's own copy, partitioned for the estimates and then sorted for the CIs, in place.
        estimates = stats.quantiles(values, [q for _, q in _PERCENTILES], overwrite=True)
        values.sort()
        for (metric, q), estimate in zip(_PERCENTILES, estimates, strict=True):
            value = estimate if values.size else None
            out.append((metric, value, int(values.size), *stats.quantile_ci(values, q)))
        del values
        for name, polarity in feedback.items():
            counted = mask & (polarity >= 0)
            n = int(counted.sum())
            if n:
                positive = int((polarity[counted] == 1).sum())
                out.append((f"feedback.{name}.positive_rate", positive / n, n, *stats.wilson_interval(positive, n)))
        if scores is not None and entries is not None and entries.any():
            # The app-level estimators (weights, de-duplication, CIs) over the segment's scored traces.
            rows = _scorer_rows(scores, entries)
            out += [
                (r.metric, r.value, r.n, r.ci_low, r.ci_high)
                for r in rows
                if r.metric.startswith("scorer.") and r.metric.endswith(_SCORER_METRICS)
            ]
        return out

    def table(self, scores: pa.Table | ScoreArrays, *, interval_start: datetime, interval_end: datetime) -> pa.Table:
        """The interval's segment metrics table (``segments_schema``), sorted by (dimension, segment, metric)."""
        import math

        import pyarrow as pa

        from genai_flywheel.metrics.intervals import to_utc
        from genai_flywheel.metrics.segment_schema import segments_schema

        rows = self.rows(scores)
        schema = segments_schema()
        start, end = to_utc(interval_start), to_utc(interval_end)

        def finite(x: Any) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        for row in rows:
            row.update(app=self.app, interval_start=start, interval_end=end)
            for key in ("value", "ci_low", "ci_high"):
                row[key] = finite(row[key])
        table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
        return table.sort_by([("dimension", "ascending"), ("segment", "ascending"), ("metric", "ascending")])

    def dimension_volumes(self) -> dict[str, dict[str, int]]:
        """Per dimension: traces per segment key of the interval, pooled as in :meth:`segment_codes`."""

        out = {}
        for state in self.dims:
            mapping, keys = self.segment_codes(state)
            seg = self._traces_by_segment(state, mapping)
            counts = _count(seg, len(keys))
            out[state.dim.name] = {key: int(counts[i]) for i, key in enumerate(keys)}
        return out


def _count(codes: np.ndarray, length: int) -> np.ndarray:
    """How often each of ``0 .. length - 1`` occurs in ``codes``: ``np.bincount``, a slice at a time, since it
    widens its input to 8-byte integers (8 MB for a million 1-byte codes)."""
    import numpy as np

    counts = np.zeros(length, dtype=np.int64)
    for start in range(0, codes.size, _COUNT_SLICE):
        counts += np.bincount(codes[start : start + _COUNT_SLICE], minlength=length)
    return counts


_COUNT_SLICE = 1 << 16


def _segment_rows(
    head: dict[str, Any],
    examples: list[str],
    metrics: list[tuple[str, float | None, int, float | None, float | None]],
) -> list[dict[str, Any]]:
    """A segment's metric rows as :meth:`SegmentAccumulator.rows` gives them (examples on the volume row)."""
    from genai_flywheel.metrics.segment_schema import EXAMPLES

    return [
        {
            **head,
            "metric": metric,
            "value": value,
            "n": n,
            "ci_low": low,
            "ci_high": high,
            "examples": examples[:EXAMPLES] if i == 0 else None,  # the volume row
        }
        for i, (metric, value, n, low, high) in enumerate(metrics)
    ]


#: Questions without a cluster kept to count the new patterns among them (the first ones of the interval).
MAX_NEW_QUESTIONS = 20_000
