"""The score rows the metrics read: one per (trace, scorer), in a few numbers.

A score table (``SCORE_SCHEMA``) may hold a (trace, scorer) pair twice (a sample file that lists a trace
twice, score files of two runs put together); the metrics count each pair once. The row kept is a scored
row before an error row, then the lowest assessment id: the same row whatever order the rows come in.

:func:`unique_scores` keeps only what the estimators read (:func:`unique_score_schema`: the numbers, three
flags and the trace id, about 60 bytes a row), never the values' JSON, rationales or assessment ids;
:class:`ScoreArrays` holds the same as NumPy arrays (35 bytes an entry). :func:`read_score_arrays` reads a
window's score files a batch at a time: it holds one batch of score columns and the window's arrays, never
the window's score table.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.traces.score_errors import BUDGET_SKIP_PREFIX

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

log = logging.getLogger(__name__)

#: The score columns :func:`unique_scores` reads.
SCORE_COLUMNS = ("trace_id", "scorer", "numeric", "passed", "error", "weight", "assessment_id", "source_type")


@functools.cache
def unique_score_schema() -> pa.Schema:
    """Arrow schema of a de-duplicated score table (see the module docstring)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("trace_id", pa.string(), nullable=False),
            pa.field("scorer", pa.dictionary(pa.int32(), pa.string()), nullable=False),
            pa.field("numeric", pa.float64(), nullable=False),  # NaN: no numeric value
            pa.field("passed", pa.float64(), nullable=False),  # 1.0 / 0.0, NaN: no verdict
            pa.field("weight", pa.float64(), nullable=False),  # 1 / inclusion probability (1.0 when unset)
            pa.field("errored", pa.bool_(), nullable=False),  # not scored (error text set)
            pa.field("judge", pa.bool_(), nullable=False),  # an LLM judge's row
            pa.field("budget_skipped", pa.bool_(), nullable=False),  # a judge call the budget did not allow
        ]
    )


def is_unique(table: pa.Table) -> bool:
    """Whether ``table`` is already a de-duplicated score table (its columns' names and types; a filtered or
    sliced one too)."""
    return [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in unique_score_schema()]


def unique_scores(scores: pa.Table) -> pa.Table:
    """One compact row per (trace, scorer) of ``scores`` (:data:`SCORE_COLUMNS` at least), sorted by
    (trace, scorer); a table that already is one is returned as it is.

    A kept, scored row must carry a positive finite weight (null counts once): anything else is a
    DataContractError naming the scorer and the trace.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if is_unique(scores):
        return scores
    schema = unique_score_schema()
    if scores.num_rows == 0:
        return schema.empty_table()
    missing = [c for c in SCORE_COLUMNS if c not in scores.column_names]
    if missing:
        raise DataContractError(f"score table lacks column(s) {missing}; pass the score stage's files")
    errored = pc.is_valid(scores.column("error"))
    # Scored rows before error rows, then the lowest assessment id: the first row of each key is kept. Only
    # the sort order is computed, never a sorted copy of the whole table.
    order = pc.sort_indices(
        pa.table(
            {
                "trace_id": scores.column("trace_id"),
                "scorer": scores.column("scorer"),
                "errored": errored,
                "assessment_id": scores.column("assessment_id"),
            }
        ),
        sort_keys=[
            ("trace_id", "ascending"),
            ("scorer", "ascending"),
            ("errored", "ascending"),
            ("assessment_id", "ascending"),
        ],  # fmt: skip
    )
    trace_ids = pc.take(scores.column("trace_id"), order)
    scorer = pc.take(scores.column("scorer"), order)
    same_trace = pc.equal(trace_ids.slice(1), trace_ids.slice(0, len(trace_ids) - 1))
    same_scorer = pc.equal(scorer.slice(1), scorer.slice(0, len(scorer) - 1))
    repeat = np.concatenate([[False], np.asarray(pc.and_(same_trace, same_scorer).to_numpy(zero_copy_only=False))])
    keep = pa.array(~repeat)
    kept_order = pc.filter(order, keep)

    def column(name: str) -> pa.ChunkedArray | pa.Array:
        return pc.take(scores.column(name), kept_order)

    weight = pc.fill_null(pc.cast(column("weight"), pa.float64()), 1.0)
    errors = column("error")
    table = pa.table(
        {
            "trace_id": pc.filter(trace_ids, keep),
            "scorer": pc.dictionary_encode(pc.filter(scorer, keep)),
            "numeric": pc.fill_null(pc.cast(column("numeric"), pa.float64()), np.nan),
            "passed": pc.fill_null(pc.cast(column("passed"), pa.float64()), np.nan),
            "weight": weight,
            "errored": pc.is_valid(errors),
            "judge": pc.fill_null(pc.equal(column("source_type"), "LLM_JUDGE"), False),
            "budget_skipped": pc.fill_null(pc.starts_with(errors, BUDGET_SKIP_PREFIX), False),
        },
        schema=schema,
    )
    w = table.column("weight").to_numpy()
    bad = ~table.column("errored").to_numpy(zero_copy_only=False) & ~(np.isfinite(w) & (w > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataContractError(
            f"scorer {table.column('scorer')[i].as_py()!r}, trace {table.column('trace_id')[i].as_py()!r}: "
            f"inclusion weight {float(w[i])!r} is not a positive number; the sample stage must set "
            "weight = 1 / sample_rate with 0 < rate <= 1"
        )
    return table


@dataclass(frozen=True)
class ScoreArrays:
    """A de-duplicated score table as NumPy arrays, one entry per (trace, scorer): what the scorer
    estimators read (about 35 bytes a row, 33 MB for a million rows), plus the distinct trace ids.

    ``trace`` codes index ``trace_ids`` (distinct codes are distinct traces); ``scorer`` codes index
    ``names``. Build one with :meth:`of` (a score table) or :func:`read_score_arrays` (shard files).
    """

    names: tuple[str, ...]
    trace_ids: pa.Array
    trace: np.ndarray
    scorer: np.ndarray
    numeric: np.ndarray
    passed: np.ndarray
    weight: np.ndarray
    errored: np.ndarray
    judge: np.ndarray
    budget_skipped: np.ndarray

    def __len__(self) -> int:
        return int(self.trace.size)

    @classmethod
    def of(cls, scores: pa.Table) -> ScoreArrays:
        """The arrays of a score table (de-duplicated first unless it already is)."""
        return _arrays(unique_scores(scores))

    def subset(self, mask: np.ndarray) -> ScoreArrays:
        """The entries where ``mask`` holds (same names and trace ids)."""
        return replace(
            self,
            **{name: getattr(self, name)[mask] for name in _ROW_ARRAYS},
        )

    @property
    def traces(self) -> int:
        """Distinct traces with at least one entry."""
        import numpy as np

        return int(np.unique(self.trace).size)


_ROW_ARRAYS = ("trace", "scorer", "numeric", "passed", "weight", "errored", "judge", "budget_skipped")


def _arrays(unique: pa.Table, names: Sequence[str] | None = None) -> ScoreArrays:
    """:class:`ScoreArrays` of a de-duplicated table; scorer codes index ``names`` (default: its own,
    sorted)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    scorer_text = unique.column("scorer").cast(pa.string())
    own = sorted(set(pc.unique(scorer_text).to_pylist()))
    names = tuple(names if names is not None else own)
    encoded = pc.dictionary_encode(unique.column("trace_id")).combine_chunks() if unique.num_rows else None

    def flags(name: str) -> np.ndarray:
        return np.asarray(unique.column(name).to_numpy(zero_copy_only=False), dtype=bool)

    return ScoreArrays(
        names=names,
        trace_ids=encoded.dictionary if encoded is not None else pa.array([], pa.string()),
        trace=np.asarray(encoded.indices, dtype=np.int32) if encoded is not None else np.empty(0, np.int32),
        scorer=np.asarray(pc.index_in(scorer_text, value_set=pa.array(names, pa.string())), dtype=np.int32),
        numeric=unique.column("numeric").to_numpy(),
        passed=unique.column("passed").to_numpy(),
        weight=unique.column("weight").to_numpy(),
        errored=flags("errored"),
        judge=flags("judge"),
        budget_skipped=flags("budget_skipped"),
    )


def _concat(parts: list[ScoreArrays], names: tuple[str, ...], *, shared: bool = False) -> ScoreArrays:
    """Parts (with the same ``names``) as one; ``parts`` is emptied as they are copied, so the entries are
    held once, plus one part, not twice.

    Parts over disjoint traces by default. With ``shared`` the parts are batches of one file whose trace
    codes are made to index one dictionary first (``unify_dictionaries``: a trace in two batches gets one
    code, as when the file is encoded whole).
    """
    import numpy as np
    import pyarrow as pa

    if any(p.names != names for p in parts):
        raise ValueError("_concat needs parts renamed to the same scorer names")
    total = sum(len(p) for p in parts)
    if shared and parts:
        unified = pa.chunked_array(
            [pa.DictionaryArray.from_arrays(pa.array(p.trace, pa.int32()), p.trace_ids) for p in parts]
        ).unify_dictionaries()
        trace_ids = unified.chunk(0).dictionary if unified.num_chunks else pa.array([], pa.string())
        # In place: the caller's list is the one emptied below.
        parts[:] = [
            replace(p, trace=np.asarray(c.indices, dtype=np.int32)) for p, c in zip(parts, unified.chunks, strict=True)
        ]
    else:
        trace_ids = pa.concat_arrays([p.trace_ids for p in parts]) if parts else pa.array([], pa.string())
    template = parts[0] if parts else None
    out = {
        name: np.empty(total, dtype=getattr(template, name).dtype if template is not None else np.float64)
        for name in _ROW_ARRAYS
    }
    out["trace"] = np.empty(total, dtype=np.int32)
    row = offset = 0
    parts.reverse()  # popped from the end, in their order
    while parts:
        part = parts.pop()
        size = len(part)
        for name in _ROW_ARRAYS:
            out[name][row : row + size] = getattr(part, name) + offset if name == "trace" else getattr(part, name)
        row += size
        offset += 0 if shared else len(part.trace_ids)
    return ScoreArrays(names=names, trace_ids=trace_ids, **out)


def _has_repeats(arrays: ScoreArrays) -> bool:
    """Whether some (trace, scorer) pair occurs twice."""
    import numpy as np

    pairs = arrays.trace.astype(np.int64) * max(1, len(arrays.names)) + arrays.scorer
    return bool(np.unique(pairs).size != pairs.size)


def read_score_arrays(paths: Sequence[Path]) -> ScoreArrays:
    """The de-duplicated score rows of a window's score files as :class:`ScoreArrays`, batch by batch.

    Every batch is de-duplicated on its own and kept only as arrays; a file whose batches still
    repeat a (trace, scorer) pair (rows of one pair split over two batches) is de-duplicated whole, and
    files that share a trace (never written by the score stage, which puts a trace in one shard) are
    de-duplicated together: the result is always that of :func:`unique_scores` over all the rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from genai_flywheel.workspace import iter_parquet_batches

    parts = []
    for path in paths:
        # Each batch de-duplicated on its own and kept as arrays only (its trace ids encoded, never the rows).
        pieces = [
            _arrays(unique_scores(pa.Table.from_batches([b])))
            for b in iter_parquet_batches([path], columns=SCORE_COLUMNS)
        ]
        part = _union(pieces, shared=True) if pieces else _arrays(_empty())
        if _has_repeats(part):
            log.info("score file %s holds a (trace, scorer) pair in two batches: de-duplicated whole", path)
            part = ScoreArrays.of(_read_whole(path))
        parts.append(part)
    arrays = _union(parts)
    if len(arrays.trace_ids) != pc.count_distinct(arrays.trace_ids).as_py():
        log.warning("score files %s share traces: de-duplicated together", [str(p) for p in paths])
        return ScoreArrays.of(pa.concat_tables([_read_whole(p) for p in paths]))
    return arrays


def _union(parts: list[ScoreArrays], *, shared: bool = False) -> ScoreArrays:
    """``parts`` as one over the union of their scorer names (see :func:`_concat`); empties ``parts``."""
    names = tuple(sorted({n for part in parts for n in part.names}))
    renamed = [_renamed(part, names) for part in parts]
    parts.clear()
    return _concat(renamed, names, shared=shared)


def _empty() -> pa.Table:
    return unique_score_schema().empty_table()


def _renamed(part: ScoreArrays, names: tuple[str, ...]) -> ScoreArrays:
    """``part`` with its scorer codes indexing ``names`` (a superset of its own)."""
    import numpy as np

    if part.names == names:
        return part
    lookup = np.asarray([names.index(n) for n in part.names] or [0], dtype=np.int32)
    return replace(part, names=names, scorer=lookup[part.scorer] if len(part) else part.scorer)


def _read_whole(path: Path) -> pa.Table:
    from genai_flywheel.workspace import read_stage_parquet

    return read_stage_parquet(path, "score", list(SCORE_COLUMNS))
