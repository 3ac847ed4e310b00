r"""Tokenizer of the selection filter language.

Token kinds: ``IDENT`` (a bare word: field prefix, key segment or keyword), ``BQIDENT`` (a backquoted key,
a doubled backquote inside stands for one), ``DOT``, ``STRING``, ``NUMBER``, ``OP`` (``= != <> == < <= >
>=``), ``LPAREN``, ``RPAREN``, ``COMMA`` and a final ``EOF`` at ``len(text)``.

Strings are single- or double-quoted; the quote is escaped by doubling it or with a backslash. A
backslash before a backslash, a quote, n, r or t is decoded; any other backslash is kept as-is so that
LIKE patterns can escape their wildcards (the filter text '100\%' is the pattern of a literal "100%").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from genai_flywheel.exceptions import FilterSyntaxError

_FIRST_IDENT = re.compile(r"[A-Za-z_]\w*")
# After a dot any run of word characters or hyphens is a key segment: `inputs.messages.0.content`,
# `assessments.user-feedback.value`.
_SEGMENT = re.compile(r"[\w-]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_PUNCT = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", ".": "DOT"}


@dataclass(frozen=True)
class Token:
    """One token: its kind, decoded value and the 0-based offset of its first character."""

    kind: str
    value: str | int | float
    pos: int

    def describe(self) -> str:
        """The token as an error message shows it."""
        if self.kind == "EOF":
            return "the end of the filter"
        if self.kind == "STRING":
            return f"string {self.value!r}"
        return repr(str(self.value))


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Decode the string literal opening at ``start``; return it and the offset after its closing quote."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            nxt = text[i + 1]
            # Unknown escapes keep their backslash: LIKE uses it to escape % and _.
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterSyntaxError(
        f"unterminated string: the {quote} opened here is never closed; add a closing {quote}", text, start
    )


def _read_backquoted(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        if text[i] == "`":
            if i + 1 < n and text[i + 1] == "`":
                out.append("`")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise FilterSyntaxError(
        "unterminated backquoted key: the ` opened here is never closed; add a closing `", text, start
    )


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``EOF`` token; raise FilterSyntaxError on a bad one."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        after_dot = bool(tokens) and tokens[-1].kind == "DOT"
        if ch in "'\"":
            value, end = _read_quoted(text, i)
            tokens.append(Token("STRING", value, i))
            i = end
            continue
        if ch == "`":
            value, end = _read_backquoted(text, i)
            tokens.append(Token("BQIDENT", value, i))
            i = end
            continue
        if after_dot:
            m = _SEGMENT.match(text, i)
            if m:
                tokens.append(Token("IDENT", m.group(), i))
                i = m.end()
                continue
        if ch == "." and tokens and tokens[-1].kind in ("IDENT", "BQIDENT"):
            # A dot right after a name separates key segments; it never starts a number like ".5".
            tokens.append(Token("DOT", ch, i))
            i += 1
            continue
        m = _NUMBER.match(text, i) if ch in _DIGITS or ch in "-." else None
        if m:
            end = m.end()
            # "1.2.3", "12abc", "1e": a number must not run straight into more word characters or dots.
            if end < n and (text[end].isalnum() or text[end] in "._"):
                bad = re.match(r"[\w.+-]*", text[i:]).group()  # type: ignore[union-attr]
                raise FilterSyntaxError(
                    f"bad number {bad!r}: expected digits with an optional fraction and exponent, "
                    "e.g. 42, -0.5 or 1e3 (quote it if it is text)",
                    text,
                    i,
                )
            literal = m.group()
            try:
                number: int | float = int(literal) if not any(c in literal for c in ".eE") else float(literal)
            except ValueError:  # more digits than int() accepts
                number = math.inf
            if not math.isfinite(number):
                raise FilterSyntaxError(f"bad number {literal!r}: it is too large; use a smaller one", text, i)
            tokens.append(Token("NUMBER", number, i))
            i = end
            continue
        m = _FIRST_IDENT.match(text, i)
        if m:
            tokens.append(Token("IDENT", m.group(), i))
            i = m.end()
            continue
        if ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("OP", op, i))
            i += len(op)
            continue
        raise FilterSyntaxError(
            f"unexpected character {ch!r}: expected a field, an operator, a quoted string, a number, "
            "AND/OR/NOT or parentheses",
            text,
            i,
        )
    tokens.append(Token("EOF", "", n))
    return tokens
