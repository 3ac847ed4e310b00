"""A parsed, pushdown-split selection filter ready to use: ``compile_filter(text)``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from genai_flywheel.selection.evaluate import evaluate
from genai_flywheel.selection.nodes import Expr
from genai_flywheel.selection.parser import parse_filter
from genai_flywheel.selection.pushdown import split_pushdown

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompiledFilter:
    """A selection filter: its tree, the MLflow ``search_traces`` part and the local residual.

    With no filter (``text`` None or blank) every part is None and every row matches.
    """

    text: str | None
    expr: Expr | None
    pushdown: str | None
    residual: Expr | None

    def mask(self, table: pa.Table) -> np.ndarray:
        """Rows of ``table`` matching the whole filter; correct on any trace table."""
        if self.expr is None:
            return np.ones(table.num_rows, dtype=bool)
        return evaluate(self.expr, table)

    def residual_mask(self, table: pa.Table) -> np.ndarray:
        """Rows matching the residual only: for a table fetched with the ``pushdown`` filter string."""
        if self.residual is None:
            return np.ones(table.num_rows, dtype=bool)
        return evaluate(self.residual, table)


def compile_filter(text: str | None) -> CompiledFilter:
    """Parse ``text`` and split it for pushdown; None or a blank string selects everything."""
    if text is None or not text.strip():
        return CompiledFilter(text, None, None, None)
    expr = parse_filter(text)
    pushdown, residual = split_pushdown(expr)
    log.debug("filter %r: pushdown %r, residual %s", text, pushdown, residual)
    return CompiledFilter(text, expr, pushdown, residual)
