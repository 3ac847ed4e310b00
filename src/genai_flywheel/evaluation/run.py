"""Run the candidate on evaluation records with ``mlflow.genai.evaluate``; score production outputs directly.

MLflow facts this module works around (mlflow 3.17, measured):

* ``evaluate`` uses the *global* tracking URI and an active run (it starts one if none is active), so it is
  wrapped in :func:`tracking` (URI set and restored) and called inside ``mlflow.start_run(run_name=...)``.
* With its default 10 workers on a plain SQLite store it runs out of connections and silently loses rows;
  :func:`tracking` caps ``MLFLOW_GENAI_EVAL_MAX_WORKERS`` (default 2) for ``sqlite:`` / file stores unless the
  caller set it. Every record is then matched back through a ``flywheel.record_id`` trace tag, and a lost
  record is an error (never a silently smaller sample).
* ``result_df`` holds one row per produced trace: ``<scorer>/value``, ``<scorer>/rationale``,
  ``<scorer>/error_message``, ``response`` (the candidate's output), ``tags``, ``state``.
* Before running, ``evaluate`` calls the predict_fn once with the first record to see whether it traces
  itself, and aborts the whole evaluation if that call raises. The candidate is therefore wrapped in a root
  span of our own and the check is skipped (``MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION``): a candidate that
  fails on some records is measured (its errors counted, and gated), not a crashed task.

Production outputs are scored by calling each scorer directly (``Scorer.run``), which is cheaper than a second
``evaluate``, creates no traces, and is deterministic for code scorers. The production trace is fetched and
passed along so trace-based scorers (e.g. latency) work too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genai_flywheel.curation.assessments import decode_value, to_number
from genai_flywheel.environ import scoped_environ
from genai_flywheel.exceptions import DataContractError, ScorerError, StoreError

if TYPE_CHECKING:
    import pyarrow as pa

    from genai_flywheel.evaluation.candidate import Candidate

logger = logging.getLogger(__name__)

MAX_WORKERS_ENV = "MLFLOW_GENAI_EVAL_MAX_WORKERS"
SKIP_VALIDATION_ENV = "MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION"
DEFAULT_SQLITE_WORKERS = 2
RECORD_TAG = "flywheel.record_id"
SOURCE_TRACE_TAG = "flywheel.source_trace_id"
CANDIDATE, PRODUCTION = "candidate", "production"


def scores_schema() -> pa.Schema:
    """Arrow schema of ``scores.parquet``: one row per (record, side, scorer)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("side", pa.string(), nullable=False),  # candidate | production
            pa.field("scorer", pa.string(), nullable=False),
            pa.field("value", pa.string()),  # JSON text of the feedback value
            pa.field("numeric", pa.float64()),  # bool -> 1/0, yes/no -> 1/0, numbers as is
            pa.field("rationale", pa.string()),
            pa.field("error", pa.string()),
            pa.field("origin", pa.string(), nullable=False),  # evaluate | records | direct
        ]
    )


def outputs_schema() -> pa.Schema:
    """Arrow schema of ``candidate_outputs.parquet``: the candidate's answer per record."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("trace_id", pa.string()),
            pa.field("output", pa.string()),  # JSON text
            pa.field("error", pa.string()),  # the predict_fn's exception, if it raised
        ]
    )


@dataclass(frozen=True)
class EvalRecord:
    """One record as the evaluation needs it (JSON columns decoded)."""

    record_id: str
    inputs: dict[str, Any]
    outputs: Any  # production output
    expectations: dict[str, Any]
    source_trace_id: str | None
    scores: dict[str, Any] = field(default_factory=dict)  # production scores already known
    rationales: dict[str, Any] = field(default_factory=dict)


def _json_object(text: str | None) -> dict[str, Any]:
    value = decode_value(text) if text else None
    return value if isinstance(value, dict) else {}


def to_eval_records(rows: Sequence[Mapping[str, Any]]) -> list[EvalRecord]:
    """Decode record rows; a record whose inputs are not a JSON object is a DataContractError (curation's
    contract quarantines those, so one here means the dataset was built by something else)."""
    out: list[EvalRecord] = []
    bad: list[str] = []
    for row in rows:
        inputs = decode_value(row.get("inputs")) if row.get("inputs") else None
        if not isinstance(inputs, dict) or not inputs:
            bad.append(str(row.get("record_id")))
            continue
        outputs = decode_value(row.get("outputs")) if row.get("outputs") is not None else None
        out.append(
            EvalRecord(
                record_id=row["record_id"],
                inputs=inputs,
                outputs=outputs,
                expectations=_json_object(row.get("expectations")),
                source_trace_id=row.get("source_trace_id"),
                scores=_json_object(row.get("scores")),
                rationales=_json_object(row.get("rationales")),
            )
        )
    if bad:
        raise DataContractError(
            f"{len(bad)} record(s) have inputs that are not a JSON object (e.g. {bad[:5]}); the candidate "
            "needs keyword arguments. Re-curate the dataset so the data contract quarantines them."
        )
    return out


def _jsonable(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def mlflow_scorer(scorer: Any) -> Any:
    """The MLflow Scorer inside a ``LoadedScorer`` (``.scorer``), or the object itself."""
    inner = getattr(scorer, "scorer", None)
    return inner if inner is not None and hasattr(inner, "run") else scorer


def scorer_name(scorer: Any) -> str:
    """The name results are reported under (``LoadedScorer.name`` or ``Scorer.name``)."""
    name = getattr(scorer, "name", None)
    if not isinstance(name, str) or not name:
        raise ScorerError(f"scorer {scorer!r} has no name; pass MLflow Scorer objects or LoadedScorer")
    return name


def score_row(
    name: str, value: Any, rationale: str | None, error: str | None, *, record_id: str, side: str, origin: str
) -> dict[str, Any]:
    """One ``scores.parquet`` row."""
    return {
        "record_id": record_id,
        "side": side,
        "scorer": name,
        "value": _jsonable(value),
        "numeric": to_number(value),
        "rationale": rationale if isinstance(rationale, str) else None,
        "error": error,
        "origin": origin,
    }


def call_scorer(
    scorer: Any, *, inputs: Any, outputs: Any, expectations: Any, trace: Any = None
) -> tuple[Any, str | None, str | None]:
    """(value, rationale, error) of one direct scorer call; an exception becomes the error text."""
    from genai_flywheel.mlflow_compat import scorer_feedbacks

    inner = mlflow_scorer(scorer)
    try:
        raw = inner.run(inputs=inputs, outputs=outputs, expectations=expectations or None, trace=trace)
        feedbacks = scorer_feedbacks(inner.name, raw)
    except Exception as err:  # a scorer may raise anything; record it, don't abort the run
        return None, None, f"{type(err).__name__}: {err}"
    if not feedbacks:
        return None, None, "scorer returned no feedback"
    chosen = next((f for f in feedbacks if f.name == inner.name), feedbacks[0])
    error = chosen.error.error_message if getattr(chosen, "error", None) else None
    return chosen.value, chosen.rationale, error


def _fetch_trace(trace_id: str | None) -> Any:
    if not trace_id:
        return None
    import mlflow

    try:
        return mlflow.get_trace(trace_id, silent=True)
    except Exception:  # a missing production trace only disables trace-based scorers
        logger.debug("production trace %s not readable", trace_id, exc_info=True)
        return None


def production_scores(
    records: Sequence[EvalRecord],
    scorers: Sequence[Any],
    *,
    rescore: bool = False,
    fetch_traces: bool = True,
) -> list[dict[str, Any]]:
    """Production score rows: the records' own ``scores`` where present (origin ``records``), else a direct
    scorer call on the production output (origin ``direct``). ``rescore`` scores every record directly."""
    rows: list[dict[str, Any]] = []
    direct = 0
    for record in records:
        trace: Any = None
        trace_fetched = False
        for scorer in scorers:
            name = scorer_name(scorer)
            if not rescore and record.scores.get(name) is not None:
                rows.append(
                    score_row(
                        name,
                        record.scores[name],
                        record.rationales.get(name),
                        None,
                        record_id=record.record_id,
                        side=PRODUCTION,
                        origin="records",
                    )
                )
                continue
            if fetch_traces and not trace_fetched:
                trace, trace_fetched = _fetch_trace(record.source_trace_id), True
            value, rationale, error = call_scorer(
                scorer,
                inputs=record.inputs,
                outputs=record.outputs,
                expectations=record.expectations,
                trace=trace,
            )
            direct += 1
            rows.append(
                score_row(
                    name,
                    value,
                    rationale,
                    error,
                    record_id=record.record_id,
                    side=PRODUCTION,
                    origin="direct",
                )
            )
    logger.info("production scores: %d from the records, %d scored directly", len(rows) - direct, direct)
    return rows


def judge_context(scorers: Sequence[Any]) -> contextlib.AbstractContextManager[None]:
    """The judge endpoint's environment (:func:`genai_flywheel.scoring.judges.judge_environment`) when a
    scorer is an LLM judge (a LoadedScorer with an ``endpoint``), else a no-op."""
    endpoint = next((e for e in (getattr(s, "endpoint", None) for s in scorers) if e is not None), None)
    if endpoint is None:
        return contextlib.nullcontext()
    from genai_flywheel.scoring.judges import judge_environment

    return judge_environment(endpoint)


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


@contextlib.contextmanager
def tracking(tracking_uri: str, *, max_workers: int | None = None) -> Iterator[None]:
    """Point MLflow's global tracking URI at ``tracking_uri`` and cap evaluate's workers for local stores;
    both are restored afterwards."""
    from genai_flywheel.mlflow_compat import use_tracking_uri

    workers = max_workers
    if workers is None and MAX_WORKERS_ENV not in os.environ and _is_local_store(tracking_uri):
        workers = DEFAULT_SQLITE_WORKERS
    with scoped_environ({MAX_WORKERS_ENV: str(int(workers))} if workers is not None else {}):
        with use_tracking_uri(tracking_uri):
            yield


def experiment_id_for(tracking_uri: str, experiment: str) -> str:
    """The id of ``experiment``, created when missing (a dev-evaluation experiment may be new)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(experiment))


def _canonical(inputs: Mapping[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str)


class _ErrorCapture:
    """Wraps a predict_fn to remember the exception text per inputs (MLflow keeps only a generic message)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}

    def __call__(self, **inputs: Any) -> Any:
        key = _canonical(inputs)
        try:
            result = self.fn(**inputs)
        except Exception as err:
            with self._lock:
                self.errors[key] = f"{type(err).__name__}: {err}"
            raise
        with self._lock:
            self.errors.pop(key, None)  # a retried call that succeeded is not an error
        return result

    def as_function(self) -> Any:
        """A plain function carrying the wrapped predict_fn's name and signature (MLflow maps inputs onto
        parameters by name, and the tracing decorator records them by name)."""
        import functools

        @functools.wraps(self.fn)
        def predict_fn(**inputs: Any) -> Any:
            return self(**inputs)

        return predict_fn


@dataclass(frozen=True)
class EvaluateOutcome:
    """What :func:`evaluate_candidate` produced."""

    run_id: str
    experiment_id: str
    scores: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    errors: int


def _cell(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    # pandas fills cells a row lacks with NaN.
    return None if isinstance(value, float) and math.isnan(value) else value


def evaluate_candidate(
    records: Sequence[EvalRecord],
    candidate: Candidate,
    scorers: Sequence[Any],
    *,
    tracking_uri: str,
    experiment: str,
    run_name: str,
    run_tags: Mapping[str, str] | None = None,
    max_workers: int | None = None,
) -> EvaluateOutcome:
    """Run ``mlflow.genai.evaluate`` with the candidate's predict_fn over ``records`` in a new run
    ``run_name`` of ``experiment``; return per-record candidate scores and outputs.

    Raises StoreError when MLflow returns no result for some record (lost rows), naming them.
    """
    import mlflow

    if not records:
        raise DataContractError("no records to evaluate; check the dataset or the selection filter")
    names = [scorer_name(s) for s in scorers]
    inner = [mlflow_scorer(s) for s in scorers]
    capture = _ErrorCapture(candidate.predict_fn)
    data = []
    for record in records:
        row: dict[str, Any] = {
            "inputs": record.inputs,
            "tags": {RECORD_TAG: record.record_id, SOURCE_TRACE_TAG: record.source_trace_id or ""},
        }
        if record.expectations:
            row["expectations"] = record.expectations
        data.append(row)
    # The candidate is traced by a root span of our own, so MLflow's pre-flight check (one extra call with
    # the first record, which aborts the whole evaluation if that call raises) is not needed.
    predict_fn = mlflow.trace(capture.as_function(), name=candidate.short_name, span_type="CHAIN")
    with tracking(tracking_uri, max_workers=max_workers), scoped_environ({SKIP_VALIDATION_ENV: "true"}):
        experiment_id = experiment_id_for(tracking_uri, experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(run_tags or {})) as run:
            with judge_context(scorers):
                result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=inner)
            run_id = run.info.run_id
    df = result.result_df
    by_record: dict[str, dict[str, Any]] = {}
    if df is not None:
        for row in df.to_dict(orient="records"):
            tags = row.get("tags") or {}
            rid = tags.get(RECORD_TAG) if isinstance(tags, Mapping) else None
            if rid:
                by_record[rid] = row
    lost = [r.record_id for r in records if r.record_id not in by_record]
    if lost:
        raise StoreError(
            f"mlflow.genai.evaluate returned no result for {len(lost)} of {len(records)} record(s) "
            f"(e.g. {lost[:5]}) in run {run_id}; on a SQLite store set {MAX_WORKERS_ENV}=1 (or evaluate "
            "through an 'mlflow server'), then retry"
        )
    scores: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    errors = 0
    for record in records:
        row = by_record[record.record_id]
        error = capture.errors.get(_canonical(record.inputs))
        if error is None and _cell(row, "state") == "ERROR":
            error = "predict_fn failed (trace state ERROR)"
        errors += error is not None
        response = _cell(row, "response")
        outputs.append(
            {
                "record_id": record.record_id,
                "trace_id": _cell(row, "trace_id"),
                "output": None if error is not None and response is None else _jsonable(response),
                "error": error,
            }
        )
        for name, scorer in zip(names, inner, strict=True):
            key = scorer.name
            value = _cell(row, f"{key}/value")
            scorer_error = _cell(row, f"{key}/error_message")
            if value is None and scorer_error is None:
                scorer_error = error or "no value in the evaluation result"
            scores.append(
                score_row(
                    name,
                    value,
                    _cell(row, f"{key}/rationale"),
                    scorer_error,
                    record_id=record.record_id,
                    side=CANDIDATE,
                    origin="evaluate",
                )
            )
    logger.info(
        "evaluated %s on %d records in run %s (%d predict errors)",
        candidate.spec,
        len(records),
        run_id,
        errors,
    )
    return EvaluateOutcome(run_id=run_id, experiment_id=experiment_id, scores=scores, outputs=outputs, errors=errors)
