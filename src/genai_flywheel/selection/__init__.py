"""Trace selection filters: the MLflow-style filter language, its local evaluation and MLflow pushdown.

>>> f = compile_filter("trace.status = 'OK' AND inputs.query CONTAINS 'Feature X'")
>>> f.pushdown
"trace.status = 'OK'"
>>> str(f.residual)
"inputs.query CONTAINS 'Feature X'"

See :mod:`genai_flywheel.selection.evaluate` for the semantics and :mod:`.pushdown` for what MLflow gets.
"""

from __future__ import annotations

from genai_flywheel.selection.compiled import CompiledFilter, compile_filter
from genai_flywheel.selection.evaluate import evaluate
from genai_flywheel.selection.nodes import And, Compare, Expr, Field, Not, Or
from genai_flywheel.selection.parser import parse_filter
from genai_flywheel.selection.pushdown import split_pushdown
from genai_flywheel.selection.values import assessment_value

__all__ = [
    "And",
    "Compare",
    "CompiledFilter",
    "Expr",
    "Field",
    "Not",
    "Or",
    "assessment_value",
    "compile_filter",
    "evaluate",
    "parse_filter",
    "split_pushdown",
]
