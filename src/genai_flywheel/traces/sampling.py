"""Deterministic, stratified sampling of a window's traces for scoring.

Whether scorer ``s`` scores trace ``t`` depends only on ``sha256(seed|t|s)`` and the rate that applies to
``t``, never on the order of rows, the clock or the other traces in the window. So a re-run, a retry or a
backfill of an interval picks exactly the same traces, and each scorer's sample is independent of the
others' (as in MLflow's own online scoring).

Rates: a trace matching a stratum's filter (first match wins) is sampled at the stratum's rate, for every
scorer — that is how errors and traces with negative feedback are oversampled. Otherwise a scorer's own
``sample_rate`` applies if set (lower for costly judges), else the application's base rate. Every sampled
(trace, scorer) pair carries its inclusion weight ``1 / rate`` so aggregates stay unbiased.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from genai_flywheel.config import Sampling, ScorerSpec

BASE_STRATUM = "base"


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) determined by ``parts`` (SHA-256, first 8 bytes)."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def shard_of(trace_id: str, shards: int) -> int:
    """The scoring shard of a trace: stable across runs and independent of sampling decisions."""
    return int(unit_hash("shard", trace_id) * shards)


@dataclass(frozen=True)
class SamplePlan:
    """Which scorers score which traces of a window."""

    table: pa.Table  # sampled rows: trace columns + stratum, sample_rate, weight, shard, scorers
    eligible: int  # traces that passed the sampling filter
    per_scorer: dict[str, int]  # sampled traces per scorer


def scorer_rate(sampling: Sampling, spec: ScorerSpec, stratum: str) -> float:
    """The inclusion probability of a trace in ``stratum`` for the scorer ``spec``."""
    for s in sampling.strata:
        if s.name == stratum:
            return s.rate
    return spec.sample_rate if spec.sample_rate is not None else sampling.rate


def assign_strata(table: pa.Table, sampling: Sampling) -> list[str]:
    """The stratum of each row: the first stratum whose filter matches, else ``base``."""
    from genai_flywheel.selection import compile_filter

    strata = np.full(table.num_rows, BASE_STRATUM, dtype=object)
    unassigned = np.ones(table.num_rows, dtype=bool)
    for s in sampling.strata:
        hit = compile_filter(s.filter).mask(table) & unassigned
        strata[hit] = s.name
        unassigned &= ~hit
    return strata.tolist()


def plan_sample(table: pa.Table, sampling: Sampling, scorers: list[ScorerSpec]) -> SamplePlan:
    """Decide, for every eligible trace and scorer, whether the scorer scores the trace.

    The returned table keeps the traces sampled by at least one scorer, in input order, with
    ``stratum``, ``sample_rate`` (the trace's base/stratum rate), ``weight`` (1 / that rate), ``shard``
    and ``scorers`` (the names of the scorers that sampled it).
    """
    if sampling.filter:
        from genai_flywheel.selection import compile_filter

        table = table.filter(pa.array(compile_filter(sampling.filter).mask(table)))
    strata = assign_strata(table, sampling)
    ids = table.column("trace_id").to_pylist()
    keep: list[int] = []
    chosen: list[list[str]] = []
    per_scorer = {s.name: 0 for s in scorers}
    for i, (trace_id, stratum) in enumerate(zip(ids, strata, strict=True)):
        names = [
            s.name for s in scorers if unit_hash(sampling.seed, trace_id, s.name) < scorer_rate(sampling, s, stratum)
        ]
        if names:
            keep.append(i)
            chosen.append(names)
            for n in names:
                per_scorer[n] += 1
    sampled = table.take(pa.array(keep, type=pa.int64()))
    kept_strata = [strata[i] for i in keep]
    base_rates = [_trace_rate(sampling, s) for s in kept_strata]
    sampled = (
        sampled.append_column(pa.field("stratum", pa.string(), nullable=False), pa.array(kept_strata, type=pa.string()))
        .append_column(pa.field("sample_rate", pa.float64(), nullable=False), pa.array(base_rates, type=pa.float64()))
        .append_column(
            pa.field("weight", pa.float64(), nullable=False),
            pa.array([1.0 / r if r > 0 else 0.0 for r in base_rates], type=pa.float64()),
        )
        .append_column(
            pa.field("shard", pa.int32(), nullable=False),
            pa.array([shard_of(ids[i], sampling.shards) for i in keep], type=pa.int32()),
        )
        .append_column(
            pa.field("scorers", pa.list_(pa.string()), nullable=False),
            pa.array(chosen, type=pa.list_(pa.string())),
        )
    )
    return SamplePlan(table=sampled, eligible=table.num_rows, per_scorer=per_scorer)


def _trace_rate(sampling: Sampling, stratum: str) -> float:
    for s in sampling.strata:
        if s.name == stratum:
            return s.rate
    return sampling.rate


def rows_for_scorer(sampled: pa.Table, sampling: Sampling, spec: ScorerSpec) -> pa.Table:
    """The sampled rows ``spec`` scores, with ``sample_rate``/``weight`` set to that scorer's rate."""
    mask = [spec.name in names for names in sampled.column("scorers").to_pylist()]
    rows = sampled.filter(pa.array(mask, type=pa.bool_()))
    rates = [scorer_rate(sampling, spec, s) for s in rows.column("stratum").to_pylist()]
    rows = rows.set_column(
        rows.schema.get_field_index("sample_rate"),
        rows.schema.field("sample_rate"),
        pa.array(rates, type=pa.float64()),
    )
    return rows.set_column(
        rows.schema.get_field_index("weight"),
        rows.schema.field("weight"),
        pa.array([1.0 / r if r > 0 else 0.0 for r in rates], type=pa.float64()),
    )
