"""Property tests: render/parse round trip, pushdown equivalence, vectorised == reference evaluation."""

from __future__ import annotations

import operator
import re
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from selection_tables import assessment, build_table

from genai_flywheel.selection import (
    And,
    Compare,
    Expr,
    Field,
    Not,
    Or,
    evaluate,
    parse_filter,
    split_pushdown,
)
from genai_flywheel.selection.evaluate import _Context
from genai_flywheel.selection.values import assessment_value

# Bounded example counts keep this file to a few CPU-seconds; deadlines off: CI machines vary.
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TABLE_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------------
# Round trip over arbitrary trees (any key, any string, any finite number).
# ---------------------------------------------------------------------------------------------------
SCALARS = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15), st.floats(allow_nan=False, allow_infinity=False)
)
KEYS = st.text(min_size=1, max_size=6)
ANY_FIELD = st.one_of(
    st.builds(Field, st.sampled_from(["inputs", "outputs"]), st.lists(st.text(max_size=5), max_size=3).map(tuple)),
    st.builds(Field, st.sampled_from(["assessment", "tag", "metadata"]), st.tuples(KEYS)),
    st.builds(Field, st.sampled_from(["status", "timestamp_ms", "execution_time_ms", "text"])),
)
TEXT_OPS = ["CONTAINS", "NOT CONTAINS", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]


@st.composite
def any_compare(draw: st.DrawFn) -> Compare:
    """A comparison the parser accepts: trace.text takes text operators, numeric attributes numbers."""
    field = draw(ANY_FIELD)
    if field.kind == "text":
        return Compare(field, draw(st.sampled_from(TEXT_OPS)), draw(st.text(max_size=8)))
    numeric = field.kind in ("timestamp_ms", "execution_time_ms")
    values = NUMBERS if numeric else SCALARS
    ops = ["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
    op = draw(st.sampled_from(ops if numeric else ops + TEXT_OPS))
    if op in ("IS NULL", "IS NOT NULL"):
        return Compare(field, op)
    if op in ("IN", "NOT IN"):
        return Compare(field, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    if op in TEXT_OPS:
        return Compare(field, op, draw(st.text(max_size=8)))
    return Compare(field, op, draw(values))


def _and(operands: list[Expr]) -> Expr:
    return And(tuple(operands))


def _or(operands: list[Expr]) -> Expr:
    return Or(tuple(operands))


def _and_if_many(operands: list[Expr]) -> Expr:
    return operands[0] if len(operands) == 1 else And(tuple(operands))


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(Not, children),
        st.lists(children, min_size=2, max_size=3).map(_and),
        st.lists(children, min_size=2, max_size=3).map(_or),
    )


def trees(leaves: st.SearchStrategy[Compare]) -> st.SearchStrategy[Expr]:
    return st.recursive(leaves, _extend, max_leaves=8)


@SETTINGS
@given(trees(any_compare()))
def test_render_parse_round_trip(expr: Expr) -> None:
    text = str(expr)
    again = parse_filter(text)
    assert again == expr
    # Equal trees could still differ in literal types (1 == True == 1.0); the rendering cannot.
    assert str(again) == text


# ---------------------------------------------------------------------------------------------------
# Random filters over a small universe of fields and values, evaluated on random small tables.
# ---------------------------------------------------------------------------------------------------
WORDS = ["prod", "Prod", "dev", "OK", "ERROR", "a b", "it's", "x%y", "", "negative", "yes", "3", "ü"]
STATUSES = ["OK", "ERROR", "IN_PROGRESS"]
TIMES = [1000, 1001, 1002, 1003, 1005]
TAG_KEYS = ["env", "team", "name", "mlflow.traceName"]
META_KEYS = ["user", "mlflow.trace.session", "run_id"]


def _query_request(query: str) -> dict[str, Any]:
    return {"query": query}


def _chat_request(query: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": query}]}


def _answer_response(answer: str) -> dict[str, Any]:
    return {"answer": answer}


# Strategies are built once at module level from named functions: Hypothesis introspects the source of
# every lambda it meets, which costs more than the test itself.
REQUESTS = st.one_of(
    st.builds(_query_request, st.sampled_from(WORDS)),
    st.builds(_chat_request, st.sampled_from(WORDS)),
    st.none(),
)
RESPONSES = st.one_of(st.none(), st.sampled_from(WORDS), st.builds(_answer_response, st.sampled_from(WORDS)))
ASSESSMENTS = st.one_of(
    st.none(),
    st.lists(
        st.builds(
            assessment,
            st.sampled_from(["user_feedback", "relevance"]),
            st.one_of(st.booleans(), st.sampled_from([0.2, 0.5, 0.9, 1]), st.sampled_from(WORDS), st.none()),
            st.sampled_from([1, 2, 2, None]),
        ),
        max_size=4,
    ),
)


def _entries(keys: list[str]) -> st.SearchStrategy[dict[str, str] | None]:
    return st.one_of(st.none(), st.dictionaries(st.sampled_from(keys), st.sampled_from(WORDS), max_size=len(keys)))


TRACE_ROWS = st.fixed_dictionaries(
    {
        "timestamp_ms": st.sampled_from(TIMES),
        "status": st.sampled_from([*STATUSES, None]),
        "execution_time_ms": st.one_of(st.none(), st.sampled_from([0, 5, 100, 3000])),
        "request": REQUESTS,
        "response": RESPONSES,
        "tags": _entries(TAG_KEYS),
        "metadata": _entries(META_KEYS),
        "assessments": ASSESSMENTS,
    }
)
TABLES = st.lists(TRACE_ROWS, max_size=8)
# Only the columns the filters read: evaluation must not need the others, and narrow tables build faster.
COLUMNS = [
    "trace_id",
    "timestamp_ms",
    "status",
    "execution_time_ms",
    "request",
    "response",
    "tags",
    "metadata",
    "assessments",
]


SMALL_FIELDS = st.sampled_from(
    [
        Field("status"),
        Field("timestamp_ms"),
        Field("execution_time_ms"),
        *(Field("tag", (k,)) for k in TAG_KEYS),
        *(Field("metadata", (k,)) for k in META_KEYS),
        Field("inputs", ("query",)),
        Field("outputs"),
        Field("assessment", ("user_feedback",)),
        Field("assessment", ("relevance",)),
        Field("text"),
    ]
)
SMALL_SCALARS = st.one_of(st.sampled_from(WORDS), st.sampled_from([0, 1, 3, 0.5, -1, 1002, 1002.5, True, False]))


@st.composite
def small_compare(draw: st.DrawFn) -> Compare:
    field = draw(SMALL_FIELDS)
    if field.kind == "text":
        return Compare(field, draw(st.sampled_from(TEXT_OPS)), draw(st.sampled_from(["%", "%a%", "p_od", "prod"])))
    numeric = field.kind in ("timestamp_ms", "execution_time_ms")
    values = st.sampled_from([*TIMES, 0, 5, 100, 3000, -1, 1002.5]) if numeric else SMALL_SCALARS
    ops = ["=", "=", "!=", "<", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
    op = draw(st.sampled_from(ops if numeric else [*ops, "CONTAINS", "LIKE", "ILIKE"]))
    if op in ("IS NULL", "IS NOT NULL"):
        return Compare(field, op)
    if op in ("IN", "NOT IN"):
        return Compare(field, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    if op in ("CONTAINS", "LIKE", "ILIKE"):
        return Compare(field, op, draw(st.sampled_from(WORDS)))
    return Compare(field, op, draw(values))


def small_filters() -> st.SearchStrategy[Expr]:
    # Top-level conjunctions give split_pushdown something to split; inner trees keep it honest.
    return st.lists(st.one_of(small_compare(), trees(small_compare())), min_size=1, max_size=4).map(_and_if_many)


# A stand-in for MLflow's search_traces that implements only the pushed-down subset, with SQL semantics
# written independently of the local evaluator: a NULL column or an absent tag row matches nothing.
_CLAUSE = re.compile(
    r"trace\.(?P<num>timestamp_ms|execution_time_ms) (?P<nop>=|!=|<=|>=|<|>) (?P<int>\d+)"
    r"|trace\.status (?P<sop>=|!=) '(?P<sval>[^']*)'"
    r"|trace\.status (?P<lop>IN|NOT IN) \((?P<list>'[^']*'(?:, '[^']*')*)\)"
    r"|(?P<ent>tags|metadata)\.`(?P<key>[^`]+)` "
    r"(?:(?P<kop>=|!=) '(?P<kval>[^']*)'|(?P<null>IS NULL|IS NOT NULL))"
)
_SQL_OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def fake_mlflow(filter_string: str | None, rows: list[dict[str, Any]]) -> list[bool]:
    if filter_string is None:
        return [True] * len(rows)
    clauses: list[re.Match[str]] = []
    pos = 0
    while True:
        match = _CLAUSE.match(filter_string, pos)
        assert match is not None, f"pushed clause MLflow-stand-in cannot read at {pos}: {filter_string!r}"
        clauses.append(match)
        pos = match.end()
        if pos == len(filter_string):
            break
        assert filter_string.startswith(" AND ", pos), filter_string
        pos += len(" AND ")

    def clause_holds(m: re.Match[str], row: dict[str, Any]) -> bool:
        if m["num"]:
            column = row.get(m["num"])
            return column is not None and _SQL_OPS[m["nop"]](column, int(m["int"]))
        status = row.get("status")
        if m["sop"]:
            return status is not None and _SQL_OPS[m["sop"]](status, m["sval"])
        if m["lop"]:
            members = re.findall(r"'([^']*)'", m["list"])
            return status is not None and ((status in members) == (m["lop"] == "IN"))
        entries = row.get(m["ent"]) or {}
        if m["null"]:
            return (m["key"] in entries) == (m["null"] == "IS NOT NULL")
        return m["key"] in entries and _SQL_OPS[m["kop"]](entries[m["key"]], m["kval"])

    return [all(clause_holds(m, row) for m in clauses) for row in rows]


@TABLE_SETTINGS
@given(TABLES, small_filters())
def test_pushdown_plus_residual_equals_local_evaluation(rows: list[dict[str, Any]], expr: Expr) -> None:
    table = build_table(rows, COLUMNS)
    expected = evaluate(expr, table)
    pushed, residual = split_pushdown(expr)
    fetched = np.array(fake_mlflow(pushed, rows), dtype=bool)
    subset = table.filter(fetched)
    kept = evaluate(residual, subset) if residual is not None else np.ones(subset.num_rows, dtype=bool)
    got = np.zeros(len(rows), dtype=bool)
    got[np.flatnonzero(fetched)[kept]] = True
    assert got.tolist() == expected.tolist(), (str(expr), pushed, str(residual))


@TABLE_SETTINGS
@given(TABLES, trees(small_compare()))
def test_vectorised_paths_match_the_reference_predicates(rows: list[dict[str, Any]], expr: Expr) -> None:
    table = build_table(rows, COLUMNS)
    fast = evaluate(expr, table)
    # With the Arrow fast path and the vectorised assessment lookup replaced by the per-row reference.
    with (
        mock.patch.object(_Context, "arrow_compare", return_value=None),
        mock.patch.object(
            _Context,
            "assessment_values",
            lambda self, field: [assessment_value(cell, field.key) for cell in rows_cells(rows)],
        ),
    ):
        slow = evaluate(expr, table)
    assert fast.tolist() == slow.tolist(), str(expr)


def rows_cells(rows: list[dict[str, Any]]) -> list[Any]:
    return [row["assessments"] for row in rows]


@TABLE_SETTINGS
@given(TABLES, trees(small_compare()))
def test_not_is_the_complement(rows: list[dict[str, Any]], expr: Expr) -> None:
    table = build_table(rows, COLUMNS)
    assert (evaluate(Not(expr), table) == ~evaluate(expr, table)).all()
