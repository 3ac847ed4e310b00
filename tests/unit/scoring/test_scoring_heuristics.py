"""The pure-Python text helpers behind the built-in scorers: no MLflow import, milliseconds."""

from __future__ import annotations

import pytest

from genai_flywheel.scoring import heuristics as h
from genai_flywheel.scoring.normalize import extract_answer, extract_query

# -- normalising inputs and outputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"query": "capital of France?"}, "capital of France?"),
        ({"question": "why?", "user_id": "u1"}, "why?"),
        ("plain text", "plain text"),
        (None, ""),
        (
            {
                "messages": [
                    {"role": "system", "content": "be nice"},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "answer"},
                    {"role": "user", "content": [{"type": "text", "text": "last"}, {"type": "image_url"}]},
                ]
            },
            "last",
        ),
        ([{"role": "user", "content": "bare list"}], "bare list"),
        ({"only": "one string"}, "one string"),
        ({"a": 1, "b": 2}, '{"a": 1, "b": 2}'),
    ],
)
def test_extract_query(inputs: object, expected: str) -> None:
    assert extract_query(inputs) == expected


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ({"answer": "Paris."}, "Paris."),
        ("just a string", "just a string"),
        (None, ""),
        (
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": "from choices"}}]},
            "from choices",
        ),
        ({"choices": [{"text": "legacy completion"}]}, "legacy completion"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "a"),
        (["part one", "part two"], "part one\npart two"),
        ({"x": [1, 2]}, '{"x": [1, 2]}'),
    ],
)
def test_extract_answer(outputs: object, expected: str) -> None:
    assert extract_answer(outputs) == expected


# -- words, stemming, sentences ----------------------------------------------------------------------


def test_content_words_drop_stop_words_and_stem() -> None:
    assert h.content_words("Can you please tell me the capitals of France?") == ["capital", "franc"]
    assert h.stem("flies") == h.stem("fly")
    assert h.stem("stopped") == h.stem("stop")
    assert h.stem("running") == "run"
    assert h.stem("class") == "class"
    assert h.stem("2024") == "2024"


def test_sentences_split_on_ends_and_lines() -> None:
    assert h.sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert h.sentences("   ") == []


# -- relevance and grounding -------------------------------------------------------------------------


def test_relevance_overlap_scores_share_of_query_words() -> None:
    full = h.relevance_overlap("What is the capital of France?", "Paris is the capital city of France.")
    assert full.score == 1.0 and full.missing == ()
    half = h.relevance_overlap("capital of France", "The capital is big.")
    assert half.score == 0.5 and half.missing == ("franc",)
    assert h.relevance_overlap("capital of France", "").score == 0.0
    assert h.relevance_overlap("hi there!", "anything").score is None


def test_grounding_counts_supported_sentences() -> None:
    docs = ["Paris is the capital and largest city of France."]
    result = h.grounding("Paris is the capital of France. It has ten million dragons. Sure!", docs)
    assert (result.supported, result.total) == (1, 2)
    assert result.score == 0.5
    assert result.unsupported == ("It has ten million dragons.",)
    assert h.grounding("", docs).score is None
    assert h.grounding("Paris is in France.", []).score == 0.0


def test_grounding_sentence_overlap_is_configurable() -> None:
    docs = ["Paris is a city."]
    answer = "Paris has museums."  # 1 of 2 content words ("paris", "museum") is in the context
    assert h.grounding(answer, docs, sentence_overlap=0.5).score == 1.0
    assert h.grounding(answer, docs, sentence_overlap=0.75).score == 0.0


# -- refusal -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "I can't help with that.",
        "I\u2019m sorry, but I can\u2019t share that information.",
        "Sorry, I cannot do this.",
        "I DON'T KNOW.",
        "",
        "   \n ",
    ],
)
def test_refusals_are_detected(answer: str) -> None:
    assert h.refusal_phrase(answer) is not None


@pytest.mark.parametrize(
    "answer",
    [
        "Paris is the capital of France.",
        "Python 2 is not supported any more; use Python 3.",
        "Paris. " + "More detail. " * 30 + "I don't know about Lyon.",
    ],
)
def test_non_refusals_pass(answer: str) -> None:
    assert h.refusal_phrase(answer) is None


def test_extra_refusal_phrases() -> None:
    assert h.refusal_phrase("Please contact support.") is None
    assert h.refusal_phrase("Please contact support.", ["contact support"]) == "contact support"


# -- PII ---------------------------------------------------------------------------------------------


def _kinds(text: str, kinds: tuple[str, ...] = h.PII_KINDS) -> list[str]:
    return [m.kind for m in h.find_pii(text, kinds)]


def test_pii_kinds_are_found() -> None:
    assert _kinds("write to jane.doe+x@example.co.uk today") == ["email"]
    assert _kinds("call +1 (555) 123-4567") == ["phone"]
    assert _kinds("call 555-123-4567 or +441234567890") == ["phone", "phone"]
    assert _kinds("card 4111 1111 1111 1111 please") == ["credit_card"]
    assert _kinds("card 4111-1111-1111-1111") == ["credit_card"]
    assert _kinds("IBAN DE89 3704 0044 0532 0130 00 IS MINE") == ["iban"]
    assert _kinds("GB82WEST12345698765432") == ["iban"]


def test_pii_false_positives_are_avoided() -> None:
    assert _kinds("card 4111 1111 1111 1112 fails Luhn") == []
    assert _kinds("IBAN DE89 3704 0044 0532 0130 01 fails mod-97") == []
    assert _kinds("server 192.168.100.200, version 3.17.2, date 2024-01-15, 42 items") == []
    assert _kinds("Paris is the capital of France.") == []


def test_pii_match_span_and_kind_filter() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00 IS MINE, mail a@b.io"
    (iban,) = h.find_pii(text, ["iban"])
    assert text[iban.start : iban.end] == "DE89 3704 0044 0532 0130 00"
    assert _kinds(text, ("email",)) == ["email"]


def test_checksums() -> None:
    assert h.luhn_valid("4111111111111111") and not h.luhn_valid("4111111111111112")
    assert h.iban_valid("DE89370400440532013000") and not h.iban_valid("DE89370400440532013001")


def test_pii_issue_rows_and_new_kinds() -> None:
    assert _kinds("my IBAN DE89370400440532013000 please") == ["iban"]
    assert _kinds("card 4111-1111-1111-1111x") == ["credit_card"]
    assert _kinds("ssn 123-45-6789") == ["us_ssn"]
    assert _kinds("from 81.2.69.160 and 2a00:1450:4001:82a::200e") == ["ip_address", "ip_address"]
    assert _kinds("ring +81 3-1234-5678 or 020 7946 0958") == ["phone", "phone"]
    (card,) = h.find_pii("card 4111-1111-1111-1111x")
    assert card.text == "4111-1111-1111-1111"


def test_pii_checksum_invalid_and_private_values_are_not_flagged() -> None:
    assert _kinds("card 5500-0000-0000-0005, IBAN GB82WEST12345698765431") == []
    assert _kinds("ssn 000-12-3456 or 666-12-3456, id 123456789") == []
    assert _kinds("hosts 10.0.0.1, 127.0.0.1, ::1, 2001:db8::1") == []
    assert _kinds("order 2345678901, ts 1700000000000, ISBN 978-3-16-148410-0") == []
