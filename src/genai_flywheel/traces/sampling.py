"""Deterministic, stratified, coordinated sampling of a window's traces for scoring.

Every trace gets one permanent random number ``u = sha256(seed|t)`` in [0, 1); scorer ``s`` scores trace
``t`` when ``u < rate(s, stratum of t)``. The decision depends only on the trace id, the seed and the rates,
never on the order of rows, the clock or the other traces in the window: a re-run, a retry or a backfill of
an interval picks exactly the same traces.

The samples of the scorers are *coordinated* (Poisson sampling with permanent random numbers): a scorer with
a lower rate scores a subset of what a scorer with a higher rate scores. So the traces whose spans must be
read (pass two of extraction) are those of the highest rate, not the union of independent draws (with five
scorers at 50% each, independent draws would read 97% of the window), and a costly judge's sample lies inside
the heuristics' sample, so the two can be compared trace by trace.

Rates: a trace matching a stratum's filter (first match wins) is sampled at the stratum's rate, for every
scorer — that is how errors and traces with negative feedback are oversampled. Otherwise a scorer's own
``sample_rate`` applies if set (lower for costly judges), else the application's base rate. Every sampled
(trace, scorer) pair carries its inclusion weight ``1 / rate``; the sampled trace itself carries ``1 / pi``,
pi being the highest rate that applies to it (its probability of being read at all), so aggregates over
scores and over fetched traces stay unbiased.

A quiet interval (a night, a weekend) holds few traces, and a fixed rate leaves too few of them to test one
segment: with ``min_traces`` the interval's base rate rises to ``min_traces / valid traces`` (at most 1,
:func:`interval_sampling`). The rate depends only on the interval's count of valid traces, so the sample
stays deterministic, still coordinated (a higher rate keeps every trace a lower one picks) and weighted by
the rate actually used.

Sampling reads trace infos (pass one), so strata and the sampling filter may use ``trace.*``, ``tags.*``,
``metadata.*``, ``assessments.*`` and ``feedback.*`` fields, not the inputs or outputs of the root span.
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


def interval_sampling(sampling: Sampling, traces: int) -> Sampling:
    """``sampling`` for an interval of ``traces`` valid traces: the base rate raised to
    ``min_traces / traces`` (at most 1) when that is higher; otherwise ``sampling`` itself. Strata and the
    scorers' own rates are unchanged."""
    if sampling.min_traces <= 0 or traces <= 0:
        return sampling
    rate = min(1.0, sampling.min_traces / traces)
    return sampling.model_copy(update={"rate": rate}) if rate > sampling.rate else sampling


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


def sample_schema(schema: pa.Schema | None = None) -> pa.Schema:
    """The schema of a sample: the trace rows' ``schema`` (pass-one infos by default) + the sample fields."""
    from genai_flywheel.traces.schema import INFO_SCHEMA, SAMPLE_FIELDS

    return pa.schema([*(schema or INFO_SCHEMA), *SAMPLE_FIELDS])


def trace_rate(sampling: Sampling, scorers: list[ScorerSpec], stratum: str) -> float:
    """pi: the probability that a trace of ``stratum`` is sampled at all (read in full), the highest rate
    that applies to it: the stratum's, else the base rate or a scorer's own higher rate."""
    for s in sampling.strata:
        if s.name == stratum:
            return s.rate
    return max([sampling.rate, *(scorer_rate(sampling, s, stratum) for s in scorers)])


def plan_sample(table: pa.Table, sampling: Sampling, scorers: list[ScorerSpec]) -> SamplePlan:
    """Decide, for every eligible trace and scorer, whether the scorer scores the trace.

    ``table`` holds trace rows (pass-one infos, or full rows); a window may be planned batch by batch, since
    each trace's decision depends on that trace alone. The returned table keeps the sampled traces (``u < pi``)
    in input order, with ``stratum``, ``sample_rate`` (pi), ``weight`` (1 / pi), ``shard`` and ``scorers``
    (the names of the scorers that score it; empty when it is read only for the operational estimates).
    """
    if sampling.filter:
        from genai_flywheel.selection import compile_filter

        table = table.filter(pa.array(compile_filter(sampling.filter).mask(table)))
    strata = assign_strata(table, sampling)
    ids = table.column("trace_id").to_pylist()
    keep: list[int] = []
    chosen: list[list[str]] = []
    per_scorer = {s.name: 0 for s in scorers}
    pis = {stratum: trace_rate(sampling, scorers, stratum) for stratum in set(strata)}
    for i, (trace_id, stratum) in enumerate(zip(ids, strata, strict=True)):
        u = unit_hash(sampling.seed, trace_id)
        if u >= pis[stratum]:
            continue
        names = [s.name for s in scorers if u < scorer_rate(sampling, s, stratum)]
        keep.append(i)
        chosen.append(names)
        for n in names:
            per_scorer[n] += 1
    sampled = table.take(pa.array(keep, type=pa.int64()))
    kept_strata = [strata[i] for i in keep]
    base_rates = [pis[s] for s in kept_strata]
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
