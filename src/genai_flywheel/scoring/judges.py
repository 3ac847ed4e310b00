"""LLM judges through any OpenAI-compatible endpoint, with bounded retries and no key leaks.

How MLflow 3.17 calls a judge with ``model="openai:/<model>"`` (read from its source):
``invoke_judge_model`` picks the ``GatewayAdapter`` (``openai`` is a native gateway provider, so neither
``litellm`` nor the ``openai`` package is used). The adapter builds an ``OpenAIProvider`` from the
environment -- ``OPENAI_API_KEY`` (required), ``OPENAI_API_BASE`` or else ``OPENAI_BASE_URL`` -- and
POSTs with ``requests`` to ``<base>/chat/completions`` with ``Authorization: Bearer <key>`` and
``response_format={"type": "json_schema", ...}`` (a ``result``/``rationale`` object), reading the
timeout from ``MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS``. ``make_judge(base_url=...)`` exists, but the
built-in judges take no ``base_url``, and ``extra_headers`` is serialised with the scorer -- so a key
there would end up in MLflow. Hence :func:`judge_environment`: it sets those variables for the
duration of a scoring run only, under a lock, and restores them after. The key lives only in the
process environment and the request header; it is never logged, put in a param, tag, artifact or
error text (errors are passed through :meth:`JudgeEndpoint.redact`).

Retries: the gateway adapter retries 429/5xx/timeouts itself, 10 times with 1..30 s sleeps, and does
not retry malformed JSON at all. :func:`call_judge` owns retrying instead (with tenacity) -- exponential backoff
bounded by ``JudgeEndpoint.max_retries`` for 429/5xx, timeouts, connection errors and malformed
responses -- and, for calls made inside it, sets MLflow's internal retry count to 0
(:func:`genai_flywheel.mlflow_compat.install_judge_retry_override`: it wraps a private MLflow function;
if a future MLflow drops it, a warning is logged and MLflow's own retries apply on top).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tenacity import Retrying, retry_if_exception, stop_after_attempt

from genai_flywheel.config_options import JUDGE_OPTIONS, ScorerOptions, names, validated
from genai_flywheel.environ import scoped_environ
from genai_flywheel.exceptions import ScorerError
from genai_flywheel.mlflow_compat import install_judge_retry_override, no_judge_retries

if TYPE_CHECKING:
    from mlflow.genai.scorers import Scorer

    from genai_flywheel.config import Judge

logger = logging.getLogger(__name__)

#: HTTP statuses worth retrying (rate limits, server errors, gateway timeouts).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


_ENV_LOCK = threading.RLock()


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where and how to call the LLM judge. Built by the Airflow hook from a Connection.

    ``api_key`` is excluded from ``repr`` so logging an endpoint cannot leak it. ``backoff_s`` is the
    first retry's delay; each further retry doubles it (capped at 30 s). No jitter: runs stay
    reproducible, and one task's handful of workers cannot stampede an endpoint.
    """

    base_url: str
    api_key: str = field(repr=False)
    model: str = "gpt-4o-mini"
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ScorerError(
                f"judge base_url {self.base_url!r} is not an http(s) URL; "
                "use the OpenAI-compatible API root, e.g. https://api.openai.com/v1"
            )
        if not self.api_key:
            raise ScorerError("the judge endpoint has no API key; set the password of the judge Connection")
        if not self.model.strip():
            raise ScorerError("the judge model name is empty; set judge.model, e.g. gpt-4o-mini")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ScorerError(f"judge timeout_s must be > 0 seconds, got {self.timeout_s!r}")
        if self.max_retries < 0:
            raise ScorerError(f"judge max_retries must be >= 0, got {self.max_retries!r}")
        if not (math.isfinite(self.backoff_s) and self.backoff_s >= 0):
            raise ScorerError(f"judge backoff_s must be >= 0 seconds, got {self.backoff_s!r}")

    @classmethod
    def from_config(cls, judge: Judge, *, base_url: str, api_key: str) -> JudgeEndpoint:
        """An endpoint for the application's ``judge:`` block, given the Connection's URL and key."""
        return cls(
            base_url=base_url,
            api_key=api_key,
            model=judge.model,
            timeout_s=judge.timeout_s,
            max_retries=judge.max_retries,
        )

    @property
    def model_uri(self) -> str:
        """The MLflow judge model URI: ``openai:/<model>`` unless ``model`` already names a provider."""
        return self.model if ":/" in self.model else f"openai:/{self.model}"

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt + 1`` (attempt counts from 0)."""
        return min(self.backoff_s * (2**attempt), MAX_BACKOFF_S)

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***`` (defence in depth for error messages)."""
        return text.replace(self.api_key, "***") if self.api_key else text


# -- environment and MLflow's internal retries -------------------------------------------------------


@contextlib.contextmanager
def judge_environment(endpoint: JudgeEndpoint) -> Iterator[None]:
    """Point MLflow's ``openai:/`` judges at ``endpoint`` for the duration of the block.

    Sets ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS`` (MLflow
    reads whole seconds, so the timeout is rounded up) and removes ``OPENAI_API_BASE``, which would take
    precedence, and (unless already set) empties ``MLFLOW_MODEL_CATALOG_URI`` so MLflow does not try
    to download its model catalog from github.com on the first call; everything is restored on exit.
    The environment is process-wide, so a lock serialises blocks: two scoring runs in one process with
    different endpoints cannot mix them up. Use it to run this project's judge scorers in
    ``mlflow.genai.evaluate`` yourself.
    """
    with _ENV_LOCK:
        values: dict[str, str | None] = {
            "OPENAI_API_KEY": endpoint.api_key,
            "OPENAI_BASE_URL": endpoint.base_url.rstrip("/"),
            "OPENAI_API_BASE": None,
            "MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS": str(max(1, math.ceil(endpoint.timeout_s))),
        }
        if os.environ.get("MLFLOW_MODEL_CATALOG_URI") is None:
            # Each judge call looks up the model's context window in MLflow's model catalog, which by
            # default is downloaded from github.com; workers may have no internet. "" = bundled copy.
            values["MLFLOW_MODEL_CATALOG_URI"] = ""
        with scoped_environ(values):
            yield


# -- error classification and the retry loop ---------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify_judge_error(exc: BaseException) -> tuple[str, bool]:
    """(short reason, retryable) for an exception raised by a judge call.

    Retryable: HTTP 408/409/425/429/5xx, timeouts, connection failures, and malformed responses
    (a body that is not JSON, or content that does not match the requested schema). Not retryable:
    other 4xx (bad key, unknown model, context too long) and anything else.
    """
    for err in _chain(exc):
        status = getattr(err, "status_code", None)
        if isinstance(status, int) and type(err).__name__ == "ChatCompletionError":
            return f"HTTP {status}", status in RETRY_STATUSES
        name = type(err).__name__
        if name in ("Timeout", "ReadTimeout", "ConnectTimeout", "MlflowTimeoutError") or isinstance(err, TimeoutError):
            return "timeout", True
        if name == "ConnectionError" or isinstance(err, ConnectionError):
            return "connection failed", True
        if isinstance(err, json.JSONDecodeError):
            return "malformed response: not JSON", True
        if isinstance(err, KeyError) or name == "ValidationError":
            return "malformed response: does not match the judge's JSON schema", True
    message = str(exc)
    lowered = message.lower()
    if "timed out" in lowered:
        return "timeout", True
    if "failed to connect" in lowered:
        return "connection failed", True
    if "failed to parse" in lowered:
        return "malformed response: not JSON", True
    first_line = message.splitlines()[0] if message else ""
    return f"{type(exc).__name__}: {first_line[:300]}", False


@dataclass(frozen=True)
class JudgeOutcome:
    """What one judge call produced: the scorer's result, or why there is none."""

    result: Any = None
    error: str | None = None
    attempts: int = 0


class _JudgeCallFailed(Exception):
    """One failed judge attempt: the redacted ``reason`` and whether another attempt may help."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def _run_once(scorer: Scorer, kwargs: Mapping[str, Any], endpoint: JudgeEndpoint) -> Any:
    """One attempt, with MLflow's own retries off; a failure becomes :class:`_JudgeCallFailed`."""
    try:
        with no_judge_retries():
            return scorer.run(**kwargs)
    except Exception as exc:  # a judge failure must not fail the shard
        reason, retryable = classify_judge_error(exc)
        raise _JudgeCallFailed(endpoint.redact(reason), retryable) from None


def call_judge(
    scorer: Scorer,
    kwargs: Mapping[str, Any],
    endpoint: JudgeEndpoint,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> JudgeOutcome:
    """``scorer.run(**kwargs)`` with up to ``endpoint.max_retries`` retries and exponential backoff.

    Never raises for a failing endpoint: the outcome carries ``error``, e.g. ``"judge unavailable after
    3 retries: HTTP 500"``. Call it inside :func:`judge_environment`.
    """
    install_judge_retry_override()

    def log_retry(state: Any) -> None:
        logger.debug(
            "judge %s attempt %d failed (%s); retrying in %.2fs",
            scorer.name,
            state.attempt_number,
            state.outcome.exception().reason,
            state.next_action.sleep,
        )

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, _JudgeCallFailed) and exc.retryable),
        stop=stop_after_attempt(endpoint.max_retries + 1),
        wait=lambda state: endpoint.backoff(state.attempt_number - 1),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        result = retrying(_run_once, scorer, kwargs, endpoint)
    except _JudgeCallFailed as failed:
        attempts = retrying.statistics["attempt_number"]
        if not failed.retryable:
            return JudgeOutcome(error=f"judge call failed: {failed.reason}", attempts=attempts)
        return JudgeOutcome(
            error=f"judge unavailable after {endpoint.max_retries} retries: {failed.reason}", attempts=attempts
        )
    return JudgeOutcome(result=result, attempts=retrying.statistics["attempt_number"])


# -- building judge scorers --------------------------------------------------------------------------


def _feedback_value_type(value: str | list[Any]) -> Any:
    """The Python type ``make_judge`` takes for a (validated) ``feedback_value_type`` option."""
    if isinstance(value, list):
        return Literal[tuple(value)]  # type: ignore[valid-type]
    return {"yes_no": Literal["yes", "no"], "bool": bool, "float": float, "int": int, "str": str}[value]


def build_judge(name: str, options: ScorerOptions | Mapping[str, Any], endpoint: JudgeEndpoint) -> Scorer:
    """The MLflow judge registered as ``name`` with ``options``, calling ``endpoint.model_uri``.

    ``relevance_to_query`` (RelevanceToQuery), ``safety`` (Safety), ``retrieval_groundedness``
    (RetrievalGroundedness), ``guidelines`` (Guidelines; option ``guidelines``: a rule or a list of rules)
    and ``judge`` (``make_judge``; options ``instructions`` with ``{{ inputs }}``/``{{ outputs }}``/... and
    ``feedback_value_type``: yes_no, bool, float, int, str or a list of values). ``options`` are checked
    by :mod:`genai_flywheel.config_options` (a mapping is validated here, ConfigError when bad).
    """
    if name not in JUDGE_OPTIONS:
        raise ScorerError(f"unknown judge {name!r}; available judges: {', '.join(sorted(JUDGE_OPTIONS))}")
    typed = validated(JUDGE_OPTIONS[name], options, f"judge scorer {name!r}")

    from mlflow.exceptions import MlflowException
    from mlflow.genai import scorers as mlflow_scorers

    model = endpoint.model_uri
    try:
        if name == "relevance_to_query":
            return mlflow_scorers.RelevanceToQuery(name=name, model=model)
        if name == "safety":
            return mlflow_scorers.Safety(name=name, model=model)
        if name == "retrieval_groundedness":
            return mlflow_scorers.RetrievalGroundedness(name=name, model=model)
        if name == "guidelines":
            return mlflow_scorers.Guidelines(name=name, model=model, guidelines=list(names(typed.guidelines, ())))
        from mlflow.genai.judges import make_judge

        return make_judge(
            name=name,
            instructions=typed.instructions,
            model=model,
            description=typed.description,
            feedback_value_type=_feedback_value_type(typed.feedback_value_type),
        )
    except MlflowException as err:
        raise ScorerError(f"judge scorer {name!r} could not be built: {endpoint.redact(err.message)}") from None
