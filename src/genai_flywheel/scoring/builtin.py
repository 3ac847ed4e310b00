"""Built-in heuristic scorers: MLflow ``@scorer`` objects that return ``Feedback``, deterministic, offline.

Each factory returns a fresh MLflow ``Scorer`` configured by its options, usable both in
:func:`genai_flywheel.scoring.runner.score_table` and in ``mlflow.genai.evaluate(scorers=[...])``. A
scorer declares only the MLflow arguments it reads (``inputs``, ``outputs``, ``trace``), so the runner
rebuilds a ``Trace`` only for those that take ``trace``.

=============  ====================  =====================================================  ==============
name           value                 meaning                                                passes when
=============  ====================  =====================================================  ==============
relevance      float 0..1            share of the query's content words the answer uses     >= threshold
groundedness   float 0..1            share of answer sentences supported by retrieved docs  >= threshold
refusal        bool                  the answer is empty or a refusal (phrase list)         False
pii            bool                  the answer contains PII (:mod:`genai_flywheel.pii`)    False
latency_slo    bool                  trace execution time <= ``slo_ms``                     True
freshness      bool                  no retrieved document is stale by its metadata         True
=============  ====================  =====================================================  ==============

MLflow is imported inside the factories, not at module import: importing it costs seconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from genai_flywheel import pii
from genai_flywheel.scoring import heuristics
from genai_flywheel.scoring.normalize import extract_answer, extract_query

if TYPE_CHECKING:
    from mlflow.entities import Trace
    from mlflow.genai.scorers import Scorer

#: Bump when a built-in's computation changes: it is part of every built-in's ``scorer_version`` (and so
#: of the deterministic assessment ids), so old and new scores are never confused.
BUILTIN_VERSION = "1"

DEFAULT_RELEVANCE_THRESHOLD = 0.5
DEFAULT_GROUNDEDNESS_THRESHOLD = 0.6
DEFAULT_SENTENCE_OVERLAP = 0.5
_RATIONALE_WORDS = 8
NO_CONTEXT = "no retrieved context: the trace has no RETRIEVER span with documents"
#: Metadata values that mark a retrieved document as stale, by metadata key (``freshness``'s default).
DEFAULT_STALE_METADATA: dict[str, tuple[str, ...]] = {"status": ("archived", "deprecated", "retired", "obsolete")}
DEFAULT_UPDATED_KEY = "last_updated"


def _words(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_RATIONALE_WORDS])
    return shown + (f" (+{len(items) - _RATIONALE_WORDS} more)" if len(items) > _RATIONALE_WORDS else "")


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_unit(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def relevance_scorer(threshold: float = DEFAULT_RELEVANCE_THRESHOLD) -> Scorer:
    """``relevance``: lexical overlap of the answer with the query's content words (0..1)."""
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    threshold = _check_unit("threshold", threshold)

    @scorer(name="relevance", timeout=0, pass_if=lambda v: v is not None and v >= threshold)
    def relevance(inputs: Any = None, outputs: Any = None) -> Feedback:
        query = extract_query(inputs)
        answer = extract_answer(outputs)
        overlap = heuristics.relevance_overlap(query, answer)
        if overlap.score is None:
            return Feedback(value=None, error="query has no content words to match the answer against")
        if not answer.strip():
            return Feedback(value=0.0, rationale="empty answer")
        rationale = f"answer uses {len(overlap.matched)} of {len(overlap.matched) + len(overlap.missing)}"
        rationale += " query content words"
        if overlap.missing:
            rationale += f"; missing: {_words(overlap.missing)}"
        return Feedback(value=round(overlap.score, 6), rationale=rationale)

    return relevance


def _document_text(doc: Any) -> str | None:
    if isinstance(doc, str):
        return doc
    if isinstance(doc, dict):
        for key in ("page_content", "content", "text"):
            if isinstance(doc.get(key), str):
                return doc[key]
        return None
    text = getattr(doc, "page_content", None)
    return text if isinstance(text, str) else None


def retrieved_documents(trace: Trace | None) -> list[Any]:
    """The documents of every RETRIEVER span of ``trace``, in span order, as the spans logged them (MLflow
    ``Document`` dicts, objects or bare strings)."""
    if trace is None:
        return []
    from mlflow.entities import SpanType

    found: list[Any] = []
    for span in trace.search_spans(span_type=SpanType.RETRIEVER):
        docs = span.outputs
        if isinstance(docs, dict) and isinstance(docs.get("documents"), list):
            docs = docs["documents"]
        if not isinstance(docs, list):
            docs = [docs]
        found.extend(d for d in docs if d is not None)
    return found


def retrieved_context(trace: Trace | None) -> list[str]:
    """The document texts of every RETRIEVER span of ``trace``, in span order."""
    return [t for t in (_document_text(d) for d in retrieved_documents(trace)) if t]


def _document_metadata(doc: Any) -> dict[str, Any]:
    metadata = doc.get("metadata") if isinstance(doc, dict) else getattr(doc, "metadata", None)
    return metadata if isinstance(metadata, dict) else {}


def _document_name(doc: Any, metadata: dict[str, Any]) -> str:
    for value in (metadata.get("doc_uri"), metadata.get("title"), doc.get("id") if isinstance(doc, dict) else None):
        if isinstance(value, str) and value:
            return value
    return "a document"


def _updated_at(value: Any) -> datetime | None:
    """A ``last_updated`` metadata value (ISO 8601 date or time, or epoch milliseconds) as a UTC time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return datetime.fromtimestamp(value / 1000.0, tz=UTC)
    if isinstance(value, str):
        from genai_flywheel.workspace import to_utc

        try:
            return to_utc(value.strip())
        except ValueError:
            return None
    return None


def freshness_scorer(
    stale: Mapping[str, Sequence[str]] | None = None,
    max_age_days: float | None = None,
    updated_key: str = DEFAULT_UPDATED_KEY,
) -> Scorer:
    """``freshness``: True when no document the trace retrieved is stale, by its own metadata.

    A document is stale when a metadata key of ``stale`` holds one of its values (case-insensitive; by
    default ``status`` archived, deprecated, retired or obsolete), or, with ``max_age_days``, when its
    ``updated_key`` time is more than that many days before the trace. An archived page leaking back into a
    search index answers one feature's questions wrongly while every answer stays on topic and grounded in
    what was retrieved: the relevance and groundedness heuristics cannot see it, this can. The value is
    None (with an error) when the trace retrieved nothing, as for ``groundedness``.
    """
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    markers = {
        str(key): {str(v).strip().casefold() for v in values}
        for key, values in (DEFAULT_STALE_METADATA if stale is None else stale).items()
    }
    if max_age_days is not None and (
        isinstance(max_age_days, bool) or not isinstance(max_age_days, int | float) or not max_age_days > 0
    ):
        raise ValueError(f"max_age_days must be a positive number of days, got {max_age_days!r}")
    if not markers and max_age_days is None:
        raise ValueError("freshness needs stale metadata values or max_age_days: set at least one")
    max_age = timedelta(days=float(max_age_days)) if max_age_days is not None else None

    @scorer(name="freshness", timeout=0, pass_if=lambda v: v is True)
    def freshness(trace: Trace | None = None) -> Feedback:
        documents = retrieved_documents(trace)
        if not documents:
            return Feedback(value=None, error=NO_CONTEXT)
        at = datetime.fromtimestamp(trace.info.request_time / 1000.0, tz=UTC) if trace is not None else None
        reasons = []
        for doc in documents:
            metadata = _document_metadata(doc)
            for key, values in markers.items():
                value = metadata.get(key)
                if isinstance(value, str) and value.strip().casefold() in values:
                    reasons.append(f"{_document_name(doc, metadata)} is {key}={value}")
            if max_age is not None and at is not None:
                updated = _updated_at(metadata.get(updated_key))
                if updated is not None and at - updated > max_age:
                    age = (at - updated).days
                    reasons.append(f"{_document_name(doc, metadata)} was last updated {age} days before the trace")
        if reasons:
            more = f" (and {len(reasons) - 2} more)" if len(reasons) > 2 else ""
            return Feedback(value=False, rationale=f"stale: {'; '.join(reasons[:2])}{more}")
        return Feedback(value=True, rationale=f"{len(documents)} retrieved document(s), none stale")

    return freshness


def groundedness_scorer(
    threshold: float = DEFAULT_GROUNDEDNESS_THRESHOLD, sentence_overlap: float = DEFAULT_SENTENCE_OVERLAP
) -> Scorer:
    """``groundedness``: share of the answer's sentences supported by the trace's retrieved documents."""
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    threshold = _check_unit("threshold", threshold)
    sentence_overlap = _check_unit("sentence_overlap", sentence_overlap)

    @scorer(name="groundedness", timeout=0, pass_if=lambda v: v is not None and v >= threshold)
    def groundedness(outputs: Any = None, trace: Trace | None = None) -> Feedback:
        context = retrieved_context(trace)
        if not context:
            return Feedback(value=None, error=NO_CONTEXT)
        result = heuristics.grounding(extract_answer(outputs), context, sentence_overlap)
        if result.score is None:
            return Feedback(value=None, error="answer has no sentence with content words to check")
        rationale = (
            f"{result.supported} of {result.total} answer sentences supported by {len(context)} retrieved document(s)"
        )
        if result.unsupported:
            rationale += f"; first unsupported: {_short(result.unsupported[0])!r}"
        return Feedback(value=round(result.score, 6), rationale=rationale)

    return groundedness


def refusal_scorer(extra_phrases: Iterable[str] = ()) -> Scorer:
    """``refusal``: True when the answer is empty or opens with a phrase of the documented list."""
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    extra = tuple(str(p) for p in extra_phrases)

    @scorer(name="refusal", timeout=0, pass_if=lambda v: v is False)
    def refusal(outputs: Any = None) -> Feedback:
        phrase = heuristics.refusal_phrase(extract_answer(outputs), extra)
        if phrase is None:
            return Feedback(value=False, rationale="no refusal phrase in the answer's opening")
        if phrase == "<empty answer>":
            return Feedback(value=True, rationale="empty answer")
        return Feedback(value=True, rationale=f"refusal phrase {phrase!r} in the answer's opening")

    return refusal


def pii_scorer(kinds: Iterable[str] = pii.KINDS, extra_patterns: Sequence[str] = ()) -> Scorer:
    """``pii``: True when the answer contains PII. The rationale counts kinds, never echoes the values.

    Detection is :mod:`genai_flywheel.pii`, the one the fine-tuning export redacts with; the registry passes
    ``export.pii.extra_patterns`` as ``extra_patterns`` so configured patterns are flagged as they are redacted.
    """
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    detector = pii.PiiDetector(pii.check_kinds(kinds), pii.compile_patterns(extra_patterns))

    @scorer(name="pii", timeout=0, pass_if=lambda v: v is False)
    def pii_flag(outputs: Any = None) -> Feedback:
        matches = detector.find(extract_answer(outputs))
        if not matches:
            return Feedback(value=False, rationale="no PII found")
        counts = Counter(m.kind for m in matches)
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        return Feedback(value=True, rationale=f"found {found}")

    return pii_flag


def latency_slo_scorer(slo_ms: float) -> Scorer:
    """``latency_slo``: True when the trace's execution time is within ``slo_ms`` milliseconds."""
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    if isinstance(slo_ms, bool) or not isinstance(slo_ms, int | float) or not math.isfinite(slo_ms):
        raise ValueError(f"slo_ms must be a positive number of milliseconds, got {slo_ms!r}")
    if slo_ms <= 0:
        raise ValueError(f"slo_ms must be a positive number of milliseconds, got {slo_ms!r}")
    slo = float(slo_ms)

    @scorer(name="latency_slo", timeout=0, pass_if=lambda v: v is True)
    def latency_slo(trace: Trace | None = None) -> Feedback:
        if trace is None:
            return Feedback(value=None, error="no trace: latency_slo reads the trace's execution time")
        duration = trace.info.execution_duration
        if duration is None:
            return Feedback(value=None, error="the trace has no execution time (still in progress?)")
        within = duration <= slo
        verdict = "within" if within else "over"
        return Feedback(value=within, rationale=f"execution time {duration} ms is {verdict} the {slo:g} ms SLO")

    return latency_slo
