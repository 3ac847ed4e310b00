"""Local evaluation of a parsed filter over a trace table: the reference semantics of the language.

Fields read these columns of :data:`genai_flywheel.traces.schema.TRACE_SCHEMA`:

=============================  ============================================================================
field                          value
=============================  ============================================================================
``inputs.<k1>.<k2>``           key path into the JSON of ``request`` (dicts by key, lists by index);
                               ``inputs`` alone is the request's JSON text. ``inputs.query`` on a chat
                               request without a ``query`` key is the last ``role == "user"`` message's
                               content (text parts joined with newlines).
``outputs.<k1>...``            the same into ``response``; ``outputs`` alone is the answer text: the
                               ``answer`` column when the table has it and it is set, else the response
                               decoded when it is a JSON string, else the response's JSON text.
``assessments.<name>.value``   the JSON-decoded value of the latest assessment called ``name`` (feedback or
(``feedback.<name>``)          expectation, largest ``create_time_ms``) in ``assessments``.
``tags.<key>``                 the value of ``key`` in the JSON object of ``tags``; ``metadata.<key>`` in
                               ``metadata``.
``trace.status``               ``status``; ``trace.timestamp_ms`` and ``trace.execution_time_ms`` likewise.
``trace.text``                 query and answer joined by a newline (``query`` column, else inputs.query;
                               then the ``outputs`` answer); CONTAINS/LIKE/ILIKE only.
=============================  ============================================================================

Logic is two-valued: a comparison on a missing value (null cell, absent key, JSON null, invalid JSON, NaN)
is false, and NOT negates that result, so ``NOT tags.env = 'prod'`` holds for a trace without an ``env``
tag while ``tags.env != 'prod'`` does not (as in SQL and MLflow). Comparisons follow
:func:`genai_flywheel.selection.values.comparable`: numeric when both sides are numbers (or one is a string
reading as a number), boolean for booleans (a boolean feedback equals ``true``/``false`` and the words
``'positive'/'yes'/'true'`` or ``'negative'/'no'/'false'``, any case), text otherwise. ``=`` on text is
case-sensitive; CONTAINS is a case-insensitive substring test; LIKE uses SQL ``%``/``_`` wildcards
(backslash escapes one) and is case-sensitive, ILIKE is not. A list value matches when any element does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.selection.nodes import (
    ASSESSMENT,
    EXECUTION_TIME,
    INPUTS,
    METADATA,
    OUTPUTS,
    STATUS,
    TAG,
    TEXT,
    TIMESTAMP,
    And,
    Compare,
    Expr,
    Field,
    Not,
    Or,
)
from genai_flywheel.selection.values import (
    decode_column,
    decode_json,
    input_field,
    is_missing,
    predicate,
    to_text,
    walk,
    whole,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

_COLUMN_OF_ATTRIBUTE = {STATUS: "status", TIMESTAMP: "timestamp_ms", EXECUTION_TIME: "execution_time_ms"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ARROW_OPS = {
    "=": "equal",
    "!=": "not_equal",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
}


def evaluate(expr: Expr, table: pa.Table) -> np.ndarray:
    """A boolean mask of the rows of ``table`` (trace-table columns) that match ``expr``.

    Only the columns ``expr`` references must exist; a missing one raises DataContractError.
    """
    context = _Context(table)
    mask = context.evaluate(expr)
    log.debug("filter %s matched %d of %d traces", expr, int(mask.sum()), table.num_rows)
    return mask


def _answer_text(response: str | None) -> str | None:
    """The answer in a response JSON: a JSON string decodes to its text, anything else stays JSON text."""
    if response is None:
        return None
    if response.lstrip().startswith('"'):
        value = whole(decode_json(response))
        return value if isinstance(value, str) else response
    return response


class _Context:
    """One evaluation: caches decoded columns and field values so each is computed once."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows
        self.columns: dict[str, list[Any]] = {}
        self.values: dict[Field, list[Any]] = {}

    def evaluate(self, expr: Expr) -> np.ndarray:
        if isinstance(expr, Compare):
            return self.compare(expr)
        if isinstance(expr, Not):
            return ~self.evaluate(expr.operand)
        assert isinstance(expr, And | Or)
        masks = [self.evaluate(operand) for operand in expr.operands]
        combine = np.logical_and if isinstance(expr, And) else np.logical_or
        return combine.reduce(masks)

    # -- columns -------------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.table.column_names

    def require(self, name: str, field: Field) -> Any:
        if not self.has(name):
            raise DataContractError(
                f"filter field {field} reads column {name!r}, which the trace table lacks "
                f"(it has {self.table.column_names}); extract traces with that column"
            )
        return self.table.column(name)

    def pylist(self, name: str, field: Field) -> list[Any]:
        if name not in self.columns:
            self.columns[name] = self.require(name, field).to_pylist()
        return self.columns[name]

    def decoded(self, name: str, field: Field) -> list[Any]:
        key = f"json:{name}"
        if key not in self.columns:
            self.columns[key] = decode_column(self.pylist(name, field))
        return self.columns[key]

    # -- field values --------------------------------------------------------------------------------
    def field_values(self, field: Field) -> list[Any]:
        if field not in self.values:
            self.values[field] = self.compute(field)
        return self.values[field]

    def compute(self, field: Field) -> list[Any]:
        kind = field.kind
        if kind in _COLUMN_OF_ATTRIBUTE:
            return self.pylist(_COLUMN_OF_ATTRIBUTE[kind], field)
        if kind == INPUTS:
            if not field.path:
                # The whole request is its JSON text (as MLflow wrote it), not a re-encoding of it.
                return self.pylist("request", field)
            return [input_field(r, field.path) for r in self.decoded("request", field)]
        if kind == OUTPUTS:
            if field.path:
                return [walk(r, field.path) for r in self.decoded("response", field)]
            return self.answers(field)
        if kind in (TAG, METADATA):
            column = "tags" if kind == TAG else "metadata"
            return [d.get(field.key) if isinstance(d, dict) else None for d in self.decoded(column, field)]
        if kind == ASSESSMENT:
            return self.assessment_values(field)
        if kind == TEXT:
            return self.texts(field)
        raise AssertionError(f"unhandled field kind {kind!r}")

    def answers(self, field: Field) -> list[Any]:
        # The extractor's answer column is the best answer text; the decoded response is the fallback.
        answer = self.pylist("answer", field) if self.has("answer") else [None] * self.n
        if not self.has("response") and not self.has("answer"):
            self.require("response", field)
        response = self.pylist("response", field) if self.has("response") else [None] * self.n
        return [a if a is not None else _answer_text(r) for a, r in zip(answer, response, strict=True)]

    def texts(self, field: Field) -> list[Any]:
        # The extractor's query column first; inputs.query of the request where it is unset.
        if not self.has("query") and not self.has("request"):
            self.require("request", field)
        queries = self.pylist("query", field) if self.has("query") else [None] * self.n
        if self.has("request") and any(q is None for q in queries):
            requests = self.decoded("request", field)
            queries = [
                q if q is not None else input_field(r, ("query",)) for q, r in zip(queries, requests, strict=True)
            ]
        answers = self.field_values(Field(OUTPUTS))
        out: list[Any] = []
        for query, answer in zip(queries, answers, strict=True):
            parts = [to_text(p) for p in (query, answer) if not is_missing(p)]
            out.append("\n".join(parts) if parts else None)
        return out

    def assessment_values(self, field: Field) -> list[Any]:
        """Per row, the latest assessment called field.key, as values.assessment_value() picks it."""
        import pyarrow.compute as pc

        column = self.require("assessments", field).combine_chunks()
        out: list[Any] = [None] * self.n
        flat = column.flatten()
        # Vectorised: materialising every assessment struct as a dict costs more than the whole filter.
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        named = pc.fill_null(pc.equal(flat.field("name"), field.key), False).to_numpy(zero_copy_only=False)
        positions = np.nonzero(named)[0]
        if positions.size == 0:
            return out
        rows = parents[positions]
        times = pc.fill_null(flat.field("create_time_ms").take(positions), _INT64_MIN).to_numpy()
        # Sort by row, then time, then list position; the last entry of each row is its latest assessment.
        order = np.lexsort((positions, times, rows))
        rows, positions = rows[order], positions[order]
        last = np.append(rows[1:] != rows[:-1], True)
        texts = flat.field("value").take(positions[last]).to_pylist()
        for row, value in zip(rows[last].tolist(), decode_column(texts), strict=True):
            out[row] = whole(value)
        return out

    # -- comparisons ---------------------------------------------------------------------------------
    def compare(self, node: Compare) -> np.ndarray:
        fast = self.arrow_compare(node)
        if fast is not None:
            return fast
        test: Callable[[Any], bool] = predicate(node.op, node.value)
        values = self.field_values(node.field)
        return np.fromiter((test(v) for v in values), dtype=bool, count=self.n)

    def arrow_compare(self, node: Compare) -> np.ndarray | None:
        """Vectorised comparison of a trace attribute column, when it gives the same answer as predicate()."""
        column_name = _COLUMN_OF_ATTRIBUTE.get(node.field.kind)
        if column_name is None:
            return None
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.require(column_name, node.field)
        is_string = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        is_integer = pa.types.is_integer(column.type)
        literals = node.value if isinstance(node.value, tuple) else (node.value,)
        # Same-type literals only: mixed types go through predicate()'s coercion rules.
        if is_string and all(isinstance(v, str) for v in literals):
            arrow_type = pa.string()
        elif is_integer and all(type(v) is int and _INT64_MIN <= v <= _INT64_MAX for v in literals):
            arrow_type = pa.int64()
        elif node.op in ("IS NULL", "IS NOT NULL"):
            arrow_type = None
        else:
            return None
        if node.op == "IS NULL":
            result = pc.is_null(column)
        elif node.op == "IS NOT NULL":
            result = pc.is_valid(column)
        elif node.op in _ARROW_OPS and (node.op in ("=", "!=") or is_integer):
            result = getattr(pc, _ARROW_OPS[node.op])(column, pa.scalar(node.value, arrow_type))
        elif node.op in ("IN", "NOT IN"):
            found = pc.is_in(column, value_set=pa.array(literals, arrow_type))
            result = found if node.op == "IN" else pc.and_(pc.invert(found), pc.is_valid(column))
        else:
            return None
        return np.asarray(pc.fill_null(result, False).to_numpy(zero_copy_only=False), dtype=bool)
