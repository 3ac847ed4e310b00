"""Batch scoring: a table of sampled traces in, one ``SCORE_SCHEMA`` row per (trace, scorer) out.

Code scorers run inline in the calling thread (they are microseconds each); judge calls go to a thread
pool of ``max_workers`` while the code scorers run. A scorer that raises, or a judge that stays down, is
recorded in that row's ``error`` and never fails the shard. The output is sorted by (trace_id, scorer)
and every ``assessment_id`` is a hash of (trace_id, scorer, version), so the same input scored by the
same scorers gives the same bytes, and writing the scores back to MLflow twice is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from typing import TYPE_CHECKING, Any

from genai_flywheel.exceptions import DataContractError, ScorerError
from genai_flywheel.feedback_values import as_number
from genai_flywheel.scoring.budget import format_usd
from genai_flywheel.scoring.judges import JudgeEndpoint, JudgeOutcome, call_judge, judge_environment

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.scoring.budget import JudgeBudget
    from genai_flywheel.scoring.registry import LoadedScorer

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("trace_id", "app", "timestamp_ms", "request", "response")
_OPTIONAL_COLUMNS = ("trace_json", "stratum", "weight", "assessments", "query", "answer", "context")
_MAX_ERROR_CHARS = 1000
_YES = frozenset({"yes", "true", "pass"})
_NO = frozenset({"no", "false", "fail"})


def assessment_id_for(trace_id: str, scorer: str, version: str) -> str:
    """The deterministic assessment id of one score: ``"a-" + sha256("trace_id|scorer|version")[:32]``."""
    return "a-" + hashlib.sha256(f"{trace_id}|{scorer}|{version}".encode()).hexdigest()[:32]


def to_numeric(value: Any) -> float | None:
    """A Feedback value as a number: bool -> 1/0, "yes"/"no" -> 1/0, int/float -> float, else None."""
    return as_number(value, true_words=_YES, false_words=_NO, numeric_text=False)


def passed_for(value: Any, numeric: float | None, threshold: float | None, lower_is_better: bool) -> bool | None:
    """Pass/fail of one value: ``numeric >= threshold`` (``<=`` when lower is better).

    Booleans and yes/no values without a threshold use 1 (0 when lower is better); other numbers without
    a threshold, and values with no number, have no pass/fail (None).
    """
    if numeric is None:
        return None
    if threshold is None:
        if isinstance(value, Enum):
            value = value.value
        if not isinstance(value, bool | str):
            return None
        threshold = 0.0 if lower_is_better else 1.0
    return numeric <= threshold if lower_is_better else numeric >= threshold


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _error_text(error: Any) -> str:
    message = getattr(error, "error_message", None)
    code = getattr(error, "error_code", None)
    if message:
        return str(message) if not code or code == "ASSESSMENT_ERROR" else f"{code}: {message}"
    return str(error)


def interpret(
    result: Any, loaded: LoadedScorer
) -> tuple[str | None, float | None, bool | None, str | None, str | None]:
    """(value JSON, numeric, passed, rationale, error) of what ``loaded.scorer.run`` returned."""
    if isinstance(result, list):
        if not result:
            return None, None, None, None, "scorer returned an empty list of feedbacks"
        own = [f for f in result if getattr(f, "name", None) == getattr(loaded.scorer, "name", None)]
        result = (own or result)[0]
    if result is None:
        return None, None, None, None, "scorer returned no value"
    rationale: str | None = None
    error: str | None = None
    if hasattr(result, "value") and hasattr(result, "rationale"):  # an MLflow Feedback (or legacy one)
        value = result.value
        rationale = result.rationale or None
        if getattr(result, "error", None) is not None:
            error = _clip(_error_text(result.error))
    else:
        value = result
    if isinstance(value, Enum):
        value = value.value
    value_json = None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    numeric = to_numeric(value)
    passed = passed_for(value, numeric, loaded.threshold, loaded.lower_is_better)
    return value_json, numeric, passed, rationale, error


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        # Not JSON: hand the raw text to the scorer rather than dropping the trace.
        return text


def _expectations(assessments: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    if not assessments:
        return None
    found = {a["name"]: _loads(a.get("value")) for a in assessments if a.get("kind") == "expectation"}
    return found or None


def trace_from_json(text: str) -> Any:
    """The MLflow ``Trace`` of a ``trace_json`` cell, its spans lazy as a SQL store returns them.

    ``Trace.from_json`` rebuilds every span as an OpenTelemetry span up front (most of its cost); a
    ``LazySpan`` keeps the span's dict and builds that only when a scorer reads the span, so a scorer
    that reads only ``trace.info`` pays nothing for the spans. Spans in a form ``LazySpan`` does not take
    (MLflow 2's) go through ``Trace.from_json``.
    """
    from mlflow.entities import Trace, TraceData, TraceInfo

    from genai_flywheel.mlflow_compat import lazy_span
    from genai_flywheel.traces.extract import is_stored_span

    trace_dict = json.loads(text)
    spans = (trace_dict.get("data") or {}).get("spans")
    if not isinstance(spans, list) or not all(is_stored_span(s) for s in spans):
        return Trace.from_json(text)
    return Trace(info=TraceInfo.from_dict(trace_dict["info"]), data=TraceData(spans=[lazy_span(s) for s in spans]))


class _Row:
    """One trace's scorer arguments, parsed once; the Trace is rebuilt only if a scorer needs it."""

    __slots__ = ("data", "inputs", "outputs", "expectations", "_trace", "_trace_error", "_trace_done")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.inputs = _loads(data.get("request"))
        self.outputs = _loads(data.get("response"))
        self.expectations = _expectations(data.get("assessments"))
        self._trace: Any = None
        self._trace_error: str | None = None
        self._trace_done = False

    def trace(self) -> tuple[Any, str | None]:
        if not self._trace_done:
            self._trace_done = True
            text = self.data.get("trace_json")
            if text:
                try:
                    self._trace = trace_from_json(text)
                except Exception as err:
                    self._trace_error = _clip(f"trace_json is not a valid MLflow trace: {err}".splitlines()[0])
        return self._trace, self._trace_error

    def kwargs(self, loaded: LoadedScorer) -> tuple[dict[str, Any], str | None]:
        trace, error = self.trace() if loaded.needs_trace else (None, None)
        args = {
            "inputs": self.inputs,
            "outputs": self.outputs,
            "trace": trace,
            "expectations": self.expectations,
        }
        return args, error


def _run_code(loaded: LoadedScorer, kwargs: dict[str, Any]) -> tuple[Any, str | None]:
    try:
        return loaded.scorer.run(**kwargs), None
    except Exception as exc:  # one trace's failure must not fail the shard
        return None, _clip(f"{type(exc).__name__}: {exc}")


def _run_judge(loaded: LoadedScorer, kwargs: dict[str, Any]) -> JudgeOutcome:
    if loaded.endpoint is None:
        result, error = _run_code(loaded, kwargs)
        return JudgeOutcome(result=result, error=error, attempts=1)
    return call_judge(loaded.scorer, kwargs, loaded.endpoint)


def _judge_endpoint(scorers: Sequence[LoadedScorer]) -> JudgeEndpoint | None:
    endpoints = {id(s.endpoint): s.endpoint for s in scorers if s.is_judge and s.endpoint is not None}
    if len(endpoints) > 1:
        distinct = {(e.base_url, e.model) for e in endpoints.values()}
        if len(distinct) > 1:
            raise ScorerError(
                f"judge scorers of one run must share one endpoint, got {sorted(distinct)}; score them in separate runs"
            )
    return next(iter(endpoints.values()), None)


def score_table(
    table: pa.Table,
    scorers: list[LoadedScorer],
    *,
    budget: JudgeBudget | None = None,
    max_workers: int = 4,
) -> pa.Table:
    """Score every trace of ``table`` with every scorer: ``SCORE_SCHEMA`` rows sorted by (trace_id, scorer).

    ``table`` has the trace columns (at least ``trace_id``, ``app``, ``timestamp_ms``, ``request``,
    ``response``; ``trace_json`` for scorers that take ``trace``; ``stratum``/``weight`` are copied
    through). Expectations come from the ``assessments`` column. Judge calls reserve their estimated
    cost from ``budget`` in output order; once it is spent the rest get
    ``error="skipped: judge budget of $X per run reached"``.
    """
    import pyarrow as pa

    from genai_flywheel.traces.schema import SCORE_SCHEMA

    if max_workers < 1:
        raise ScorerError(f"max_workers must be >= 1, got {max_workers}")
    names = [s.name for s in scorers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ScorerError(f"scorer names must be unique in one run; repeated: {dupes}")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataContractError(
            f"cannot score: the trace table lacks column(s) {missing}; pass the sampled trace shard "
            "(TRACE_SCHEMA columns)"
        )
    started = time.perf_counter()
    columns = [*REQUIRED_COLUMNS, *(c for c in _OPTIONAL_COLUMNS if c in table.column_names)]
    records = table.select(columns).to_pylist()
    # Python's sort is stable: duplicate trace ids keep their input order.
    records.sort(key=lambda r: r["trace_id"])
    ordered = sorted(scorers, key=lambda s: s.name)
    width = len(ordered)
    total = len(records) * width

    out: dict[str, list[Any]] = {f.name: [None] * total for f in SCORE_SCHEMA}
    endpoint = _judge_endpoint(ordered)
    has_judges = any(s.is_judge for s in ordered)
    if has_judges and budget is not None and not budget.priced:
        logger.warning(
            "judge budget of %s per run cannot bind: no price for the judge model; add it under prices:",
            format_usd(budget.max_cost_usd),
        )
    futures: list[tuple[int, LoadedScorer, Future[JudgeOutcome]]] = []
    code_errors: dict[str, int] = {}

    env = judge_environment(endpoint) if (has_judges and endpoint is not None) else contextlib.nullcontext()
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flywheel-judge") if has_judges else None
    try:
        with env:
            for i, data in enumerate(records):
                row = _Row(data)
                trace_id = data["trace_id"]
                for j, loaded in enumerate(ordered):
                    k = i * width + j
                    out["trace_id"][k] = trace_id
                    out["app"][k] = data["app"]
                    out["timestamp_ms"][k] = data["timestamp_ms"]
                    out["scorer"][k] = loaded.name
                    out["scorer_version"][k] = loaded.version
                    out["source_type"][k] = loaded.source_type
                    out["stratum"][k] = data.get("stratum")
                    out["weight"][k] = data.get("weight")
                    out["assessment_id"][k] = assessment_id_for(trace_id, loaded.name, loaded.version)
                    kwargs, trace_error = row.kwargs(loaded)
                    if trace_error is not None:
                        out["error"][k] = trace_error
                        continue
                    if loaded.is_judge:
                        if budget is not None and not budget.reserve(budget.estimate(data)):
                            out["error"][k] = budget.skip_reason
                            continue
                        assert pool is not None
                        futures.append((k, loaded, pool.submit(_run_judge, loaded, kwargs)))
                        continue
                    result, error = _run_code(loaded, kwargs)
                    _fill(out, k, loaded, result, error)
                    if error is not None:
                        if loaded.name not in code_errors:
                            logger.warning("scorer %s failed on trace %s: %s", loaded.name, trace_id, error)
                        code_errors[loaded.name] = code_errors.get(loaded.name, 0) + 1
            judge_errors = 0
            for k, loaded, future in futures:
                outcome = future.result()
                _fill(out, k, loaded, outcome.result, outcome.error)
                if out["error"][k] is not None:
                    judge_errors += 1
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    for name, count in sorted(code_errors.items()):
        logger.warning("scorer %s failed on %d of %d traces (errors recorded per row)", name, count, len(records))
    logger.info(
        "scored %d traces x %d scorers = %d rows in %.2fs (%d judge calls, %d judge errors)",
        len(records),
        width,
        total,
        time.perf_counter() - started,
        len(futures),
        judge_errors,
    )
    return pa.Table.from_pydict(out, schema=SCORE_SCHEMA)


def _fill(out: dict[str, list[Any]], k: int, loaded: LoadedScorer, result: Any, error: str | None) -> None:
    if error is not None:
        out["error"][k] = error
        return
    value_json, numeric, passed, rationale, feedback_error = interpret(result, loaded)
    if feedback_error is not None and loaded.endpoint is not None:
        feedback_error = loaded.endpoint.redact(feedback_error)
    out["value"][k] = value_json
    out["numeric"][k] = numeric
    out["passed"][k] = passed
    out["rationale"][k] = rationale
    out["error"][k] = feedback_error
