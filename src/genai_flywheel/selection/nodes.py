"""The immutable node tree of a parsed selection filter, and its canonical text rendering.

``str(node)`` renders canonical filter text (canonical field names, single-quoted strings, upper-case
keywords, the fewest parentheses that keep the tree) which :func:`~genai_flywheel.selection.parse_filter`
parses back to an equal tree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TypeAlias

Scalar: TypeAlias = str | int | float | bool

# Field kinds. Trace attributes have no path; inputs/outputs have a key path (possibly empty); the others
# carry exactly one key (assessment name, tag key, metadata key).
INPUTS = "inputs"
OUTPUTS = "outputs"
ASSESSMENT = "assessment"
TAG = "tag"
METADATA = "metadata"
STATUS = "status"
TIMESTAMP = "timestamp_ms"
EXECUTION_TIME = "execution_time_ms"
TEXT = "text"

PATH_KINDS = frozenset({INPUTS, OUTPUTS})
KEY_KINDS = frozenset({ASSESSMENT, TAG, METADATA})
ATTRIBUTE_KINDS = frozenset({STATUS, TIMESTAMP, EXECUTION_TIME, TEXT})
NUMERIC_KINDS = frozenset({TIMESTAMP, EXECUTION_TIME})

COMPARISON_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
TEXT_OPS = frozenset({"CONTAINS", "NOT CONTAINS", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"})
LIST_OPS = frozenset({"IN", "NOT IN"})
NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
ALL_OPS = COMPARISON_OPS | TEXT_OPS | LIST_OPS | NULL_OPS
# Each negated operator means "the value is present and the positive operator does not hold".
NEGATED_OPS = {
    "!=": "=",
    "NOT IN": "IN",
    "NOT CONTAINS": "CONTAINS",
    "NOT LIKE": "LIKE",
    "NOT ILIKE": "ILIKE",
}

# A key segment rendered without backquotes; must stay a subset of what the lexer reads after a dot.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_-]+\Z")


def render_segment(segment: str) -> str:
    """One key segment: bare when plain, else backquoted with inner backquotes doubled."""
    if _PLAIN_SEGMENT.match(segment):
        return segment
    return "`" + segment.replace("`", "``") + "`"


def render_literal(value: Scalar) -> str:
    """Canonical text of a literal: true/false, repr of numbers, single-quoted escaped strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return f"'{escaped}'"


def _check_scalar(value: object, where: str) -> None:
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"{where}: literal {value!r} is not a string, number or boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: literal {value!r} is not a finite number; use a finite one")


@dataclass(frozen=True)
class Field:
    """A field reference: ``kind`` (one of the kinds above) and its key ``path``."""

    kind: str
    path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind in ATTRIBUTE_KINDS:
            if self.path:
                raise ValueError(f"field trace.{self.kind} takes no key path; got {self.path!r}")
        elif self.kind in KEY_KINDS:
            if len(self.path) != 1 or not self.path[0]:
                raise ValueError(f"field kind {self.kind!r} needs exactly one non-empty key; got {self.path!r}")
        elif self.kind not in PATH_KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}; use one of the kinds in selection.nodes")

    @property
    def key(self) -> str:
        """The single key of an assessment, tag or metadata field."""
        return self.path[0]

    def __str__(self) -> str:
        if self.kind in ATTRIBUTE_KINDS:
            return f"trace.{self.kind}"
        if self.kind == ASSESSMENT:
            return f"assessments.{render_segment(self.key)}.value"
        if self.kind == TAG:
            return f"tags.{render_segment(self.key)}"
        if self.kind == METADATA:
            return f"metadata.{render_segment(self.key)}"
        return self.kind + "".join("." + render_segment(p) for p in self.path)


@dataclass(frozen=True)
class Compare:
    """``field op value``: ``value`` is a scalar, a tuple of scalars (IN, NOT IN) or None (IS [NOT] NULL)."""

    field: Field
    op: str
    value: Scalar | tuple[Scalar, ...] | None = None

    def __post_init__(self) -> None:
        where = f"{self.field} {self.op}"
        if self.op not in ALL_OPS:
            raise ValueError(f"unknown operator {self.op!r}; use one of {sorted(ALL_OPS)}")
        if self.op in NULL_OPS:
            if self.value is not None:
                raise ValueError(f"{where} takes no value; got {self.value!r}")
        elif self.op in LIST_OPS:
            if not isinstance(self.value, tuple) or not self.value:
                raise ValueError(f"{where} needs a non-empty tuple of literals; got {self.value!r}")
            for item in self.value:
                _check_scalar(item, where)
        else:
            _check_scalar(self.value, where)
            if self.op in TEXT_OPS and not isinstance(self.value, str):
                raise ValueError(f"{where} needs a string pattern; got {self.value!r}")

    def __str__(self) -> str:
        if self.op in NULL_OPS:
            return f"{self.field} {self.op}"
        if self.op in LIST_OPS:
            assert isinstance(self.value, tuple)
            items = ", ".join(render_literal(v) for v in self.value)
            return f"{self.field} {self.op} ({items})"
        assert self.value is not None and not isinstance(self.value, tuple)
        return f"{self.field} {self.op} {render_literal(self.value)}"


@dataclass(frozen=True)
class Not:
    """Logical negation (two-valued: a comparison on a missing value is false, so NOT of it is true)."""

    operand: Expr

    def __str__(self) -> str:
        inner = str(self.operand)
        if isinstance(self.operand, And | Or):
            inner = f"({inner})"
        return f"NOT {inner}"


@dataclass(frozen=True)
class And:
    """Conjunction of two or more operands."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError(f"And needs at least two operands; got {len(self.operands)}")

    def __str__(self) -> str:
        # A nested And/Or keeps its parentheses so the rendering re-parses to this exact tree.
        return " AND ".join(f"({o})" if isinstance(o, And | Or) else str(o) for o in self.operands)


@dataclass(frozen=True)
class Or:
    """Disjunction of two or more operands."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError(f"Or needs at least two operands; got {len(self.operands)}")

    def __str__(self) -> str:
        # AND binds tighter than OR, so only a nested Or needs parentheses.
        return " OR ".join(f"({o})" if isinstance(o, Or) else str(o) for o in self.operands)


Expr: TypeAlias = Compare | Not | And | Or


def conjuncts(expr: Expr) -> list[Expr]:
    """The top-level AND operands of ``expr``, nested Ands flattened, in order."""
    if isinstance(expr, And):
        out: list[Expr] = []
        for operand in expr.operands:
            out.extend(conjuncts(operand))
        return out
    return [expr]


def fields_of(expr: Expr) -> set[Field]:
    """Every field ``expr`` references."""
    if isinstance(expr, Compare):
        return {expr.field}
    if isinstance(expr, Not):
        return fields_of(expr.operand)
    out: set[Field] = set()
    for operand in expr.operands:
        out |= fields_of(operand)
    return out
