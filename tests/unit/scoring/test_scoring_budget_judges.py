"""Judge cost estimates and the budget; the judge environment, error classification and retry loop."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from genai_flywheel.config import Price
from genai_flywheel.scoring import JudgeBudget, JudgeEndpoint, estimate_judge_cost, judge_environment
from genai_flywheel.scoring.budget import OUTPUT_TOKENS, PROMPT_OVERHEAD_TOKENS, estimate_tokens, format_usd
from genai_flywheel.scoring.judges import call_judge, classify_judge_error

PRICE = Price(input_per_1k=0.5, output_per_1k=2.0)

# -- budget ------------------------------------------------------------------------------------------


def test_estimate_counts_query_answer_and_context() -> None:
    row = {"query": "q" * 40, "answer": "a" * 40, "context": ["c" * 80, "d" * 40]}
    assert estimate_tokens(row) == (PROMPT_OVERHEAD_TOKENS + 50, OUTPUT_TOKENS)
    expected = (PROMPT_OVERHEAD_TOKENS + 50) / 1000 * 0.5 + OUTPUT_TOKENS / 1000 * 2.0
    assert estimate_judge_cost(row, PRICE) == pytest.approx(expected)
    assert estimate_judge_cost(row, None) == 0.0


def test_estimate_falls_back_to_request_and_response() -> None:
    row = {"query": None, "answer": None, "request": "r" * 8, "response": "s" * 8, "context": None}
    assert estimate_tokens(row)[0] == PROMPT_OVERHEAD_TOKENS + 4


def test_budget_reserves_until_the_cap_then_stays_exhausted() -> None:
    budget = JudgeBudget(1.0, PRICE)
    assert budget.reserve(0.4) and budget.reserve(0.6)
    assert not budget.reserve(0.01)
    assert budget.exhausted
    assert not budget.reserve(0.0)  # once exhausted, even a free call is skipped: "the first N in order"
    assert budget.summary() == {
        "max_cost_usd": 1.0,
        "spent_usd": 1.0,
        "calls": 2,
        "skipped": 2,
        "priced": True,
    }
    assert budget.skip_reason == "skipped: judge budget of $1 per run reached"


def test_unpriced_budget_never_binds() -> None:
    budget = JudgeBudget(0.5)
    row = {"query": "x" * 10_000, "answer": "y", "context": []}
    assert all(budget.reserve(budget.estimate(row)) for _ in range(100))
    assert budget.summary()["priced"] is False


@pytest.mark.parametrize("bad", [-1, float("nan"), True, "5"])
def test_budget_validates(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_cost_usd"):
        JudgeBudget(bad)


def test_format_usd() -> None:
    assert [format_usd(x) for x in (5, 0.25, 12.5, 0.0004, 0)] == ["$5", "$0.25", "$12.50", "$0.0004", "$0"]


# -- judge environment -------------------------------------------------------------------------------

ENDPOINT = JudgeEndpoint(
    base_url="http://127.0.0.1:9/v1/", api_key="sk-env-secret", model="m", timeout_s=2.5, backoff_s=0.5
)


def test_judge_environment_sets_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "users-own-key")
    monkeypatch.setenv("OPENAI_API_BASE", "https://elsewhere/v1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MLFLOW_MODEL_CATALOG_URI", raising=False)
    with judge_environment(ENDPOINT):
        assert os.environ["OPENAI_API_KEY"] == "sk-env-secret"
        assert os.environ["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
        assert "OPENAI_API_BASE" not in os.environ  # it would win over OPENAI_BASE_URL in MLflow
        assert os.environ["MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS"] == "3"
        assert os.environ["MLFLOW_MODEL_CATALOG_URI"] == ""
    assert os.environ["OPENAI_API_KEY"] == "users-own-key"
    assert os.environ["OPENAI_API_BASE"] == "https://elsewhere/v1"
    assert "OPENAI_BASE_URL" not in os.environ and "MLFLOW_MODEL_CATALOG_URI" not in os.environ


def test_judge_environment_keeps_an_explicit_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_MODEL_CATALOG_URI", "file:///mirror")
    with judge_environment(ENDPOINT):
        assert os.environ["MLFLOW_MODEL_CATALOG_URI"] == "file:///mirror"


# -- error classification and retries ----------------------------------------------------------------


class ChatCompletionError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class ReadTimeout(Exception):
    pass


def _caused(cause: BaseException, message: str = "Failed to invoke judge model") -> Exception:
    err = RuntimeError(message)
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    ("exc", "reason", "retryable"),
    [
        (_caused(ChatCompletionError(429)), "HTTP 429", True),
        (_caused(ChatCompletionError(503)), "HTTP 503", True),
        (_caused(ChatCompletionError(401)), "HTTP 401", False),
        (_caused(ReadTimeout("read timed out")), "timeout", True),
        (RuntimeError("Request to http://x timed out after 1s"), "timeout", True),
        (_caused(json.JSONDecodeError("Expecting value", "<html>", 0)), "malformed response: not JSON", True),
        (KeyError("result"), "malformed response: does not match the judge's JSON schema", True),
        (RuntimeError("Failed to connect to http://x"), "connection failed", True),
        (ValueError("No retrieval context found\nmore"), "ValueError: No retrieval context found", False),
    ],
)
def test_classify_judge_error(exc: Exception, reason: str, retryable: bool) -> None:
    assert classify_judge_error(exc) == (reason, retryable)


class ScriptedJudge:
    name = "scripted"

    def __init__(self, *script: Exception | str) -> None:
        self.script = list(script)
        self.calls = 0

    def run(self, **kwargs: Any) -> Any:
        self.calls += 1
        step = self.script.pop(0) if self.script else "yes"
        if isinstance(step, Exception):
            raise step
        return step


def test_call_judge_backs_off_exponentially_and_recovers() -> None:
    sleeps: list[float] = []
    judge = ScriptedJudge(_caused(ChatCompletionError(500)), _caused(ChatCompletionError(429)), KeyError("result"))
    endpoint = JudgeEndpoint(base_url="http://h/v1", api_key="k-123456", model="m", max_retries=3, backoff_s=0.5)
    outcome = call_judge(judge, {}, endpoint, sleep=sleeps.append)  # type: ignore[arg-type]
    assert outcome.result == "yes" and outcome.error is None and outcome.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_call_judge_gives_up_after_max_retries() -> None:
    sleeps: list[float] = []
    judge = ScriptedJudge(*[_caused(ChatCompletionError(500))] * 5)
    endpoint = JudgeEndpoint(base_url="http://h/v1", api_key="k-123456", model="m", max_retries=3, backoff_s=20)
    outcome = call_judge(judge, {}, endpoint, sleep=sleeps.append)  # type: ignore[arg-type]
    assert outcome.error == "judge unavailable after 3 retries: HTTP 500"
    assert judge.calls == 4 and sleeps == [20, 30, 30]  # capped at 30 s


def test_call_judge_does_not_retry_client_errors_and_redacts_the_key() -> None:
    endpoint = JudgeEndpoint(base_url="http://h/v1", api_key="sk-leaky", model="m", max_retries=3)
    judge = ScriptedJudge(ValueError("invalid api key sk-leaky"))
    outcome = call_judge(judge, {}, endpoint, sleep=lambda s: None)  # type: ignore[arg-type]
    assert judge.calls == 1
    assert outcome.error == "judge call failed: ValueError: invalid api key ***"
