"""What split_pushdown hands to MLflow and what it keeps local."""

from __future__ import annotations

import pytest

from genai_flywheel.selection import compile_filter, parse_filter, split_pushdown


@pytest.mark.parametrize(
    ("text", "pushed"),
    [
        ("trace.timestamp_ms >= 1700000000000", "trace.timestamp_ms >= 1700000000000"),
        ("timestamp_ms < 1700000000000", "trace.timestamp_ms < 1700000000000"),
        ("trace.timestamp_ms = 0", "trace.timestamp_ms = 0"),
        ("trace.execution_time_ms > 2000", "trace.execution_time_ms > 2000"),
        ("execution_time_ms != 5", "trace.execution_time_ms != 5"),
        ("trace.status = 'ERROR'", "trace.status = 'ERROR'"),
        ('status != "OK"', "trace.status != 'OK'"),
        ("attributes.status IN ('OK', 'ERROR')", "trace.status IN ('OK', 'ERROR')"),
        ("trace.status NOT IN ('IN_PROGRESS')", "trace.status NOT IN ('IN_PROGRESS')"),
        ("tags.env = 'prod'", "tags.`env` = 'prod'"),
        ("tags.`app.version` != 'v 1%_'", "tags.`app.version` != 'v 1%_'"),
        ("tags.env IS NULL", "tags.`env` IS NULL"),
        ("metadata.`mlflow.trace.user` = 'alice'", "metadata.`mlflow.trace.user` = 'alice'"),
        ("metadata.user IS NOT NULL", "metadata.`user` IS NOT NULL"),
        ("tags.env = 'ü a AND b'", "tags.`env` = 'ü a AND b'"),
    ],
)
def test_pushable_conjuncts(text: str, pushed: str) -> None:
    assert split_pushdown(parse_filter(text)) == (pushed, None)


@pytest.mark.parametrize(
    "text",
    [
        # Operators and fields MLflow lacks or evaluates differently.
        "trace.status = 'OK' OR trace.status = 'ERROR'",
        "NOT trace.status = 'OK'",
        "trace.status LIKE 'OK'",
        "tags.env LIKE 'prod'",  # SQLite LIKE ignores case
        "tags.env ILIKE 'prod'",
        "tags.env CONTAINS 'prod'",
        "tags.env IN ('a', 'b')",
        "inputs.query = 'x'",
        "outputs = 'x'",
        "assessments.user_feedback.value = 'negative'",
        "feedback.relevance > 0.5",
        "trace.text LIKE '%x%'",
        # Numbers MLflow would coerce or that never matter.
        "trace.timestamp_ms >= 1700000000000.5",
        "trace.timestamp_ms >= 1e12",
        "trace.execution_time_ms > -1",
        "trace.execution_time_ms IN (1, 2)",
        "trace.timestamp_ms > 99999999999999999999",
        "trace.execution_time_ms IS NULL",
        # Values MLflow's parser cannot carry verbatim, and literals of the wrong type.
        "tags.env = 'it''s'",
        "tags.env = 'a\"b'",
        "tags.env = 'back\\\\slash'",
        "tags.env = 'line\\nbreak'",
        "tags.env = ''",
        "tags.env = 5",
        "tags.env = true",
        "trace.status = 1",
        "trace.status IN ('OK', 2)",
        # Keys MLflow redirects to other columns or entities.
        "tags.name = 'x'",
        "tags.Name = 'x'",
        "tags.text = 'x'",
        "tags.prompt = 'x'",
        "tags.timestamp = 'x'",
        "metadata.run_id = 'x'",
        "tags.`mlflow.traceName` = 'x'",
        "metadata.`mlflow.trace.session` = 's'",
        "metadata.`mlflow.sourceRun` = 'r'",
        "metadata.`mlflow.trace.tokenUsage` IS NULL",
        "tags.`a key` = 'x'",
        "tags.`ü` = 'x'",
    ],
)
def test_kept_local(text: str) -> None:
    expr = parse_filter(text)
    assert split_pushdown(expr) == (None, expr)


def test_mixed_conjunction_splits_and_keeps_order() -> None:
    expr = parse_filter(
        "trace.status = 'ERROR' AND inputs.query CONTAINS 'x' AND trace.timestamp_ms >= 1700000000000 "
        "AND (feedback.a = true OR tags.env = 'prod') AND tags.env = 'prod'"
    )
    pushed, residual = split_pushdown(expr)
    assert pushed == "trace.status = 'ERROR' AND trace.timestamp_ms >= 1700000000000 AND tags.`env` = 'prod'"
    assert residual == parse_filter("inputs.query CONTAINS 'x' AND (feedback.a = true OR tags.env = 'prod')")


def test_nested_groups_of_and_are_flattened() -> None:
    pushed, residual = split_pushdown(parse_filter("trace.status = 'OK' AND (inputs.a = 1 AND tags.env = 'x')"))
    assert pushed == "trace.status = 'OK' AND tags.`env` = 'x'"
    assert residual == parse_filter("inputs.a = 1")


def test_repeated_clause_is_pushed_once() -> None:
    pushed, residual = split_pushdown(parse_filter("trace.status = 'OK' AND status = 'OK'"))
    assert (pushed, residual) == ("trace.status = 'OK'", None)


def test_compile_filter_exposes_both_parts() -> None:
    compiled = compile_filter("trace.execution_time_ms > 100 AND inputs.query CONTAINS 'x'")
    assert compiled.pushdown == "trace.execution_time_ms > 100"
    assert str(compiled.residual) == "inputs.query CONTAINS 'x'"
    assert compiled.expr == parse_filter(compiled.text or "")
