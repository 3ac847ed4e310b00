"""The filter grammar: operators, precedence, quoting, fields, canonical rendering and error positions."""

from __future__ import annotations

import pytest

from genai_flywheel.exceptions import FilterSyntaxError
from genai_flywheel.selection import And, Compare, Field, Not, Or, parse_filter

Q = Field("inputs", ("query",))
FB = Field("assessment", ("user_feedback",))
REL = Field("assessment", ("relevance_score",))
STATUS = Field("status")


def cmp(text: str) -> Compare:
    node = parse_filter(text)
    assert isinstance(node, Compare)
    return node


def test_documented_examples_verbatim() -> None:
    first = parse_filter("inputs.query CONTAINS 'Feature X' AND assessments.user_feedback.value = 'negative'")
    assert first == And((Compare(Q, "CONTAINS", "Feature X"), Compare(FB, "=", "negative")))

    second = parse_filter(
        "inputs.query CONTAINS 'Feature X' AND (assessments.relevance_score.value < 0.5 OR "
        "assessments.user_feedback.value = 'negative')"
    )
    assert second == And(
        (
            Compare(Q, "CONTAINS", "Feature X"),
            Or((Compare(REL, "<", 0.5), Compare(FB, "=", "negative"))),
        )
    )


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("inputs.query = 'a'", "=", "a"),
        ("inputs.query == 'a'", "=", "a"),
        ("inputs.query != 'a'", "!=", "a"),
        ("inputs.query <> 'a'", "!=", "a"),
        ("inputs.n < 1", "<", 1),
        ("inputs.n <= 1", "<=", 1),
        ("inputs.n > 1", ">", 1),
        ("inputs.n >= 1", ">=", 1),
        ("inputs.n>=1", ">=", 1),
        ("inputs.query CONTAINS 'a'", "CONTAINS", "a"),
        ("inputs.query NOT CONTAINS 'a'", "NOT CONTAINS", "a"),
        ("inputs.query LIKE 'a%'", "LIKE", "a%"),
        ("inputs.query NOT LIKE 'a_'", "NOT LIKE", "a_"),
        ("inputs.query ILIKE 'A%'", "ILIKE", "A%"),
        ("inputs.query NOT ILIKE 'A%'", "NOT ILIKE", "A%"),
        ("inputs.query IN ('a', 'b')", "IN", ("a", "b")),
        ("inputs.query IN ('a')", "IN", ("a",)),
        ("inputs.query NOT IN ('a', 2, true)", "NOT IN", ("a", 2, True)),
        ("inputs.query IS NULL", "IS NULL", None),
        ("inputs.query IS NOT NULL", "IS NOT NULL", None),
    ],
)
def test_each_operator(text: str, op: str, value: object) -> None:
    node = cmp(text)
    assert (node.op, node.value) == (op, value)


def test_keywords_are_case_insensitive() -> None:
    lower = parse_filter("not inputs.a contains 'x' and inputs.b is not null or inputs.c in (TRUE, False)")
    upper = parse_filter("NOT inputs.a CONTAINS 'x' AND inputs.b IS NOT NULL OR inputs.c IN (true, false)")
    assert lower == upper
    assert cmp("inputs.c = True").value is True


def test_precedence_not_over_and_over_or() -> None:
    a, b, c = (Compare(Field("inputs", (k,)), "=", 1) for k in "abc")
    assert parse_filter("inputs.a = 1 OR inputs.b = 1 AND inputs.c = 1") == Or((a, And((b, c))))
    assert parse_filter("inputs.a = 1 AND inputs.b = 1 OR inputs.c = 1") == Or((And((a, b)), c))
    assert parse_filter("NOT inputs.a = 1 AND inputs.b = 1") == And((Not(a), b))
    assert parse_filter("NOT inputs.a = 1 OR inputs.b = 1") == Or((Not(a), b))
    assert parse_filter("NOT (inputs.a = 1 OR inputs.b = 1)") == Not(Or((a, b)))
    assert parse_filter("NOT NOT inputs.a = 1") == Not(Not(a))


def test_parentheses_group_and_chains_flatten() -> None:
    a, b, c = (Compare(Field("inputs", (k,)), "=", 1) for k in "abc")
    assert parse_filter("(inputs.a = 1 OR inputs.b = 1) AND inputs.c = 1") == And((Or((a, b)), c))
    assert parse_filter("inputs.a = 1 AND inputs.b = 1 AND inputs.c = 1") == And((a, b, c))
    # An explicit group stays a nested node so the tree renders back to the same text.
    assert parse_filter("inputs.a = 1 AND (inputs.b = 1 AND inputs.c = 1)") == And((a, And((b, c))))
    assert parse_filter("((inputs.a = 1))") == a


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("inputs.q = 'plain'", "plain"),
        ('inputs.q = "double"', "double"),
        ("inputs.q = 'it''s'", "it's"),
        ('inputs.q = "say ""hi"""', 'say "hi"'),
        ("inputs.q = 'it\\'s'", "it's"),
        ('inputs.q = "a\\"b"', 'a"b'),
        ("inputs.q = 'back\\\\slash'", "back\\slash"),
        ("inputs.q = 'line\\nbreak\\ttab'", "line\nbreak\ttab"),
        ("inputs.q = '100\\%'", "100\\%"),  # unknown escapes keep the backslash for LIKE
        ("inputs.q = 'a \"quoted\" word'", 'a "quoted" word'),
        ("inputs.q = ''", ""),
        ("inputs.q = 'üñí'", "üñí"),
    ],
)
def test_string_quoting_and_escapes(text: str, value: str) -> None:
    assert cmp(text).value == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("inputs.n = 42", 42),
        ("inputs.n = -7", -7),
        ("inputs.n = 0.5", 0.5),
        ("inputs.n = -0.25", -0.25),
        ("inputs.n = .5", 0.5),
        ("inputs.n = 1e3", 1000.0),
        ("inputs.n = 2.5E-2", 0.025),
        ("inputs.n = true", True),
        ("inputs.n = FALSE", False),
    ],
)
def test_number_and_boolean_literals(text: str, value: object) -> None:
    got = cmp(text).value
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("inputs.query", Field("inputs", ("query",))),
        ("inputs.a.b", Field("inputs", ("a", "b"))),
        ("inputs.messages.0.content", Field("inputs", ("messages", "0", "content"))),
        ("inputs.`a.b`", Field("inputs", ("a.b",))),
        ("inputs", Field("inputs")),
        ("outputs", Field("outputs")),
        ("outputs.answer", Field("outputs", ("answer",))),
        ("assessments.user_feedback.value", FB),
        ("assessments.`my score`.value", Field("assessment", ("my score",))),
        ("assessments.user-feedback.value", Field("assessment", ("user-feedback",))),
        ("feedback.user_feedback", FB),
        ("tags.env", Field("tag", ("env",))),
        ("tags.`mlflow.traceName`", Field("tag", ("mlflow.traceName",))),
        ("tags.mlflow.traceName", Field("tag", ("mlflow.traceName",))),
        ("tags.`we``ird`", Field("tag", ("we`ird",))),
        ("metadata.`mlflow.trace.user`", Field("metadata", ("mlflow.trace.user",))),
        ("trace.status", STATUS),
        ("attributes.status", STATUS),
        ("status", STATUS),
        ("TRACE.STATUS", STATUS),
        ("trace.timestamp_ms", Field("timestamp_ms")),
        ("timestamp_ms", Field("timestamp_ms")),
        ("trace.timestamp", Field("timestamp_ms")),
        ("trace.execution_time_ms", Field("execution_time_ms")),
        ("execution_time_ms", Field("execution_time_ms")),
        ("attributes.execution_time_ms", Field("execution_time_ms")),
    ],
)
def test_fields_and_aliases(text: str, field: Field) -> None:
    assert cmp(f"{text} IS NULL").field == field


def test_trace_text_field() -> None:
    assert cmp("trace.text CONTAINS 'x'").field == Field("text")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("feedback.user_feedback = 'negative'", "assessments.user_feedback.value = 'negative'"),
        ('status <> "OK"', "trace.status != 'OK'"),
        ("tags.mlflow.traceName == 'app'", "tags.`mlflow.traceName` = 'app'"),
        ("inputs.q = 'it''s'", "inputs.q = 'it\\'s'"),
        (
            "not (inputs.a = 1 or inputs.b = 2) and inputs.c in (1,'x')",
            "NOT (inputs.a = 1 OR inputs.b = 2) AND inputs.c IN (1, 'x')",
        ),
        ("timestamp_ms >= 1e3", "trace.timestamp_ms >= 1000.0"),
        ("inputs.a is not null", "inputs.a IS NOT NULL"),
    ],
)
def test_canonical_rendering(text: str, canonical: str) -> None:
    assert str(parse_filter(text)) == canonical
    assert parse_filter(canonical) == parse_filter(text)


@pytest.mark.parametrize(
    "text",
    [
        "inputs.query CONTAINS 'Feature X' AND (assessments.score.value < 0.5 OR feedback.x = 'negative')",
        "(inputs.a = 1 OR inputs.b = 2) AND (inputs.c = 3 OR NOT (inputs.d = 4 AND inputs.e = 5))",
        "inputs.a = 1 OR (inputs.b = 2 OR inputs.c = 3)",
        "inputs.a = 1 AND (inputs.b = 2 AND inputs.c = 3)",
        "NOT NOT inputs.`we``ird key`.`` = 'line\\nbreak\\\\'",
        "trace.timestamp_ms IN (1, -2, 3.5) AND trace.text NOT ILIKE '%x\\_y%'",
    ],
)
def test_round_trip(text: str) -> None:
    expr = parse_filter(text)
    assert parse_filter(str(expr)) == expr
    assert str(parse_filter(str(expr))) == str(expr)


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("inputs.query CONTAINS 'abc", 22, "unterminated string"),
        ('inputs.query = "abc', 15, "unterminated string"),
        ("tags.`abc = 'x'", 5, "unterminated backquoted key"),
        ("foo.bar = 1", 0, "unknown field 'foo.bar'"),
        ("inputs.query = 1 AND bogus = 2", 21, "unknown field 'bogus'"),
        ("trace.nope = 1", 0, "unknown field"),
        ("assessments.x = 1", 0, "assessments.<name>.value"),
        ("tags = 'x'", 0, "needs a key"),
        ("inputs. = 1", 8, "expected a key after '.'"),
        ("inputs.query =", 14, "missing value"),
        ("inputs.query", 12, "missing operator"),
        ("inputs.query 'x'", 13, "expected an operator"),
        ("(inputs.query = 'a'", 0, "never closed"),
        ("((inputs.query = 'a')", 0, "never closed"),
        ("inputs.query = 'a')", 18, "no matching '('"),
        ("(inputs.query = 'a' inputs.b = 1)", 20, "expected AND, OR or ')'"),
        ("()", 1, "expected a condition"),
        ("inputs.query IN 'a'", 16, "expected '(' after IN"),
        ("inputs.query NOT IN 'a'", 20, "expected '(' after NOT IN"),
        ("inputs.query IN ()", 17, "empty list"),
        ("inputs.query IN ('a' 'b')", 21, "expected ',' or ')'"),
        ("inputs.query IN ('a',)", 21, "expected a value"),
        ("inputs.n = 1.2.3", 11, "bad number '1.2.3'"),
        ("inputs.n = 12abc", 11, "bad number '12abc'"),
        ("inputs.n = 1e999", 11, "bad number"),
        ("inputs.query = 'a' AND", 22, "expected a condition"),
        ("AND inputs.query = 'a'", 0, "expected a condition"),
        ("inputs.query = 'a' OR OR inputs.b = 1", 22, "expected a condition"),
        ("inputs.query = 'a' inputs.query = 'b'", 19, "expected AND, OR or the end"),
        ("trace.status = OK", 15, "quote it: 'OK'"),
        ("inputs.query = null", 15, "IS NULL"),
        ("inputs.query IS 'x'", 16, "expected NULL"),
        ("inputs.query IS NOT 'x'", 20, "expected NULL after IS NOT"),
        ("inputs.query NOT = 'x'", 17, "expected IN, LIKE, ILIKE or CONTAINS after NOT"),
        ("inputs.query CONTAINS 5", 22, "quoted string pattern"),
        ("trace.timestamp_ms > '2024-01-01'", 21, "number of milliseconds"),
        ("trace.execution_time_ms IN (1, 'x')", 31, "number of milliseconds"),
        ("trace.timestamp_ms = true", 21, "number of milliseconds"),
        ("trace.timestamp_ms LIKE '17%'", 19, "is a number"),
        ("trace.text = 'x'", 11, "trace.text supports only"),
        ("inputs.query = 'a' ; ", 19, "unexpected character ';'"),
        ("", 0, "empty"),
        ("   ", 3, "empty"),
    ],
)
def test_errors_point_at_the_offending_token(text: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    err = info.value
    assert err.position == position, str(err)
    assert err.text == text
    assert fragment in str(err)
    # The message ends with the text and a caret under the offending token.
    if text:
        assert str(err).endswith(f"\n  {text}\n  {' ' * position}^")


def test_error_names_the_expected_fields() -> None:
    with pytest.raises(FilterSyntaxError, match=r"inputs\.<key>.*trace\.text"):
        parse_filter("query CONTAINS 'x'")


def test_absurd_nesting_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(FilterSyntaxError, match="too deeply"):
        parse_filter("(" * 5000 + "inputs.a = 1" + ")" * 5000)
    assert parse_filter("(" * 50 + "inputs.a = 1" + ")" * 50) == parse_filter("inputs.a = 1")


def test_non_string_filter_is_rejected() -> None:
    with pytest.raises(FilterSyntaxError, match="must be a string"):
        parse_filter(42)  # type: ignore[arg-type]


def test_nodes_are_immutable_and_hashable() -> None:
    expr = parse_filter("inputs.a IN (1, 2) AND NOT tags.x IS NULL")
    assert hash(expr) == hash(parse_filter(str(expr)))
    with pytest.raises(AttributeError):
        expr.operands = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "build",
    [
        lambda: And((Compare(STATUS, "=", "OK"),)),
        lambda: Compare(STATUS, "~", "OK"),
        lambda: Compare(STATUS, "IN", ()),
        lambda: Compare(STATUS, "LIKE", 5),
        lambda: Compare(STATUS, "=", float("nan")),
        lambda: Compare(STATUS, "IS NULL", "x"),
        lambda: Field("tag", ()),
        lambda: Field("status", ("x",)),
        lambda: Field("nope"),
    ],
)
def test_invalid_nodes_are_refused(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]
