"""Query clusters: frequent question patterns, and how well the application answers each one.

Queries are reduced to their content terms (:func:`genai_flywheel.curation.text.query_terms`), then grouped
by one of two deterministic methods (option ``method``):

``signature`` (default): topic-level patterns
    A query's signature is the combination of ``signature_terms`` (2) of its content terms that is most
    frequent across the table (ties: alphabetical; a combination no other query shares falls back to fewer
    terms), so "How do I turn on Dark Mode?" and "Dark Mode resets after login" share the signature
    ``dark mode``: a product area's name is the word pair its questions share. Linear in the number of
    traces (times the few combinations of a query's terms).
``jaccard``: paraphrase-level patterns
    Greedy clustering: identical term sets are counted once; distinct term sets are visited most frequent
    first (ties: the sorted terms), so the commonest phrasing becomes a cluster's *seed*; each term set joins
    the cluster whose seed it is most similar to (Jaccard >= ``threshold``; ties: the older cluster) or seeds
    a new one. An inverted index from term to clusters limits the comparisons to clusters sharing a term.

A cluster id is a hash of its signature or seed, so a pattern keeps its id from one run to the next.
Queries without content terms (empty, only stop-words or PII) are in no cluster.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

from genai_flywheel.config_options import ClusterMethodOptions, ClusterStatsOptions, validated
from genai_flywheel.curation.text import jaccard

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.curation.view import TraceView

# The defaults of a rule's options (genai_flywheel.config_options), also those of the functions below.
_DEFAULTS = ClusterStatsOptions()
DEFAULT_THRESHOLD = float(_DEFAULTS.threshold)
DEFAULT_SIGNATURE_TERMS = _DEFAULTS.signature_terms
LABEL_TERMS = 4


@dataclass(frozen=True)
class ClusterMethod:
    """How queries are clustered (see the module docstring)."""

    method: str = "signature"
    signature_terms: int = DEFAULT_SIGNATURE_TERMS
    threshold: float = DEFAULT_THRESHOLD

    @classmethod
    def from_options(
        cls, options: ClusterMethodOptions | Mapping[str, Any], owner: str = "query clusters"
    ) -> ClusterMethod:
        """The method named by ``options`` (``method``, ``signature_terms``, ``threshold``); a mapping is
        validated as :class:`ClusterMethodOptions` (ConfigError naming the bad option)."""
        typed = validated(ClusterMethodOptions, options, owner)
        return cls(method=typed.method, signature_terms=typed.signature_terms, threshold=float(typed.threshold))


@dataclass(frozen=True)
class Cluster:
    """One query pattern: its id, key terms (signature or seed), label (top terms) and member rows."""

    cluster_id: str
    key: tuple[str, ...]
    label: str
    members: tuple[int, ...]


@dataclass(frozen=True)
class Clustering:
    """Cluster id per row (None for content-free queries) and the clusters by id, in creation order."""

    assignment: tuple[str | None, ...]
    clusters: dict[str, Cluster]


@dataclass(frozen=True)
class ClusterStats:
    """Volume and quality of one cluster (see :func:`cluster_stats` for the definitions)."""

    cluster_id: str
    label: str
    example: str | None
    volume: int
    score_name: str | None
    mean_score: float | None
    score_n: int
    negative_rate: float | None
    feedback_n: int
    error_rate: float
    recent_volume: int
    recent_mean_score: float | None
    recent_negative_rate: float | None
    recent_feedback_n: int
    quality: float | None
    bad: bool


def cluster_id_for(key: Sequence[str]) -> str:
    """``c-`` + 10 hex of the SHA-256 of a cluster's key terms."""
    return "c-" + hashlib.sha256(" ".join(key).encode("utf-8")).hexdigest()[:10]


def _finish(terms: Sequence[tuple[str, ...]], keys: list[tuple[str, ...]], members: list[list[int]]) -> Clustering:
    assignment: list[str | None] = [None] * len(terms)
    clusters: dict[str, Cluster] = {}
    for key, rows in zip(keys, members, strict=True):
        cid = cluster_id_for(key)
        counts = Counter(term for row in rows for term in terms[row])
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:LABEL_TERMS]
        clusters[cid] = Cluster(cluster_id=cid, key=key, label=" ".join(t for t, _ in top), members=tuple(sorted(rows)))
        for row in rows:
            assignment[row] = cid
    return Clustering(assignment=tuple(assignment), clusters=clusters)


def _combos(row_terms: tuple[str, ...], size: int) -> list[tuple[str, ...]]:
    return list(combinations(row_terms, size)) if len(row_terms) > size else [tuple(row_terms)]


def cluster_signatures(terms: Sequence[tuple[str, ...]], *, size: int = DEFAULT_SIGNATURE_TERMS) -> Clustering:
    """Group rows by their most frequent ``size``-term combination (the ``signature`` method).

    Every query votes for each combination of ``size`` of its content terms; a query's signature is its
    combination with the most votes across the table (ties: alphabetical). Words that always come together
    (a feature's name, "dark mode") win over a frequent word that also appears elsewhere ("file"). A
    combination no other query shares is no pattern: the query then falls back to its most frequent shared
    combination of fewer terms (down to one), and keeps its own only when it shares nothing.
    """
    sizes = range(size, 0, -1)
    frequency: dict[int, Counter[tuple[str, ...]]] = {
        k: Counter(c for row_terms in terms for c in set(_combos(row_terms, k))) for k in sizes
    }
    by_key: dict[tuple[str, ...], list[int]] = {}
    for index, row_terms in enumerate(terms):
        if not row_terms:
            continue
        key = None
        for k in sizes:
            best = min(_combos(row_terms, k), key=lambda c, k=k: (-frequency[k][c], c))
            if frequency[k][best] >= 2:
                key = best
                break
        if key is None:
            key = min(_combos(row_terms, size))
        by_key.setdefault(key, []).append(index)
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), k))
    return _finish(terms, keys, [by_key[k] for k in keys])


def cluster_terms(terms: Sequence[tuple[str, ...]], *, threshold: float = DEFAULT_THRESHOLD) -> Clustering:
    """Greedy Jaccard clustering of rows by their content terms (the ``jaccard`` method)."""
    threshold = ClusterMethod.from_options({"method": "jaccard", "threshold": threshold}).threshold
    rows_by_set: dict[tuple[str, ...], list[int]] = {}
    for index, row_terms in enumerate(terms):
        if row_terms:
            rows_by_set.setdefault(tuple(row_terms), []).append(index)
    order = sorted(rows_by_set, key=lambda t: (-len(rows_by_set[t]), t))

    seeds: list[frozenset[str]] = []
    seed_terms: list[tuple[str, ...]] = []
    members: list[list[int]] = []
    by_term: dict[str, list[int]] = {}
    for term_set in order:
        current = frozenset(term_set)
        best, best_similarity = -1, -1.0
        candidates = sorted({c for term in current for c in by_term.get(term, ())})
        for candidate in candidates:
            similarity = jaccard(current, seeds[candidate])
            if similarity > best_similarity:
                best, best_similarity = candidate, similarity
        if best >= 0 and best_similarity >= threshold:
            members[best].extend(rows_by_set[term_set])
            continue
        new = len(seeds)
        seeds.append(current)
        seed_terms.append(term_set)
        members.append(list(rows_by_set[term_set]))
        for term in current:
            by_term.setdefault(term, []).append(new)
    return _finish(terms, seed_terms, members)


def cluster_queries(terms: Sequence[tuple[str, ...]], method: ClusterMethod) -> Clustering:
    """Cluster rows by their content terms with ``method``."""
    if method.method == "jaccard":
        return cluster_terms(terms, threshold=method.threshold)
    return cluster_signatures(terms, size=method.signature_terms)


def view_clustering(view: TraceView, method: ClusterMethod) -> Clustering:
    """The query clustering of ``view``'s table by ``method``, computed once per table and method."""
    return view.derived(("clustering", method), lambda: cluster_queries(view.terms, method))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _smoothed(total: float, n: int, prior: float | None, weight: float) -> float:
    """(total + prior * weight) / (n + weight): a small cluster's rate pulled toward the table's."""
    if prior is None or weight <= 0:
        return total / n
    return (total + prior * weight) / (n + weight)


@dataclass(frozen=True)
class _Judgement:
    mean_score: float | None
    score_n: int
    negative_rate: float | None
    feedback_n: int
    quality: float | None
    bad: bool


@dataclass(frozen=True)
class _Criteria:
    score: str | None
    feedback: str | None
    min_volume: int
    max_score: float
    min_negative_rate: float
    min_evidence: int
    prior_weight: float
    prior_score: float | None
    prior_negative: float | None


def _judge(view: TraceView, rows: Sequence[int], c: _Criteria) -> _Judgement:
    found = [view.assessments[i] for i in rows]
    scores = [v for v in (a.numeric(c.score) for a in found) if v is not None] if c.score else []
    verdicts = [v for v in (a.polarity(c.feedback) for a in found) if v is not None] if c.feedback else []
    negatives = sum(1 for v in verdicts if v < 0)
    parts: list[float] = []
    low_score = high_negative = False
    if len(scores) >= c.min_evidence:
        smoothed_score = _smoothed(sum(scores), len(scores), c.prior_score, c.prior_weight)
        parts.append(smoothed_score)
        low_score = smoothed_score < c.max_score
    if len(verdicts) >= c.min_evidence:
        smoothed_negative = _smoothed(negatives, len(verdicts), c.prior_negative, c.prior_weight)
        parts.append(1.0 - smoothed_negative)
        high_negative = smoothed_negative >= c.min_negative_rate
    return _Judgement(
        mean_score=_mean(scores),
        score_n=len(scores),
        negative_rate=(negatives / len(verdicts)) if verdicts else None,
        feedback_n=len(verdicts),
        quality=_mean(parts),
        bad=len(rows) >= c.min_volume and (low_score or high_negative),
    )


def cluster_stats(
    view: TraceView,
    *,
    method: ClusterMethod | None = None,
    score: str | None = _DEFAULTS.score,
    feedback: str | None = _DEFAULTS.feedback,
    min_volume: int = _DEFAULTS.min_volume,
    max_score: float = _DEFAULTS.max_score,
    min_negative_rate: float = _DEFAULTS.min_negative_rate,
    min_evidence: int = _DEFAULTS.min_evidence,
    prior_weight: float = _DEFAULTS.prior_weight,
    recent_hours: float = _DEFAULTS.recent_hours,
) -> list[ClusterStats]:
    """Volume and quality per query cluster, worst first.

    * ``mean_score``: mean of the numeric feedback named ``score`` over the cluster's scored traces.
    * ``negative_rate``: share of negative verdicts among the cluster's traces with ``feedback``.
    * Both are *smoothed* toward the whole table's value with ``prior_weight`` pseudo-observations
      (``(sum + table_rate * w) / (n + w)``), so two unlucky votes do not make a cluster the worst one.
    * A cluster is judged twice: over the whole table and over its *recent* traces, those of the last
      ``recent_hours`` before the table's newest trace (0 disables). A pattern that broke yesterday is
      diluted in a week of good traffic; a daily curation run still sees it in its recent traces.
    * ``quality``: mean of the smoothed score and ``1 - smoothed negative rate`` (each counted only with at
      least ``min_evidence`` observations), the lower of the whole and recent judgements; None without
      evidence.
    * ``bad``: volume >= ``min_volume`` and (smoothed score < ``max_score`` or smoothed negative rate >=
      ``min_negative_rate``), each with at least ``min_evidence`` observations, over the whole table or the
      recent traces (whose volume must then reach ``min_volume`` too).

    Order: bad clusters first, then quality ascending (unknown last), volume descending, cluster id.
    """
    clustering = view_clustering(view, method or ClusterMethod())
    all_scores = [a.numeric(score) for a in view.assessments] if score else []
    all_verdicts = [a.polarity(feedback) for a in view.assessments] if feedback else []
    criteria = _Criteria(
        score=score,
        feedback=feedback,
        min_volume=min_volume,
        max_score=max_score,
        min_negative_rate=min_negative_rate,
        min_evidence=min_evidence,
        prior_weight=prior_weight,
        prior_score=_mean([v for v in all_scores if v is not None]),
        prior_negative=_mean([1.0 if v < 0 else 0.0 for v in all_verdicts if v is not None]),
    )
    newest = max(view.timestamps, default=0)
    since = newest - recent_hours * 3_600_000 if recent_hours > 0 else None
    stats: list[ClusterStats] = []
    for cluster in clustering.clusters.values():
        rows = cluster.members
        whole = _judge(view, rows, criteria)
        recent_rows = [i for i in rows if view.timestamps[i] > since] if since is not None else []
        recent = _judge(view, recent_rows, criteria) if recent_rows else None
        qualities = [q for q in (whole.quality, recent.quality if recent else None) if q is not None]
        errors = sum(1 for i in rows if view.statuses[i] == "ERROR")
        examples = Counter(view.queries[i] for i in rows if view.queries[i])
        example = min(examples.items(), key=lambda kv: (-kv[1], kv[0]))[0] if examples else None
        stats.append(
            ClusterStats(
                cluster_id=cluster.cluster_id,
                label=cluster.label,
                example=example,
                volume=len(rows),
                score_name=score,
                mean_score=whole.mean_score,
                score_n=whole.score_n,
                negative_rate=whole.negative_rate,
                feedback_n=whole.feedback_n,
                error_rate=errors / len(rows),
                recent_volume=len(recent_rows),
                recent_mean_score=recent.mean_score if recent else None,
                recent_negative_rate=recent.negative_rate if recent else None,
                recent_feedback_n=recent.feedback_n if recent else 0,
                quality=min(qualities) if qualities else None,
                bad=whole.bad or bool(recent and recent.bad),
            )
        )
    stats.sort(
        key=lambda s: (
            not s.bad,
            s.quality is None,
            s.quality if s.quality is not None else 0.0,
            -s.volume,
            s.cluster_id,
        )
    )
    return stats


def cluster_options(options: ClusterStatsOptions | Mapping[str, Any], owner: str = "query clusters") -> dict[str, Any]:
    """The :func:`cluster_stats` keyword arguments of a ``query_clusters`` rule's options; a mapping is
    validated as :class:`ClusterStatsOptions` (ConfigError naming the bad option)."""
    typed = validated(ClusterStatsOptions, options, owner)
    return {**typed.stats_kwargs(), "method": ClusterMethod.from_options(typed)}


def stats_to_table(stats: Sequence[ClusterStats], *, selected: Sequence[str] = ()) -> pa.Table:
    """The cluster report as an Arrow table (one row per cluster, in ``stats`` order)."""
    import pyarrow as pa

    chosen = set(selected)
    return pa.table(
        {
            "rank": pa.array(range(1, len(stats) + 1), pa.int32()),
            "cluster_id": pa.array([s.cluster_id for s in stats], pa.string()),
            "label": pa.array([s.label for s in stats], pa.string()),
            "example": pa.array([s.example for s in stats], pa.string()),
            "volume": pa.array([s.volume for s in stats], pa.int64()),
            "score_name": pa.array([s.score_name for s in stats], pa.string()),
            "mean_score": pa.array([s.mean_score for s in stats], pa.float64()),
            "score_n": pa.array([s.score_n for s in stats], pa.int64()),
            "negative_rate": pa.array([s.negative_rate for s in stats], pa.float64()),
            "feedback_n": pa.array([s.feedback_n for s in stats], pa.int64()),
            "error_rate": pa.array([s.error_rate for s in stats], pa.float64()),
            "recent_volume": pa.array([s.recent_volume for s in stats], pa.int64()),
            "recent_mean_score": pa.array([s.recent_mean_score for s in stats], pa.float64()),
            "recent_negative_rate": pa.array([s.recent_negative_rate for s in stats], pa.float64()),
            "recent_feedback_n": pa.array([s.recent_feedback_n for s in stats], pa.int64()),
            "quality": pa.array([s.quality for s in stats], pa.float64()),
            "bad": pa.array([s.bad for s in stats], pa.bool_()),
            "selected": pa.array([s.cluster_id in chosen for s in stats], pa.bool_()),
        }
    )
