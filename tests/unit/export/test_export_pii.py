"""PII redaction: e-mails, phones in several formats, Luhn-valid vs invalid card numbers, extra patterns."""

from __future__ import annotations

import pytest

from genai_flywheel.config import PiiRedaction
from genai_flywheel.exceptions import ConfigError
from genai_flywheel.export.pii import Redactor, luhn_valid

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
    assert counts.to_dict() == {"email": 1, "phone": 1, "card": 1, "extra": 1} and counts.total == 4


def test_kinds_can_be_switched_off() -> None:
    redactor = Redactor.from_config(PiiRedaction(emails=False, phones=False, cards=False))
    text = "bob@corp.com 555-123-4567 4111111111111111"
    assert redactor.redact(text) == (text, redactor.redact("")[1])


def test_bad_extra_patterns_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"extra_patterns\[0\] = '\(' is not a valid regular expression"):
        Redactor.from_config(PiiRedaction(extra_patterns=["("]))
    with pytest.raises(ConfigError, match="matches the empty string"):
        Redactor.from_config(PiiRedaction(extra_patterns=["x*"]))
