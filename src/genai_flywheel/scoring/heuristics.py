"""Deterministic text heuristics behind the built-in code scorers. Pure Python, no MLflow, no network.

They are cheap proxies, not judges: lexical overlap for relevance and groundedness, a documented phrase
list for refusals, and PII from :mod:`genai_flywheel.pii` (recognisers with checksums). English-centric
tokenisation (Unicode letters and digits; stop-words and stemming are English).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from genai_flywheel import pii

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

#: English stop-words plus the filler words of questions ("please", "tell", "explain") that say nothing
#: about the topic, so "Can you please tell me the capital of France?" -> {"capital", "france"}.
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can cannot could couldn did didn do does doesn doing don down during each
    either else ever few for from further get gets got had hadn has hasn have haven having he her here hers
    herself him himself his how however i if in into is isn it its itself just let lets like may me might
    mine more most much must mustn my myself no nor not now of off on once only or other ought our ours
    ourselves out over own per please same shall shan she should shouldn so some such than that the their
    theirs them themselves then there these they this those through thus to too under until up upon us
    very via was wasn we were weren what when where whether which while who whom whose why will with
    would wouldn yes yet you your yours yourself yourselves s t d ll m re ve hi hello hey thanks thank
    tell explain know want need give show describe sure ok okay certainly course
    """.split()
)


# Vocabularies are Zipfian: a bounded cache turns most of the stemming of 20,000 traces into lookups.
@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix-stripping stemmer: plurals, -ing, -ed, -ly and a final -e.

    Not Porter: just enough that "capitals"/"capital", "used"/"using"/"use" and "flies"/"fly" meet.
    """
    w = word
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ing") and len(w) >= 6:
        w = w[:-3]
    elif w.endswith("ed") and len(w) >= 5:
        w = w[:-2]
    elif w.endswith("ly") and len(w) >= 6:
        w = w[:-2]
    # "stopp(ed)" -> "stop", "runn(ing)" -> "run"; keep ll/ss/zz ("fall", "pass").
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeiouylsz" and not w[-1].isdigit():
        w = w[:-1]
    if w.endswith("e") and len(w) >= 3:
        w = w[:-1]
    return w


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters and digits; apostrophes split words)."""
    return _TOKEN.findall(text.casefold())


def content_words(text: str) -> list[str]:
    """Stemmed tokens of ``text`` that are not stop-words, in order (duplicates kept)."""
    stop = STOP_WORDS
    return [stem(t) for t in _TOKEN.findall(text.casefold()) if t not in stop]


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """``text`` split at sentence ends (``.``, ``!``, ``?`` followed by space) and line breaks."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


# -- relevance ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    """How much of the query's vocabulary the answer covers."""

    score: float | None  # None when the query has no content words
    matched: tuple[str, ...]
    missing: tuple[str, ...]


def relevance_overlap(query: str, answer: str) -> Overlap:
    """Share of the query's distinct content words (stemmed) that the answer also uses."""
    wanted = sorted(set(content_words(query)))
    if not wanted:
        return Overlap(None, (), ())
    have = set(content_words(answer))
    matched = tuple(w for w in wanted if w in have)
    missing = tuple(w for w in wanted if w not in have)
    return Overlap(len(matched) / len(wanted), matched, missing)


# -- groundedness ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grounding:
    """Which answer sentences the retrieved context supports."""

    score: float | None  # None when the answer has no sentence with content words
    supported: int
    total: int
    unsupported: tuple[str, ...]


@lru_cache(maxsize=4096)
def _vocabulary(document: str) -> frozenset[str]:
    # RAG apps retrieve the same documents again and again; tokenise each one once per process.
    return frozenset(content_words(document))


def grounding(answer: str, contexts: Iterable[str], sentence_overlap: float = 0.5) -> Grounding:
    """Share of the answer's content-word sentences whose words are mostly found in the context.

    A sentence is supported when at least ``sentence_overlap`` of its distinct content words occur
    somewhere in the retrieved documents. Sentences without content words ("Sure!") are not counted.
    """
    vocabulary: set[str] = set()
    for doc in contexts:
        vocabulary.update(_vocabulary(doc))
    supported = 0
    total = 0
    unsupported: list[str] = []
    for sentence in sentences(answer):
        words = set(content_words(sentence))
        if not words:
            continue
        total += 1
        if len(words & vocabulary) / len(words) >= sentence_overlap:
            supported += 1
        else:
            unsupported.append(sentence)
    if total == 0:
        return Grounding(None, 0, 0, ())
    return Grounding(supported / total, supported, total, tuple(unsupported))


# -- refusal -----------------------------------------------------------------------------------------

#: Lower-case phrases that mark an answer as a refusal or a non-answer. Matched only in the first
#: :data:`REFUSAL_WINDOW` characters, where refusals are phrased, so "Paris. I don't know about Lyon"
#: is not a refusal. Deliberately absent: "not supported" and "unfortunately" -- "Python 2 is not
#: supported" is a correct answer, not a refusal. Extend per app with the ``extra_phrases`` option.
REFUSAL_PHRASES: tuple[str, ...] = (
    "i can't help",
    "i cannot help",
    "i can not help",
    "i can't assist",
    "i cannot assist",
    "i can't answer",
    "i cannot answer",
    "i can't provide",
    "i cannot provide",
    "i can't do that",
    "i can't share",
    "i cannot share",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i won't be able to",
    "i will not be able to",
    "i don't know",
    "i do not know",
    "i'm not sure",
    "i am not sure",
    "i have no information",
    "i don't have information",
    "i don't have enough information",
    "i do not have enough information",
    "i'm afraid i can't",
    "i must decline",
    "i'm sorry, but i can",
    "i am sorry, but i can",
    "sorry, i can't",
    "sorry, i cannot",
    "as an ai language model",
    "no answer found",
)
REFUSAL_WINDOW = 200
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def refusal_phrase(answer: str, extra_phrases: Sequence[str] = ()) -> str | None:
    """The refusal phrase found at the start of ``answer``, ``"<empty answer>"``, or ``None``."""
    text = " ".join(answer.translate(_QUOTES).casefold().split())
    if not text:
        return "<empty answer>"
    head = text[:REFUSAL_WINDOW]
    for phrase in (*REFUSAL_PHRASES, *(p.casefold() for p in extra_phrases)):
        if phrase and phrase in head:
            return phrase
    return None


# -- PII ---------------------------------------------------------------------------------------------
# Detection lives in genai_flywheel.pii, shared with the fine-tuning export's redaction and the curation
# normaliser, so the scorer flags exactly what the export removes. Re-exported under the scorer's names.

PII_KINDS = pii.KINDS
find_pii = pii.find_pii
luhn_valid = pii.luhn_valid
iban_valid = pii.iban_valid
