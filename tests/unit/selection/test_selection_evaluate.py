"""Local evaluation semantics on a small hand-built trace table."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from selection_tables import assessment, build_table

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.selection import assessment_value, compile_filter, evaluate, parse_filter

ROWS: list[dict[str, Any]] = [
    {  # 0: plain query, boolean feedback changed from True to False
        "timestamp_ms": 1000,
        "request": {"query": "How does Feature X work?", "n": 5, "nested": {"k": [1, 2, 3]}},
        "response": {"answer": "Feature X syncs files."},
        "status": "OK",
        "execution_time_ms": 120,
        "tags": {"env": "prod", "team": "a"},
        "metadata": {"mlflow.trace.user": "alice"},
        "assessments": [
            assessment("user_feedback", True, 1),
            assessment("user_feedback", False, 5),
            assessment("relevance_score", 0.9, 3),
        ],
    },
    {  # 1: chat request, JSON-string response, two relevance scores (latest 0.2)
        "timestamp_ms": 1001,
        "request": {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 100% of Feature x pricing?"},
                {"role": "assistant", "content": "Which plan?"},
                {"role": "user", "content": [{"type": "text", "text": "Pricing of feature x?"}]},
            ]
        },
        "response": "It is cheap.",
        "status": "ERROR",
        "execution_time_ms": 3000,
        "tags": {"env": "dev"},
        "metadata": None,
        "assessments": [assessment("relevance_score", 0.2, 9), assessment("relevance_score", 0.8, 2)],
    },
    {  # 2: little data: no tags, no latency, no assessments
        "timestamp_ms": 1002,
        "request": {"query": "unrelated"},
        "response": None,
        "status": "OK",
        "execution_time_ms": None,
        "tags": None,
        "assessments": None,
    },
    {  # 3: invalid request JSON, list answer, judge says "yes", latest feedback errored
        "timestamp_ms": 1003,
        "raw_request": "not json",
        "response": {"answer": ["a", "b"]},
        "status": "IN_PROGRESS",
        "execution_time_ms": 10,
        "tags": {"env": "Prod", "retries": "3"},
        "metadata": {"mlflow.trace.user": "bob"},
        "assessments": [
            assessment("judge", "yes", 2),
            assessment("user_feedback", True, 1),
            assessment("user_feedback", None, 10),
        ],
    },
]


@pytest.fixture(scope="module")
def table() -> Any:
    return build_table(ROWS)


def rows(table: Any, text: str) -> list[int]:
    mask = evaluate(parse_filter(text), table)
    assert mask.dtype == np.bool_ and mask.shape == (table.num_rows,)
    return np.flatnonzero(mask).tolist()


def test_documented_examples(table: Any) -> None:
    first = "inputs.query CONTAINS 'Feature X' AND assessments.user_feedback.value = 'negative'"
    second = (
        "inputs.query CONTAINS 'Feature X' AND (assessments.relevance_score.value < 0.5 "
        "OR assessments.user_feedback.value = 'negative')"
    )
    assert rows(table, first) == [0]
    assert rows(table, second) == [0, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Missing values make every comparison false, including the negated operators ...
        ("tags.env = 'prod'", [0]),
        ("tags.env != 'prod'", [1, 3]),
        ("trace.execution_time_ms > 100", [0, 1]),
        ("trace.execution_time_ms <= 100", [3]),
        ("trace.execution_time_ms != 120", [1, 3]),
        ("inputs.query NOT IN ('unrelated')", [0, 1]),
        # ... and NOT negates the two-valued result.
        ("NOT tags.env = 'prod'", [1, 2, 3]),
        ("NOT trace.execution_time_ms > 100", [2, 3]),
        ("tags.env IS NULL", [2]),
        ("tags.env IS NOT NULL", [0, 1, 3]),
        ("trace.execution_time_ms IS NULL", [2]),
        ("metadata.`mlflow.trace.user` IS NULL", [1, 2]),
        ("inputs.query IS NULL", [3]),
        ("outputs IS NULL", [2]),
    ],
)
def test_missing_values_and_not(table: Any, text: str, expected: list[int]) -> None:
    assert rows(table, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("assessments.user_feedback.value = false", [0]),  # the latest (False), not the older True
        ("assessments.user_feedback.value = 'negative'", [0]),
        ("feedback.user_feedback = 'NO'", [0]),
        ("feedback.user_feedback = 'false'", [0]),
        ("feedback.user_feedback = 'positive'", []),  # row 3's latest feedback errored: no value
        ("feedback.user_feedback IS NULL", [1, 2, 3]),
        ("feedback.user_feedback != 'positive'", [0]),
        ("feedback.user_feedback < 0.5", [0]),  # a boolean compares with numbers as 0/1
        ("feedback.user_feedback = 'maybe'", []),
        ("feedback.judge = true", [3]),  # a judge's "yes" equals the literal true
        ("feedback.judge = 'yes'", [3]),
        ("assessments.relevance_score.value < 0.5", [1]),  # latest of row 1 is 0.2
        ("assessments.relevance_score.value >= 0.9", [0]),
        ("assessments.relevance_score.value > '0.5'", [0]),  # a numeric string compares as a number
        ("assessments.relevance_score.value IN (0.9, 0.2)", [0, 1]),
    ],
)
def test_assessments(table: Any, text: str, expected: list[int]) -> None:
    assert rows(table, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("inputs.query = 'How does Feature X work?'", [0]),
        ("inputs.query = 'how does feature x work?'", []),  # = is case-sensitive
        ("inputs.query CONTAINS 'FEATURE x'", [0, 1]),  # CONTAINS is not; row 1 via chat fallback
        ("inputs.query NOT CONTAINS 'feature'", [2]),
        ("inputs.query LIKE 'How%'", [0]),
        ("inputs.query LIKE 'how%'", []),
        ("inputs.query ILIKE 'how%'", [0]),
        ("inputs.query NOT ILIKE 'how%'", [1, 2]),
        ("inputs.query LIKE '_nrelated'", [2]),
        ("inputs.messages.1.content LIKE '%100\\%%'", [1]),  # backslash escapes a wildcard
        ("inputs.messages.1.content LIKE '%1000%'", []),
        ("inputs.query = 'Pricing of feature x?'", [1]),  # last user message, text parts joined
        ("inputs.messages.0.role = 'system'", [1]),
        ("inputs.nested.k.2 = 3", [0]),
        ("inputs.nested.k = 2", [0]),  # a list matches when any element does
        ("inputs.nested.k != 2", []),
        ("inputs.nested.k > 2", [0]),
        ("inputs.n = 5", [0]),
        ("inputs.n = '5'", [0]),
        ("inputs.n = 5.0", [0]),
        ("inputs.n > 4.5", [0]),
        ("inputs.n IN ('x', 5)", [0]),
        ("inputs CONTAINS '\"n\": 5'", [0]),  # the whole request is its JSON text
        ("inputs CONTAINS 'not json'", [3]),
        ("outputs.answer = 'b'", [3]),
        ("outputs.answer != 'b'", [0]),
        ("outputs.answer NOT IN ('c')", [0, 3]),
        ("outputs = 'It is cheap.'", [1]),  # a JSON-string response is the answer text
        ("outputs CONTAINS 'syncs files'", [0]),
        ("tags.retries > 2", [3]),  # tag values are strings; a number literal compares numerically
        ("tags.retries = '3.0'", []),  # string vs string stays textual
        ("tags.retries = 3.0", [3]),
        ("tags.env IN ('prod', 'Prod')", [0, 3]),
        ("tags.env ILIKE 'PROD'", [0, 3]),
        ("trace.status = 'OK'", [0, 2]),
        ("trace.status = 'ok'", []),
        ("trace.status IN ('ERROR', 'IN_PROGRESS')", [1, 3]),
        ("trace.status NOT IN ('OK')", [1, 3]),
        ("trace.status LIKE '%O%'", [0, 1, 2, 3]),
        ("trace.timestamp_ms >= 1002", [2, 3]),
        ("trace.timestamp_ms IN (1000, 1003)", [0, 3]),
        ("trace.timestamp_ms < 1000.5", [0]),
        ("trace.text CONTAINS 'cheap'", [1]),
        ("trace.text CONTAINS 'pricing'", [1]),
        # Query and answer joined by a newline; a non-string response stays JSON text.
        ('trace.text LIKE \'%work?\n{"answer": "Feature X%\'', [0]),
        ("trace.text NOT CONTAINS 'feature'", [2, 3]),
    ],
)
def test_fields_and_operators(table: Any, text: str, expected: list[int]) -> None:
    assert rows(table, text) == expected


def test_precedence_is_evaluated_as_parsed(table: Any) -> None:
    assert rows(table, "trace.status = 'OK' OR tags.env = 'dev' AND trace.execution_time_ms > 5000") == [0, 2]
    assert rows(table, "(trace.status = 'OK' OR tags.env = 'dev') AND trace.execution_time_ms > 100") == [
        0,
        1,
    ]


def test_answer_column_wins_over_response() -> None:
    rows_ = [
        {"response": {"choices": [{"message": {"content": "hi"}}]}, "answer": "hi there"},
        {"response": "x"},
    ]
    table = build_table(rows_)
    assert evaluate(parse_filter("outputs = 'hi there'"), table).tolist() == [True, False]
    assert evaluate(parse_filter("outputs = 'x'"), table).tolist() == [False, True]
    # trace.text prefers the query column as well, falling back to inputs.query where it is unset.
    table = build_table([{"query": "from column", "request": {"query": "from request"}}, {"request": {"query": "q2"}}])
    assert evaluate(parse_filter("trace.text CONTAINS 'from column'"), table).tolist() == [True, False]
    assert evaluate(parse_filter("trace.text CONTAINS 'q2'"), table).tolist() == [False, True]


def test_works_on_a_table_with_only_the_referenced_columns() -> None:
    table = build_table(ROWS, columns=["status", "tags"])
    assert evaluate(parse_filter("trace.status = 'OK' AND tags.env = 'prod'"), table).tolist() == [
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(DataContractError, match="column 'request'"):
        evaluate(parse_filter("inputs.query = 'x'"), table)
    with pytest.raises(DataContractError, match="column 'response'"):
        evaluate(parse_filter("outputs CONTAINS 'x'"), table)


def test_empty_table() -> None:
    table = build_table([])
    for text in (
        "inputs.query CONTAINS 'x'",
        "feedback.a = true",
        "trace.status = 'OK'",
        "trace.text LIKE '%'",
    ):
        assert evaluate(parse_filter(text), table).shape == (0,)


def test_same_input_same_output(table: Any) -> None:
    text = "inputs.query CONTAINS 'x' OR feedback.relevance_score < 0.5 OR tags.env ILIKE 'prod'"
    assert evaluate(parse_filter(text), table).tobytes() == evaluate(parse_filter(text), table).tobytes()


def test_compiled_filter_masks(table: Any) -> None:
    everything = compile_filter(None)
    assert (everything.expr, everything.pushdown, everything.residual) == (None, None, None)
    assert everything.mask(table).tolist() == [True] * 4
    assert compile_filter("   ").mask(table).all()

    compiled = compile_filter("trace.status = 'OK' AND inputs.query CONTAINS 'feature'")
    assert compiled.pushdown == "trace.status = 'OK'"
    assert compiled.mask(table).tolist() == [True, False, False, False]
    # The residual alone is for tables already filtered by MLflow: here it also keeps the ERROR row 1.
    assert compiled.residual_mask(table).tolist() == [True, True, False, False]


def test_assessment_value_helper() -> None:
    cell = [
        {"name": "a", "value": "1", "create_time_ms": 5},
        {"name": "a", "value": "2", "create_time_ms": 5},  # a tie goes to the later entry
        {"name": "a", "value": "0", "create_time_ms": None},  # unknown time counts as oldest
        {"name": "b", "value": '"x"', "create_time_ms": 1},
        {"name": "c", "value": None, "create_time_ms": 1},
    ]
    assert assessment_value(cell, "a") == 2
    assert assessment_value(cell, "b") == "x"
    assert assessment_value(cell, "c") is None
    assert assessment_value(cell, "missing") is None
    assert assessment_value(None, "a") is None


def test_vectorised_assessments_agree_with_the_helper() -> None:
    cells = [
        [assessment("a", 1, 5), assessment("a", 2, 5), assessment("a", 0, None)],
        None,
        [],
        [assessment("b", "x", 1), assessment("a", None, 9), assessment("a", 7, 3)],
        [assessment("a", {"k": [1]}, 2)],
    ]
    table = build_table([{"assessments": c} for c in cells], columns=["assessments"])
    expected = [assessment_value(c, "a") for c in cells]
    assert expected == [2, None, None, None, {"k": [1]}]
    got = [evaluate(parse_filter(f"feedback.a = {json.dumps(v)}"), table).tolist() for v in (2, 7)]
    assert got == [[True, False, False, False, False], [False] * 5]
    assert evaluate(parse_filter("feedback.a IS NULL"), table).tolist() == [v is None for v in expected]
