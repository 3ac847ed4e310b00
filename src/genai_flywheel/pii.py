"""PII detection and redaction: the one module behind the ``pii`` scorer, the fine-tuning export's redactor and
the curation text normaliser, so what the scorer flags is exactly what the export removes.

Kinds (:data:`KINDS`) and their redaction placeholders (:data:`PLACEHOLDERS`):

=============  ===============  ==========================================================================
kind           placeholder      detected when
=============  ===============  ==========================================================================
email          ``[EMAIL]``      ``local@domain.tld`` (Unicode letters allowed)
phone          ``[PHONE]``      ``phonenumbers`` finds it and it is plausible (see below)
credit_card    ``[CARD]``       13-19 digits, optionally grouped by spaces or dashes, Luhn-valid
iban           ``[IBAN]``       ``python-stdnum``'s IBAN check: mod-97 and the country's BBAN format
us_ssn         ``[US_SSN]``     ``123-45-6789`` or ``123 45 6789`` that ``python-stdnum`` accepts (no
                                000/666/9xx area, 00 group, 0000 serial, no published sample number)
ip_address     ``[IP_ADDRESS]`` an IPv4 or IPv6 address that is globally routable
extra          ``[REDACTED]``   a match of a configured extra pattern (``export.pii.extra_patterns``)
=============  ===============  ==========================================================================

**Phones** come from ``phonenumbers.PhoneNumberMatcher``: at the ``POSSIBLE`` leniency for numbers that
start with ``+`` (the country code fixes the numbering plan, whose possible lengths the library checks) or
have the North-American 3-3-4 grouping (``(555) 123-4567``, the shape of the fictional numbers documentation
and demos use), and at the ``VALID`` leniency in each of :data:`PHONE_REGIONS` for national formats (a
real number such as ``020 7946 0958`` in GB or ``030 1234567`` in DE; its checks reject dates). A bare run
of digits without ``+`` is an id (order numbers, timestamps), never a phone. India is left out of the national
regions: its mobile plan makes almost any 10-digit run valid; ``+91`` numbers are still found.

**IP addresses**: private, loopback, link-local and documentation ranges (``10.0.0.0/8``, ``192.168.0.0/16``,
``127.0.0.1``, ``2001:db8::/32`` …) identify a network, not a person, so only global addresses count.

**Overlaps** are resolved deterministically: overlapping candidates are merged into one span covering all of
them (so no fragment of a losing candidate is left behind by redaction), labelled with the kind of the
longest candidate, ties going to the more specific kind in :data:`KINDS` order (checksummed kinds before
phones, configured patterns last). A value hidden by its neighbours (a number glued to another) is found by
rescanning with what was found blanked out, and a value found once is flagged wherever else it appears.

Known gaps: local numbers without an area code (``555-1234``), national phone formats outside
:data:`PHONE_REGIONS`, national ids other than the US SSN, names and postal addresses (they need NER).

Why not Presidio: ``presidio-analyzer``'s pattern recognisers (run without an NER model) were measured
against this module on the issue's examples, the demo corpus and a hand-made set of 17 PII values and 29
look-alikes. They wrap the same ``phonenumbers`` and checksums, but pull spaCy and ~300 MB of dependencies
into every Airflow worker (2-14 s to import), their e-mail recogniser fetches the public-suffix list over
the network on first use, they miss ``4111-1111-1111-1111x`` (word boundary) and ``123-45-6789``
(discarded as a sample number), and flag 6 of the look-alikes (ids such as ``order 1234567890`` as phones,
private addresses such as ``10.20.30.40`` as IPs). Using ``phonenumbers`` and ``python-stdnum`` directly
gives the same checksums without those costs.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban as _iban, luhn as _luhn
from stdnum.us import ssn as _ssn

from genai_flywheel.exceptions import ConfigError

EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS = "email", "phone", "credit_card", "iban", "us_ssn", "ip_address"
EXTRA = "extra"

#: The built-in kinds, most specific first (the tie-break order of overlapping candidates).
KINDS: tuple[str, ...] = (EMAIL, IBAN, CREDIT_CARD, US_SSN, IP_ADDRESS, PHONE)

PLACEHOLDERS: dict[str, str] = {
    EMAIL: "[EMAIL]",
    PHONE: "[PHONE]",
    CREDIT_CARD: "[CARD]",
    IBAN: "[IBAN]",
    US_SSN: "[US_SSN]",
    IP_ADDRESS: "[IP_ADDRESS]",
    EXTRA: "[REDACTED]",
}

#: Regions whose national phone formats are recognised (international ``+`` numbers are found in any case).
PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR")

_PRIORITY = {kind: i for i, kind in enumerate((*KINDS, EXTRA))}

_EMAIL_RE = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[^\W_](?:[\w-]*)(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# The regex may run into following words ("DE89 3704 ... 00 IS MINE"): the longest valid prefix is kept.
_IBAN_RE = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}")
_SSN_RE = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
_IPV4_RE = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_NANP_RE = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}")
# Cheap pre-check: no phone search unless 7 digits stand close together (phonenumbers is ~10x a regex).
_PHONE_HINT = re.compile(r"\d(?:[^\w\n]{0,3}\d){6}")


@dataclass(frozen=True)
class PiiSpan:
    """One PII finding: its kind and ``text[start:end]``. ``text`` stays out of ``repr`` so logs never echo it."""

    kind: str
    start: int
    end: int
    text: str = field(repr=False)

    @property
    def placeholder(self) -> str:
        """The ``[KIND]`` token that replaces this span in redacted text."""
        return PLACEHOLDERS[self.kind]


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (ASCII digits only) passes the Luhn checksum of payment card numbers."""
    return digits.isascii() and digits.isdigit() and _luhn.is_valid(digits)


def iban_valid(compact: str) -> bool:
    """True for an IBAN without spaces that passes ISO 13616 mod-97 and its country's BBAN format."""
    return _iban.is_valid(compact)


def compile_patterns(
    patterns: Iterable[str], setting: str = "export.pii.extra_patterns"
) -> tuple[re.Pattern[str], ...]:
    """Compile the configured extra patterns; an invalid or empty-matching regex is a ConfigError naming it."""
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"{setting}[{i}] = {pattern!r} is not a valid regular expression: {err}") from None
        if regex.search("") is not None:
            raise ConfigError(
                f"{setting}[{i}] = {pattern!r} matches the empty string and would redact everywhere; make it "
                "match at least one character"
            )
        compiled.append(regex)
    return tuple(compiled)


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple; an unknown kind is a ValueError listing the known ones."""
    wanted = tuple(kinds)
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown PII kinds {unknown}; use any of {sorted(KINDS)}")
    return wanted


# -- candidates per kind ---------------------------------------------------------------------------------


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for m in _EMAIL_RE.finditer(text):
        yield m.span()


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for m in _CARD_RE.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if luhn_valid(digits):
            yield m.span()


def _end_after_alnum(text: str, start: int, count: int) -> int:
    """The offset just after the ``count``-th non-space character from ``start``."""
    seen = 0
    for i in range(start, len(text)):
        if text[i] != " ":
            seen += 1
            if seen == count:
                return i + 1
    return len(text)


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN_RE.finditer(text):
        compact = m.group().replace(" ", "")
        for length in range(min(len(compact), 34), 14, -1):
            if iban_valid(compact[:length]):
                yield m.start(), _end_after_alnum(text, m.start(), length)
                break


def _ssns(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN_RE.finditer(text):
        if _ssn.is_valid(re.sub(r"\D", "", m.group())):
            yield m.span()


def _global_ip(candidate: str) -> bool:
    try:
        return ipaddress.ip_address(candidate).is_global
    except ValueError:
        return False


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for m in _IPV4_RE.finditer(text):
        if _global_ip(m.group()):
            yield m.span()
    if text.count(":") >= 2:
        for m in _IPV6_RE.finditer(text):
            # A digit keeps hex words joined by colons ("add::", "cafe:babe:face") out.
            if any(ch.isdigit() for ch in m.group()) and _global_ip(m.group()):
                yield m.span()


def _phones(text: str) -> Iterator[tuple[int, int]]:
    if _PHONE_HINT.search(text) is None:
        return
    # International numbers (the country code fixes the plan) and the 3-3-4 grouping at POSSIBLE ...
    for match in phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE):
        if match.raw_string.startswith("+") or _NANP_RE.fullmatch(match.raw_string):
            yield match.start, match.end
    # ... national formats only when VALID, whose checks (national prefix, number ranges) reject dates.
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if not match.raw_string.isdigit():  # a bare run of digits is an id, not a phone
                yield match.start, match.end


_FINDERS: dict[str, Callable[[str], Iterator[tuple[int, int]]]] = {
    EMAIL: _emails,
    IBAN: _ibans,
    CREDIT_CARD: _cards,
    US_SSN: _ssns,
    IP_ADDRESS: _ips,
    PHONE: _phones,
}


# -- detection and redaction -----------------------------------------------------------------------------


def _resolve(text: str, candidates: list[tuple[int, int, str]]) -> list[PiiSpan]:
    """Merge overlapping candidates into one span each, labelled longest first, then most specific."""
    spans: list[PiiSpan] = []
    group: list[tuple[int, int, str]] = []
    group_end = -1

    def flush() -> None:
        if group:
            start, end = group[0][0], max(e for _, e, _ in group)
            best = min(group, key=lambda c: (-(c[1] - c[0]), _PRIORITY[c[2]], c[0]))
            spans.append(PiiSpan(best[2], start, end, text[start:end]))

    for cand in sorted(set(candidates), key=lambda c: (c[0], -c[1], _PRIORITY[c[2]])):
        if cand[0] >= group_end:
            flush()
            group, group_end = [], -1
        group.append(cand)
        group_end = max(group_end, cand[1])
    flush()
    return spans


def _recurrences(text: str, spans: list[PiiSpan]) -> Iterator[tuple[int, int, str]]:
    """Every verbatim occurrence in ``text`` of a found span's value, with that span's kind."""
    for value, kind in {s.text: s.kind for s in spans}.items():
        start = text.find(value)
        while start != -1:
            yield start, start + len(value), kind
            start = text.find(value, start + 1)


@dataclass(frozen=True)
class PiiDetector:
    """Finds and redacts PII of ``kinds`` plus matches of ``extra_patterns`` (see the module docstring)."""

    kinds: tuple[str, ...] = KINDS
    extra_patterns: tuple[re.Pattern[str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", check_kinds(self.kinds))

    @classmethod
    def from_patterns(cls, kinds: Iterable[str] = KINDS, extra_patterns: Iterable[str] = ()) -> PiiDetector:
        """A detector for ``kinds`` and the extra regexes as configured (strings, compiled and checked here)."""
        return cls(tuple(kinds), compile_patterns(extra_patterns))

    def find(self, text: str) -> list[PiiSpan]:
        """The PII spans of ``text``, sorted by start and never overlapping.

        A match can hide a neighbour: a number glued to an e-mail (``a@b.com020 7946 0958``) is not a
        phone to ``phonenumbers``, and a greedy e-mail swallows the start of the next one. So found spans
        are blanked out (same length, offsets kept) and the text searched again until nothing new appears;
        later passes keep only candidates outside what was already found. A value found once is PII wherever
        else it appears verbatim in the text, even where its surroundings hide it (``...4567555-123-4567``).
        """
        if not text:
            return []
        candidates: list[tuple[int, int, str]] = []
        scan = text
        # Ends: every pass that goes on covers characters no earlier span covered (usually 2 passes).
        while True:
            spans = _resolve(text, candidates)
            fresh = [*self._candidates(scan), *_recurrences(text, spans)]
            new = [c for c in fresh if not any(c[0] < s.end and s.start < c[1] for s in spans)]
            if not new:
                return spans
            candidates.extend(new)
            for start, end, _kind in new:
                scan = scan[:start] + " " * (end - start) + scan[end:]

    def _candidates(self, text: str) -> list[tuple[int, int, str]]:
        found = [(s, e, kind) for kind in self.kinds for s, e in _FINDERS[kind](text) if e > s]
        for pattern in self.extra_patterns:
            found.extend((m.start(), m.end(), EXTRA) for m in pattern.finditer(text) if m.end() > m.start())
        return found

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with every span replaced by its ``[KIND]`` placeholder, and the count per kind."""
        spans = self.find(text)
        return replace_spans(text, spans, lambda s: s.placeholder), Counter(s.kind for s in spans)


def replace_spans(text: str, spans: Iterable[PiiSpan], replacement: Callable[[PiiSpan], str]) -> str:
    """``text`` with each of the (sorted, non-overlapping) ``spans`` replaced by ``replacement(span)``."""
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(replacement(span))
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


DEFAULT_DETECTOR = PiiDetector()


def find_pii(text: str, kinds: Iterable[str] = KINDS, extra_patterns: Iterable[str] = ()) -> list[PiiSpan]:
    """The PII spans of ``text`` for ``kinds`` and the extra regexes (a one-off :class:`PiiDetector`)."""
    if tuple(kinds) == KINDS and not extra_patterns:
        return DEFAULT_DETECTOR.find(text)
    return PiiDetector.from_patterns(kinds, extra_patterns).find(text)
