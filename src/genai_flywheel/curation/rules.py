"""Curation rules: which production traces become evaluation records.

Rules run in priority order (lower ``priority`` first; ties keep the configured order). A trace picked by a
rule is not offered to later rules, and each rule picks at most ``cap`` traces. Every choice is
deterministic: candidates are ranked by a total order ending in ``trace_id``.

Rule kinds and their ``options`` (typed in :mod:`genai_flywheel.config_options`, checked when the file is loaded):

``filter``
    Traces matching ``filter`` (the selection language of :mod:`genai_flywheel.selection`), worst first.
    Options: ``scores`` (assessment names whose lowest numeric value ranks a trace; default
    ``[relevance, groundedness]``), ``feedback`` (human feedback name, negative = 0.0; default
    ``user_feedback``), ``order`` (``worst`` (default), ``best`` or ``newest``).
``query_clusters``
    The worst query clusters (see :mod:`genai_flywheel.curation.clusters`) with at least ``min_volume``
    traces: at most ``max_clusters`` (5) clusters and ``per_cluster_cap`` (``cap // max_clusters``) traces
    each, worst traces first; traces already known good in a bad cluster (quality >= ``good_quality``, 0.8)
    are left out. Options: ``method`` (``signature``/``jaccard``), ``signature_terms``, ``threshold``,
    ``score`` (``relevance``), ``feedback``, ``min_volume`` (5), ``max_score`` (0.5), ``min_negative_rate``
    (0.3), ``min_evidence`` (2), ``prior_weight`` (5), ``recent_hours`` (24), ``max_clusters``,
    ``per_cluster_cap``, ``scores``, ``good_quality``.
``regression_guard``
    Good interactions to keep the next version honest: status OK, no negative feedback, quality >=
    ``min_score`` (lowest of ``scores``; positive feedback alone counts as 1.0), spread across query clusters
    by round robin (largest cluster first), best first inside a cluster. Options: ``min_score`` (0.8),
    ``scores``, ``feedback``, ``require_positive_feedback`` (false), and the clustering options ``method``,
    ``signature_terms``, ``threshold``.
``segment_alerts``
    The traces of the segments a per-segment alert rule fired on, from the intervals it fired in (see
    :mod:`genai_flywheel.segments.alerted`), ranked as a ``filter`` rule ranks. Options:
    ``alert_rules`` (default: every per-segment alert rule of the application), ``scores``, ``feedback``,
    ``order``.

An optional ``filter`` narrows the candidates of every kind. Within a rule, a trace whose inputs repeat an
input already ranked higher is moved behind all first occurrences, so a cap buys as many distinct records
as possible; duplicates still come along (and are merged into one record later) when the cap allows.

Ranking: "worst first" sorts by quality ascending, a trace without any score or verdict counting as
``UNKNOWN_QUALITY`` (between clearly bad and clearly good), then newest first (recent behaviour matters most
and the lookback window ages old traces out), then ``trace_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from genai_flywheel.config import Application, CurationRule
from genai_flywheel.config_options import (
    FilterRuleOptions,
    QueryClustersOptions,
    RegressionGuardOptions,
    names,
)
from genai_flywheel.curation.clusters import (
    ClusterMethod,
    ClusterStats,
    cluster_options,
    cluster_stats,
    view_clustering,
)
from genai_flywheel.curation.view import TraceView

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

UNKNOWN_QUALITY = 0.5
DEFAULT_SCORES = ("relevance", "groundedness")
# Added to the trace columns of the selected table.
SELECTION_COLUMNS = ("rule", "rule_priority", "cluster_id", "selection_rank")

# Critical user journeys: paying and signing in. A wrong answer there costs a customer, so those traces are
# curated even when nobody complained. The default matches apps that tag the journey on the trace
# (``tags.journey``); an app that does not tags them configures its own ``critical_journeys`` rule, e.g.
# matching its billing and sign-in questions by their words (``inputs.query CONTAINS '...'``).
CRITICAL_JOURNEYS_FILTER = "tags.journey IN ('checkout', 'login', 'billing')"


def default_rules() -> list[CurationRule]:
    """The rule set used when ``curation.rules`` is empty: every source of evaluation records.

    negative user feedback, low automated judge scores, errors, badly answered query clusters, critical
    user journeys, and a regression guard of good interactions.
    """
    return [
        CurationRule(
            name="negative_feedback",
            filter="assessments.user_feedback.value = 'negative'",
            priority=10,
            cap=200,
        ),
        # Errors before low scores: a failed trace has no answer, so a scorer may also give it a low score.
        CurationRule(
            name="errors",
            filter="trace.status = 'ERROR'",
            priority=20,
            cap=100,
            options={"order": "newest"},
        ),
        CurationRule(
            name="low_judge_scores",
            filter="assessments.relevance.value < 0.5 OR assessments.groundedness.value < 0.5",
            priority=30,
            cap=200,
        ),
        CurationRule(
            name="bad_query_clusters",
            kind="query_clusters",
            priority=40,
            cap=200,
            options={"score": "relevance", "min_volume": 5, "max_clusters": 5},
        ),
        CurationRule(name="critical_journeys", filter=CRITICAL_JOURNEYS_FILTER, priority=50, cap=100),
        CurationRule(
            name="regression_guard",
            kind="regression_guard",
            priority=90,
            cap=100,
            options={"min_score": 0.8},
        ),
    ]


def effective_rules(app: Application) -> list[CurationRule]:
    """The configured rules, or :func:`default_rules` when none are configured, in run order."""
    rules = list(app.curation.rules) or default_rules()
    order = sorted(range(len(rules)), key=lambda i: (rules[i].priority, i))
    return [rules[i] for i in order]


@dataclass
class Selection:
    """The outcome of :func:`select`: chosen row indices with their rule, plus the cluster statistics."""

    rows: list[int] = field(default_factory=list)
    rules: list[CurationRule] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    clusters: list[str | None] = field(default_factory=list)
    per_rule: dict[str, int] = field(default_factory=dict)
    cluster_stats: list[ClusterStats] = field(default_factory=list)
    selected_clusters: list[str] = field(default_factory=list)


def _filter_mask(text: str | None, table: pa.Table) -> list[bool]:
    """Rows of ``table`` matching the selection filter ``text`` (all rows when None)."""
    if not text:
        return [True] * table.num_rows
    from genai_flywheel.selection import compile_filter

    return [bool(m) for m in compile_filter(text).mask(table)]


def _distinct_first(order: Iterable[int], view: TraceView) -> list[int]:
    """Stable partition: the first trace of each distinct input, then the repeats (each in rank order)."""
    seen: set[str] = set()
    first: list[int] = []
    repeats: list[int] = []
    for row in order:
        key = view.input_keys[row]
        (repeats if key in seen else first).append(row)
        seen.add(key)
    return first + repeats


def _ranked(
    rows: Iterable[int], view: TraceView, scores: tuple[str, ...], feedback: str | None, order: str
) -> list[int]:
    def quality(row: int) -> float:
        value = view.quality(row, scores, feedback)
        return UNKNOWN_QUALITY if value is None else value

    if order == "newest":
        key = lambda r: (-view.timestamps[r], view.trace_ids[r])  # noqa: E731
    elif order == "best":
        key = lambda r: (-quality(r), -view.timestamps[r], view.trace_ids[r])  # noqa: E731
    else:
        key = lambda r: (quality(r), -view.timestamps[r], view.trace_ids[r])  # noqa: E731
    return _distinct_first(sorted(rows, key=key), view)


def _select_filter(rule: CurationRule, view: TraceView, open_rows: list[int], mask: list[bool]) -> list[int]:
    options = cast(FilterRuleOptions, rule.options)
    scores = names(options.scores, DEFAULT_SCORES)
    ranked = _ranked((r for r in open_rows if mask[r]), view, scores, options.feedback, options.order)
    return ranked[: rule.cap]


def _select_clusters(
    rule: CurationRule, view: TraceView, open_rows: list[int], mask: list[bool], selection: Selection
) -> tuple[list[int], list[str]]:
    options = cast(QueryClustersOptions, rule.options)
    kwargs = cluster_options(options)
    stats = cluster_stats(view, **kwargs)
    if not selection.cluster_stats:
        selection.cluster_stats = stats
    max_clusters = options.max_clusters
    per_cluster = options.per_cluster_cap or max(1, rule.cap // max(1, max_clusters))
    good = options.good_quality
    scores = names(options.scores, (options.score,) if options.score else DEFAULT_SCORES)
    feedback = options.feedback
    clustering = view_clustering(view, kwargs["method"])
    open_set = set(open_rows)
    chosen: list[int] = []
    chosen_clusters: list[str] = []
    for cluster in [s for s in stats if s.bad][:max_clusters]:
        members = []
        for row in clustering.clusters[cluster.cluster_id].members:
            if row not in open_set or not mask[row]:
                continue
            # Known-good answers in a bad cluster are the regression guard's business, not failures.
            quality = view.quality(row, scores, feedback)
            if quality is None or quality < good:
                members.append(row)
        picked = _ranked(members, view, scores, feedback, "worst")[:per_cluster]
        room = max(rule.cap - len(chosen), 0)
        if picked and room:
            chosen.extend(picked[:room])
            chosen_clusters.append(cluster.cluster_id)
        logger.info(
            "rule %s: cluster %s (%s) volume=%d mean_score=%s negative_rate=%s -> %d traces",
            rule.name,
            cluster.cluster_id,
            cluster.label,
            cluster.volume,
            cluster.mean_score,
            cluster.negative_rate,
            min(len(picked), room),
        )
    return chosen, chosen_clusters


def _select_guard(rule: CurationRule, view: TraceView, open_rows: list[int], mask: list[bool]) -> list[int]:
    options = cast(RegressionGuardOptions, rule.options)
    scores = names(options.scores, DEFAULT_SCORES)
    feedback = options.feedback
    min_score = options.min_score
    need_positive = options.require_positive_feedback
    clustering = view_clustering(view, ClusterMethod.from_options(options))

    buckets: dict[str, list[int]] = {}
    for row in open_rows:
        if not mask[row] or view.statuses[row] != "OK":
            continue
        verdict = view.assessments[row].polarity(feedback) if feedback else None
        quality = view.quality(row, scores, feedback)
        if verdict == -1 or quality is None or quality < min_score or (need_positive and verdict != 1):
            continue
        # Unclustered queries share one bucket that sorts after every cluster ("~" > "c-").
        buckets.setdefault(clustering.assignment[row] or "~", []).append(row)
    order = sorted(buckets, key=lambda c: (c == "~", -len(buckets[c]), c))
    queues = [_ranked(buckets[c], view, scores, feedback, "best") for c in order]

    chosen: list[int] = []
    depth = 0
    while len(chosen) < rule.cap and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(chosen) < rule.cap:
                chosen.append(queue[depth])
        depth += 1
    return chosen


def select(
    rules: Sequence[CurationRule], table: pa.Table, segment_masks: Mapping[str, list[bool]] | None = None
) -> Selection:
    """Apply ``rules`` (already in run order) to a trace table; see the module docstring.

    ``segment_masks`` holds the candidates of every ``segment_alerts`` rule by name (see
    :func:`genai_flywheel.segments.alerted.segment_alert_masks`): those come from the alert event log,
    not from the table alone.
    """
    view = TraceView(table)
    selection = Selection()
    taken: set[int] = set()
    for rule in rules:
        mask = _filter_mask(rule.filter, table)
        open_rows = [r for r in range(len(view)) if r not in taken]
        if rule.kind == "query_clusters":
            rows, clusters = _select_clusters(rule, view, open_rows, mask, selection)
            selection.selected_clusters.extend(clusters)
        elif rule.kind == "regression_guard":
            rows = _select_guard(rule, view, open_rows, mask)
        elif rule.kind == "segment_alerts":
            if segment_masks is None or rule.name not in segment_masks:
                raise ValueError(f"curation rule {rule.name!r} (segment_alerts) needs its alerted-segment mask")
            alerted = segment_masks[rule.name]
            rows = _select_filter(rule, view, open_rows, [m and a for m, a in zip(mask, alerted, strict=True)])
        else:
            rows = _select_filter(rule, view, open_rows, mask)
        for rank, row in enumerate(rows):
            selection.rows.append(row)
            selection.rules.append(rule)
            selection.ranks.append(rank)
            taken.add(row)
        selection.per_rule[rule.name] = len(rows)
        logger.info("curation rule %s (%s, priority %d): %d traces", rule.name, rule.kind, rule.priority, len(rows))
    if not selection.cluster_stats and len(view):
        selection.cluster_stats = cluster_stats(view)
    clustering = view_clustering(view, _report_method(rules))
    selection.clusters = [clustering.assignment[r] for r in selection.rows]
    return selection


def _report_method(rules: Sequence[CurationRule]) -> ClusterMethod:
    """The clustering of the first ``query_clusters`` rule (else the default) labels every selected trace."""
    for rule in rules:
        if rule.kind == "query_clusters":
            return ClusterMethod.from_options(rule.options)
    return ClusterMethod()


def selection_table(table: pa.Table, selection: Selection) -> pa.Table:
    """The selected trace rows (in selection order) plus the ``SELECTION_COLUMNS``."""
    import pyarrow as pa

    picked = table.take(pa.array(selection.rows, pa.int64()))
    picked = picked.append_column("rule", pa.array([r.name for r in selection.rules], pa.string()))
    picked = picked.append_column("rule_priority", pa.array([r.priority for r in selection.rules], pa.int32()))
    picked = picked.append_column("cluster_id", pa.array(selection.clusters, pa.string()))
    return picked.append_column("selection_rank", pa.array(selection.ranks, pa.int32()))
