"""The one configuration file, ``flywheel.yaml``, validated by pydantic.

Every model forbids unknown keys and bounds its numbers, so a typo or an out-of-range value fails at
``flywheel config validate`` (and at DAG parse time) with the key's dotted path and the fix, not hours later
inside a task.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)

from genai_flywheel.config_options import BUILTIN_OPTIONS, JUDGE_OPTIONS, RULE_OPTIONS, RuleOptions, ScorerOptions
from genai_flywheel.exceptions import ConfigError, FilterSyntaxError

CONFIG_ENV = "FLYWHEEL_CONFIG"
DATA_ROOT_ENV = "FLYWHEEL_DATA_ROOT"
DEFAULT_CONFIG = "flywheel.yaml"

_NAME = r"^[a-z][a-z0-9_-]{0,62}$"
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?]+$")

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


def _cron(value: str) -> str:
    """A 5-field cron expression croniter accepts (what Airflow's cron timetables take)."""
    from croniter import croniter

    parts = value.split()
    if value.startswith("@") or len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
        raise ValueError(f"{value!r} is not a 5-field cron expression; use e.g. '0 * * * *'")
    if not croniter.is_valid(value):
        raise ValueError(
            f"{value!r} is not a valid cron expression (a field is out of range: minute 0-59, hour 0-23, "
            "day 1-31, month 1-12, weekday 0-6); use e.g. '0 */6 * * *'"
        )
    return value


def _filter(value: str) -> str:
    """A selection filter the project's parser accepts (checked here, not when a task first runs it)."""
    from genai_flywheel.selection.parser import parse_filter

    try:
        parse_filter(value)
    except FilterSyntaxError as err:
        # The first line only: the parser's caret pointer spans lines, the error names the value already.
        reason = str(err).splitlines()[0]
        raise ValueError(
            f"malformed selection filter: {reason}; fix it there (see 'Selection filters' in README.md)"
        ) from None
    return value


Cron = Annotated[str, AfterValidator(_cron)]
Filter = Annotated[str, Field(min_length=1), AfterValidator(_filter)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MlflowTarget(_Model):
    """Where an application's production traces live."""

    tracking_uri: str = Field(min_length=1, description="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    experiment: str = Field(min_length=1, description="Experiment name the production app logs traces to")


class Stratum(_Model):
    """Traces matching ``filter`` are sampled at ``rate`` instead of the base rate (first match wins)."""

    name: str = Field(pattern=_NAME)
    filter: Filter
    rate: Rate


class Sampling(_Model):
    rate: Rate = 0.2
    min_traces: int = Field(
        default=0,
        ge=0,
        description="Score at least this many traces an interval: a quiet interval's base rate rises to "
        "min_traces / its valid traces (at most 1), where a fixed rate leaves too few to test a segment",
    )
    filter: Filter | None = Field(default=None, description="Only traces matching this selection filter")
    strata: list[Stratum] = Field(default_factory=list)
    shards: int = Field(default=4, ge=1, le=64, description="Scoring shards (mapped task instances)")
    seed: str = Field(default="flywheel", min_length=1, max_length=64, description="Salt of the sampling hash")

    @field_validator("strata")
    @classmethod
    def _unique_strata(cls, strata: list[Stratum]) -> list[Stratum]:
        names = [s.name for s in strata]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stratum names must be unique; repeated: {dupes}")
        return strata


class ScorerSpec(_Model):
    """One scorer: a built-in by ``name``, or a user's ``@scorer`` by ``ref`` (``module:function``)."""

    name: str = Field(pattern=_NAME)
    ref: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    threshold: float | None = Field(default=None, description="Pass threshold for numeric values")
    sample_rate: Rate | None = Field(
        default=None, description="This scorer's own base sampling rate (e.g. lower for costly judges)"
    )
    options: ScorerOptions | dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the scorer: typed per built-in scorer and judge, free-form for a ref",
        validate_default=True,
    )

    @field_validator("options", mode="wrap")
    @classmethod
    def _typed_options(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        if isinstance(value, ScorerOptions) or not isinstance(value, dict):
            return handler(value)  # an options object as is; anything but a mapping is reported
        name = info.data.get("name")
        model = BUILTIN_OPTIONS.get(name) or JUDGE_OPTIONS.get(name) if name else None
        if model is None or info.data.get("ref") is not None:
            # A ref scorer's options are free-form; an unknown name is reported by the scorer registry.
            return dict(value)
        return model.model_validate(value)

    @field_serializer("options")
    def _given_options(self, options: ScorerOptions | dict[str, Any]) -> dict[str, Any]:
        return options.given() if isinstance(options, ScorerOptions) else options

    @model_validator(mode="after")
    def _one_threshold(self) -> ScorerSpec:
        alias = getattr(self.options, "threshold", None)
        if alias is not None and self.threshold is not None and alias != self.threshold:
            raise ValueError(
                f"scorer {self.name!r} sets threshold twice ({self.threshold} and options.threshold={alias}); "
                "keep only 'threshold:'"
            )
        return self


class Judge(_Model):
    """The OpenAI-compatible LLM-judge endpoint, reached through an Airflow Connection."""

    conn_id: str | None = Field(default=None, description="Airflow Connection id; judges skip when unset")
    model: str = Field(default="gpt-4o-mini", min_length=1)
    max_cost_per_run_usd: float = Field(default=5.0, ge=0.0, le=100_000.0)
    pool: str = Field(default="flywheel_llm_judge", pattern=r"^[A-Za-z0-9_.-]{1,256}$")
    pool_slots: int = Field(default=4, ge=1, le=1024)
    timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)
    max_retries: int = Field(default=3, ge=0, le=10)


class Price(_Model):
    """USD per 1,000 tokens."""

    input_per_1k: float = Field(ge=0.0, le=1000.0)
    output_per_1k: float = Field(ge=0.0, le=1000.0)


class Slo(_Model):
    latency_ms: float = Field(default=5000.0, gt=0.0, le=3_600_000.0)


class Sustained(_Model):
    """Fire only when the condition held in ``k`` of the last ``n`` recorded intervals (this one included)."""

    k: int = Field(ge=1, le=100)
    n: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _k_within_n(self) -> Sustained:
        if self.k > self.n:
            raise ValueError(f"sustained.k {self.k} is larger than sustained.n {self.n}; use k <= n, e.g. k: 2, n: 3")
        return self


class Baseline(_Model):
    """The trailing baseline of a ``kind: baseline`` rule: the same hours of the day over the last ``days`` days."""

    days: int = Field(default=7, ge=1, le=90, description="Days of history the baseline pools")
    same_hour: bool = Field(default=True, description="Only the intervals at the same time of day (seasonality)")
    min_intervals: int = Field(default=3, ge=1, le=1000, description="Baseline intervals needed to judge at all")
    alpha: float = Field(default=0.01, gt=0.0, lt=0.5, description="One-sided significance level of the test")
    min_effect: float = Field(
        default=0.0, ge=0.0, description="Smallest worsening worth an alert, in the metric's unit (e.g. 0.05)"
    )


class AlertRule(_Model):
    """One alert rule on a metric of the monitor (see the alerts module for the semantics).

    ``kind: threshold`` (default) fires when ``metric op threshold`` holds for the whole confidence interval,
    not just the estimate. ``kind: baseline`` fires when the interval is significantly worse than its
    trailing baseline (``op`` says which direction is worse; ``threshold`` is not used). ``kind: no_data``
    fires when ``volume`` falls below ``threshold`` (the floor; 0 traces included). ``kind: stale`` fires when
    the newest stored interval ended more than ``threshold`` hours ago: a monitor that stopped running pages
    someone too (checked by the watchdog DAG, not by the monitor). ``sustained`` and
    ``resolve_threshold`` (hysteresis: a firing alert resolves only once the estimate is back on the good side
    of it) are optional for every kind. ``metric`` names a metric of the partition, e.g. ``latency_p95_ms``,
    ``error_rate`` or ``scorer.relevance.pass_rate``.

    ``segment: <dimension>`` makes a threshold or baseline rule per segment: it is applied to every segment of
    that dimension (``segments.dimensions[].name``) with the false-discovery rate across the segments held at
    ``fdr`` (Benjamini-Hochberg; see :mod:`genai_flywheel.alerts.segments`). ``metric`` must then be one the
    monitor computes per segment.
    """

    name: str = Field(pattern=_NAME)
    kind: Literal["threshold", "baseline", "no_data", "stale"] = "threshold"
    metric: str = Field(default="volume", min_length=1)
    op: Literal[">", ">=", "<", "<="] = "<"
    threshold: float = 1.0
    min_samples: int = Field(default=30, ge=1, le=10_000_000)
    severity: Literal["info", "warning", "critical"] = "warning"
    sustained: Sustained | None = None
    resolve_threshold: float | None = None
    baseline: Baseline | None = None
    segment: str | None = Field(default=None, pattern=_NAME, description="Per-segment rule: a dimension's name")
    fdr: float = Field(default=0.05, gt=0.0, lt=1.0, description="False-discovery rate across the segments")

    @model_validator(mode="after")
    def _kind_fits(self) -> AlertRule:
        needed = {
            "threshold": ("metric", "op", "threshold"),
            "baseline": ("metric", "op"),
            "no_data": (),
            "stale": ("threshold",),
        }[self.kind]
        missing = [key for key in needed if key not in self.model_fields_set]
        if missing:
            raise ValueError(f"a {self.kind} rule needs {', '.join(missing)}; e.g. metric: error_rate, op: '>'")
        if self.kind == "stale" and ("metric" in self.model_fields_set or self.threshold <= 0):
            raise ValueError("a stale rule takes only threshold: the hours of delay tolerated, e.g. threshold: 12")
        if self.kind == "no_data" and self.metric != "volume":
            raise ValueError(f"a no_data rule watches volume; drop metric: {self.metric!r} (threshold is the floor)")
        if self.baseline is not None and self.kind != "baseline":
            raise ValueError("baseline: applies to kind: baseline rules only; set kind: baseline or drop it")
        if self.resolve_threshold is not None and self.kind == "baseline":
            raise ValueError(
                "resolve_threshold applies to threshold and no_data rules; a baseline rule resolves "
                "when the interval is no longer significantly worse than its baseline"
            )
        if self.resolve_threshold is not None and self.kind == "threshold":
            bad_side = (
                self.resolve_threshold > self.threshold
                if self.op in (">", ">=")
                else (self.resolve_threshold < self.threshold)
            )
            if bad_side:
                raise ValueError(
                    f"resolve_threshold {self.resolve_threshold} lies beyond threshold {self.threshold} for "
                    f"op {self.op!r}; hysteresis resolves on the good side of the threshold"
                )
        if self.segment is not None and self.kind not in ("threshold", "baseline"):
            raise ValueError(
                f"segment: applies to threshold and baseline rules, not to a {self.kind} rule; drop segment: "
                f"{self.segment!r} (the {self.kind} rule watches the whole application)"
            )
        if "fdr" in self.model_fields_set and self.segment is None:
            raise ValueError("fdr: applies to per-segment rules only; add segment: <dimension> or drop fdr")
        if self.segment is not None and self.baseline is not None and "alpha" in self.baseline.model_fields_set:
            raise ValueError(
                "a per-segment baseline rule tests its segments at the false-discovery rate fdr, not at "
                "baseline.alpha; drop baseline.alpha and set fdr (default 0.05)"
            )
        return self

    @property
    def baseline_spec(self) -> Baseline:
        """The baseline settings of a ``kind: baseline`` rule (defaults when not given)."""
        return self.baseline or Baseline()


class QueryClusters(_Model):
    """How the ``query_cluster`` dimension's clusters are learned: on a reference window, refreshed on a
    schedule, so a cluster keeps its id from one interval to the next (see genai_flywheel.segments.clusters).

    The model of an interval is learned from the ``reference_days`` before the start of its refresh period
    (``refresh_hours``, aligned to the Unix epoch), reading at most ``per_hour`` trace infos of every hour;
    each interval's queries are assigned to the nearest cluster (Jaccard similarity of their content terms
    at least ``threshold``) or counted as new.
    """

    reference_days: int = Field(default=7, ge=1, le=90, description="Days of traffic the clusters are learned on")
    refresh_hours: int = Field(default=24, ge=1, le=24 * 90, description="How often the clusters are re-learned")
    per_hour: int = Field(default=200, ge=1, le=5000, description="Reference trace infos read per hour at most")
    threshold: float = Field(default=0.34, gt=0.0, le=1.0, description="Jaccard similarity to join a cluster")
    min_size: int = Field(default=3, ge=1, le=100_000, description="Reference queries a cluster needs")
    max_clusters: int = Field(default=50, ge=1, le=1000, description="Largest clusters kept in the model")


_DIMENSION_SOURCE = r"^((tags|metadata)\.[A-Za-z0-9_.:/-]{1,128}|model|query_cluster)$"


class SegmentDimension(_Model):
    """A dimension the monitor breaks its metrics down by: a trace tag (``tags.<key>``), a request-metadata
    key (``metadata.<key>``), the trace's ``model``, or the ``query_cluster`` of the user's question."""

    name: str = Field(pattern=_NAME, description="How rules and charts name the dimension, e.g. app_version")
    source: str = Field(pattern=_DIMENSION_SOURCE, description="tags.<key>, metadata.<key>, model or query_cluster")
    top_k: int | None = Field(default=None, ge=1, le=200, description="Segments kept (default: segments.top_k)")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "scorer":
            # drift.scorer.<name>.psi is the drift of a scorer's values.
            raise ValueError("'scorer' is reserved (drift.scorer.<name>.psi); name the dimension otherwise")
        return value


class Segments(_Model):
    """Metrics per segment, beside the application-level ones: for each dimension the ``top_k`` values by
    volume in the interval, the rest pooled as ``other`` (so the metrics store stays small)."""

    dimensions: list[SegmentDimension] = Field(default_factory=list)
    top_k: int = Field(default=10, ge=1, le=200, description="Segments kept per dimension, by volume")
    clusters: QueryClusters = Field(default_factory=QueryClusters)

    @field_validator("dimensions")
    @classmethod
    def _unique_dimensions(cls, dimensions: list[SegmentDimension]) -> list[SegmentDimension]:
        for label, values in (("names", [d.name for d in dimensions]), ("sources", [d.source for d in dimensions])):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"segment dimension {label} must be unique; repeated: {dupes}")
        return dimensions

    def dimension(self, name: str) -> SegmentDimension | None:
        """The dimension called ``name``, if declared."""
        return next((d for d in self.dimensions if d.name == name), None)


class Notify(_Model):
    """Where alert transitions and failed tasks are sent: a webhook (an Airflow HTTP Connection), Slack and
    e-mail. ``webhook_url`` is the deprecated form of the webhook: the URL in the file, no secret header."""

    webhook_conn_id: str | None = Field(
        default=None, min_length=1, description="Airflow HTTP Connection: host = URL, password = bearer token"
    )
    webhook_url: str | None = Field(default=None, pattern=r"^https?://")
    slack_conn_id: str | None = None
    email_to: list[str] = Field(default_factory=list)
    renotify_after_hours: float = Field(default=24.0, ge=0.0, le=24 * 365)

    @model_validator(mode="after")
    def _one_webhook(self) -> Notify:
        if self.webhook_conn_id and self.webhook_url:
            raise ValueError(
                "set webhook_conn_id or webhook_url, not both; keep webhook_conn_id (webhook_url is deprecated)"
            )
        return self


class CurationRule(_Model):
    """A selection rule of the curation DAG: a filter, a cap and a priority (lower runs first)."""

    name: str = Field(pattern=_NAME)
    filter: Filter | None = None
    kind: Literal["filter", "query_clusters", "regression_guard", "segment_alerts"] = "filter"
    cap: int = Field(default=200, ge=1, le=1_000_000)
    priority: int = Field(default=100, ge=0, le=10_000)
    options: RuleOptions = Field(
        default_factory=dict,  # type: ignore[arg-type]  # validated into the kind's model below
        description="Typed per kind: see genai_flywheel.config_options",
        validate_default=True,
    )

    @field_validator("options", mode="wrap")
    @classmethod
    def _typed_options(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        if "kind" not in info.data:
            return value  # the kind itself is invalid and reported; its options cannot be checked
        model = RULE_OPTIONS[info.data["kind"]]
        return value if isinstance(value, model) else model.model_validate(value)

    @field_serializer("options")
    def _given_options(self, options: RuleOptions) -> dict[str, Any]:
        # The options as written: a rule-set digest does not change when a default is added.
        return options.model_dump(mode="json", exclude_unset=True)

    @model_validator(mode="after")
    def _filter_kind_has_a_filter(self) -> CurationRule:
        if self.kind == "filter" and not self.filter:
            raise ValueError(f"curation rule {self.name!r} of kind 'filter' needs a filter; add filter: '...'")
        return self


class Curation(_Model):
    schedule: Cron = "0 2 * * *"
    lookback_days: int = Field(default=7, ge=1, le=3650)
    dataset_prefix: str = Field(default="flywheel", pattern=_NAME)
    rules: list[CurationRule] = Field(default_factory=list)


class Gate(_Model):
    """A development-evaluation gate on one scorer; ``rule`` limits it to one curation rule's records."""

    scorer: str = Field(pattern=_NAME)
    rule: str | None = Field(default=None, pattern=_NAME)
    min_mean: float | None = None
    min_improvement: float | None = Field(default=None, description="Mean difference vs production")
    max_p_value: float | None = Field(default=None, gt=0.0, le=1.0)


class Evaluation(_Model):
    candidate: str | None = Field(default=None, description="module:function or an MLflow model URI")
    scorers: list[str] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)


class PiiRedaction(_Model):
    emails: bool = True
    phones: bool = True
    cards: bool = True
    extra_patterns: list[str] = Field(default_factory=list)


class Export(_Model):
    schedule: Cron = "0 3 * * 1"
    min_score: float = Field(default=0.7, ge=0.0, le=1.0)
    validation_fraction: Rate = 0.1
    system_prompt: str | None = None
    pii: PiiRedaction = Field(default_factory=PiiRedaction)


class Extract(_Model):
    """How the monitor reads a window out of MLflow.

    Pass one lists the trace infos (no spans) of the whole window, split into ``slices`` equal time slices,
    each a mapped Airflow task, so workers list them in parallel; a trace belongs to exactly one slice by its
    timestamp. Pass two fetches full traces (spans) only for the sampled traces, ``fetch_batch`` at a time.
    """

    slices: int = Field(default=4, ge=1, le=256, description="Time slices of the window (mapped extract tasks)")
    page_size: int = Field(
        default=500, ge=1, le=500, description="Trace infos per search_traces page (a tracking server takes 500)"
    )
    # Each batch is read, checked by the content contract (a GX run costs ~0.1 s whatever its size) and
    # scored at once: 1,000 traces keep that overhead small and a batch's memory to tens of MB.
    fetch_batch: int = Field(
        default=1000, ge=1, le=5000, description="Sampled traces read in full and scored per batch (score stage)"
    )


class Contract(_Model):
    """The trace data contract's batch-level condition (row-level failures are quarantined)."""

    max_bad_fraction: Rate = Field(default=0.5, description="Fail the interval above this quarantined share")


class LabelSchemaSpec(_Model):
    """A question reviewers answer (an MLflow label schema); the answer is an assessment named ``name``.

    ``input``: ``categorical`` (``options``), ``pass_fail`` (``options`` = [positive, negative] labels),
    ``numeric`` (``min_value``/``max_value``) or ``text`` (``max_length``).
    """

    name: str = Field(pattern=_NAME)
    type: Literal["feedback", "expectation"] = "feedback"
    input: Literal["categorical", "pass_fail", "numeric", "text"]
    options: list[str] = Field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    instruction: str | None = None

    @model_validator(mode="after")
    def _input_fields(self) -> LabelSchemaSpec:
        if self.input == "categorical" and len(self.options) < 2:
            raise ValueError(f"a categorical label schema needs at least two options, got {self.options}")
        if self.input == "pass_fail" and len(self.options) != 2:
            raise ValueError(f"a pass_fail label schema takes options [positive, negative], got {self.options}")
        if self.input in ("numeric", "text") and self.options:
            raise ValueError(f"options apply to categorical and pass_fail inputs, not {self.input!r}; remove them")
        if self.min_value is not None and self.max_value is not None and self.min_value >= self.max_value:
            raise ValueError(f"min_value {self.min_value} must be below max_value {self.max_value}")
        return self


class ReviewQueueSpec(_Model):
    """An MLflow review queue fed after each curation run: the traces the named curation ``rules`` selected,
    plus a hash-based calibration sample of the window (``calibration_rate``), at most ``cap`` new items a run.
    """

    name: str = Field(pattern=_NAME, description="The purpose; the MLflow queue is named '<app>.<name>'")
    schemas: list[str] = Field(min_length=1, description="Names of review.label_schemas the reviewers answer")
    rules: list[str] = Field(default_factory=list, description="Curation rules whose selected traces are queued")
    calibration_rate: Rate = Field(default=0.0, description="Share of the window's traces sampled at random")
    calibration_cap: int = Field(default=10, ge=0, le=100_000, description="Calibration items a run at most")
    cap: int = Field(default=50, ge=1, le=100_000, description="New items a run at most (all sources)")
    users: list[str] = Field(default_factory=list, max_length=10, description="Assigned reviewers")


class Review(_Model):
    """Human review: label schemas, review queues fed from curation, judge calibration against the labels."""

    label_schemas: list[LabelSchemaSpec] = Field(default_factory=list)
    queues: list[ReviewQueueSpec] = Field(default_factory=list)
    schedule: str = Field(default="0 * * * *", description="Cron of the label collection (flywheel_review DAG)")
    min_labels: int = Field(default=10, ge=2, le=1_000_000, description="Human labels a scorer needs for calibration")
    window_days: int = Field(default=28, ge=1, le=3650, description="Rolling window of the calibration metrics")
    correct_schema: str | None = Field(
        default=None, pattern=_NAME, description="The categorical/pass_fail verdict scorers are calibrated against"
    )
    correct_value: str | None = Field(default=None, description="The verdict option meaning 'correct'")
    correction_schema: str | None = Field(
        default=None, pattern=_NAME, description="The text schema holding a reviewer's corrected answer"
    )

    @model_validator(mode="after")
    def _references(self) -> Review:
        names = [s.name for s in self.label_schemas]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label_schemas names must be unique; repeated: {dupes}")
        queues = [q.name for q in self.queues]
        dupes = sorted({n for n in queues if queues.count(n) > 1})
        if dupes:
            raise ValueError(f"queues names must be unique; repeated: {dupes}")
        for queue in self.queues:
            unknown = [s for s in queue.schemas if s not in names]
            if unknown:
                raise ValueError(f"queue {queue.name!r} names unknown label schema(s) {unknown}; declared: {names}")
        for key in ("correct_schema", "correction_schema"):
            value = getattr(self, key)
            if value is not None and value not in names:
                raise ValueError(f"{key} {value!r} is not a declared label schema; declared: {names}")
        if self.correct_schema is not None:
            spec = next(s for s in self.label_schemas if s.name == self.correct_schema)
            if spec.input not in ("categorical", "pass_fail") or self.correct_value not in spec.options:
                raise ValueError(
                    f"correct_schema {spec.name!r} must be categorical or pass_fail and correct_value "
                    f"({self.correct_value!r}) one of its options {spec.options}"
                )
        return self


class Application(_Model):
    """A monitored GenAI application; one monitor DAG is generated per application."""

    name: str = Field(pattern=_NAME)
    mlflow: MlflowTarget
    schedule: Cron = Field(default="0 * * * *", description="Cron expression of the monitor interval")
    start_date: datetime = Field(default=datetime(2026, 1, 1, tzinfo=UTC))
    extract: Extract = Field(default_factory=Extract)
    sampling: Sampling = Field(default_factory=Sampling)
    contract: Contract = Field(default_factory=Contract)
    scorers: list[ScorerSpec] = Field(default_factory=list)
    judge: Judge = Field(default_factory=Judge)
    prices: dict[str, Price] = Field(default_factory=dict)
    slo: Slo = Field(default_factory=Slo)
    alerts: list[AlertRule] = Field(default_factory=list)
    notify: Notify = Field(default_factory=Notify)
    curation: Curation = Field(default_factory=Curation)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    export: Export = Field(default_factory=Export)
    review: Review = Field(default_factory=Review)
    segments: Segments = Field(default_factory=Segments)

    @field_validator("start_date", mode="after")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _unique_names(self) -> Application:
        for label, names in (
            ("scorers", [s.name for s in self.scorers]),
            ("alerts", [a.name for a in self.alerts]),
            ("curation.rules", [r.name for r in self.curation.rules]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label} names must be unique; repeated: {dupes}")
        # With no rules configured the curation DAG runs its default rules, checked when the queue is fed.
        rules = {r.name for r in self.curation.rules}
        for queue in self.review.queues if rules else ():
            unknown = sorted(set(queue.rules) - rules)
            if unknown:
                raise ValueError(f"review queue {queue.name!r} names unknown curation rule(s) {unknown}")
        return self

    @model_validator(mode="after")
    def _alert_metrics_exist(self) -> Application:
        from genai_flywheel.metric_names import unknown_metric

        for i, rule in enumerate(self.alerts):
            problem = (
                unknown_metric(rule.metric, (s.name for s in self.scorers), (d.name for d in self.segments.dimensions))
                if rule.kind != "stale"
                else None
            )
            if problem:
                raise ValueError(f"alerts[{i}].metric (rule {rule.name!r}): {problem}")
        return self

    @model_validator(mode="after")
    def _segment_rules_fit(self) -> Application:
        from genai_flywheel.metric_names import unknown_segment_metric

        declared = [d.name for d in self.segments.dimensions]
        for i, rule in enumerate(self.alerts):
            if rule.segment is None:
                continue
            if rule.segment not in declared:
                raise ValueError(
                    f"alerts[{i}].segment (rule {rule.name!r}): dimension {rule.segment!r} is not declared; "
                    f"declare it under segments.dimensions or name one of {declared}"
                )
            problem = unknown_segment_metric(rule.metric, (s.name for s in self.scorers))
            if problem:
                raise ValueError(
                    f"alerts[{i}].metric (rule {rule.name!r}, segment: {rule.segment}): {problem}; or drop "
                    "segment: to watch the whole application"
                )
        return self

    @model_validator(mode="after")
    def _segment_curation_fits(self) -> Application:
        from genai_flywheel.config_options import SegmentAlertsOptions, names

        segment_rules = [a.name for a in self.alerts if a.segment is not None]
        for i, rule in enumerate(self.curation.rules):
            if rule.kind != "segment_alerts" or not isinstance(rule.options, SegmentAlertsOptions):
                continue
            where = f"curation.rules[{i}] (rule {rule.name!r}, kind: segment_alerts)"
            if not segment_rules:
                raise ValueError(
                    f"{where}: the application has no per-segment alert rule to follow; add an alert rule "
                    "with segment: <dimension>, or drop this curation rule"
                )
            unknown = sorted(set(names(rule.options.alert_rules, ())) - set(segment_rules))
            if unknown:
                raise ValueError(
                    f"{where}.options.alert_rules: {unknown} are not per-segment alert rules of this "
                    f"application; name some of {segment_rules}"
                )
        return self


class FlywheelConfig(_Model):
    data_root: str = Field(default="./data", min_length=1)
    applications: list[Application] = Field(min_length=1)

    @field_validator("applications")
    @classmethod
    def _unique_apps(cls, apps: list[Application]) -> list[Application]:
        names = [a.name for a in apps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"application names must be unique; repeated: {dupes}")
        return apps

    def app(self, name: str) -> Application:
        """The application called ``name``, or a ConfigError listing the configured ones."""
        for app in self.applications:
            if app.name == name:
                return app
        known = ", ".join(a.name for a in self.applications)
        raise ConfigError(f"no application {name!r} in the configuration; configured: {known}")

    def data_path(self) -> Path:
        """The data root: ``$FLYWHEEL_DATA_ROOT`` if set, else ``data_root`` from the file."""
        return Path(os.environ.get(DATA_ROOT_ENV) or self.data_root).expanduser()


def _dotted(loc: tuple[Any, ...]) -> str:
    """``applications[0].curation.rules[2].options.min_volume`` for a pydantic error location."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return text or "<root>"


def _allowed_options(data: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The option names the rule or scorer at ``loc[:-2]`` takes, when ``loc`` is one of its options."""
    if len(loc) < 4 or loc[-2] != "options" or loc[-4] not in ("rules", "scorers"):
        return None
    owner = data
    for part in loc[:-2]:
        try:
            owner = owner[part]
        except (KeyError, IndexError, TypeError):
            return None
    if not isinstance(owner, dict):
        return None
    if loc[-4] == "rules":
        model = RULE_OPTIONS.get(owner.get("kind", "filter"))
    else:
        model = BUILTIN_OPTIONS.get(owner.get("name")) or JUDGE_OPTIONS.get(owner.get("name"))
    return sorted(model.model_fields) if model is not None else None


# "Value error, alerts[3].segment (rule 'x'): ..." from the application's validators: the alert key and the rest.
_NESTED_KEY = re.compile(r"^Value error, (alerts\[\d+\](?:\.\w+)*)( .*|:.*)$", re.DOTALL)


def _format_errors(err: ValidationError, source: str, data: Any = None) -> str:
    lines = [f"{source}: {err.error_count()} invalid setting(s)"]
    for e in err.errors():
        key = _dotted(e["loc"])
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        hint = ""
        if e["type"] == "extra_forbidden":
            allowed = _allowed_options(data, e["loc"])
            if allowed is not None:
                close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1)
                guess = f"did you mean {close[0]!r}? " if close else ""
                hint = f"; {guess}allowed options: {', '.join(allowed) or 'none'}"
            else:
                hint = "; remove it or check its spelling"
        elif e["type"] == "missing":
            hint = "; add it"
        nested = _NESTED_KEY.match(e["msg"]) if e["type"] == "value_error" else None
        if nested:
            # A model's validator names the item it rejects relative to the model: join the two keys.
            inner = f"{key}.{nested.group(1)}" if e["loc"] else nested.group(1)
            lines.append(f"  {inner}{nested.group(2)}{hint}")
            continue
        lines.append(f"  {key}: {e['msg']}{shown}{hint}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> FlywheelConfig:
    """Validate an already-loaded mapping; raise ConfigError naming each bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with 'applications:'")
    try:
        return FlywheelConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source, data)) from None


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file: ``path``, else ``$FLYWHEEL_CONFIG``, else ``./flywheel.yaml``."""
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()


def load_config(path: str | os.PathLike[str] | None = None) -> FlywheelConfig:
    """Read and validate the YAML configuration file."""
    p = config_path(path)
    if not p.is_file():
        raise ConfigError(f"configuration file {str(p)!r} not found; set ${CONFIG_ENV} or pass --config")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    return parse_config(data, str(p))
