"""Drift of one interval against its reference profile, as app-level metrics (so alert rules can use them).

=================================  =================================================================
metric                             meaning (``n``; CI)
=================================  =================================================================
``drift.<dimension>.psi``          population stability index of the dimension's mix: the interval's
                                   share of each segment (top-K, ``(none)``, ``new``, ``other``) against
                                   the reference's (reference values outside the interval's segments
                                   count as ``other``). n = the interval's volume; no CI. Rule of thumb:
                                   below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one
``drift.<dimension>.new_share``    query clusters only: share of the interval's questions no reference
                                   cluster takes (n = volume; Wilson CI)
``drift.<dimension>.new_clusters`` query clusters only: patterns among those new questions, i.e.
                                   clusters of at least ``segments.clusters.min_size`` questions (the
                                   first 20,000 new questions of the interval are clustered); exact
``drift.scorer.<name>.psi``        population stability index of the scorer's values on the interval's
                                   scored traces against those on the reference's scored traces, over
                                   the reference deciles (two bins for pass/fail values); n = the
                                   interval's values; null when either side has fewer than
                                   :data:`MIN_SCORES` values
=================================  =================================================================

PSI = sum over bins of (p - q) * ln(p / q), with p the interval's share and q the reference's, both
smoothed by half a count per bin so an empty bin does not make it infinite. Both sides of the score drift
are the traces the monitor scored (the same sampling design), unweighted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from genai_flywheel.metrics import stats

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.config import Segments
    from genai_flywheel.metrics.aggregate import _Row
    from genai_flywheel.metrics.scores import ScoreArrays
    from genai_flywheel.segments.accumulate import SegmentAccumulator
    from genai_flywheel.segments.reference import ReferenceProfile

#: Values a scorer needs on each side for its score drift.
MIN_SCORES = 20
_BINS = 10


def psi(current: Sequence[float], reference: Sequence[float]) -> float:
    """The population stability index of two count vectors over the same bins (half a count of smoothing)."""
    if len(current) != len(reference) or not current:
        raise ValueError(f"PSI needs two count vectors of one length, got {len(current)} and {len(reference)}")
    n_cur, n_ref, bins = math.fsum(current), math.fsum(reference), len(current)
    total = 0.0
    for c, r in zip(current, reference, strict=True):
        p = (c + 0.5) / (n_cur + 0.5 * bins)
        q = (r + 0.5) / (n_ref + 0.5 * bins)
        total += (p - q) * math.log(p / q)
    return total


def _mix_counts(volumes: Mapping[str, int], reference: Mapping[str, int]) -> tuple[list[int], list[int]]:
    from genai_flywheel.metrics.segment_schema import OTHER

    keys = sorted(volumes)
    pooled = sum(count for key, count in reference.items() if key not in volumes)
    ref = [reference.get(key, 0) + (pooled if key == OTHER else 0) for key in keys]
    cur = [volumes[key] for key in keys]
    if OTHER not in volumes and pooled:
        keys.append(OTHER)
        cur.append(0)
        ref.append(pooled)
    return cur, ref


def score_bins(reference: np.ndarray) -> np.ndarray:
    """Bin edges of a scorer's values: two bins for 0/1 values, else the reference's deciles (distinct)."""
    import numpy as np

    if np.isin(reference, (0.0, 1.0)).all():
        return np.array([0.5])
    return np.unique(np.quantile(reference, np.linspace(0.0, 1.0, _BINS + 1)[1:-1]))


def score_psi(current: np.ndarray, reference: np.ndarray) -> float | None:
    """The PSI of a scorer's interval values against its reference values (None when either is too small)."""
    import numpy as np

    if current.size < MIN_SCORES or reference.size < MIN_SCORES:
        return None
    edges = score_bins(reference)
    bins = edges.size + 1
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins)
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins)
    return psi(cur.tolist(), ref.tolist())


def drift_rows(
    acc: SegmentAccumulator, profile: ReferenceProfile, scores: pa.Table | ScoreArrays, segments: Segments
) -> list[_Row]:
    """The interval's drift metric rows (see the module docstring)."""
    import numpy as np

    from genai_flywheel.curation.clusters import cluster_signatures
    from genai_flywheel.metrics.aggregate import _Row
    from genai_flywheel.metrics.scores import ScoreArrays
    from genai_flywheel.metrics.segment_schema import NEW

    rows: list[_Row] = []
    volumes = acc.dimension_volumes()
    for dim in segments.dimensions:
        mine = volumes.get(dim.name, {})
        if acc.volume:
            cur, ref = _mix_counts(mine, profile.counts.get(dim.name, {}))
            value = psi(cur, ref) if sum(ref) else None
        else:
            value = None
        rows.append(_Row(f"drift.{dim.name}.psi", value, acc.volume))
        if dim.source == "query_cluster":
            new = mine.get(NEW, 0)
            low, high = stats.wilson_interval(new, acc.volume) if acc.volume else (None, None)
            share = new / acc.volume if acc.volume else None
            rows.append(_Row(f"drift.{dim.name}.new_share", share, acc.volume, low, high))
            found = cluster_signatures(acc.new_terms).clusters.values()
            patterns = sum(1 for c in found if len(c.members) >= segments.clusters.min_size)
            rows.append(_Row(f"drift.{dim.name}.new_clusters", float(patterns), len(acc.new_terms)))
    arrays = scores if isinstance(scores, ScoreArrays) else ScoreArrays.of(scores)
    for name in sorted(profile.scores):
        mine = ~arrays.errored & (arrays.scorer == arrays.names.index(name)) if name in arrays.names else None
        current = arrays.numeric[mine] if mine is not None else np.empty(0)
        current = current[np.isfinite(current)]
        reference = np.asarray(profile.scores[name], dtype=float)
        rows.append(_Row(f"drift.scorer.{name}.psi", score_psi(current, reference), int(current.size)))
    return rows
