"""Fine-tuning export: good production interactions and human-corrected bad ones as chat-format JSONL.

Selection (:func:`select_from_traces`, one decision per trace of the window):

1. a trace produced by ``mlflow.genai.evaluate`` (tag ``mlflow.eval.requestId``) is skipped: it is not
   production traffic;
2. a human correction (the latest ``expected_answer`` expectation) makes the trace a ``correction`` example,
   whatever its scores: the correction becomes the assistant message, and the example keeps the MLflow
   assessment id of the correction (``correction_assessment_id`` in ``examples.parquet``);
3. otherwise the trace must be ``OK``, carry no negative ``user_feedback``, have every quality score present
   (``relevance`` and ``groundedness`` by default) ``>= min_score``, and have at least one quality score or a
   positive feedback: then it is a ``high_quality`` example with the app's own answer.

Everything else is *skipped* (counted per reason in the manifest). A selected example that cannot become a
valid chat example is *rejected* (``rejected.jsonl`` with its reason): unparsable inputs, no user message,
empty answer, oversize, or a duplicate of a better example.

Building (:func:`build_examples`): PII is redacted (:mod:`genai_flywheel.export.pii`) from every message;
duplicates (same normalised user message after redaction) keep one example, corrections first, then the
newest; the split is ``validation`` when ``sha256(seed, normalised user message)`` as a fraction of 2^64 is
below ``validation_fraction`` (stable: a question never moves between splits across exports).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import parse_assessments
from genai_flywheel.export.pii import RedactionCounts, Redactor

if TYPE_CHECKING:
    import pyarrow as pa

CORRECTION, HIGH_QUALITY = "correction", "high_quality"
SOURCES = (CORRECTION, HIGH_QUALITY)
TRAIN, VALIDATION = "train", "validation"
DEFAULT_QUALITY_SCORERS = ("relevance", "groundedness")
FEEDBACK_NAME = "user_feedback"
CORRECTION_NAME = "expected_answer"
EVAL_TRACE_TAG = "mlflow.eval.requestId"
DEFAULT_MAX_CHARS = 32_000
ROLES = frozenset({"system", "user", "assistant"})
_MESSAGE_KEYS = frozenset({"role", "content", "name", "weight"})
_SPACE = re.compile(r"\s+")
_PREVIEW = 200

# Skip reasons (not selected) and reject reasons (selected, but not a valid example).
SKIP_EVAL_TRACE = "evaluation_trace"
SKIP_STATUS = "not_ok_status"
SKIP_NEGATIVE = "negative_feedback"
SKIP_LOW_SCORE = "low_score"
SKIP_NO_SIGNAL = "no_quality_signal"
REJECT_UNPARSABLE = "unparsable_inputs"
REJECT_NO_USER = "no_user_message"
REJECT_EMPTY = "empty_answer"
REJECT_OVERSIZE = "oversize"
REJECT_DUPLICATE = "duplicate"
REJECT_SCHEMA = "invalid_chat_schema"


def examples_schema() -> pa.Schema:
    """Arrow schema of ``examples.parquet``: the selected traces, raw (before redaction and checks)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("trace_id", pa.string(), nullable=False),
            pa.field("timestamp_ms", pa.int64(), nullable=False),
            pa.field("source", pa.string(), nullable=False),  # correction | high_quality
            pa.field("status", pa.string()),
            pa.field("request", pa.string()),  # root span inputs, JSON text
            pa.field("response", pa.string()),
            pa.field("query", pa.string()),
            pa.field("answer", pa.string()),
            pa.field("correction", pa.string()),  # the human's expected answer (text)
            pa.field("correction_assessment_id", pa.string()),  # its MLflow assessment id (lineage)
            pa.field("min_score", pa.float64()),  # lowest quality score present
            pa.field("feedback", pa.int8()),  # +1 / -1 / null
        ]
    )


@dataclass(frozen=True)
class SelectionOptions:
    """Which traces become examples (see the module docstring)."""

    min_score: float = 0.7
    quality_scorers: tuple[str, ...] = DEFAULT_QUALITY_SCORERS
    feedback_name: str = FEEDBACK_NAME
    correction_name: str = CORRECTION_NAME

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the manifest."""
        return {
            "min_score": self.min_score,
            "quality_scorers": list(self.quality_scorers),
            "feedback": self.feedback_name,
            "correction": self.correction_name,
            "status": "OK (corrections: any)",
            "excluded": f"traces tagged {EVAL_TRACE_TAG} (produced by mlflow.genai.evaluate)",
        }


def _correction_text(value: Any) -> str | None:
    """A correction value as the assistant's text (a JSON string, or a dict with an answer-like key)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("answer", "expected_answer", "expected_response", "response", "content", "text"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def _is_eval_trace(tags_text: str | None) -> bool:
    if not tags_text:
        return False
    try:
        tags = json.loads(tags_text)
    except ValueError:
        return False
    return isinstance(tags, Mapping) and EVAL_TRACE_TAG in tags


def classify(row: Mapping[str, Any], options: SelectionOptions) -> tuple[dict[str, Any] | None, str | None]:
    """(example row, None) for a selected trace, or (None, skip reason)."""
    if _is_eval_trace(row.get("tags")):
        return None, SKIP_EVAL_TRACE
    found = parse_assessments(row.get("assessments"))
    correction = found.expectations.get(options.correction_name)
    scores = [found.numeric(name) for name in options.quality_scorers if name in found.feedback]
    scores = [s for s in scores if s is not None]
    feedback = found.polarity(options.feedback_name)
    example = {
        "trace_id": row["trace_id"],
        "timestamp_ms": int(row["timestamp_ms"]),
        "status": row.get("status"),
        "request": row.get("request"),
        "response": row.get("response"),
        "query": row.get("query"),
        "answer": row.get("answer"),
        "correction": None,
        "correction_assessment_id": None,
        "min_score": min(scores) if scores else None,
        "feedback": feedback,
    }
    if correction is not None and correction.value is not None:
        text = _correction_text(correction.value)
        example.update(
            source=CORRECTION,
            correction=text if text is not None else "",
            correction_assessment_id=correction.assessment_id,
        )
        return example, None
    if (row.get("status") or "").upper() != "OK":
        return None, SKIP_STATUS
    if feedback == -1:
        return None, SKIP_NEGATIVE
    if any(s < options.min_score for s in scores):
        return None, SKIP_LOW_SCORE
    if not scores and feedback != 1:
        return None, SKIP_NO_SIGNAL
    example["source"] = HIGH_QUALITY
    return example, None


def select_from_traces(
    rows: Iterable[Mapping[str, Any]], options: SelectionOptions
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The selected example rows (``examples_schema``) and the skip counts per reason."""
    selected: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        example, reason = classify(row, options)
        if example is None:
            skipped[reason or "unknown"] += 1
        else:
            selected.append(example)
    selected.sort(key=lambda e: (e["timestamp_ms"], e["trace_id"]))
    return selected, dict(sorted(skipped.items()))


def normalize_message(text: str) -> str:
    """The dedup/split key of a user message: NFKC, case-folded, whitespace collapsed, trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def split_of(normalized: str, validation_fraction: float, seed: str = "flywheel") -> str:
    """``validation`` or ``train`` from a salted SHA-256 of the normalised user message."""
    digest = hashlib.sha256(f"{seed}\x00{normalized}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    return VALIDATION if position < validation_fraction else TRAIN


def _user_text(example: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(user text, reject reason)."""
    from genai_flywheel.traces.extract import query_text

    query = example.get("query")
    if isinstance(query, str) and query.strip():
        return query, None
    request = example.get("request")
    if request is None or not str(request).strip():
        return None, REJECT_NO_USER
    try:
        parsed = json.loads(request)
    except ValueError:
        return None, REJECT_UNPARSABLE
    text = query_text(parsed)
    if not isinstance(text, str) or not text.strip():
        return None, REJECT_NO_USER
    return text, None


def _assistant_text(example: Mapping[str, Any]) -> str | None:
    from genai_flywheel.traces.extract import answer_text

    if example.get("source") == CORRECTION:
        return example.get("correction")
    answer = example.get("answer")
    if isinstance(answer, str):
        return answer
    response = example.get("response")
    if not response:
        return None
    try:
        return answer_text(json.loads(response))
    except ValueError:
        return response


def validate_example(obj: Any) -> list[str]:
    """Problems of one chat fine-tuning example (empty when valid): a ``messages`` list of ``system`` /
    ``user`` / ``assistant`` messages with non-empty string content, system only first, at least one user
    message, and an assistant message last."""
    if not isinstance(obj, Mapping):
        return [f"an example must be a JSON object, got {type(obj).__name__}"]
    problems = [f"unknown top-level key {k!r}" for k in sorted(obj) if k not in ("messages", "tools")]
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "'messages' must be a non-empty list"]
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            problems.append(f"messages[{i}] must be an object")
            continue
        extra = sorted(set(msg) - _MESSAGE_KEYS)
        if extra:
            problems.append(f"messages[{i}] has unknown key(s) {extra}")
        role = msg.get("role")
        if role not in ROLES:
            problems.append(f"messages[{i}].role must be one of {sorted(ROLES)}, got {role!r}")
        elif role == "system" and i != 0:
            problems.append(f"messages[{i}] is a system message; only the first message may be one")
        content = msg.get("content")
        if not isinstance(content, str) or not content.strip():
            problems.append(f"messages[{i}].content must be a non-empty string")
    roles = [m.get("role") for m in messages if isinstance(m, Mapping)]
    if "user" not in roles:
        problems.append("there must be at least one user message")
    if not roles or roles[-1] != "assistant":
        problems.append("the last message must be an assistant message")
    return problems


@dataclass(frozen=True)
class ChatValidation:
    """Result of :func:`validate_chat_jsonl`."""

    path: str
    lines: int
    errors: list[str]

    @property
    def valid(self) -> bool:
        """No line had a problem."""
        return not self.errors


def validate_chat_jsonl(path: Path | str) -> ChatValidation:
    """Check every line of a JSONL file against the chat fine-tuning format (see :func:`validate_example`).

    Blank lines are errors too (the fine-tuning API rejects them). Errors read ``line N: problem``.
    """
    path = Path(path)
    errors: list[str] = []
    lines = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            lines += 1
            if not line.strip():
                errors.append(f"line {number}: blank line")
                continue
            try:
                obj = json.loads(line)
            except ValueError as err:
                errors.append(f"line {number}: not valid JSON ({err})")
                continue
            errors.extend(f"line {number}: {problem}" for problem in validate_example(obj))
    return ChatValidation(str(path), lines, errors)


@dataclass(frozen=True)
class BuildOptions:
    """How selected examples become JSONL lines."""

    redactor: Redactor = field(default_factory=Redactor)
    system_prompt: str | None = None
    validation_fraction: float = 0.1
    max_chars: int = DEFAULT_MAX_CHARS
    seed: str = "flywheel"


@dataclass
class BuildResult:
    """The export's lines and bookkeeping."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    pii: RedactionCounts
    by_source_split: dict[str, dict[str, int]]

    def counts(self) -> dict[str, Any]:
        """JSON-able counts for the manifest."""
        reasons = Counter(r["reason"] for r in self.rejected)
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "rejected": len(self.rejected),
            "rejected_by_reason": dict(sorted(reasons.items())),
            "by_source_split": self.by_source_split,
        }


def _rejected(example: Mapping[str, Any], reason: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "trace_id": example["trace_id"],
        "timestamp_ms": example["timestamp_ms"],
        "source": example["source"],
        "reason": reason,
        "detail": detail,
        **extra,
    }


def _preview(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def build_examples(examples: Sequence[Mapping[str, Any]], options: BuildOptions) -> BuildResult:
    """Redact, check, deduplicate and split selected examples into chat-format lines."""
    pii = RedactionCounts()
    rejected: list[dict[str, Any]] = []
    system = None
    if options.system_prompt:
        system, counts = options.redactor.redact(options.system_prompt)
        pii.add(counts)
    candidates: list[tuple[dict[str, Any], dict[str, Any], str, RedactionCounts]] = []
    for example in examples:
        user, reason = _user_text(example)
        if user is None:
            detail = "the request is not JSON" if reason == REJECT_UNPARSABLE else "no question in the request"
            rejected.append(_rejected(example, reason or REJECT_NO_USER, detail))
            continue
        answer = _assistant_text(example)
        if not isinstance(answer, str) or not answer.strip():
            what = "the correction" if example["source"] == CORRECTION else "the answer"
            rejected.append(_rejected(example, REJECT_EMPTY, f"{what} is empty"))
            continue
        user_red, c1 = options.redactor.redact(user.strip())
        answer_red, c2 = options.redactor.redact(answer.strip())
        messages = [{"role": "user", "content": user_red}, {"role": "assistant", "content": answer_red}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        size = sum(len(m["content"]) for m in messages)
        if size > options.max_chars:
            rejected.append(_rejected(example, REJECT_OVERSIZE, f"{size} characters > max_chars {options.max_chars}"))
            continue
        line = {"messages": messages}
        problems = validate_example(line)
        if problems:
            rejected.append(_rejected(example, REJECT_SCHEMA, "; ".join(problems)))
            continue
        c1.add(c2)
        candidates.append((dict(example), line, normalize_message(user_red), c1))
    # Best first: corrections, then the newest; the first of each normalised message is kept.
    rank = {CORRECTION: 0, HIGH_QUALITY: 1}
    candidates.sort(key=lambda c: (rank.get(c[0]["source"], 9), -c[0]["timestamp_ms"], c[0]["trace_id"]))
    kept: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for example, line, key, counts in candidates:
        if key in kept:
            rejected.append(
                _rejected(
                    example,
                    REJECT_DUPLICATE,
                    "same normalised user message as a kept example",
                    duplicate_of=kept[key][0]["trace_id"],
                    user=_preview(line["messages"][-2]["content"]),
                )
            )
        else:
            kept[key] = (example, line)
            pii.add(counts)  # counted for the exported lines only
    train: list[tuple[int, str, dict[str, Any]]] = []
    validation: list[tuple[int, str, dict[str, Any]]] = []
    by_source_split = {s: {TRAIN: 0, VALIDATION: 0} for s in SOURCES}
    for key, (example, line) in kept.items():
        split = split_of(key, options.validation_fraction, options.seed)
        (validation if split == VALIDATION else train).append((example["timestamp_ms"], example["trace_id"], line))
        by_source_split.setdefault(example["source"], {TRAIN: 0, VALIDATION: 0})[split] += 1
    rejected.sort(key=lambda r: (r["timestamp_ms"], r["trace_id"]))
    return BuildResult(
        train=[line for *_, line in sorted(train, key=lambda t: (t[0], t[1]))],
        validation=[line for *_, line in sorted(validation, key=lambda t: (t[0], t[1]))],
        rejected=rejected,
        pii=pii,
        by_source_split=by_source_split,
    )


def jsonl_text(lines: Iterable[Mapping[str, Any]]) -> str:
    """JSON Lines: one compact object per line (keys in insertion order), UTF-8, trailing newline."""
    return "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines)
