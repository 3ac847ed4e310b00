"""Score a batch of sampled, fully read traces with every scorer that sampled them.

A score already written back to a trace in an earlier run (same deterministic assessment id) is reused, not
recomputed: re-runs give identical results and do not pay for a judge twice. Scorers with the same rows to
score (traces, strata and inclusion weights) run in one pass, so each trace's arguments (and its ``Trace``,
for scorers that read it) are built once, not once per scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from genai_flywheel.scoring.budget import JudgeBudget
from genai_flywheel.scoring.registry import LoadedScorer
from genai_flywheel.scoring.reuse import reuse_existing
from genai_flywheel.scoring.runner import score_table
from genai_flywheel.traces.sampling import rows_for_scorer
from genai_flywheel.traces.schema import SCORE_SCHEMA

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.config import Sampling, ScorerSpec


def score_sampled(
    rows: pa.Table,
    loaded: Sequence[LoadedScorer],
    specs: dict[str, ScorerSpec],
    sampling: Sampling,
    budget: JudgeBudget | None,
) -> pa.Table:
    """``SCORE_SCHEMA`` rows for ``rows`` (full trace rows with the sample columns), sorted by (trace_id,
    scorer); ``budget`` bounds the judge calls and is shared across the calls of one shard."""
    import pyarrow as pa

    parts = []
    groups: dict[tuple, tuple[pa.Table, list[LoadedScorer]]] = {}
    for scorer in loaded:
        mine = rows_for_scorer(rows, sampling, specs[scorer.name])
        reused, todo = reuse_existing(mine, scorer)
        parts.append(reused)
        key = tuple(tuple(todo.column(c).to_pylist()) for c in ("trace_id", "stratum", "weight"))
        groups.setdefault(key, (todo, []))[1].append(scorer)
    for todo, scorers in groups.values():
        if todo.num_rows:
            judged = budget if any(s.is_judge for s in scorers) else None
            parts.append(score_table(todo, scorers, budget=judged))
    table = pa.concat_tables(parts).cast(SCORE_SCHEMA) if parts else SCORE_SCHEMA.empty_table()
    return table.sort_by([("trace_id", "ascending"), ("scorer", "ascending")])
