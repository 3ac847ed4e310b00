"""Splitting a filter into the part MLflow's ``search_traces`` evaluates identically and a local residual.

Only top-level AND conjuncts are pushed down, and only these forms, each checked against a real SQLite
tracking store (``tests/integration/test_selection_pushdown.py``) to return exactly the rows the local
evaluation returns:

* ``trace.timestamp_ms`` / ``trace.execution_time_ms`` ``= != < <= > >=`` a non-negative integer (a float
  or a date string is not pushed: MLflow coerces or silently matches nothing);
* ``trace.status`` ``=``, ``!=``, ``IN``, ``NOT IN`` plain strings;
* ``tags.<key>`` / ``metadata.<key>`` ``=``, ``!=`` a plain string, and ``IS NULL`` / ``IS NOT NULL``.

Never pushed: OR, NOT, CONTAINS, LIKE/ILIKE (MLflow's SQL LIKE has no escape character, ILIKE folds ASCII
only on SQLite, and case handling is per backend), inputs/outputs/assessments (MLflow matches any valid
assessment rather than the latest one, and compares string values JSON-quoted),
trace.text (MLflow searches span contents), strings with quotes, backslashes or control characters
(MLflow's filter parser does not unescape them), and tag/metadata keys MLflow rewrites to other columns
(``name``, ``run_id``, ``prompt``, ``text``, ``timestamp``, ... and the reserved ``mlflow.traceName``,
``mlflow.trace.session``, ``mlflow.sourceRun``, token usage and cost keys).
"""

from __future__ import annotations

import re

from genai_flywheel.selection.nodes import (
    EXECUTION_TIME,
    METADATA,
    STATUS,
    TAG,
    TIMESTAMP,
    And,
    Compare,
    Expr,
    conjuncts,
)

# Strings MLflow's filter parser passes through unchanged inside single quotes.
_SAFE_TEXT = re.compile(r"[^'\"`\\\x00-\x1f\x7f]+\Z")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# MLflow looks these keys up case-insensitively and redirects them to another entity or column
# (SearchTraceUtils.SEARCH_KEY_TO_TAG / _METADATA / _SPAN / _ATTRIBUTE): `tags.name` searches the trace name.
_REDIRECTED_KEYS = frozenset({"name", "run_id", "prompt", "text", "timestamp", "execution_time", "end_time"})
# Keys the SQL store answers from promoted columns or special tables rather than the key/value rows.
_RESERVED_TAG_KEYS = frozenset({"mlflow.traceName", "mlflow.linkedPrompts"})
_RESERVED_METADATA_KEYS = frozenset(
    {"mlflow.trace.session", "mlflow.trace.tokenUsage", "mlflow.trace.cost", "mlflow.sourceRun"}
)
_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_INT64_MAX = 2**63 - 1


def _safe_text(value: object) -> bool:
    return isinstance(value, str) and bool(_SAFE_TEXT.match(value))


def _quote(value: str) -> str:
    return f"'{value}'"


def _pushable_key(kind: str, key: str) -> bool:
    if not _SAFE_KEY.match(key) or key.lower() in _REDIRECTED_KEYS:
        return False
    reserved = _RESERVED_TAG_KEYS if kind == TAG else _RESERVED_METADATA_KEYS
    return key not in reserved


def to_mlflow(node: Expr) -> str | None:
    """The MLflow ``search_traces`` clause equivalent to ``node``, or None when it must stay local."""
    if not isinstance(node, Compare):
        return None
    kind, op, value = node.field.kind, node.op, node.value
    if kind in (TIMESTAMP, EXECUTION_TIME):
        if op in _NUMERIC_OPS and type(value) is int and 0 <= value <= _INT64_MAX:
            return f"trace.{kind} {op} {value}"
        return None
    if kind == STATUS:
        if op in ("=", "!=") and _safe_text(value):
            assert isinstance(value, str)
            return f"trace.status {op} {_quote(value)}"
        if op in ("IN", "NOT IN") and isinstance(value, tuple) and all(_safe_text(v) for v in value):
            return f"trace.status {op} ({', '.join(_quote(str(v)) for v in value)})"
        return None
    if kind in (TAG, METADATA) and _pushable_key(kind, node.field.key):
        prefix = "tags" if kind == TAG else "metadata"
        if op in ("IS NULL", "IS NOT NULL"):
            return f"{prefix}.`{node.field.key}` {op}"
        if op in ("=", "!=") and _safe_text(value):
            assert isinstance(value, str)
            return f"{prefix}.`{node.field.key}` {op} {_quote(value)}"
    return None


def split_pushdown(expr: Expr) -> tuple[str | None, Expr | None]:
    """Split ``expr`` into an MLflow ``search_traces`` filter string and a residual to evaluate locally.

    Rows MLflow returns for the filter string, filtered by the residual, are exactly the rows matching
    ``expr`` locally. Either part is None when empty.
    """
    pushed: list[str] = []
    kept: list[Expr] = []
    for conjunct in conjuncts(expr):
        clause = to_mlflow(conjunct)
        if clause is None:
            kept.append(conjunct)
        elif clause not in pushed:
            pushed.append(clause)
    residual: Expr | None
    if not kept:
        residual = None
    elif len(kept) == 1:
        residual = kept[0]
    else:
        residual = And(tuple(kept))
    return (" AND ".join(pushed) or None), residual
