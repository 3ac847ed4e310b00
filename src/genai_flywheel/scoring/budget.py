"""A per-run cost cap for LLM-judge calls.

The runner reserves an *estimate* of each judge call's cost before making it, in the output order
(trace_id, scorer), so which traces get judged under a cap is deterministic. Once a reservation would
cross the cap, the budget is exhausted: that call and every later one are skipped, even a cheaper one
that would still fit -- "the first N traces in order" is easier to reason about than a knapsack.

The estimate is deliberately simple: about 4 characters per token for the query, the answer and the
retrieved context, plus a fixed overhead for the judge's instructions, priced with the application's
price table. Retries of a failed call are not charged again.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import Any

from genai_flywheel.config import Price
from genai_flywheel.traces.score_errors import BUDGET_SKIP_PREFIX

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
#: Tokens of the judge's own prompt (instructions, output format) around the trace's text.
PROMPT_OVERHEAD_TOKENS = 400
#: Tokens of the judge's answer (a verdict and a rationale).
OUTPUT_TOKENS = 150


def _text_len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(_text_len(v) for v in value)
    return len(str(value))


def estimate_tokens(row: Mapping[str, Any]) -> tuple[int, int]:
    """(input, output) tokens of one judge call on ``row`` (a trace-table row as a dict).

    Reads ``query``, ``answer`` and ``context``; falls back to ``request``/``response`` JSON text when the
    extracted columns are missing.
    """
    chars = _text_len(row.get("query") if row.get("query") is not None else row.get("request"))
    chars += _text_len(row.get("answer") if row.get("answer") is not None else row.get("response"))
    chars += _text_len(row.get("context"))
    return PROMPT_OVERHEAD_TOKENS + math.ceil(chars / CHARS_PER_TOKEN), OUTPUT_TOKENS


def estimate_judge_cost(row: Mapping[str, Any], price: Price | None) -> float:
    """Estimated USD cost of one judge call on ``row``; 0.0 when no price is known."""
    if price is None:
        return 0.0
    tokens_in, tokens_out = estimate_tokens(row)
    return tokens_in / 1000.0 * price.input_per_1k + tokens_out / 1000.0 * price.output_per_1k


def format_usd(amount: float) -> str:
    """``$5``, ``$0.25``, ``$0.0004``: enough digits to be exact, none wasted."""
    return f"${amount:.2f}".replace(".00", "") if amount >= 0.01 else f"${amount:g}"


class JudgeBudget:
    """A thread-safe cap on the estimated judge spend of one run.

    ``price`` is the judge model's entry of the application's ``prices:`` table; without one every
    estimate is $0 and the cap cannot bind (the runner logs that once).
    """

    def __init__(self, max_cost_usd: float, price: Price | None = None) -> None:
        if isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, int | float):
            raise ValueError(f"max_cost_usd must be a number of US dollars, got {max_cost_usd!r}")
        if not math.isfinite(max_cost_usd) or max_cost_usd < 0:
            raise ValueError(f"max_cost_usd must be >= 0, got {max_cost_usd!r}; use 0 to disable judges")
        self.max_cost_usd = float(max_cost_usd)
        self.price = price
        self._spent = 0.0
        self._calls = 0
        self._skipped = 0
        self._exhausted = False
        self._lock = threading.Lock()

    @property
    def priced(self) -> bool:
        """Whether a price is known (otherwise the cap cannot bind)."""
        return self.price is not None

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._exhausted

    @property
    def skip_reason(self) -> str:
        """The ``error`` text of a judge call skipped by this budget."""
        return f"{BUDGET_SKIP_PREFIX} judge budget of {format_usd(self.max_cost_usd)} per run reached"

    def estimate(self, row: Mapping[str, Any]) -> float:
        """Estimated cost of one judge call on ``row`` at this budget's price."""
        return estimate_judge_cost(row, self.price)

    def reserve(self, cost: float) -> bool:
        """Reserve ``cost`` for one call; False (and the call counted as skipped) once the cap is hit."""
        with self._lock:
            if not self._exhausted and self._spent + cost <= self.max_cost_usd + 1e-12:
                self._spent += cost
                self._calls += 1
                return True
            if not self._exhausted:
                logger.warning(
                    "judge budget of %s per run reached after %d call(s) (estimated spend $%.4f); "
                    "remaining judge calls are skipped",
                    format_usd(self.max_cost_usd),
                    self._calls,
                    self._spent,
                )
            self._exhausted = True
            self._skipped += 1
            return False

    def summary(self) -> dict[str, Any]:
        """``{"max_cost_usd", "spent_usd", "calls", "skipped", "priced"}`` (spend is the estimate)."""
        with self._lock:
            return {
                "max_cost_usd": self.max_cost_usd,
                "spent_usd": round(self._spent, 6),
                "calls": self._calls,
                "skipped": self._skipped,
                "priced": self.priced,
            }
