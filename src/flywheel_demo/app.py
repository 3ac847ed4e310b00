"""The demo GenAI application: "Acme Cloud" support assistant, retrieval-augmented, deterministic, no LLM.

``SupportAssistant.answer(query)`` is traced with MLflow the way a real app is: a CHAIN root span with
inputs ``{"query": ...}`` and outputs ``{"answer": ...}``, a RETRIEVER span returning MLflow ``Document``
dicts, and a CHAT_MODEL span carrying token usage (``mlflow.chat.tokenUsage``) and the model name, plus
trace tags ``app_version`` / ``model`` and session / user request metadata.

The pipeline is written once, against the small :class:`Tracer` protocol. :class:`MlflowTracer` sends it
to MLflow (live traffic); :class:`RecordingTracer` records the very same spans in memory so the traffic
simulator can write them with simulated past timings (see :mod:`flywheel_demo.simulate`).

Versions:

* ``production`` (tag ``v1``): its search index includes archived pages. Since the docs re-index of the
  incident day, the 2021 retirement notice "Smart Sync" is indexed again; its short generic title wins the
  title-phrase boost for every question that mentions Smart Sync, and the model answers from it:
  "Smart Sync is not supported ..." - wrong, and unrelated to what was asked.
* ``fixed`` (tag ``v2``): the development version; it filters archived pages out of the index.

``predict_production`` / ``predict_fixed`` are ``predict_fn`` callables for ``mlflow.genai.evaluate``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Literal, Protocol

from flywheel_demo.corpus import DOCS, Doc, documents

APP_NAME = "acme-support"
MODEL_NAME = "demo-chat-1"
ROOT_SPAN_NAME = "support_assistant"
RETRIEVER_SPAN_NAME = "retrieve_docs"
CHAT_SPAN_NAME = "generate_answer"
TOP_K = 3

# MLflow's span attribute for token usage (mlflow.tracing.constant.SpanAttributeKey.CHAT_USAGE); the
# tracking store sums it into the trace's ``mlflow.trace.tokenUsage``. A literal keeps mlflow unimported.
CHAT_USAGE_KEY = "mlflow.chat.tokenUsage"
SESSION_METADATA_KEY = "mlflow.trace.session"
USER_METADATA_KEY = "mlflow.trace.user"

FALLBACK_ANSWER = (
    "I could not find anything about that in the Acme Cloud documentation. "
    "Please rephrase your question or contact support."
)
SYSTEM_PROMPT = (
    "You are the Acme Cloud support assistant. Answer the user's question using only the numbered "
    "documentation passages. Be concise."
)

Fault = Literal["retrieval_timeout", "rate_limit"]
FAULTS: tuple[str, ...] = ("retrieval_timeout", "rate_limit")
RETRIEVAL_TIMEOUT_S = 5.0


class RateLimitError(Exception):
    """The chat model provider refused the call (HTTP 429), like ``openai.RateLimitError``."""


@dataclass(frozen=True)
class AppVersion:
    """A deployable version of the assistant."""

    name: str
    app_version: str
    include_archived: bool
    description: str


VERSIONS: dict[str, AppVersion] = {
    "production": AppVersion(
        "production",
        "v1",
        True,
        "Indexes archived pages; answers Smart Sync questions from the retired 2021 notice.",
    ),
    "fixed": AppVersion("fixed", "v2", False, "Filters archived pages out of the index."),
}


# --- text processing ------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_STOPWORDS = frozenset(
    """a about after all also am an and any are as at be been before being but by can could did do does
    doing don dont for from get got had has have having hello hey hi how i if in into is it its just me my
    need needs no not of on or our please should so some than thanks that the their them then there these
    they this to too up us want was we were what when where which who why will with would you your yours
    acme cloud example com org net""".split()
)


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    # A few suffix rules are enough to match "conflicts"/"conflicted", "rotate"/"rotating"/"rotated",
    # "invoices", "syncing"/"synced".
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Normalised search terms of ``text``: lower case, stop words dropped, light stemming."""
    lowered = text.lower().replace("smartsync", "smart sync")
    return [_stem(w) for w in _WORD.findall(lowered) if w not in _STOPWORDS]


def count_tokens(text: str) -> int:
    """A deterministic token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def split_sentences(text: str) -> list[str]:
    """Sentences of a documentation paragraph."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


# --- retrieval ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retrieved:
    """A retrieved page and its score."""

    doc: Doc
    score: float

    def to_document(self) -> dict[str, Any]:
        """The page as an MLflow ``Document`` dict (``page_content``, ``metadata.doc_uri``, ``id``)."""
        return {
            "page_content": self.doc.text,
            "metadata": {
                "doc_uri": self.doc.uri,
                "chunk_id": self.doc.doc_id,
                "title": self.doc.title,
                "feature": self.doc.feature,
                "last_updated": self.doc.last_updated,
                "status": "archived" if self.doc.archived else "current",
                "score": self.score,
            },
            "id": self.doc.doc_id,
        }


def _contains(haystack: list[str], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(tuple(haystack[i : i + n]) == needle for i in range(len(haystack) - n + 1))


class KeywordRetriever:
    """TF-IDF cosine search over the corpus plus a boost when the query contains a page title verbatim."""

    TITLE_BOOST = 1.0  # cosine is <= 1, so a title match always ranks first
    MIN_SCORE = 0.08

    def __init__(self, docs: tuple[Doc, ...]) -> None:
        # IDF over the whole corpus, so including the archived page changes only the candidate set,
        # never the weights: answers that do not involve it stay byte-identical between versions.
        df: Counter[str] = Counter()
        for doc in DOCS:
            df.update(set(terms(f"{doc.title} {doc.text}")))
        n = len(DOCS)
        self._idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        self._unknown_idf = math.log(1 + n) + 1.0
        self._docs = docs
        self._titles = [tuple(terms(doc.title)) for doc in docs]
        # Inverted index: term -> [(doc position, weight)], so a query only touches pages sharing a term.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, doc in enumerate(docs):
            for t, w in self._vector(terms(f"{doc.title} {doc.text}")).items():
                self._postings.setdefault(t, []).append((i, w))

    def _vector(self, words: list[str]) -> dict[str, float]:
        tf = Counter(words)
        vec = {t: (1.0 + math.log(c)) * self._idf.get(t, self._unknown_idf) for t, c in tf.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def search(self, query: str, k: int = TOP_K, *, fault: Fault | None = None) -> list[Retrieved]:
        """The ``k`` best pages for ``query``, best first; ties broken by page id."""
        if fault == "retrieval_timeout":
            raise TimeoutError(f"document search did not respond within {RETRIEVAL_TIMEOUT_S} s")
        words = terms(query)
        scores = [0.0] * len(self._docs)
        for t, w in self._vector(words).items():
            for i, dw in self._postings.get(t, ()):
                scores[i] += w * dw
        present = set(words)
        for i, title in enumerate(self._titles):
            if title and present.issuperset(title) and _contains(words, title):
                scores[i] += self.TITLE_BOOST
        scored = [
            (-round(score, 6), doc.doc_id, doc)
            for doc, score in zip(self._docs, scores, strict=True)
            if score >= self.MIN_SCORE
        ]
        scored.sort(key=lambda s: (s[0], s[1]))
        return [Retrieved(doc, round(-neg, 4)) for neg, _, doc in scored[:k]]


# --- the "model" ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    """One chat completion: the answer text, the token usage, and the provider-style response."""

    text: str
    input_tokens: int
    output_tokens: int
    response: dict[str, Any]

    @property
    def usage(self) -> dict[str, int]:
        """Token usage in MLflow's ``mlflow.chat.tokenUsage`` format."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


class DemoChatModel:
    """Deterministic stand-in for an LLM: answers with the top passage's sentences closest to the query."""

    name = MODEL_NAME

    def build_request(self, query: str, hits: list[Retrieved]) -> dict[str, Any]:
        """The chat request (OpenAI-style messages) the app sends."""
        passages = "\n\n".join(f"[{i}] {h.doc.title} ({h.doc.uri})\n{h.doc.text}" for i, h in enumerate(hits, start=1))
        user = f"Documentation:\n{passages or '(no matching pages)'}\n\nQuestion: {query}"
        return {
            "model": self.name,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
            "temperature": 0.0,
        }

    def complete(
        self, request: dict[str, Any], query: str, hits: list[Retrieved], *, fault: Fault | None = None
    ) -> Completion:
        """Answer ``query`` from ``hits``; raises RateLimitError when ``fault == "rate_limit"``."""
        if fault == "rate_limit":
            raise RateLimitError(f"Error code: 429 - rate limit exceeded for model {self.name}; retry after 2 seconds")
        text = compose_answer(query, hits)
        input_tokens = sum(count_tokens(m["content"]) for m in request["messages"])
        output_tokens = count_tokens(text)
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:24]
        response = {
            "id": f"chatcmpl-{digest}",
            "object": "chat.completion",
            "model": self.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        return Completion(text, input_tokens, output_tokens, response)


@lru_cache(maxsize=1024)
def _sentence_terms(sentence: str) -> frozenset[str]:
    return frozenset(terms(sentence))


def compose_answer(query: str, hits: list[Retrieved]) -> str:
    """The two sentences of the top page that share most terms with the query, in page order."""
    if not hits:
        return FALLBACK_ANSWER
    sentences = split_sentences(hits[0].doc.text)
    wanted = set(terms(query))
    overlap = [len(wanted & _sentence_terms(s)) for s in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-overlap[i], i))[:2]
    return " ".join(sentences[i] for i in sorted(ranked))


# --- tracing --------------------------------------------------------------------------------------------


class SpanHandle(Protocol):
    """What the pipeline does with an open span (a subset of ``mlflow.entities.LiveSpan``)."""

    def set_inputs(self, inputs: Any) -> None: ...

    def set_outputs(self, outputs: Any) -> None: ...

    def set_attribute(self, key: str, value: Any) -> None: ...


class Tracer(Protocol):
    """Where the pipeline's spans go."""

    def span(self, name: str, span_type: str) -> AbstractContextManager[SpanHandle]: ...

    def update_trace(self, *, tags: dict[str, str], metadata: dict[str, str]) -> None: ...


class MlflowTracer:
    """Live MLflow tracing: spans go to the active tracking URI and experiment, as in a deployed app."""

    @contextmanager
    def span(self, name: str, span_type: str) -> Iterator[SpanHandle]:
        """An MLflow span; an exception raised inside marks it ERROR with an exception event."""
        import mlflow

        with mlflow.start_span(name=name, span_type=span_type) as live:
            yield live

    def update_trace(self, *, tags: dict[str, str], metadata: dict[str, str]) -> None:
        """Set tags and request metadata on the current trace."""
        import mlflow

        mlflow.update_current_trace(tags=tags, metadata=metadata or None)


@dataclass
class RecordedSpan:
    """A span recorded by :class:`RecordingTracer`; ``parent`` is the index of the enclosing span."""

    index: int
    name: str
    span_type: str
    parent: int | None
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    stacktrace: str | None = None

    def set_inputs(self, inputs: Any) -> None:
        """Record the span inputs."""
        self.inputs = inputs

    def set_outputs(self, outputs: Any) -> None:
        """Record the span outputs."""
        self.outputs = outputs

    def set_attribute(self, key: str, value: Any) -> None:
        """Record one span attribute."""
        self.attributes[key] = value


class RecordingTracer:
    """Records spans, tags and metadata in memory, mirroring MLflow's semantics (errors propagate)."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []
        self.tags: dict[str, str] = {}
        self.metadata: dict[str, str] = {}
        self._stack: list[int] = []

    @contextmanager
    def span(self, name: str, span_type: str) -> Iterator[SpanHandle]:
        """Record a span; an exception is stored on it (with its traceback so far) and re-raised."""
        rec = RecordedSpan(len(self.spans), name, span_type, self._stack[-1] if self._stack else None)
        self.spans.append(rec)
        self._stack.append(rec.index)
        try:
            yield rec
        except Exception as exc:
            rec.error = exc
            rec.stacktrace = "".join(traceback.format_exception(exc)).strip()
            raise
        finally:
            self._stack.pop()

    def update_trace(self, *, tags: dict[str, str], metadata: dict[str, str]) -> None:
        """Record trace tags and metadata."""
        self.tags.update(tags)
        self.metadata.update(metadata)


class _NullSpan:
    def set_inputs(self, inputs: Any) -> None:
        pass

    def set_outputs(self, outputs: Any) -> None:
        pass

    def set_attribute(self, key: str, value: Any) -> None:
        pass


class NullTracer:
    """Tracing switched off."""

    @contextmanager
    def span(self, name: str, span_type: str) -> Iterator[SpanHandle]:
        """A span that records nothing."""
        yield _NullSpan()

    def update_trace(self, *, tags: dict[str, str], metadata: dict[str, str]) -> None:
        """Do nothing."""


# --- the application ------------------------------------------------------------------------------------


class SupportAssistant:
    """The Acme Cloud support assistant at one version (``production`` or ``fixed``)."""

    def __init__(self, version: str = "production", *, include_archived: bool | None = None) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown app version {version!r}; use one of {sorted(VERSIONS)}")
        self.version = VERSIONS[version]
        # ``include_archived`` overrides the version's index; the simulator uses it to replay production
        # before the incident-day re-index.
        self.include_archived = self.version.include_archived if include_archived is None else include_archived
        self.retriever = KeywordRetriever(documents(include_archived=self.include_archived))
        self.model = DemoChatModel()

    @property
    def app_version(self) -> str:
        """The ``app_version`` trace tag."""
        return self.version.app_version

    def run(
        self,
        query: str,
        tracer: Tracer | None = None,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        fault: Fault | None = None,
    ) -> str:
        """Answer ``query``, writing the spans to ``tracer`` (none if omitted).

        ``fault`` makes a backend fail the way production backends do: ``retrieval_timeout`` raises
        TimeoutError from the search, ``rate_limit`` raises RateLimitError from the chat model.
        """
        tracer = tracer or NullTracer()
        with tracer.span(ROOT_SPAN_NAME, "CHAIN") as root:
            root.set_inputs({"query": query})
            metadata = {}
            if session_id:
                metadata[SESSION_METADATA_KEY] = session_id
            if user_id:
                metadata[USER_METADATA_KEY] = user_id
            tracer.update_trace(tags={"app_version": self.app_version, "model": MODEL_NAME}, metadata=metadata)
            with tracer.span(RETRIEVER_SPAN_NAME, "RETRIEVER") as span:
                span.set_inputs({"query": query, "top_k": TOP_K})
                hits = self.retriever.search(query, TOP_K, fault=fault)
                span.set_outputs([h.to_document() for h in hits])
            with tracer.span(CHAT_SPAN_NAME, "CHAT_MODEL") as span:
                request = self.model.build_request(query, hits)
                span.set_inputs(request)
                span.set_attribute("model", MODEL_NAME)
                completion = self.model.complete(request, query, hits, fault=fault)
                span.set_attribute(CHAT_USAGE_KEY, completion.usage)
                span.set_outputs(completion.response)
            root.set_outputs({"answer": completion.text})
        return completion.text

    def answer(self, query: str, *, session_id: str | None = None, user_id: str | None = None) -> str:
        """Answer ``query``, traced to MLflow (the active tracking URI and experiment)."""
        return self.run(query, MlflowTracer(), session_id=session_id, user_id=user_id)


def make_app(version: str = "production") -> SupportAssistant:
    """The assistant at ``version``: ``production`` (v1, with the Smart Sync bug) or ``fixed`` (v2)."""
    return SupportAssistant(version)


@cache
def _app(version: str) -> SupportAssistant:
    return SupportAssistant(version)


def predict_production(query: str) -> str:
    """``predict_fn`` of the production version (v1), traced to MLflow."""
    return _app("production").answer(query)


def predict_fixed(query: str) -> str:
    """``predict_fn`` of the development version (v2) that fixes the Smart Sync answers, traced to MLflow."""
    return _app("fixed").answer(query)


def fixed_answer(query: str) -> str:
    """The development version's (v2) answer to ``query``, not traced: what the simulated reviewer writes as
    the corrected answer (a reviewer's correction is not production traffic, and must not land in whatever
    tracking store happens to be the default of the process)."""
    return _app("fixed").run(query, NullTracer())
