"""PII redaction for fine-tuning exports, on :mod:`genai_flywheel.pii` (the detection the ``pii`` scorer uses).

Every span the detector reports is replaced by its ``[KIND]`` placeholder: ``[EMAIL]``, ``[PHONE]``,
``[CARD]``, ``[IBAN]``, ``[US_SSN]``, ``[IP_ADDRESS]``, and ``[REDACTED]`` for ``export.pii.extra_patterns``.
``export.pii.emails`` / ``phones`` / ``cards`` can switch those three kinds off; IBANs, US SSNs and IP
addresses are always redacted. With the defaults, whatever the ``pii`` scorer flags in a text is redacted
from it (a property test holds the two together).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import cached_property

from genai_flywheel import pii
from genai_flywheel.config import PiiRedaction
from genai_flywheel.pii import compile_patterns, luhn_valid

__all__ = ["RedactionCounts", "Redactor", "compile_patterns", "luhn_valid"]

# Count fields are named as in the manifest (``card``, not ``credit_card``); the rest match the kinds.
_COUNT_FIELD = {pii.CREDIT_CARD: "card"}


@dataclass
class RedactionCounts:
    """How many of each kind were replaced (``extra``: matches of the configured extra patterns)."""

    email: int = 0
    phone: int = 0
    card: int = 0
    iban: int = 0
    us_ssn: int = 0
    ip_address: int = 0
    extra: int = 0

    def add(self, other: RedactionCounts) -> None:
        """Accumulate ``other`` into this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def total(self) -> int:
        """All replacements."""
        return sum(self.to_dict().values())

    def to_dict(self) -> dict[str, int]:
        """JSON-able counts."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Redactor:
    """Redacts the enabled PII kinds and the extra patterns from text (see the module docstring)."""

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

    @cached_property
    def detector(self) -> pii.PiiDetector:
        """The :class:`~genai_flywheel.pii.PiiDetector` for the enabled kinds."""
        off = {pii.EMAIL: not self.emails, pii.PHONE: not self.phones, pii.CREDIT_CARD: not self.cards}
        kinds = tuple(k for k in pii.KINDS if not off.get(k, False))
        return pii.PiiDetector(kinds, tuple(self.extra_patterns))

    def redact(self, text: str) -> tuple[str, RedactionCounts]:
        """``text`` with PII replaced by placeholders, and the counts per kind."""
        counts = RedactionCounts()
        if not text:
            return text, counts
        redacted, per_kind = self.detector.redact(text)
        for kind, n in per_kind.items():
            name = _COUNT_FIELD.get(kind, kind)
            setattr(counts, name, getattr(counts, name) + n)
        return redacted, counts
