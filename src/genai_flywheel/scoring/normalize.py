"""Pull the user's question and the app's answer out of a trace's root-span inputs and outputs.

Apps log very different shapes: a question-answering app ``{"query": ...}`` -> ``{"answer": ...}``, chat apps
``{"messages": [...]}`` -> an OpenAI ``ChatCompletion`` dict or ``{"messages": [...]}``, and plain strings.
Every heuristic scorer reads text through these two functions so they all agree on what "the query" and
"the answer" are. Pure Python: no MLflow import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Keys tried in order when inputs/outputs are a dict without chat messages. The first one holding a
# string wins, so ``{"query": ..., "user_id": ...}`` yields the query, not the user id.
QUERY_KEYS = ("query", "question", "input", "prompt", "request", "user_input", "text", "content")
ANSWER_KEYS = ("answer", "output", "response", "result", "content", "text", "completion")


def _content_text(content: Any) -> str:
    """The text of a chat message ``content``: a string, or a list of parts with ``text``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def _is_message_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and len(value) > 0
        and all(isinstance(m, Mapping) and "role" in m for m in value)
    )


def _last_message(messages: Sequence[Mapping[str, Any]], roles: tuple[str, ...]) -> str | None:
    for message in reversed(messages):
        if message.get("role") in roles:
            return _content_text(message.get("content"))
    return None


def _dumps(value: Any) -> str:
    # Deterministic fallback for shapes we do not recognise: the scorer still sees all the text.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def extract_query(inputs: Any) -> str:
    """The user's question from root-span ``inputs``.

    ``{"messages": [...]}`` (or a bare message list) -> the last ``user`` message; a dict -> the first
    string under :data:`QUERY_KEYS`, or its only string value; a string -> itself; ``None`` -> ``""``.
    Anything else is returned as sorted JSON text.
    """
    if inputs is None:
        return ""
    if isinstance(inputs, str):
        return inputs
    if _is_message_list(inputs):
        return _last_message(inputs, ("user", "human")) or ""
    if isinstance(inputs, Mapping):
        messages = inputs.get("messages")
        if _is_message_list(messages):
            return _last_message(messages, ("user", "human")) or ""
        for key in QUERY_KEYS:
            if isinstance(inputs.get(key), str):
                return inputs[key]
        strings = [v for v in inputs.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    return _dumps(inputs)


def extract_answer(outputs: Any) -> str:
    """The app's answer from root-span ``outputs``.

    A string -> itself; an OpenAI chat completion -> ``choices[0].message.content`` (or ``.text``);
    ``{"messages": [...]}`` (or a bare message list) -> the last ``assistant`` message; a dict -> the
    first string under :data:`ANSWER_KEYS`, or its only string value; ``None`` -> ``""``.
    """
    if outputs is None:
        return ""
    if isinstance(outputs, str):
        return outputs
    if _is_message_list(outputs):
        return _last_message(outputs, ("assistant", "ai")) or ""
    if isinstance(outputs, Mapping):
        choices = outputs.get("choices")
        if isinstance(choices, Sequence) and not isinstance(choices, str) and choices:
            first = choices[0]
            if isinstance(first, Mapping):
                message = first.get("message")
                if isinstance(message, Mapping):
                    return _content_text(message.get("content"))
                if isinstance(first.get("text"), str):
                    return first["text"]
        messages = outputs.get("messages")
        if _is_message_list(messages):
            return _last_message(messages, ("assistant", "ai")) or ""
        for key in ANSWER_KEYS:
            if isinstance(outputs.get(key), str):
                return outputs[key]
        strings = [v for v in outputs.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    if isinstance(outputs, Sequence) and all(isinstance(v, str) for v in outputs):
        return "\n".join(outputs)
    return _dumps(outputs)
