"""PII redaction for fine-tuning exports: e-mail addresses, phone numbers, card numbers and extra regexes.

Replacement tokens: ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[REDACTED]`` (extra patterns). Order matters and
is fixed: e-mails first (their digits must not look like phones), then cards, then phones, then the extra
patterns.

* **Cards**: 13-19 digits, optionally grouped by single spaces or dashes, that pass the **Luhn** checksum. A
  Luhn-invalid number (an order id, a tracking number) is left alone, so ids survive while real card numbers
  do not.
* **Phones**: an optional ``+`` country code, an optional area code in parentheses, then 2-5 groups of digits
  separated by a space, dot or dash (or one unbroken run after a ``+``). To spare dates, versions, prices and
  ids, a match counts only with 10-15 digits, or 8-15 when it starts with ``+`` or has a parenthesised area
  code, and never when it looks like a date (``2026-01-15``, ``15.01.2026``). Known gap: local numbers
  without an area code (``555-1234``) are not redacted.
* **Extra patterns** come from ``export.pii.extra_patterns`` (Python regexes), each match replaced by
  ``[REDACTED]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from genai_flywheel.config import PiiRedaction
from genai_flywheel.exceptions import ConfigError

EMAIL_TOKEN, PHONE_TOKEN, CARD_TOKEN, EXTRA_TOKEN = "[EMAIL]", "[PHONE]", "[CARD]", "[REDACTED]"

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
CARD_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
PHONE_RE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{7,14}"  # E.164 without separators: +15551234567
    # grouped digits, with an optional +country code and (area code)
    r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,8}){1,4}"
    r")(?!\w)"
)
_DATE_RE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if _DATE_RE.match(text):
        return False
    international = text.startswith("+") or "(" in text
    low = 8 if international else 10
    if not low <= digits <= 15:
        return False
    # A bare run of digits is an id unless it carries a country code.
    return international or any(sep in text for sep in " .-")


@dataclass
class RedactionCounts:
    """How many of each kind were replaced."""

    email: int = 0
    phone: int = 0
    card: int = 0
    extra: int = 0

    def add(self, other: RedactionCounts) -> None:
        """Accumulate ``other`` into this one."""
        self.email += other.email
        self.phone += other.phone
        self.card += other.card
        self.extra += other.extra

    @property
    def total(self) -> int:
        """All replacements."""
        return self.email + self.phone + self.card + self.extra

    def to_dict(self) -> dict[str, int]:
        """JSON-able counts."""
        return {"email": self.email, "phone": self.phone, "card": self.card, "extra": self.extra}


@dataclass(frozen=True)
class Redactor:
    """Redacts the enabled PII kinds from text (see the module docstring)."""

    emails: bool = True
    phones: bool = True
    cards: bool = True
    extra_patterns: tuple[re.Pattern[str], ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, config: PiiRedaction) -> Redactor:
        """A redactor for ``export.pii``; a bad extra pattern is a ConfigError naming it."""
        return cls(
            emails=config.emails,
            phones=config.phones,
            cards=config.cards,
            extra_patterns=compile_patterns(config.extra_patterns),
        )

    def redact(self, text: str) -> tuple[str, RedactionCounts]:
        """``text`` with PII replaced by tokens, and the counts per kind."""
        counts = RedactionCounts()
        if not text:
            return text, counts
        if self.emails:
            text, counts.email = EMAIL_RE.subn(EMAIL_TOKEN, text)
        if self.cards:

            def card(match: re.Match[str]) -> str:
                digits = re.sub(r"[ -]", "", match.group(0))
                if 13 <= len(digits) <= 19 and luhn_valid(digits):
                    counts.card += 1
                    return CARD_TOKEN
                return match.group(0)

            text = CARD_RE.sub(card, text)
        if self.phones:

            def phone(match: re.Match[str]) -> str:
                if _is_phone(match.group(0)):
                    counts.phone += 1
                    return PHONE_TOKEN
                return match.group(0)

            text = PHONE_RE.sub(phone, text)
        for pattern in self.extra_patterns:
            text, n = pattern.subn(EXTRA_TOKEN, text)
            counts.extra += n
        return text, counts


def compile_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Compile ``export.pii.extra_patterns``; an invalid or empty-matching regex is a ConfigError."""
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ConfigError(
                f"export.pii.extra_patterns[{i}] = {pattern!r} is not a valid regular expression: {err}"
            ) from None
        if regex.search("") is not None:
            raise ConfigError(
                f"export.pii.extra_patterns[{i}] = {pattern!r} matches the empty string and would redact "
                "everywhere; make it match at least one character"
            )
        compiled.append(regex)
    return tuple(compiled)
