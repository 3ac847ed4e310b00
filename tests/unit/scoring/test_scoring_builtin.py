"""The built-in heuristic scorers as MLflow scorers: values, rationales, errors and edge cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from genai_flywheel.scoring import builtin


@pytest.fixture(scope="module")
def trace_from() -> Callable[[str], Any]:
    from mlflow.entities import Trace

    return Trace.from_json


def _run(scorer: Any, **kwargs: Any) -> Any:
    return scorer.run(**kwargs)


# -- relevance ---------------------------------------------------------------------------------------


def test_relevance_good_and_bad_answers() -> None:
    scorer = builtin.relevance_scorer()
    good = _run(
        scorer,
        inputs={"query": "What is the capital of France?"},
        outputs={"answer": "The capital of France is Paris."},
    )
    assert good.value == 1.0 and good.error is None
    assert good.name == "relevance"
    bad = _run(scorer, inputs={"query": "What is the capital of France?"}, outputs={"answer": "Bananas are yellow."})
    assert bad.value == 0.0
    assert "missing: capital, franc" in bad.rationale


def test_relevance_chat_inputs_and_string_outputs() -> None:
    scorer = builtin.relevance_scorer()
    inputs = {
        "messages": [
            {"role": "user", "content": "Tell me about bananas"},
            {"role": "assistant", "content": "They are fruit."},
            {"role": "user", "content": "Which rivers cross Paris?"},
        ]
    }
    feedback = _run(scorer, inputs=inputs, outputs="The Seine river crosses Paris.")
    assert feedback.value == 1.0
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Bananas."}}]}
    assert _run(scorer, inputs=inputs, outputs=completion).value == 0.0


def test_relevance_empty_answer_and_unscorable_query() -> None:
    scorer = builtin.relevance_scorer()
    empty = _run(scorer, inputs={"query": "capital of France"}, outputs={"answer": ""})
    assert empty.value == 0.0 and empty.rationale == "empty answer"
    greeting = _run(scorer, inputs={"query": "Hi!"}, outputs="Hello!")
    assert greeting.value is None
    assert "no content words" in greeting.error.error_message


def test_relevance_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        builtin.relevance_scorer(threshold=1.5)


# -- groundedness ------------------------------------------------------------------------------------


def test_groundedness_uses_retriever_spans(trace_json: Callable[..., str], trace_from: Callable) -> None:
    scorer = builtin.groundedness_scorer()
    trace = trace_from(trace_json(documents=["Paris is the capital and largest city of France."]))
    grounded = _run(scorer, outputs={"answer": "Paris is the capital of France."}, trace=trace)
    assert grounded.value == 1.0
    assert "1 of 1 answer sentences supported by 1 retrieved document(s)" == grounded.rationale
    mixed = _run(scorer, outputs="Paris is the capital of France. Its mayor is a cat named Bob.", trace=trace)
    assert mixed.value == 0.5
    assert "first unsupported: 'Its mayor is a cat named Bob.'" in mixed.rationale


def test_groundedness_without_retrieval_is_an_error_not_a_score(
    trace_json: Callable[..., str], trace_from: Callable
) -> None:
    scorer = builtin.groundedness_scorer()
    no_docs = _run(scorer, outputs="Paris.", trace=trace_from(trace_json()))
    assert no_docs.value is None
    assert no_docs.error.error_message.startswith("no retrieved context")
    no_trace = _run(scorer, outputs="Paris.", trace=None)
    assert no_trace.value is None and "no retrieved context" in no_trace.error.error_message


def test_retrieved_context_accepts_document_shapes(trace_json: Callable[..., str], trace_from: Callable) -> None:
    trace = trace_from(trace_json(documents=["first doc", "second doc"]))
    assert builtin.retrieved_context(trace) == ["first doc", "second doc"]
    assert builtin.retrieved_context(None) == []


# -- refusal -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outputs", "refused", "why"),
    [
        ({"answer": "I can't help with that request."}, True, "i can't help"),
        ({"answer": ""}, True, "empty answer"),
        (None, True, "empty answer"),
        ("I don\u2019t know.", True, "i don't know"),
        ({"answer": "Paris is the capital of France."}, False, "no refusal"),
        ({"answer": "That feature is not supported on Windows."}, False, "no refusal"),
    ],
)
def test_refusal(outputs: Any, refused: bool, why: str) -> None:
    feedback = _run(builtin.refusal_scorer(), outputs=outputs)
    assert feedback.value is refused
    assert why in feedback.rationale


def test_refusal_extra_phrases() -> None:
    scorer = builtin.refusal_scorer(extra_phrases=["please contact support"])
    assert _run(scorer, outputs="Please contact support for that.").value is True


# -- pii ---------------------------------------------------------------------------------------------


def test_pii_flags_without_echoing_the_values() -> None:
    answer = "Mail john@example.com or use card 4111 1111 1111 1111."
    feedback = _run(builtin.pii_scorer(), outputs={"answer": answer})
    assert feedback.value is True
    assert feedback.rationale == "found 1 credit_card, 1 email"
    assert "john" not in feedback.rationale and "4111" not in feedback.rationale
    clean = _run(builtin.pii_scorer(), outputs="Paris is the capital of France.")
    assert clean.value is False


def test_pii_kinds_option() -> None:
    scorer = builtin.pii_scorer(kinds=["credit_card"])
    assert _run(scorer, outputs="mail john@example.com").value is False
    with pytest.raises(ValueError, match="unknown PII kinds"):
        builtin.pii_scorer(kinds=["ssn"])


def test_pii_flags_the_issue_rows_and_extra_patterns() -> None:
    scorer = builtin.pii_scorer()
    for answer, found in [
        ("my IBAN DE89370400440532013000 please", "found 1 iban"),
        ("card 4111-1111-1111-1111x", "found 1 credit_card"),
        ("ssn 123-45-6789", "found 1 us_ssn"),
    ]:
        feedback = _run(scorer, outputs=answer)
        assert (feedback.value, feedback.rationale) == (True, found)
    assert _run(scorer, outputs="ticket TCK-42").value is False
    with_patterns = builtin.pii_scorer(extra_patterns=[r"\bTCK-\d+"])
    feedback = _run(with_patterns, outputs="ticket TCK-42")
    assert (feedback.value, feedback.rationale) == (True, "found 1 extra")


# -- latency_slo -------------------------------------------------------------------------------------


def test_latency_slo(trace_json: Callable[..., str], trace_from: Callable) -> None:
    scorer = builtin.latency_slo_scorer(slo_ms=2000)
    fast = _run(scorer, trace=trace_from(trace_json(duration_ms=1999)))
    assert fast.value is True and "within the 2000 ms SLO" in fast.rationale
    slow = _run(scorer, trace=trace_from(trace_json(duration_ms=2001)))
    assert slow.value is False and "over" in slow.rationale
    missing = _run(scorer, trace=None)
    assert missing.value is None and "no trace" in missing.error.error_message


@pytest.mark.parametrize("bad", [0, -5, float("inf"), True, "fast"])
def test_latency_slo_validates(bad: Any) -> None:
    with pytest.raises(ValueError, match="slo_ms"):
        builtin.latency_slo_scorer(slo_ms=bad)


# -- freshness ---------------------------------------------------------------------------------------


def _doc(uri: str, **metadata: Any) -> dict[str, Any]:
    return {"page_content": "Smart Sync was retired in 2021.", "metadata": {"doc_uri": uri, **metadata}, "id": uri}


def test_freshness_flags_a_retrieved_document_its_metadata_marks_stale(
    trace_json: Callable[..., str], trace_from: Callable
) -> None:
    scorer = builtin.freshness_scorer()
    current = [_doc("kb/smart-sync", status="current"), _doc("kb/plans")]
    fresh = _run(scorer, trace=trace_from(trace_json(documents=current)))
    assert fresh.value is True and "2 retrieved document(s), none stale" in fresh.rationale
    archived = [_doc("kb/smart-sync", status="current"), _doc("kb/archive/smart-sync-2021", status="Archived")]
    stale = _run(scorer, trace=trace_from(trace_json(documents=archived)))
    assert stale.value is False and "kb/archive/smart-sync-2021 is status=Archived" in stale.rationale
    # Nothing retrieved: no verdict (an error), as for groundedness.
    missing = _run(scorer, trace=trace_from(trace_json()))
    assert missing.value is None and missing.error.error_message == builtin.NO_CONTEXT


def test_freshness_by_age_and_by_custom_markers(trace_json: Callable[..., str], trace_from: Callable) -> None:
    # The trace is of 2026-01-01: a page last updated 400 days before is past a 365-day limit.
    old = [_doc("kb/old", last_updated="2024-11-27"), _doc("kb/new", last_updated="2025-12-01T10:00:00Z")]
    by_age = builtin.freshness_scorer(stale={}, max_age_days=365)
    verdict = _run(by_age, trace=trace_from(trace_json(documents=old)))
    assert verdict.value is False and "kb/old was last updated 400 days before the trace" in verdict.rationale
    recent = _run(by_age, trace=trace_from(trace_json(documents=old[1:])))
    assert recent.value is True
    # Custom markers replace the defaults: status archived is fresh here, lifecycle sunset is not.
    custom = builtin.freshness_scorer(stale={"lifecycle": ["sunset"]})
    archived = [_doc("kb/a", status="archived")]
    assert _run(custom, trace=trace_from(trace_json(documents=archived))).value is True
    sunset = [_doc("kb/b", lifecycle="sunset")]
    assert _run(custom, trace=trace_from(trace_json(documents=sunset))).value is False


@pytest.mark.parametrize(
    ("options", "match"),
    [({"max_age_days": 0}, "max_age_days"), ({"max_age_days": True}, "max_age_days"), ({"stale": {}}, "at least")],
)
def test_freshness_validates(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        builtin.freshness_scorer(**options)


def test_scorers_are_mlflow_scorers_with_only_the_arguments_they_read() -> None:
    import inspect

    from mlflow.genai.scorers import Scorer

    expected = {
        "relevance": ["inputs", "outputs"],
        "groundedness": ["outputs", "trace"],
        "refusal": ["outputs"],
        "pii": ["outputs"],
        "latency_slo": ["trace"],
        "freshness": ["trace"],
    }
    made = [
        builtin.relevance_scorer(),
        builtin.groundedness_scorer(),
        builtin.refusal_scorer(),
        builtin.pii_scorer(),
        builtin.latency_slo_scorer(1000),
        builtin.freshness_scorer(),
    ]
    for scorer in made:
        assert isinstance(scorer, Scorer)
        params = [p for p in inspect.signature(scorer.__call__).parameters if p != "self"]
        assert params == expected[scorer.name]
