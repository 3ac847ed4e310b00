"""The one interface to MLflow's review queues, label schemas and trace assessments.

MLflow 3.14+ keeps review queues and label schemas in the tracking store (SQL stores and ``mlflow server``).
A queue is scoped to an experiment and keyed by name; attaching an item that is already attached keeps its
status, so adding is idempotent. A reviewer's answers are ordinary assessments on the trace, named after the
label schema, with a ``HUMAN`` source whose ``source_id`` is the reviewer.

:class:`MlflowReviewBackend` talks to a tracking URI; :class:`InMemoryReviewBackend` keeps everything in
dicts, for unit tests and the demo's dry runs.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from genai_flywheel.exceptions import ConfigError

if TYPE_CHECKING:
    from genai_flywheel.config import LabelSchemaSpec

log = logging.getLogger(__name__)

PENDING, COMPLETE, DECLINED = "pending", "complete", "declined"


@dataclass(frozen=True)
class QueueItem:
    """One trace attached to a review queue and its review status."""

    trace_id: str
    status: str
    completed_by: str | None = None
    completed_time_ms: int | None = None


@dataclass(frozen=True)
class TraceAssessment:
    """One assessment of a trace, human or automated (``value`` decoded)."""

    assessment_id: str
    name: str
    kind: str  # "feedback" or "expectation"
    value: Any
    source_type: str  # HUMAN, CODE, LLM_JUDGE
    source_id: str | None
    create_time_ms: int


class ReviewBackend(Protocol):
    """What the review use cases need from MLflow."""

    def ensure_label_schema(self, spec: LabelSchemaSpec, key: str) -> str:
        """The id of the label schema ``spec`` (created when missing); ``key`` names it in errors."""

    def ensure_queue(self, name: str, schema_ids: Sequence[str], users: Sequence[str], key: str) -> str:
        """The id of the custom review queue ``name`` (created when missing)."""

    def queue_items(self, queue_id: str, status: str | None = None) -> list[QueueItem]:
        """Every item of the queue (optionally only those with ``status``)."""

    def add_items(self, queue_id: str, trace_ids: Sequence[str]) -> None:
        """Attach traces to the queue (idempotent per trace)."""

    def assessments(self, trace_id: str) -> list[TraceAssessment]:
        """The trace's current (valid) assessments."""


def schema_mismatch(spec: LabelSchemaSpec, kind: str, type_: str, options: Sequence[str]) -> str | None:
    """Why an existing schema of input ``kind``/``type_``/``options`` differs from ``spec`` (None if it fits)."""
    if type_ != spec.type or kind != spec.input:
        return f"it exists as a {type_} {kind} schema, the configuration declares a {spec.type} {spec.input} one"
    if kind in ("categorical", "pass_fail") and list(options) != list(spec.options):
        return f"it exists with options {list(options)}, the configuration declares {spec.options}"
    return None


def _mismatch_error(key: str, name: str, reason: str) -> ConfigError:
    return ConfigError(
        f"{key}: the experiment's label schema {name!r} does not match: {reason}; rename the schema in the "
        "configuration or edit the existing one in the MLflow UI"
    )


# --- MLflow -------------------------------------------------------------------------------------------


def _mlflow_input(spec: LabelSchemaSpec) -> Any:
    from mlflow.genai import label_schemas as ls

    if spec.input == "categorical":
        return ls.InputCategorical(options=list(spec.options))
    if spec.input == "pass_fail":
        return ls.InputPassFail(positive_label=spec.options[0], negative_label=spec.options[1])
    if spec.input == "numeric":
        return ls.InputNumeric(min_value=spec.min_value, max_value=spec.max_value)
    return ls.InputText(max_length=spec.max_length)


def _describe_input(schema: Any) -> tuple[str, list[str]]:
    from mlflow.genai import label_schemas as ls

    inp = schema.input
    if isinstance(inp, ls.InputCategorical):
        return "categorical", list(inp.options)
    if isinstance(inp, ls.InputPassFail):
        return "pass_fail", [inp.positive_label, inp.negative_label]
    if isinstance(inp, ls.InputNumeric):
        return "numeric", []
    if isinstance(inp, ls.InputText):
        return "text", []
    return type(inp).__name__, []


def _error_code(err: Exception) -> str:
    return str(getattr(err, "error_code", ""))


class MlflowReviewBackend:
    """Review queues and label schemas of one experiment in an MLflow tracking store."""

    def __init__(self, tracking_uri: str, experiment_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id

    @contextlib.contextmanager
    def _tracking(self) -> Iterator[None]:
        # The review-queue functions resolve the tracking store from MLflow's global URI.
        from genai_flywheel.mlflow_compat import use_tracking_uri

        with use_tracking_uri(self.tracking_uri):
            yield

    def ensure_label_schema(self, spec: LabelSchemaSpec, key: str) -> str:
        from mlflow.exceptions import MlflowException
        from mlflow.genai import label_schemas as ls

        with self._tracking():
            try:
                found = ls.get_label_schema(spec.name, experiment_id=self.experiment_id)
            except MlflowException as err:
                if "RESOURCE_DOES_NOT_EXIST" not in _error_code(err):
                    raise
                found = None
            if found is None:
                try:
                    found = ls.create_label_schema(
                        spec.name,
                        type=spec.type,
                        input=_mlflow_input(spec),
                        instruction=spec.instruction,
                        experiment_id=self.experiment_id,
                    )
                    log.info("created label schema %s (%s)", spec.name, found.schema_id)
                except MlflowException as err:
                    if "RESOURCE_ALREADY_EXISTS" in _error_code(err):  # created concurrently
                        found = ls.get_label_schema(spec.name, experiment_id=self.experiment_id)
                    else:
                        raise ConfigError(f"{key}: MLflow rejected label schema {spec.name!r}: {err.message}") from err
        kind, options = _describe_input(found)
        reason = schema_mismatch(spec, kind, str(found.type), options)
        if reason:
            raise _mismatch_error(key, spec.name, reason)
        return str(found.schema_id)

    def ensure_queue(self, name: str, schema_ids: Sequence[str], users: Sequence[str], key: str) -> str:
        from mlflow.exceptions import MlflowException
        from mlflow.genai import review_queues as rq

        with self._tracking():
            try:
                return str(rq.get_review_queue(name=name, experiment_id=self.experiment_id).queue_id)
            except MlflowException as err:
                if "RESOURCE_DOES_NOT_EXIST" not in _error_code(err):
                    raise
            try:
                queue = rq.create_review_queue(
                    name,
                    queue_type="custom",
                    users=list(users),
                    schema_ids=list(schema_ids),
                    experiment_id=self.experiment_id,
                )
            except MlflowException as err:
                if "RESOURCE_ALREADY_EXISTS" in _error_code(err):
                    return str(rq.get_review_queue(name=name, experiment_id=self.experiment_id).queue_id)
                raise ConfigError(f"{key}: MLflow rejected review queue {name!r}: {err.message}") from err
            log.info("created review queue %s (%s)", name, queue.queue_id)
            return str(queue.queue_id)

    def queue_items(self, queue_id: str, status: str | None = None) -> list[QueueItem]:
        from mlflow.genai import review_queues as rq

        items: list[QueueItem] = []
        token = None
        with self._tracking():
            while True:
                page = rq.list_review_queue_items(queue_id, status=status, max_results=500, page_token=token)
                items.extend(QueueItem(i.item_id, str(i.status), i.completed_by, i.completed_time_ms) for i in page)
                token = page.token
                if not token:
                    return items

    def add_items(self, queue_id: str, trace_ids: Sequence[str]) -> None:
        from mlflow.genai import review_queues as rq

        if not trace_ids:
            return
        with self._tracking():
            rq.add_items_to_review_queue(queue_id, item_ids=list(trace_ids))

    def assessments(self, trace_id: str) -> list[TraceAssessment]:
        from genai_flywheel.mlflow_compat import tracing_client

        info = tracing_client(self.tracking_uri).get_trace_info(trace_id)
        out = []
        for a in info.assessments or []:
            if a.valid is False:  # overridden by a later assessment
                continue
            is_feedback = a.feedback is not None
            value = a.feedback.value if is_feedback else (a.expectation.value if a.expectation else None)
            out.append(
                TraceAssessment(
                    assessment_id=str(a.assessment_id),
                    name=a.name,
                    kind="feedback" if is_feedback else "expectation",
                    value=value,
                    source_type=str(a.source.source_type) if a.source else "",
                    source_id=a.source.source_id if a.source else None,
                    create_time_ms=int(a.create_time_ms or 0),
                )
            )
        return out

    def answer(self, queue_id: str, trace_id: str, reviewer: str, labels: dict[str, tuple[str, Any]]) -> None:
        """What a reviewer does in the MLflow review UI: log ``labels`` (name -> (kind, value)) as HUMAN
        assessments by ``reviewer`` and mark the item complete (the demo's simulated reviewer uses it)."""
        import mlflow
        from mlflow.entities import AssessmentSource
        from mlflow.genai import review_queues as rq

        source = AssessmentSource(source_type="HUMAN", source_id=reviewer)
        with self._tracking():
            for name, (kind, value) in labels.items():
                log = mlflow.log_expectation if kind == "expectation" else mlflow.log_feedback
                log(trace_id=trace_id, name=name, value=value, source=source)
            rq.set_review_queue_item_status(queue_id, item_id=trace_id, status=COMPLETE, completed_by=reviewer)


# --- in memory ----------------------------------------------------------------------------------------


@dataclass
class InMemoryReviewBackend:
    """Everything in dicts; ``reject`` names schemas or queues to refuse, like MLflow refusing a bad value."""

    schemas: dict[str, tuple[LabelSchemaSpec, str]] = field(default_factory=dict)
    queues: dict[str, tuple[str, list[str], list[str]]] = field(default_factory=dict)  # name -> id, schemas, users
    items: dict[str, dict[str, QueueItem]] = field(default_factory=dict)  # queue id -> trace id -> item
    trace_assessments: dict[str, list[TraceAssessment]] = field(default_factory=dict)
    reject: set[str] = field(default_factory=set)
    add_calls: int = 0
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def ensure_label_schema(self, spec: LabelSchemaSpec, key: str) -> str:
        if spec.name in self.reject:
            raise ConfigError(f"{key}: MLflow rejected label schema {spec.name!r}: rejected")
        if spec.name not in self.schemas:
            self.schemas[spec.name] = (spec, f"ls-{next(self._ids)}")
        existing, schema_id = self.schemas[spec.name]
        reason = schema_mismatch(spec, existing.input, existing.type, existing.options)
        if reason:
            raise _mismatch_error(key, spec.name, reason)
        return schema_id

    def ensure_queue(self, name: str, schema_ids: Sequence[str], users: Sequence[str], key: str) -> str:
        if name in self.reject:
            raise ConfigError(f"{key}: MLflow rejected review queue {name!r}: rejected")
        if name not in self.queues:
            queue_id = f"rq-{next(self._ids)}"
            self.queues[name] = (queue_id, list(schema_ids), list(users))
            self.items[queue_id] = {}
        return self.queues[name][0]

    def queue_items(self, queue_id: str, status: str | None = None) -> list[QueueItem]:
        return [i for i in self.items[queue_id].values() if status is None or i.status == status]

    def add_items(self, queue_id: str, trace_ids: Sequence[str]) -> None:
        self.add_calls += 1
        for trace_id in trace_ids:
            self.items[queue_id].setdefault(trace_id, QueueItem(trace_id, PENDING))

    def assessments(self, trace_id: str) -> list[TraceAssessment]:
        return list(self.trace_assessments.get(trace_id, []))

    # What a reviewer does in the UI (used by tests and the demo's simulated reviewer).
    def answer(self, queue_id: str, trace_id: str, reviewer: str, labels: dict[str, tuple[str, Any]]) -> None:
        """Record ``labels`` (name -> (kind, value)) by ``reviewer`` and mark the item complete."""
        for name, (kind, value) in labels.items():
            self.trace_assessments.setdefault(trace_id, []).append(
                TraceAssessment(f"a-{next(self._ids)}", name, kind, value, "HUMAN", reviewer, 0)
            )
        self.items[queue_id][trace_id] = QueueItem(trace_id, COMPLETE, reviewer, 0)
