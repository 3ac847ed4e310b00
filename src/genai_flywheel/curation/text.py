"""Text normalisation shared by query clustering, record ids and deduplication.

Two different normalisations, on purpose:

* :func:`query_terms` is lossy: it keeps only the *content* of a question (lower-cased, PII, numbers and
  punctuation removed, stop-words dropped, lightly stemmed) so that paraphrases of one question land in the
  same query cluster.
* :func:`canonical_inputs` is conservative: it only folds case and whitespace and drops trailing
  punctuation, so two records count as duplicates only when a human would call them the same input.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from genai_flywheel.pii import DEFAULT_DETECTOR, replace_spans

# PII (genai_flywheel.pii, as the scorer and the export see it) and volatile tokens are removed before
# clustering: two users asking the same thing with different e-mail addresses or order numbers are one
# query pattern.
_URL = re.compile(r"\b(?:https?://|www\.)\S+")
_NON_WORD = re.compile(r"[^a-z\s]+")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can cannot could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just let me
    more most my myself no nor not of off on once only or other ought our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves hi hello hey please thanks thank pls get got use using
    want need way also anyone someone something anything there here still even really much many tell
    know help
    """.split()
)

# Suffixes stripped by the light stemmer, longest first; (suffix, replacement, minimum stem length).
_SUFFIXES: tuple[tuple[str, str, int], ...] = (
    ("ational", "", 3),
    ("ization", "ize", 3),
    ("ations", "", 3),
    ("ation", "", 3),
    ("ments", "", 4),
    ("ment", "", 4),
    ("ness", "", 3),
    ("ings", "", 3),
    ("ing", "", 3),
    ("ies", "y", 2),
    ("ied", "y", 2),
    ("sses", "ss", 2),
    ("ed", "", 3),
    ("ly", "", 3),
    ("es", "", 4),
    ("s", "", 3),
)


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light, deterministic suffix-stripping stemmer (enough to fold plurals and -ing/-ed forms).

    >>> [stem(w) for w in ("syncing", "synced", "syncs", "policies", "backups", "class", "enabled", "enable")]
    ['sync', 'sync', 'sync', 'policy', 'backup', 'class', 'enabl', 'enabl']
    """
    if word.endswith(("ss", "us", "is")):
        return word
    for suffix, replacement, min_stem in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= min_stem:
            word = word[: len(word) - len(suffix)] + replacement
            break
    # A final silent e folds "enable"/"enabled"/"enabling" into one stem.
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


@lru_cache(maxsize=1 << 16)  # production queries repeat a lot; the function is pure
def query_terms(text: str | None) -> tuple[str, ...]:
    """The sorted, de-duplicated content terms of a query (empty for a missing or content-free query)."""
    if not text:
        return ()
    normalised = unicodedata.normalize("NFKC", text)
    folded = replace_spans(normalised, DEFAULT_DETECTOR.find(normalised), lambda _: " ").casefold()
    folded = _URL.sub(" ", folded)
    # Digits go with the punctuation: order numbers and versions must not split a pattern.
    words = _NON_WORD.sub(" ", folded).split()
    terms = {stem(w) for w in words if len(w) > 1 and w not in STOP_WORDS}
    terms.discard("")
    return tuple(sorted(t for t in terms if t not in STOP_WORDS))


def batch_query_terms(texts: Iterable[str | None]) -> list[tuple[str, ...]]:
    """:func:`query_terms` of every text, each distinct text worked out once, with nothing kept after the call.

    For a pass over a whole window: :func:`query_terms`'s memo would end up holding up to 65,536 questions
    and their terms (about 20 MB) for the rest of the process; a batch's own repeats are what pay off.
    """
    compute = query_terms.__wrapped__
    memo: dict[str | None, tuple[str, ...]] = {}
    out = []
    for text in texts:
        terms = memo.get(text)
        if terms is None:
            terms = memo[text] = compute(text)
        out.append(terms)
    return out


def _fold_text(text: str) -> str:
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return folded.rstrip(" .?!")


def _fold(value: Any) -> Any:
    if isinstance(value, str):
        return _fold_text(value)
    if isinstance(value, dict):
        return {str(k): _fold(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fold(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the one serialisation used for digests and ids."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical_inputs(inputs: Any) -> str:
    """The normalised form of a record's inputs that deduplication compares.

    Case, repeated whitespace and trailing ``.?!`` of every string are folded; keys are sorted.
    """
    return canonical_json(_fold(inputs))


def record_id_for(inputs: Any) -> str:
    """Deterministic record id: ``r-`` + 32 hex of the SHA-256 of :func:`canonical_inputs`."""
    return "r-" + hashlib.sha256(canonical_inputs(inputs).encode("utf-8")).hexdigest()[:32]


def jaccard(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """Jaccard similarity of two term sets (0.0 when both are empty)."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)
