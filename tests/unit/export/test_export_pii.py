"""PII redaction: every kind the scorer flags, checksum-invalid numbers kept, extra patterns, and the property
that whatever the ``pii`` scorer reports is redacted by the export."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from genai_flywheel.config import PiiRedaction
from genai_flywheel.exceptions import ConfigError
from genai_flywheel.export.pii import RedactionCounts, Redactor, luhn_valid
from genai_flywheel.scoring.heuristics import find_pii

REDACT = Redactor()


@pytest.mark.parametrize(
    "text",
    ["jane.doe@example.com", "a.b+tag@mail.co.uk", "USER_42@Example.ORG", "x-y@sub-domain.example.io"],
)
def test_emails(text: str) -> None:
    out, counts = REDACT.redact(f"mail {text}, thanks")
    assert out == "mail [EMAIL], thanks" and counts.email == 1


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (555) 123-4567",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "555 123 4567",
        "+44 20 7946 0958",
        "+49 30 1234567",
        "+15551234567",
        "+33 1 23 45 67 89",
    ],
)
def test_phone_formats(phone: str) -> None:
    out, counts = REDACT.redact(f"call me at {phone} today")
    assert out == "call me at [PHONE] today", out
    assert counts.phone == 1


@pytest.mark.parametrize(
    "text",
    [
        "released on 2026-01-15",
        "on 15.01.2026",
        "version 3.17.2",
        "host 10.20.30.40",
        "order 1234567890",  # a bare run of digits is an id, not a phone
        "ts 1700000000000",
        "costs 1,299.99 USD",
        "room 4021",
    ],
)
def test_numbers_that_are_not_phones_survive(text: str) -> None:
    out, counts = REDACT.redact(text)
    assert out == text and counts.total == 0


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500 0000 0000 0004",
        "378282246310005",
    ],
)
def test_luhn_valid_cards_are_redacted(card: str) -> None:
    out, counts = REDACT.redact(f"my card {card}.")
    assert out == "my card [CARD]." and counts.card == 1 and counts.phone == 0


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "1234-5678-9012-3456", "4111111111111113"])
def test_luhn_invalid_numbers_are_kept(number: str) -> None:
    out, counts = REDACT.redact(f"ref {number}")
    assert out == f"ref {number}" and counts.total == 0


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("4111-1111")


def test_mixed_text_counts_each_kind() -> None:
    text = "Email bob@corp.com or call +1 555 123 4567; card 4111111111111111, ticket ABC-123."
    redactor = Redactor.from_config(PiiRedaction(extra_patterns=[r"\bABC-\d+\b"]))
    out, counts = redactor.redact(text)
    assert out == "Email [EMAIL] or call [PHONE]; card [CARD], ticket [REDACTED]."
    assert counts.to_dict() == {
        "email": 1,
        "phone": 1,
        "card": 1,
        "iban": 0,
        "us_ssn": 0,
        "ip_address": 0,
        "extra": 1,
    }
    assert counts.total == 4


def test_kinds_can_be_switched_off() -> None:
    redactor = Redactor.from_config(PiiRedaction(emails=False, phones=False, cards=False))
    text = "bob@corp.com 555-123-4567 4111111111111111"
    assert redactor.redact(text) == (text, redactor.redact("")[1])


def test_bad_extra_patterns_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"extra_patterns\[0\] = '\(' is not a valid regular expression"):
        Redactor.from_config(PiiRedaction(extra_patterns=["("]))
    with pytest.raises(ConfigError, match="matches the empty string"):
        Redactor.from_config(PiiRedaction(extra_patterns=["x*"]))


# -- the issue's rows: what the scorer flags never leaves in the export ----------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "redacted"),
    [
        ("my IBAN DE89370400440532013000 please", "iban", "my IBAN [IBAN] please"),
        ("card 4111-1111-1111-1111x", "credit_card", "card [CARD]x"),
        ("ssn 123-45-6789", "us_ssn", "ssn [US_SSN]"),
    ],
)
def test_issue_rows_are_flagged_and_redacted_alike(text: str, kind: str, redacted: str) -> None:
    assert [m.kind for m in find_pii(text)] == [kind]
    out, counts = REDACT.redact(text)
    assert out == redacted and counts.total == 1


@pytest.mark.parametrize(
    "phone",
    [
        "+81 3-1234-5678",
        "+91 98765 43210",
        "+61 2 9876 5432",
        "+49 (0)30 1234567",
        "+1-800-555-0199",
        "020 7946 0958",  # GB national
        "(020) 7946 0958",
        "030 1234567",  # DE national
        "01 23 45 67 89",  # FR national
    ],
)
def test_international_and_national_phones(phone: str) -> None:
    out, counts = REDACT.redact(f"ring {phone} now")
    assert out == "ring [PHONE] now" and counts.phone == 1


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Contact:jane.doe@example.com.", "Contact:[EMAIL]."),
        ("<bob@corp.io>, (ann@x.dev)", "<[EMAIL]>, ([EMAIL])"),
        ("jörg.müller@bücher.de schrieb", "[EMAIL] schrieb"),
        ("a@b.co.uk;c@d.io", "[EMAIL];[EMAIL]"),
    ],
)
def test_emails_in_running_text(text: str, redacted: str) -> None:
    assert REDACT.redact(text)[0] == redacted


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("from 81.2.69.160 at noon", "from [IP_ADDRESS] at noon"),
        ("dns 8.8.8.8:53", "dns [IP_ADDRESS]:53"),
        ("v6 2a00:1450:4001:82a::200e here", "v6 [IP_ADDRESS] here"),
        ("v6 [2606:4700:4700::1111]", "v6 [[IP_ADDRESS]]"),
    ],
)
def test_global_ip_addresses_are_redacted(text: str, redacted: str) -> None:
    out, counts = REDACT.redact(text)
    assert out == redacted and counts.ip_address == 1


@pytest.mark.parametrize(
    "text",
    [
        "host 10.20.30.40",
        "lan 192.168.1.10 and 172.16.0.1",
        "loopback 127.0.0.1 and ::1",
        "docs 2001:db8::1 and 203.0.113.7",
        "link fe80::1ff:fe23:4567:890a",
        "not an address 999.1.1.1 nor 12:30:45 nor std::vector",
    ],
)
def test_private_and_invalid_addresses_survive(text: str) -> None:
    assert REDACT.redact(text) == (text, RedactionCounts())


@pytest.mark.parametrize(
    "text",
    [
        "IBAN DE89370400440532013001",  # mod-97 fails
        "IBAN GB82WEST12345698765431",
        "IBAN DE89 3704 0044 0532 0130 01",
        "ssn 000-12-3456",  # area 000 is never issued
        "ssn 666-12-3456",
        "ssn 123-00-4567",  # group 00
        "ssn 123-45-0000",  # serial 0000
        "id 123456789",  # a bare 9-digit run is an id
        "card 4111 1111 1111 1113",  # Luhn fails
        "card 5500-0000-0000-0005",
        "order 2345678901",
        "ISBN 978-3-16-148410-0",
    ],
)
def test_checksum_invalid_numbers_survive(text: str) -> None:
    assert REDACT.redact(text) == (text, RedactionCounts())


def test_switched_off_kinds_leave_the_other_kinds_redacted() -> None:
    redactor = Redactor.from_config(PiiRedaction(emails=False, phones=False, cards=False))
    out, counts = redactor.redact("bob@corp.com IBAN DE89370400440532013000 ssn 123-45-6789 ip 8.8.8.8")
    assert out == "bob@corp.com IBAN [IBAN] ssn [US_SSN] ip [IP_ADDRESS]"
    assert (counts.iban, counts.us_ssn, counts.ip_address, counts.total) == (1, 1, 1, 3)


# -- property: every span the scorer reports is redacted by the export -----------------------------------

_PII_PIECES = st.sampled_from(
    [
        "jane.doe@example.com",
        "a+b@mail.co.uk",
        "+1 (555) 123-4567",
        "555-123-4567",
        "+44 20 7946 0958",
        "020 7946 0958",
        "+15551234567",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "123-45-6789",
        "81.2.69.160",
        "2a00:1450:4001:82a::200e",
        "10.0.0.1",
        "2026-01-15",
        "v3.17.2",
        "TCK-4711",
    ]
)
_FILLER = st.text(alphabet=st.sampled_from(list("abcXYZ019 .,:;-+()@[]_\n")), max_size=6)
_TEXTS = st.lists(st.one_of(_PII_PIECES, _FILLER), max_size=8).map("".join) | st.text(max_size=60)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXTS)
def test_property_every_span_the_scorer_reports_is_redacted_by_the_export(text: str) -> None:
    config = PiiRedaction(extra_patterns=[r"\bTCK-\d+"])
    spans = find_pii(text, extra_patterns=config.extra_patterns)
    out, counts = Redactor.from_config(config).redact(text)
    assert counts.total == len(spans)
    for span in spans:
        assert span.text not in out, (span.kind, span.text, out)
    # Nothing the scorer would flag is left in the exported text.
    assert find_pii(out, extra_patterns=config.extra_patterns) == []
