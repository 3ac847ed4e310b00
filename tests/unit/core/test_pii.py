"""The PII module: typed spans, overlap resolution, extra patterns, and no false positives on the demo data."""

from __future__ import annotations

import random
import re

import pytest

from flywheel_demo.corpus import DOCS
from flywheel_demo.queries import sample_feature, sample_query
from genai_flywheel import pii
from genai_flywheel.exceptions import ConfigError


def test_spans_are_typed_and_sorted() -> None:
    text = "mail a@b.io, IBAN DE89 3704 0044 0532 0130 00, ssn 123-45-6789, from 81.2.69.160, +1 212 555 0134"
    spans = pii.find_pii(text)
    assert [(s.kind, s.text) for s in spans] == [
        ("email", "a@b.io"),
        ("iban", "DE89 3704 0044 0532 0130 00"),
        ("us_ssn", "123-45-6789"),
        ("ip_address", "81.2.69.160"),
        ("phone", "+1 212 555 0134"),
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)
    assert [s.placeholder for s in spans] == ["[EMAIL]", "[IBAN]", "[US_SSN]", "[IP_ADDRESS]", "[PHONE]"]


def test_span_repr_never_shows_the_value() -> None:
    (span,) = pii.find_pii("write to jane.doe@example.com")
    assert "jane" not in repr(span) and "email" in repr(span)


def test_overlapping_candidates_merge_into_one_span_labelled_by_the_longest() -> None:
    # The extra pattern covers the card's tail and more: one span over both, the longer (extra) wins.
    detector = pii.PiiDetector.from_patterns(extra_patterns=[r"1111 1111 ref [A-Z]+-\d+"])
    text = "card 4111 1111 1111 1111 ref XYZ-12345 end"
    (span,) = detector.find(text)
    assert (span.kind, span.text) == ("extra", "4111 1111 1111 1111 ref XYZ-12345")
    assert detector.redact(text) == ("card [REDACTED] end", {"extra": 1})
    # The card alone is longer than a shorter overlapping pattern: it keeps its kind, the union is redacted.
    shorter = pii.PiiDetector.from_patterns(extra_patterns=[r"1111 ref"])
    (span,) = shorter.find(text)
    assert (span.kind, span.text) == ("credit_card", "4111 1111 1111 1111 ref")


def test_equal_length_overlap_goes_to_the_more_specific_kind() -> None:
    # A 15-digit Amex number grouped like a phone: the Luhn-checked card beats the phone.
    detector = pii.PiiDetector.from_patterns(extra_patterns=[r"3782 822463 10005"])
    (span,) = detector.find("amex 3782 822463 10005")
    assert span.kind == "credit_card"


def test_resolution_is_deterministic_under_kind_order() -> None:
    text = "x 4111 1111 1111 1111 y +44 20 7946 0958 z a@b.io"
    assert pii.PiiDetector(tuple(reversed(pii.KINDS))).find(text) == pii.PiiDetector().find(text)


def test_kind_filter_and_unknown_kinds() -> None:
    text = "mail a@b.io or call +44 20 7946 0958"
    assert [s.kind for s in pii.find_pii(text, ["phone"])] == ["phone"]
    with pytest.raises(ValueError, match=r"unknown PII kinds \['ssn'\]; use any of"):
        pii.find_pii(text, ["ssn"])


def test_extra_patterns_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"export.pii.extra_patterns\[1\] = '\[' is not a valid"):
        pii.compile_patterns([r"\d+", "["])
    with pytest.raises(ConfigError, match="matches the empty string"):
        pii.compile_patterns(["a?"])


def test_redact_replaces_every_span_with_its_placeholder() -> None:
    text = "IBAN GB82WEST12345698765432, card 5500-0000-0000-0004, host 2a00:1450:4001:82a::200e."
    out, counts = pii.DEFAULT_DETECTOR.redact(text)
    assert out == "IBAN [IBAN], card [CARD], host [IP_ADDRESS]."
    assert counts == {"iban": 1, "credit_card": 1, "ip_address": 1}


# -- false positives on the demo data ------------------------------------------------------------------


def test_demo_corpus_has_no_pii() -> None:
    texts = [t for d in DOCS for t in (d.title, d.text, d.uri, d.last_updated)]
    assert [(t, pii.find_pii(t)) for t in texts if pii.find_pii(t)] == []


def test_demo_queries_flag_exactly_the_pii_ones() -> None:
    rng = random.Random(11)
    queries = [sample_query(rng, sample_feature(rng)) for _ in range(3000)]
    flagged = {q.text for q in queries if pii.find_pii(q.text)}
    assert flagged == {q.text for q in queries if q.has_pii}
    assert len(flagged) > 50
    # The demo's PII is e-mails and +1 phones; each is found whole.
    for q in queries:
        for span in pii.find_pii(q.text):
            assert span.kind in {"email", "phone"}
            assert re.fullmatch(r"[\w.+-]+@[\w.-]+|\+1 \d{3} 555 01\d{2}", span.text), span.text


def test_values_hidden_by_their_neighbours_are_found_by_rescanning() -> None:
    # Glued together, neither the leading phone nor the first card is recognisable until the rest is found.
    text = "555-123-45674111-1111-1111-1111+1 (555) 123-4567+1 (555) 123-45674111-1111-1111-1111"
    assert [s.kind for s in pii.find_pii(text)] == ["phone", "credit_card", "phone", "phone", "credit_card"]
    assert pii.DEFAULT_DETECTOR.redact(text)[0] == "[PHONE][CARD][PHONE][PHONE][CARD]"
