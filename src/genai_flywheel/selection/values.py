"""Reading filter field values out of trace-table cells, and the comparison rules of the filter language.

Reusable helper: :func:`assessment_value` (the latest assessment of a name in an ``assessments`` cell).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from genai_flywheel.selection.nodes import NEGATED_OPS, Scalar

# The answers a boolean feedback stands for: `user_feedback.value = 'negative'` matches a False feedback,
# and a judge's "yes"/"no" string matches the literals true/false.
TRUE_WORDS = frozenset({"positive", "yes", "true"})
FALSE_WORDS = frozenset({"negative", "no", "false"})
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


class _Invalid:
    """A cell whose text is not JSON; the raw text stands in for the whole value."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


# The C scanner behind json.loads, called directly: json.loads' Python wrapper costs several times the
# decoding itself on the short texts of a trace table.
_SCAN_ONCE = json.JSONDecoder().scan_once


def decode_json(text: str | None) -> Any:
    """JSON-decode ``text``; None stays None and invalid JSON becomes an opaque marker (no keys)."""
    if text is None:
        return None
    try:
        value, end = _SCAN_ONCE(text, 0)
    except (StopIteration, ValueError):
        pass  # leading whitespace or invalid JSON: json.loads decides below
    else:
        if end == len(text) or text[end:].isspace():
            return value
        return _Invalid(text)
    try:
        return json.loads(text)
    except ValueError:
        return _Invalid(text)


def decode_column(texts: Iterable[str | None]) -> list[Any]:
    """Decode a column of JSON texts, decoding each distinct text once (tags repeat across traces)."""
    memo: dict[str, Any] = {}
    out: list[Any] = []
    for text in texts:
        if text is None:
            out.append(None)
            continue
        value = memo.get(text, memo)
        if value is memo:
            value = memo[text] = decode_json(text)
        out.append(value)
    return out


def whole(value: Any) -> Any:
    """A decoded value as a field value: an invalid-JSON cell becomes its raw text."""
    return value.raw if isinstance(value, _Invalid) else value


def walk(value: Any, path: Sequence[str]) -> Any:
    """Follow ``path`` through dicts (by key) and lists (by decimal index); None when it leads nowhere."""
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdecimal() and key.isascii():
            index = int(key)
            value = value[index] if index < len(value) else None
        else:
            return None
    return whole(value)


def last_user_message(messages: Any) -> Any:
    """The content of the last ``role == "user"`` message of a chat ``messages`` list, else None.

    A content given as a list of parts (``[{"type": "text", "text": ...}]``) becomes its text parts joined
    with newlines.
    """
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                parts = [p.get("text") if isinstance(p, Mapping) else p for p in content]
                return "\n".join(p for p in parts if isinstance(p, str))
            return content
    return None


def input_field(request: Any, path: Sequence[str]) -> Any:
    """``inputs.<path>`` of a decoded request; ``inputs.query`` falls back to the last user chat message."""
    value = walk(request, path)
    if value is None and tuple(path) == ("query",) and isinstance(request, Mapping) and "query" not in request:
        value = last_user_message(request.get("messages"))
    return value


def assessment_value(assessments_cell: Sequence[Mapping[str, Any]] | None, name: str) -> Any:
    """The JSON-decoded value of the latest assessment called ``name`` in one ``assessments`` cell.

    Latest means the largest ``create_time_ms`` (a missing time counts as oldest; ties go to the later entry
    of the list); feedback and expectations both count. None when there is no such assessment or the latest
    one carries no value (e.g. it recorded an error).
    """
    best: Mapping[str, Any] | None = None
    best_time = -math.inf
    for entry in assessments_cell or ():
        if entry is None or entry.get("name") != name:
            continue
        created = entry.get("create_time_ms")
        created = -math.inf if created is None else created
        if best is None or created >= best_time:
            best, best_time = entry, created
    if best is None:
        return None
    return whole(decode_json(best.get("value")))


def is_missing(value: Any) -> bool:
    """Missing values (SQL NULL): None, and NaN which no comparison could match."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def to_text(value: Any) -> str:
    """A value as text: strings as-is, everything else as its JSON text (true/false, 0.5, {"a": 1})."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_number(text: str) -> int | float | None:
    text = text.strip()
    if not _NUMBER_TEXT.match(text):
        return None
    try:
        number = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:  # more digits than int() accepts (sys.get_int_max_str_digits)
        return None
    return number if math.isfinite(number) else None


def _truth_word(text: str) -> bool | None:
    word = text.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def comparable(value: Any, literal: Scalar) -> tuple[Any, Any]:
    """The pair to compare for ``value OP literal`` under the filter language's coercion rules.

    * boolean vs boolean; boolean vs a yes/no word (TRUE_WORDS/FALSE_WORDS, any case) compares as booleans;
      boolean vs number compares True/False as 1/0;
    * number vs number numerically; number vs a string that reads as a decimal number numerically (tag and
      metadata values are always strings, so ``tags.retries > 2`` works);
    * anything else compares as text (see :func:`to_text`).
    """
    if isinstance(value, bool) or isinstance(literal, bool):
        if isinstance(value, bool) and isinstance(literal, bool):
            return value, literal
        flag, other, flag_first = (value, literal, True) if isinstance(value, bool) else (literal, value, False)
        converted: Any = None
        if _is_number(other):
            flag, converted = int(flag), other
        elif isinstance(other, str):
            converted = _truth_word(other)
        if converted is not None:
            return (flag, converted) if flag_first else (converted, flag)
        return to_text(value), to_text(literal)
    if _is_number(value) and _is_number(literal):
        return value, literal
    if _is_number(value) and isinstance(literal, str):
        number = _parse_number(literal)
        if number is not None:
            return value, number
    if _is_number(literal) and isinstance(value, str):
        number = _parse_number(value)
        if number is not None:
            return number, literal
    return to_text(value), to_text(literal)


def like_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile a SQL LIKE pattern: ``%`` any run, ``_`` one character, backslash escapes the next one."""
    out: list[str] = []
    chars = iter(pattern.casefold() if ignore_case else pattern)
    for ch in chars:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def scalar_predicate(op: str, literal: Scalar | tuple[Scalar, ...]) -> Callable[[Any], bool]:
    """The test of one present, non-list value for a positive operator (=, <, IN, CONTAINS, LIKE ...)."""
    if op in _ORDER:
        compare = _ORDER[op]
        assert not isinstance(literal, tuple)
        lit = literal
        lit_type = type(lit)
        numeric_literal = _is_number(lit)
        truth_literal = _truth_word(lit) if isinstance(lit, str) else None

        def ordered(value: Any) -> bool:
            # Fast paths for the common same-kind cases; comparable() gives the same answer, only slower.
            value_type = type(value)
            if value_type is lit_type or (numeric_literal and (value_type is int or value_type is float)):
                return bool(compare(value, lit))
            if value_type is bool and truth_literal is not None:
                return bool(compare(value, truth_literal))
            a, b = comparable(value, lit)
            return bool(compare(a, b))

        return ordered
    if op == "IN":
        assert isinstance(literal, tuple)
        tests = [scalar_predicate("=", item) for item in literal]
        return lambda value: any(test(value) for test in tests)
    assert isinstance(literal, str)
    if op == "CONTAINS":
        needle = literal.casefold()
        return lambda value: needle in to_text(value).casefold()
    if op == "LIKE":
        regex = like_regex(literal)
        return lambda value: regex.fullmatch(to_text(value)) is not None
    if op == "ILIKE":
        regex = like_regex(literal, ignore_case=True)
        return lambda value: regex.fullmatch(to_text(value).casefold()) is not None
    raise ValueError(f"operator {op!r} has no scalar predicate; use one of =, <, <=, >, >=, IN, CONTAINS, LIKE, ILIKE")


def predicate(op: str, literal: Scalar | tuple[Scalar, ...] | None) -> Callable[[Any], bool]:
    """The test of one field value for ``op literal``, with the language's missing/list/negation rules.

    * IS NULL / IS NOT NULL test for a missing value (None, NaN, absent key);
    * every other operator is false on a missing value;
    * a list value matches a positive operator when any element does;
    * a negated operator (!=, NOT IN, NOT CONTAINS, NOT LIKE, NOT ILIKE) is true when the value is present
      and the positive operator does not match.
    """
    if op == "IS NULL":
        return is_missing
    if op == "IS NOT NULL":
        return lambda value: not is_missing(value)
    positive_op = NEGATED_OPS.get(op, op)
    assert literal is not None
    test = scalar_predicate(positive_op, literal)
    negated = op in NEGATED_OPS

    def match(value: Any) -> bool:
        # Inlined is_missing(): this runs once per row and field.
        if value is None or (type(value) is float and value != value):
            return False
        if type(value) is list:
            hit = any(not is_missing(v) and test(v) for v in value)
        else:
            hit = test(value)
        return hit != negated

    return match
