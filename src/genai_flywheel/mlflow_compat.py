"""The one place that touches MLflow's private API.

Everything here leans on a name MLflow does not promise to keep: an underscore name, the SQL store layer
(``mlflow.store``: ``SqlAlchemyStore``, its ORM models and helpers), or a helper module outside MLflow's
documented API (``mlflow.tracing.client``, ``mlflow.tracing.utils``, ``mlflow.entities.span``,
``mlflow.genai.evaluation.utils``, ``mlflow.genai.judges.adapters``). The rest of the project calls only the
functions below; ``tests/unit/core/test_mlflow_compat.py`` checks, per private name, that it still exists
with the signature, columns and behaviour each function relies on (written against MLflow 3.17), and
that no other module references a private MLflow name. After an MLflow upgrade, a failure there names the
private name and what to re-check here.

MLflow is imported lazily in each function: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from tenacity import Retrying, retry_if_result

log = logging.getLogger(__name__)


# -- tracking URI --------------------------------------------------------------------------------------


@contextlib.contextmanager
def use_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's global tracking URI at ``tracking_uri`` for the block, restoring the previous one.

    Relies on ``mlflow.tracking._tracking_service.utils._use_tracking_uri(uri)`` (a context manager,
    MLflow 3.17), which also restores an unset URI, which ``mlflow.set_tracking_uri`` alone cannot.
    Needed where MLflow resolves its store from the global URI only (``mlflow.genai.evaluate``,
    ``EvaluationDataset.merge_records``, ``mlflow.pyfunc.load_model`` of a ``models:/`` URI).
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(tracking_uri):
        yield


# -- tracing client and the SQL store -------------------------------------------------------------------


def tracing_client(tracking_uri: str) -> Any:
    """MLflow's ``TracingClient`` for ``tracking_uri`` (``mlflow.tracing.client``, MLflow 3.17).

    Used over ``MlflowClient`` for its ``store`` property (the SQL store the batched write-back needs),
    ``batch_get_traces(trace_ids)`` (full traces by id) and ``log_assessment``, without the run-tracking
    client around them.
    """
    from mlflow.tracing.client import TracingClient

    return TracingClient(tracking_uri=tracking_uri)


#: MLflow's HTTP connection pool size (``pool_maxsize`` of its requests adapter, default 10).
HTTP_POOL_ENV = "MLFLOW_HTTP_POOL_MAXSIZE"


def size_http_pool(size: int, *, grow_only: bool = True) -> None:
    """Make MLflow's HTTP session keep ``size`` connections to a server (with ``grow_only``: at least).

    With more threads than pooled connections, urllib3 closes every connection it cannot put back
    ("Connection pool is full, discarding connection") and the next request opens a new one. MLflow reads
    the size from the environment once per process, when it builds its cached session
    (``mlflow.utils.request_utils._cached_get_request_session``, an ``lru_cache``, MLflow 3.17), so that
    cache is cleared here and the next request builds a session with the new size.
    """
    import os

    from mlflow.environment_variables import MLFLOW_HTTP_POOL_MAXSIZE
    from mlflow.utils import request_utils

    current = MLFLOW_HTTP_POOL_MAXSIZE.get()
    if size == current or (grow_only and size < current):
        return
    os.environ[HTTP_POOL_ENV] = str(size)
    request_utils._cached_get_request_session.cache_clear()


def sql_store(client: Any) -> Any | None:
    """The ``SqlAlchemyStore`` behind a tracing client, or None (a tracking server, another store).

    Relies on ``mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore`` and the client's ``store``
    property (MLflow 3.17). A trimmed MLflow (mlflow-skinny) has no SQL store: None.
    """
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:
        return None
    store = client.store
    return store if isinstance(store, SqlAlchemyStore) else None


#: Trace ids per ``IN (...)`` query or ``batch_get_trace_infos`` call.
ID_CHUNK = 500


def trace_assessment_ids(store: Any, trace_ids: list[str]) -> set[str]:
    """Ids of every assessment (overridden ones included) on the traces ``trace_ids``, ``ID_CHUNK`` ids per
    query on ``store`` (a :func:`sql_store`).

    Relies on the ORM model ``SqlAssessments`` (``assessment_id``, ``trace_id``) and
    ``store.ManagedSessionMaker`` (MLflow 3.17).
    """
    from mlflow.store.tracking.dbmodels.models import SqlAssessments

    found: set[str] = set()
    with store.ManagedSessionMaker() as session:
        for i in range(0, len(trace_ids), ID_CHUNK):
            chunk = trace_ids[i : i + ID_CHUNK]
            query = session.query(SqlAssessments.assessment_id).filter(SqlAssessments.trace_id.in_(chunk))
            found.update(aid for (aid,) in query)
    return found


def trace_infos(tracking_uri: str, trace_ids: list[str]) -> list[Any]:
    """The trace infos (assessments included, no spans) of ``trace_ids`` from any store, a tracking server
    too, ``ID_CHUNK`` per call: ``TracingClient.store.batch_get_trace_infos`` (MLflow 3.17)."""
    store = tracing_client(tracking_uri).store
    infos: list[Any] = []
    for i in range(0, len(trace_ids), ID_CHUNK):
        infos.extend(store.batch_get_trace_infos(trace_ids[i : i + ID_CHUNK]))
    return infos


def insert_feedbacks(store: Any, feedbacks: list[Any]) -> list[str | None]:
    """Insert ``feedbacks`` in one transaction of ``store``; one outcome per feedback: None when written,
    else why not (its trace does not exist).

    This is MLflow 3.17's ``SqlAlchemyStore.create_assessment`` done once per batch instead of once per
    row, in the same order: validate access to the traces (``store._validate_trace_accessible(session,
    trace_id)``), invalidate the affected trace-rollup partitions (``enqueue_rollup_rebuild_partitions``
    with ``RollupFamily.ASSESSMENT``; a no-op unless rollups are enabled) before locking the trace rows,
    lock them (``store._apply_trace_row_lock(query)``) in request_id order, re-read their routing fields
    and start over if a concurrent writer moved a trace in between, then insert the rows
    (:func:`assessment_row`) with one multi-row INSERT into ``SqlAssessments.__table__``. The rows must
    be the ones ``log_assessment`` writes: ``tests/integration/test_writeback_batch.py`` compares them on
    SQLite and PostgreSQL. Any store error raises, and the session is rolled back: nothing of the batch
    is written.
    """
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
    from mlflow.store.tracking.utils.sql_trace_rollups import RollupFamily, enqueue_rollup_rebuild_partitions

    trace_ids = sorted({fb.trace_id for fb in feedbacks})
    columns = (SqlTraceInfo.request_id, SqlTraceInfo.experiment_id, SqlTraceInfo.timestamp_ms)

    def routing(query: Any) -> dict[str, tuple[int, int]]:
        found = query.filter(SqlTraceInfo.request_id.in_(trace_ids)).order_by(SqlTraceInfo.request_id).all()
        return {rid: (int(exp), int(ts)) for rid, exp, ts in found}

    def attempt() -> list[str | None] | None:
        """One transaction; None (rolled back) when a concurrent writer moved a trace in between."""
        with store.ManagedSessionMaker(read_only=False) as session:
            for trace_id in trace_ids:
                store._validate_trace_accessible(session, trace_id)
            snapshot = routing(session.query(*columns))
            by_experiment: dict[int, list[int]] = {}
            for exp, ts in snapshot.values():
                by_experiment.setdefault(exp, []).append(ts)
            enqueue_rollup_rebuild_partitions(
                session, [(RollupFamily.ASSESSMENT, exp, ts) for exp, ts in sorted(by_experiment.items())]
            )
            if routing(store._apply_trace_row_lock(session.query(*columns))) != snapshot:
                session.rollback()
                return None
            outcomes: list[str | None] = []
            values = []
            for fb in feedbacks:
                if fb.trace_id not in snapshot:
                    outcomes.append(f"{fb.trace_id}/{fb.name}: trace {fb.trace_id!r} not found")
                    continue
                values.append(assessment_row(fb, *snapshot[fb.trace_id]))
                outcomes.append(None)
            if values:
                session.execute(sa.insert(SqlAssessments.__table__), values)
            return outcomes

    # A batch whose traces moved under it starts over at once with a fresh snapshot, for as long as they
    # keep moving (a concurrent writer finishes; tenacity's defaults: no stop, no wait).
    return Retrying(retry=retry_if_result(lambda outcomes: outcomes is None))(attempt)


def assessment_row(feedback: Any, experiment_id: int, trace_timestamp_ms: int) -> dict[str, Any]:
    """The ``assessments`` row of a Feedback: MLflow 3.17's ``SqlAssessments.from_mlflow_entity`` plus
    the two denormalised columns ``create_assessment`` sets, as a plain dict (building ORM objects costs
    more than the INSERT itself). Relies on ``assessment_aggregate(value) -> (float | None, bool)`` from
    ``mlflow.store.tracking.utils.trace_analytics`` for the aggregate columns."""
    from mlflow.store.tracking.utils.trace_analytics import assessment_aggregate

    if feedback.feedback is None:
        raise TypeError(f"only feedback is written in batches, got {feedback!r}")
    now = int(time.time() * 1000)
    value = feedback.feedback.value
    aggregate_value, is_numeric_value = assessment_aggregate(value)
    error = feedback.feedback.error
    return {
        "assessment_id": feedback.assessment_id,
        "trace_id": feedback.trace_id,
        "name": feedback.name,
        "assessment_type": "feedback",
        "value": json.dumps(value),
        "error": json.dumps(error.to_dictionary()) if error else None,
        "created_timestamp": feedback.create_time_ms or now,
        "last_updated_timestamp": feedback.last_update_time_ms or now,
        "experiment_id": experiment_id,
        "trace_timestamp_ms": trace_timestamp_ms,
        "aggregate_value": aggregate_value,
        "is_numeric_value": is_numeric_value,
        "source_type": feedback.source.source_type,
        "source_id": feedback.source.source_id,
        "run_id": feedback.run_id,
        "span_id": feedback.span_id,
        "rationale": feedback.rationale,
        "overrides": feedback.overrides,
        "valid": True,
        "assessment_metadata": json.dumps(feedback.metadata) if feedback.metadata else None,
    }


# -- traces --------------------------------------------------------------------------------------------


def lazy_span(span_dict: dict[str, Any]) -> Any:
    """A span that keeps its stored dict and builds the OpenTelemetry span only when read.

    Relies on ``mlflow.entities.span.LazySpan(span_dict)`` (what a SQL store returns, MLflow 3.17; not
    exported from ``mlflow.entities``), which takes a span in MLflow 3's stored form.
    """
    from mlflow.entities.span import LazySpan

    return LazySpan(span_dict)


def trace_dict_to_json(trace_dict: dict[str, Any]) -> str:
    """``Trace.to_json()`` of an already computed ``trace.to_dict()``.

    Relies on ``mlflow.tracing.utils.TraceJSONEncoder`` (a ``json.JSONEncoder``, MLflow 3.17), the encoder
    ``Trace.to_json`` uses, so non-JSON span values serialise as MLflow serialises them.
    """
    from mlflow.tracing.utils import TraceJSONEncoder

    return json.dumps(trace_dict, cls=TraceJSONEncoder)


# -- scorers -------------------------------------------------------------------------------------------


def scorer_feedbacks(scorer_name: str, value: Any) -> list[Any]:
    """The Feedbacks ``mlflow.genai.evaluate`` makes of a scorer's return value (a bool, a number, a
    Feedback or a list of them).

    Relies on ``mlflow.genai.evaluation.utils.standardize_scorer_value(scorer_name, value)`` (MLflow 3.17).
    """
    from mlflow.genai.evaluation.utils import standardize_scorer_value

    return standardize_scorer_value(scorer_name, value)


def scorer_function(scorer: Any) -> Callable[..., Any] | None:
    """The function a ``@scorer`` decorator wrapped, or None for any other scorer.

    Relies on the decorated scorer's ``_original_func`` attribute (MLflow 3.17 ``mlflow.genai.scorers
    .base``); when absent the caller falls back to the scorer's class.
    """
    return getattr(scorer, "_original_func", None)


# -- judges --------------------------------------------------------------------------------------------

_JUDGE_NO_RETRY: ContextVar[bool] = ContextVar("flywheel_judge_no_internal_retry", default=False)
_PATCH_LOCK = threading.Lock()
_patch_state: dict[str, bool] = {}


def install_judge_retry_override() -> bool:
    """Wrap MLflow's gateway ``send_chat_request`` so judge calls inside :func:`no_judge_retries` make
    one HTTP attempt each (the caller owns retrying). True when installed.

    Relies on ``mlflow.genai.judges.adapters.gateway_adapter.send_chat_request(endpoint, headers,
    payload, num_retries)`` being looked up on the module at call time (MLflow 3.17). Idempotent; the
    wrapper changes nothing for calls made outside :func:`no_judge_retries`. If a future MLflow drops the
    function, a warning is logged and MLflow's own retries run inside the caller's.
    """
    if "mlflow" not in sys.modules:
        # Only an MLflow judge can reach MLflow's HTTP layer, and it would have imported MLflow already.
        return False
    with _PATCH_LOCK:
        if "installed" in _patch_state:
            return _patch_state["installed"]
        try:
            from mlflow.genai.judges.adapters import gateway_adapter

            original = gateway_adapter.send_chat_request
        except (ImportError, AttributeError):
            log.warning(
                "cannot disable MLflow's internal judge retries (mlflow.genai.judges.adapters."
                "gateway_adapter.send_chat_request not found in this MLflow version); "
                "its own retries will run inside each of ours"
            )
            _patch_state["installed"] = False
            return False

        def send_chat_request(*args: Any, **kwargs: Any) -> Any:
            if _JUDGE_NO_RETRY.get():
                if "num_retries" in kwargs or len(args) < 4:
                    kwargs["num_retries"] = 0
                else:
                    args = (*args[:3], 0, *args[4:])
            return original(*args, **kwargs)

        send_chat_request.__wrapped__ = original  # type: ignore[attr-defined]
        gateway_adapter.send_chat_request = send_chat_request
        _patch_state["installed"] = True
        return True


@contextlib.contextmanager
def no_judge_retries() -> Iterator[None]:
    """Judge calls made in this block (this thread or task) skip MLflow's internal retries, once
    :func:`install_judge_retry_override` is installed."""
    token = _JUDGE_NO_RETRY.set(True)
    try:
        yield
    finally:
        _JUDGE_NO_RETRY.reset(token)
