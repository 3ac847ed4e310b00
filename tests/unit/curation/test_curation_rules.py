"""Selection rules: priorities, caps, ordering, determinism, query clusters, regression guard."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from curation_tables import table, trace
from pydantic import ValidationError

from genai_flywheel.config import Application, CurationRule
from genai_flywheel.curation import rules as rules_module
from genai_flywheel.curation.clusters import (
    ClusterMethod,
    cluster_options,
    cluster_signatures,
    cluster_stats,
    cluster_terms,
    stats_to_table,
    view_clustering,
)
from genai_flywheel.curation.rules import default_rules, effective_rules, select, selection_table
from genai_flywheel.curation.text import query_terms
from genai_flywheel.curation.view import TraceView
from genai_flywheel.exceptions import ConfigError


def app_with(rules: list[CurationRule] | None = None) -> Application:
    return Application.model_validate(
        {
            "name": "demo",
            "mlflow": {"tracking_uri": "sqlite:///x.db", "experiment": "demo"},
            "curation": {"rules": [r.model_dump() for r in rules or []]},
        }
    )


NEG = CurationRule(name="neg", filter="assessments.user_feedback.value = 'negative'", priority=10, cap=10)
LOW = CurationRule(
    name="low",
    filter="assessments.relevance.value < 0.5 OR assessments.groundedness.value < 0.5",
    priority=20,
    cap=10,
)
ERR = CurationRule(name="err", filter="trace.status = 'ERROR'", priority=30, cap=10, options={"order": "newest"})


def stage_selection(app: Application, traces: pa.Table) -> pa.Table:
    """What the select stage writes to ``selected.parquet``: the application's rules applied to ``traces``."""
    return selection_table(traces, select(effective_rules(app), traces))


def cluster_report(traces: pa.Table, **options: object) -> pa.Table:
    """What the select stage writes to ``clusters.parquet`` for a query_clusters rule with ``options``."""
    return stats_to_table(cluster_stats(TraceView(traces), **cluster_options(options)))


def picked(result: pa.Table) -> list[tuple[str, str]]:
    return list(zip(result.column("trace_id").to_pylist(), result.column("rule").to_pylist(), strict=True))


def test_higher_priority_rule_claims_a_trace_first_and_later_rules_skip_it() -> None:
    rows = [
        trace("t1", "why is my invoice wrong", feedback=False, scores={"relevance": 0.1}),
        trace("t2", "how to reset password", scores={"relevance": 0.2}),
        trace("t3", "what are webhooks", scores={"relevance": 0.9}),
    ]
    # Configured out of order on purpose: priority, not list position, decides.
    result = stage_selection(app_with([LOW, NEG]), table(rows))
    assert picked(result) == [("t1", "neg"), ("t2", "low")]
    assert result.column("rule_priority").to_pylist() == [10, 20]
    assert set(rules_module.SELECTION_COLUMNS) <= set(result.column_names)


def test_cap_keeps_the_worst_traces_lowest_score_first() -> None:
    rows = [
        trace(f"t{i}", f"question number {word}", minute=i, scores={"relevance": score})
        for i, (word, score) in enumerate(
            [("alpha", 0.4), ("bravo", 0.1), ("charlie", 0.3), ("delta", 0.2), ("echo", 0.9)]
        )
    ]
    capped = CurationRule(**{**LOW.model_dump(), "cap": 3})
    result = stage_selection(app_with([capped]), table(rows))
    assert result.column("trace_id").to_pylist() == ["t1", "t3", "t2"]
    assert result.column("selection_rank").to_pylist() == [0, 1, 2]


def test_ties_break_newest_first_then_trace_id() -> None:
    rows = [
        trace("b", "timeout one", minute=1, status="ERROR"),
        trace("a", "timeout two", minute=1, status="ERROR"),
        trace("c", "timeout three", minute=5, status="ERROR"),
    ]
    result = stage_selection(app_with([ERR]), table(rows))
    assert result.column("trace_id").to_pylist() == ["c", "a", "b"]


def test_repeated_inputs_go_behind_distinct_ones_within_a_cap() -> None:
    rows = [
        trace("t1", "How do I export?", scores={"relevance": 0.1}),
        trace("t2", "how do i export", scores={"relevance": 0.15}),
        trace("t3", "where are my logs", scores={"relevance": 0.3}),
    ]
    capped = CurationRule(**{**LOW.model_dump(), "cap": 2})
    result = stage_selection(app_with([capped]), table(rows))
    assert result.column("trace_id").to_pylist() == ["t1", "t3"]


def _mixed_rows() -> list[dict]:
    rows = []
    for i in range(12):
        bad = i % 3 == 0
        rows.append(
            trace(
                f"s{i:02d}",
                ["How do I enable Smart Sync?", "Smart Sync enable steps", "enable smart sync on laptop"][i % 3],
                minute=i,
                feedback=False if bad else None,
                scores={"relevance": 0.1 if i % 2 else 0.2},
            )
        )
        rows.append(
            trace(
                f"b{i:02d}",
                ["How do I download my invoice?", "download invoice pdf", "where is my invoice download"][i % 3],
                minute=i,
                feedback=True if i % 2 else None,
                scores={"relevance": 0.9, "groundedness": 0.95},
                tags={"journey": "billing"} if i % 4 == 0 else None,
            )
        )
        rows.append(
            trace(
                f"e{i:02d}",
                f"webhook retries failing {i}",
                minute=i,
                status="ERROR" if i < 3 else "OK",
                feedback=True if i % 4 == 3 else None,
            )
        )
    rows.append(trace("x1", "rare question about quotas", scores={"relevance": 0.0}))
    return rows


def test_selection_is_deterministic_under_row_permutation() -> None:
    rows = _mixed_rows()
    app = app_with()
    expected = picked(stage_selection(app, table(rows)))
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    assert picked(stage_selection(app, table(shuffled))) == expected
    assert len(expected) > 10


def test_query_terms_strip_pii_numbers_stop_words_and_stem() -> None:
    assert query_terms("How do I enable Smart-Sync?? mail bob@example.com, call +1 (555) 123-4567") == (
        "call",
        "enabl",
        "mail",
        "smart",
        "sync",
    )
    assert query_terms("Enabling smart syncs") == query_terms("enabled Smart Sync!")
    assert query_terms("the of and") == ()
    # Every kind the pii scorer knows is dropped, letters included (an IBAN's country and bank code).
    assert query_terms("refund to GB82WEST12345698765432 from 81.2.69.160, jörg@bücher.de") == ("refund",)
    assert query_terms(None) == ()


def test_clustering_groups_paraphrases_and_is_order_independent() -> None:
    queries = [
        "How do I enable Smart Sync?",
        "how to enable smart sync",
        "Enabling Smart Sync",
        "download invoice pdf",
        "download my invoice",
        "",
    ]
    terms = [query_terms(q) for q in queries]
    first = cluster_terms(terms, threshold=0.5)
    assert first.assignment[0] == first.assignment[1] == first.assignment[2]
    assert first.assignment[3] == first.assignment[4] != first.assignment[0]
    assert first.assignment[5] is None
    permutation = [4, 2, 5, 0, 3, 1]
    second = cluster_terms([terms[i] for i in permutation], threshold=0.5)
    assert [second.assignment[permutation.index(i)] for i in range(len(queries))] == list(first.assignment)


def test_signature_clustering_groups_a_topic_by_its_most_frequent_terms() -> None:
    queries = [
        "How do I turn on Smart Sync?",
        "Smart Sync skipped a large file",
        "smart sync bandwidth limit",
        "download invoice pdf",
        "invoice for last month",
        "large file upload limit",
    ]
    terms = [query_terms(q) for q in queries]
    clustering = cluster_signatures(terms, size=2)
    assert len({clustering.assignment[i] for i in range(3)}) == 1
    smart_sync = clustering.clusters[clustering.assignment[0]]
    assert smart_sync.key == ("smart", "sync") and smart_sync.members == (0, 1, 2)
    assert clustering.assignment[3] == clustering.assignment[4] != clustering.assignment[0]
    # Same clusters (ids and members) whatever the row order.
    reordered = cluster_signatures(list(reversed(terms)), size=2)
    assert [reordered.assignment[len(terms) - 1 - i] for i in range(len(terms))] == list(clustering.assignment)


def test_unknown_cluster_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="option method='kmeans': Input should be 'signature' or 'jaccard'"):
        ClusterMethod.from_options({"method": "kmeans"})


def test_cluster_threshold_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="option threshold=1.5: Input should be less than or equal to 1"):
        cluster_terms([("a",)], threshold=1.5)


def test_view_clustering_is_computed_once_per_table_and_method() -> None:
    view = TraceView(table(_mixed_rows()))
    signature = view_clustering(view, ClusterMethod())
    assert view_clustering(view, ClusterMethod()) is signature
    assert signature == cluster_signatures(view.terms)
    jaccard = view_clustering(view, ClusterMethod(method="jaccard"))
    assert jaccard is not signature and jaccard == cluster_terms(view.terms)
    assert view_clustering(TraceView(view.table), ClusterMethod()) is not signature  # cached per view


def test_cluster_report_ranks_the_bad_frequent_cluster_first() -> None:
    report = cluster_report(table(_mixed_rows()), min_volume=5).to_pylist()
    worst = report[0]
    assert "smart" in worst["label"] and "sync" in worst["label"]
    assert worst["volume"] == 12 and worst["bad"] is True
    assert worst["mean_score"] == pytest.approx(0.15)
    assert worst["negative_rate"] == pytest.approx(1.0)
    invoice = next(r for r in report if "invoic" in r["label"])
    assert invoice["bad"] is False and invoice["negative_rate"] == 0.0
    rare = next(r for r in report if "quota" in r["label"])
    assert rare["bad"] is False  # one trace: below min_volume although it scores 0.0
    assert [r["rank"] for r in report] == list(range(1, len(report) + 1))


def test_a_pattern_that_broke_recently_is_bad_although_the_week_was_fine() -> None:
    day = 24 * 60
    rows = [trace(f"old{i:02d}", "smart sync setup", minute=i * 60, feedback=True) for i in range(40)]
    rows += [trace(f"new{i}", "smart sync setup", minute=3 * day + i, feedback=False) for i in range(6)]
    rows += [
        trace(f"x{i}", f"invoice question {w}", minute=3 * day + i, feedback=i % 3 != 0)
        for i, w in enumerate("abcdefgh")
    ]
    report = cluster_report(table(rows)).to_pylist()
    smart = next(r for r in report if r["label"].startswith("setup smart sync"))
    assert smart["negative_rate"] == pytest.approx(6 / 46) and smart["recent_negative_rate"] == 1.0
    assert smart["recent_volume"] == 6 and smart["bad"] is True and smart["rank"] == 1
    without_recency = cluster_report(table(rows), recent_hours=0).to_pylist()
    assert not next(r for r in without_recency if r["cluster_id"] == smart["cluster_id"])["bad"]


def test_query_cluster_rule_selects_worst_cluster_members_worst_first() -> None:
    rule = CurationRule(name="clusters", kind="query_clusters", cap=50, options={"min_volume": 5, "per_cluster_cap": 4})
    result = stage_selection(app_with([rule]), table(_mixed_rows()))
    ids = result.column("trace_id").to_pylist()
    assert len(ids) == 4 and all(t.startswith("s") for t in ids)
    # Negative feedback ranks as 0.0 (newest first among equals), but a repeated phrasing waits until each
    # distinct phrasing had its turn: s09 (negative), s11 and s07 (0.1, other phrasings), then s06.
    assert ids == ["s09", "s11", "s07", "s06"]
    assert len(set(result.column("cluster_id").to_pylist())) == 1


def test_query_cluster_rule_leaves_known_good_traces_of_a_bad_cluster_alone() -> None:
    rows = [trace(f"s{i}", "how do I enable smart sync", minute=i, feedback=False) for i in range(5)]
    rows.append(trace("happy", "enable smart sync please", minute=9, feedback=True))
    rule = CurationRule(name="clusters", kind="query_clusters", cap=50, options={"min_volume": 5})
    ids = stage_selection(app_with([rule]), table(rows)).column("trace_id").to_pylist()
    assert "happy" not in ids and len(ids) == 5


def test_regression_guard_takes_good_ok_traces_round_robin_across_clusters() -> None:
    rows = _mixed_rows() + [
        trace(f"g{i}", q, minute=i, scores={"relevance": 0.95}, feedback=True)
        for i, q in enumerate(["rotate api keys", "rotating api key", "backup schedule settings"])
    ]
    rule = CurationRule(name="guard", kind="regression_guard", cap=3, options={"min_score": 0.8})
    result = stage_selection(app_with([rule]), table(rows))
    ids = result.column("trace_id").to_pylist()
    assert len(ids) == 3
    assert len(set(result.column("cluster_id").to_pylist())) == 3  # one per cluster before any second pick
    assert ids[0].startswith("b")  # the invoice cluster has the most good traces
    assert not any(t.startswith("s") for t in ids)  # the badly answered Smart Sync traces
    assert set(result.column("status").to_pylist()) == {"OK"}


def test_regression_guard_never_takes_negative_feedback_or_errors() -> None:
    rows = [
        trace("bad", "great question", scores={"relevance": 0.99}, feedback=False),
        trace("err", "another question", status="ERROR"),
        trace("ok", "third question", feedback=True),
    ]
    rule = CurationRule(name="guard", kind="regression_guard", cap=10)
    assert stage_selection(app_with([rule]), table(rows)).column("trace_id").to_pylist() == ["ok"]


def test_default_rules_cover_every_source() -> None:
    defaults = default_rules()
    by_name = {r.name: r for r in defaults}
    assert set(by_name) == {
        "negative_feedback",
        "low_judge_scores",
        "errors",
        "bad_query_clusters",
        "critical_journeys",
        "regression_guard",
    }
    assert by_name["bad_query_clusters"].kind == "query_clusters"
    assert by_name["regression_guard"].kind == "regression_guard"
    assert "user_feedback" in by_name["negative_feedback"].filter
    assert [r.name for r in effective_rules(app_with())] == [r.name for r in sorted(defaults, key=lambda r: r.priority)]
    assert [r.name for r in effective_rules(app_with([ERR, NEG]))] == ["neg", "err"]


def test_default_rules_select_from_each_source() -> None:
    result = select(effective_rules(app_with()), table(_mixed_rows()))
    assert result.per_rule["negative_feedback"] == 4
    assert result.per_rule["low_judge_scores"] == 9  # the other Smart Sync traces and the quota question
    assert result.per_rule["errors"] == 3
    assert result.per_rule["critical_journeys"] > 0
    assert result.per_rule["regression_guard"] > 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"filter": "trace.status = 'ERROR'", "options": {"cap_per": 3}}, r"options\.cap_per\n  Extra inputs"),
        ({"kind": "filter"}, "needs a filter"),
        ({"filter": "trace.status = 'ERROR'", "options": {"order": "random"}}, r"options\.order\n.*'worst'"),
        (
            {"kind": "regression_guard", "options": {"min_score": "high"}},
            r"options\.min_score\n  Input should be a number",
        ),
    ],
)
def test_bad_rule_options_are_rejected_when_the_rule_is_built(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CurationRule(name="r", **fields)


def test_empty_table_selects_nothing() -> None:
    result = stage_selection(app_with(), table([]))
    assert result.num_rows == 0
    assert "rule" in result.column_names


def test_a_rule_with_a_bad_filter_or_option_is_rejected_when_built() -> None:
    assert [r.kind for r in default_rules()].count("filter") == 4  # the defaults build
    with pytest.raises(ValidationError, match=r"filter\n  Value error, malformed selection filter"):
        CurationRule(name="r", filter="trace.status = ")
    with pytest.raises(ValidationError, match=r"options\.max_clusters\n"):
        CurationRule(name="r", kind="query_clusters", options={"max_clusters": "many"})


def test_default_critical_journeys_follow_the_journey_tag_not_an_apps_words() -> None:
    rule = next(r for r in default_rules() if r.name == "critical_journeys")
    rows = [
        trace("tagged", "where do I pay", tags={"journey": "checkout"}),
        trace("words", "my invoice is wrong and SSO fails"),  # an app's own words: its config names them
    ]
    assert picked(stage_selection(app_with([rule]), table(rows))) == [("tagged", "critical_journeys")]
