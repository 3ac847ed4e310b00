"""De-duplicated score rows: one per (trace, scorer), the same row whatever the order, compact columns, file
by file equal to the whole window, and the scorer metrics equal from either form."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.metrics.aggregate import _scorer_rows
from genai_flywheel.metrics.scores import (
    NO_VERDICT,
    ScoreArrays,
    is_unique,
    read_score_arrays,
    unique_score_schema,
    unique_scores,
)
from genai_flywheel.traces.score_errors import BUDGET_SKIP_PREFIX
from tests.unit.metrics.test_metrics_aggregate import score, scores_table


def plain(table: pa.Table) -> list[dict]:
    """Rows with the scorer as text and NaN as None (NaN never equals itself)."""
    table = table.set_column(1, "scorer", table.column("scorer").cast(pa.string()))
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in table.to_pylist()]


def window_rows() -> list[dict]:
    rows = []
    for i in range(40):
        rows.append(score(i, "relevance", (i % 10) / 10, i % 10 >= 5, weight=1.0 + (i % 3)))
        rows.append(score(i, "safety", None, i % 7 != 0, weight=1.0 + (i % 3)))
        if i % 4 == 0:
            judge = {"source_type": "LLM_JUDGE", "weight": 2.0}
            error = f"{BUDGET_SKIP_PREFIX} budget reached" if i % 8 == 0 else None
            rows.append(score(i, "judge", None if error else 1.0, None, error=error, **judge))
    # Duplicates: an error row beside a scored one, and two scored rows (the lowest assessment id wins).
    rows.append(score(3, "relevance", None, None, error="scorer crashed", assessment_id="as-0"))
    rows.append(score(5, "relevance", 0.01, False, assessment_id="as-zzz"))
    rows.append(score(6, "safety", None, False, assessment_id="as-aaa", weight=1.0))
    return rows


def test_one_row_per_trace_and_scorer_the_same_whatever_the_order() -> None:
    rows = window_rows()
    unique = unique_scores(scores_table(rows))
    assert unique.schema.equals(unique_score_schema()) and is_unique(unique)
    keys = list(zip(unique["trace_id"].to_pylist(), unique["scorer"].cast(pa.string()).to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 40 * 2 + 10
    assert keys == sorted(keys)
    by_key = {k: r for k, r in zip(keys, unique.to_pylist(), strict=True)}
    assert by_key[("tr-003", "relevance")]["errored"] is False  # the scored row beats the error row
    assert by_key[("tr-003", "relevance")]["numeric"] == pytest.approx(0.3)
    assert by_key[("tr-005", "relevance")]["numeric"] == pytest.approx(0.5)  # "as-relevance-5" < "as-zzz"
    assert by_key[("tr-006", "safety")]["passed"] == 0.0  # "as-aaa" < "as-safety-6"
    assert by_key[("tr-000", "judge")]["judge"] and by_key[("tr-000", "judge")]["budget_skipped"]
    for seed in range(5):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert plain(unique_scores(scores_table(shuffled))) == plain(unique)
    assert unique_scores(unique) is unique  # already de-duplicated: used as it is


def entries(arrays: ScoreArrays) -> list[tuple]:
    """Every entry of ``arrays`` as a tuple (trace id, scorer name, values and flags; NaN as None), sorted."""
    ids = arrays.trace_ids.to_pylist()
    out = []
    for i in range(len(arrays)):
        passed = None if arrays.passed[i] == NO_VERDICT else float(arrays.passed[i])
        numbers = (float(arrays.numeric[i]), passed, float(arrays.weight[i]))
        flags = (bool(arrays.errored[i]), bool(arrays.judge[i]), bool(arrays.budget_skipped[i]))
        row = (ids[arrays.trace[i]], arrays.names[arrays.scorer[i]], *numbers, *flags)
        out.append(tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row))
    return sorted(out)


def write(path: Path, rows: list[dict]) -> Path:
    pq.write_table(scores_table(rows), path)
    return path


def test_file_by_file_and_batch_by_batch_equals_the_whole_window(tmp_path: Path) -> None:
    rows = window_rows()
    # Two shard files: a trace's rows all in one of them.
    paths = [
        write(tmp_path / f"shard={shard:03d}.parquet", [r for r in rows if int(r["trace_id"][3:]) % 2 == shard])
        for shard in (0, 1)
    ]
    arrays = read_score_arrays(paths)
    assert entries(arrays) == entries(ScoreArrays.of(scores_table(rows)))
    assert [(r.metric, r.value, r.n, r.ci_low, r.ci_high) for r in _scorer_rows(arrays)] == [
        (r.metric, r.value, r.n, r.ci_low, r.ci_high) for r in _scorer_rows(scores_table(rows))
    ]
    assert len(read_score_arrays([])) == 0


def test_a_pair_split_over_two_batches_or_two_files_is_still_counted_once(tmp_path: Path) -> None:
    from genai_flywheel.workspace import BATCH_ROWS

    # One file longer than a read batch, with a (trace, scorer) pair in its first and its last batch.
    rows = [score(i, "relevance", 0.5, True) for i in range(BATCH_ROWS + 50)]
    rows.append(score(0, "relevance", None, None, error="retried", assessment_id="as-0"))
    split = read_score_arrays([write(tmp_path / "long.parquet", rows)])
    assert entries(split) == entries(ScoreArrays.of(scores_table(rows)))
    assert len(split) == BATCH_ROWS + 50 and not split.errored.any()
    # Two files that share a trace (the score stage never writes them so): de-duplicated together.
    a = [score(1, "relevance", 0.2, False, assessment_id="as-b"), score(2, "relevance", 0.9, True)]
    b = [score(1, "relevance", 0.7, True, assessment_id="as-a"), score(3, "safety", None, True)]
    shared = read_score_arrays([write(tmp_path / "a.parquet", a), write(tmp_path / "b.parquet", b)])
    assert entries(shared) == entries(ScoreArrays.of(scores_table(a + b)))
    assert [e[2] for e in entries(shared) if e[0] == "tr-001"] == [0.7]  # the lowest assessment id


def test_a_trace_whose_rows_run_into_the_next_batch_keeps_one_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from genai_flywheel.workspace import BATCH_ROWS

    # Sorted by trace, as the score stage writes a shard: three rows a trace, so one trace straddles the
    # first batch boundary (BATCH_ROWS is not a multiple of 3).
    assert BATCH_ROWS % 3
    traces = BATCH_ROWS // 3 + 100
    rows = [
        score(i, name, i % 10 / 10, i % 2 == 0, trace_id=f"tr-{i:06d}")
        for i in range(traces)
        for name in ("relevance", "safety", "tone")
    ]
    with caplog.at_level("WARNING", logger="genai_flywheel.metrics.scores"):
        arrays = read_score_arrays([write(tmp_path / "sorted.parquet", rows)])
    assert not caplog.records, "a trace split by a batch boundary must not need the whole-file fallback"
    assert len(arrays.trace_ids) == traces == arrays.traces and len(arrays) == 3 * traces
    assert entries(arrays) == entries(ScoreArrays.of(scores_table(rows)))
    # The same pair (tone) on both sides of the boundary, three times: counted once, the lowest assessment id.
    straddler = BATCH_ROWS // 3
    rows[3 * straddler] = score(straddler, "tone", 0.1, False, trace_id=f"tr-{straddler:06d}", assessment_id="as-b")
    rows[3 * straddler + 1] = score(straddler, "tone", 0.9, True, trace_id=f"tr-{straddler:06d}", assessment_id="as-a")
    repeated = read_score_arrays([write(tmp_path / "repeated.parquet", rows)])
    assert entries(repeated) == entries(ScoreArrays.of(scores_table(rows)))
    assert [e[2] for e in entries(repeated) if e[0] == f"tr-{straddler:06d}"] == [0.9]


def test_scorer_rows_over_a_mask_equal_those_of_the_subset() -> None:
    import numpy as np

    arrays = ScoreArrays.of(scores_table(window_rows()))
    for seed in range(3):
        mask = np.random.default_rng(seed).random(len(arrays)) < 0.5
        assert _scorer_rows(arrays, mask) == _scorer_rows(arrays.subset(mask))
    assert _scorer_rows(arrays, np.zeros(len(arrays), dtype=bool)) == _scorer_rows(
        arrays.subset(np.zeros(len(arrays), bool))
    )


def test_verdicts_are_one_byte_each_and_count_as_the_table_s_floats() -> None:
    import numpy as np

    rows = [score(1, "relevance", 0.9, True), score(2, "relevance", 0.1, False), score(3, "relevance", 0.5, None)]
    rows.append(score(4, "relevance", None, None, error="timeout"))
    arrays = ScoreArrays.of(scores_table(rows))
    assert arrays.passed.dtype == np.int8 and arrays.passed.tolist() == [1, 0, NO_VERDICT, NO_VERDICT]
    rate = {r.metric: r for r in _scorer_rows(arrays)}["scorer.relevance.pass_rate"]
    assert (rate.value, rate.n) == (0.5, 2)  # the entry without a verdict is not counted


def test_weights_are_held_as_float32_only_where_that_holds_them_exactly(tmp_path: Path) -> None:
    import numpy as np

    from genai_flywheel.workspace import BATCH_ROWS

    exact = ScoreArrays.of(scores_table([score(i, "relevance", 0.5, True, weight=w) for i, w in enumerate((1, 2, 10))]))
    assert exact.weight.dtype == np.float32 and exact.weight.tolist() == [1.0, 2.0, 10.0]
    # A file whose last batch brings a weight float32 cannot hold (1 / 0.3): the column widens, values kept.
    rows = [score(i, "relevance", 0.5, True, trace_id=f"tr-{i:06d}", weight=2.0) for i in range(BATCH_ROWS + 5)]
    rows[-1] = score(BATCH_ROWS + 4, "relevance", 0.5, True, trace_id=f"tr-{BATCH_ROWS + 4:06d}", weight=1 / 0.3)
    arrays = read_score_arrays([write(tmp_path / "weights.parquet", rows)])
    assert arrays.weight.dtype == np.float64 and arrays.weight[-1] == 1 / 0.3
    assert entries(arrays) == entries(ScoreArrays.of(scores_table(rows)))
    assert _scorer_rows(arrays) == _scorer_rows(ScoreArrays.of(scores_table(rows)))


def test_the_compact_rows_are_far_smaller_than_the_score_columns() -> None:
    rows = [score(i, s, 0.5, True, rationale="a long rationale " * 5) for i in range(500) for s in ("a", "b")]
    table = scores_table(rows)
    assert unique_scores(table).nbytes < table.nbytes / 2


def test_a_kept_row_without_a_positive_weight_names_scorer_and_trace() -> None:
    rows = [score(1, "relevance", 0.5, True, weight=0.0)]
    with pytest.raises(DataContractError, match=r"scorer 'relevance', trace 'tr-001': inclusion weight 0.0"):
        unique_scores(scores_table(rows))
    # An error row's weight is not used.
    unique_scores(scores_table([score(1, "relevance", None, None, weight=0.0, error="timeout")]))
