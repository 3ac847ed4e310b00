"""The score rows the metrics read: one per (trace, scorer), in a few numbers.

A score table (``SCORE_SCHEMA``) may hold a (trace, scorer) pair twice (a sample file that lists a trace
twice, score files of two runs put together); the metrics count each pair once. The row kept is a scored
row before an error row, then the lowest assessment id: the same row whatever order the rows come in.

:func:`unique_scores` keeps only what the estimators read (:func:`unique_score_schema`: the numbers, three
flags and the trace id, about 60 bytes a row), never the values' JSON, rationales or assessment ids;
:class:`ScoreArrays` holds the same as NumPy arrays (22 bytes an entry). :func:`read_score_arrays` reads a
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

#: ``ScoreArrays.passed`` of an entry without a pass/fail verdict.
NO_VERDICT = -1
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
    estimators read (22 bytes a row, 21 MB for a million rows), plus the distinct trace ids.

    ``trace`` codes index ``trace_ids`` (distinct codes are distinct traces); ``scorer`` codes index
    ``names``; ``passed`` is 1 (pass), 0 (fail) or -1 (no verdict), one byte where the table's float took
    eight; ``weight`` is float32 when that holds every weight exactly (a reader converts before arithmetic).
    Build one with :meth:`of` (a score table) or :func:`read_score_arrays` (shard files).
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
        scorer=np.asarray(pc.index_in(scorer_text, value_set=pa.array(names, pa.string())), dtype=np.int16),
        numeric=unique.column("numeric").to_numpy(),
        passed=_verdicts(unique.column("passed").to_numpy()),
        weight=_weights(unique.column("weight").to_numpy()),
        errored=flags("errored"),
        judge=flags("judge"),
        budget_skipped=flags("budget_skipped"),
    )


def _weights(weights: np.ndarray) -> np.ndarray:
    """Inclusion weights as :class:`ScoreArrays` holds them: float32 when every one is exactly a float32 (1 / rate
    for the usual rates: 1, 2, 4, 5, 10, 20...), float64 otherwise; the same values either way."""
    import numpy as np

    from genai_flywheel.memory import narrowed

    return narrowed(weights, np.float32)


def _verdicts(passed: np.ndarray) -> np.ndarray:
    """The ``passed`` column (1.0, 0.0, NaN) as :class:`ScoreArrays` holds it: 1, 0, -1 in one byte."""
    import numpy as np

    out = np.full(passed.size, NO_VERDICT, dtype=np.int8)
    known = ~np.isnan(passed)
    out[known] = passed[known]
    return out


def _has_repeats(arrays: ScoreArrays) -> bool:
    """Whether some (trace, scorer) pair occurs twice."""
    import numpy as np

    pairs = arrays.trace.astype(np.int64) * max(1, len(arrays.names)) + arrays.scorer
    return bool(np.unique(pairs).size != pairs.size)


def read_score_arrays(paths: Sequence[Path]) -> ScoreArrays:
    """The de-duplicated score rows of a window's score files as :class:`ScoreArrays`, batch by batch.

    The arrays are allocated once for every row of the files (Parquet's row counts) and filled a batch at a
    time: each batch de-duplicated on its own, its trace ids encoded, never held as rows. A trace whose rows
    run from one batch into the next (the score stage writes a file sorted by trace) keeps one code. Should
    a (trace, scorer) pair still occur twice (rows of one pair in two batches) or a trace in two places
    (files that share a trace, never written by the score stage), the files are de-duplicated whole: the
    result is always that of :func:`unique_scores` over all the rows.
    """
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.workspace import iter_parquet_batches, parquet_rows

    capacity = parquet_rows(paths)
    out = {name: np.empty(capacity, dtype=dtype) for name, dtype in _ROW_DTYPES.items()}
    names: list[str] = []  # in the order met; sorted at the end
    ids: list[pa.Array] = []
    known = 0  # distinct trace ids so far
    last: str | None = None  # the last trace id of the previous batch
    continued: list[int] = []  # codes of traces whose rows run into a second batch
    row = 0
    for path in paths:
        for batch in iter_parquet_batches([path], columns=SCORE_COLUMNS):
            unique = unique_scores(pa.Table.from_batches([batch]))
            if not unique.num_rows:
                continue
            part = _arrays(unique)
            batch_ids = part.trace_ids  # sorted: unique_scores sorts by trace
            codes = part.trace.astype(np.int32) + known
            if last is not None and batch_ids[0].as_py() == last:  # the previous batch's last trace goes on
                codes = np.where(part.trace == 0, known - 1, codes - 1).astype(np.int32)
                continued.append(known - 1)
                batch_ids = batch_ids.slice(1)
            ids.append(batch_ids)
            known += len(batch_ids)
            last = part.trace_ids[-1].as_py()
            lookup = np.asarray([_code(names, name) for name in part.names] or [0], dtype=np.int32)
            size = len(part)
            window = slice(row, row + size)
            out["trace"][window] = codes
            out["scorer"][window] = lookup[part.scorer]
            if part.weight.itemsize > out["weight"].itemsize:  # a weight float32 cannot hold: the column widens
                out["weight"] = out["weight"].astype(np.float64)
            for name in _ROW_ARRAYS[2:]:
                out[name][window] = getattr(part, name)
            row += size
    # Scorer codes index the sorted names, as a table's own arrays do.
    order = sorted(range(len(names)), key=names.__getitem__)
    remap = np.empty(max(1, len(names)), dtype=np.int32)
    remap[order] = np.arange(len(names), dtype=np.int32)
    out["scorer"][:row] = remap[out["scorer"][:row]] if row else out["scorer"][:row]
    arrays = ScoreArrays(
        names=tuple(sorted(names)),
        trace_ids=pa.concat_arrays(ids) if ids else pa.array([], pa.string()),
        **{name: values[:row] for name, values in out.items()},
    )
    # A batch holds each pair once, and distinct ids have distinct codes: a pair can only repeat within a
    # trace that runs into a second batch, or under an id met twice (the distinct count tells).
    repeated = bool(continued) and _has_repeats(arrays.subset(np.isin(arrays.trace, continued)))
    if repeated or _has_repeated_ids(arrays.trace_ids):
        log.warning(
            "score files %s repeat a (trace, scorer) pair or share a trace: de-duplicated whole",
            [str(p) for p in paths],
        )
        del arrays, out
        return ScoreArrays.of(pa.concat_tables([_read_whole(p) for p in paths]))
    return arrays


#: The NumPy type of each per-entry array of :class:`ScoreArrays`.
_ROW_DTYPES = {
    "trace": "int32",
    "scorer": "int16",  # a handful of scorers an application
    "numeric": "float64",
    "passed": "int8",  # see ScoreArrays
    "weight": "float32",  # widened to float64 by the first weight float32 cannot hold exactly
    "errored": "bool",
    "judge": "bool",
    "budget_skipped": "bool",
}


def _has_repeated_ids(ids: pa.Array) -> bool:
    """Whether a trace id occurs twice in ``ids``.

    By sorting, not hashing: a hash table of a million-trace window's sampled ids (``count_distinct``) took
    50 MB at its peak, the sort's order and one sorted copy of the ids a fifth of that. Ids from the score
    stage's files come sorted per file, so the sort has little to do.
    """
    import pyarrow.compute as pc

    if len(ids) < 2:
        return False
    ordered = pc.take(ids, pc.sort_indices(ids))
    return bool(pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))).as_py())


def _code(names: list[str], name: str) -> int:
    """The position of ``name`` in ``names``, appended when new."""
    try:
        return names.index(name)
    except ValueError:
        names.append(name)
        return len(names) - 1


def _read_whole(path: Path) -> pa.Table:
    from genai_flywheel.workspace import read_stage_parquet

    return read_stage_parquet(path, "score", list(SCORE_COLUMNS))
