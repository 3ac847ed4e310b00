"""Typed ``options`` of curation rules and built-in scorers, validated when ``flywheel.yaml`` is loaded.

One model per curation rule kind (``filter``, ``query_clusters``, ``regression_guard``, ``segment_alerts``)
and per built-in scorer or MLflow judge; each forbids unknown keys, so ``flywheel config validate`` names a
misspelt option (``applications[0].curation.rules[2].options.min_volume``) instead of a task failing hours
later. A scorer with ``ref: module:function`` keeps free-form options. Numbers keep the type written in the
YAML (an ``int`` stays an ``int``): scorer versions hash their options, and must not change when this file
is read by a newer version of the project.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from genai_flywheel.exceptions import ConfigError


def number(*, gt: float | None = None, ge: float | None = None, le: float | None = None) -> Any:
    """A finite int or float within the bounds, kept as written (not a bool, not a string).

    One validator instead of a ``StrictInt | StrictFloat`` union, whose errors would name the union's
    members (``options.min_score.int``) instead of the key.
    """

    def check(value: Any, _handler: ValidatorFunctionWrapHandler) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PydanticCustomError("number_type", "Input should be a number")
        for broken, bound in (
            (gt is not None and value <= gt, f"greater than {gt}"),
            (ge is not None and value < ge, f"greater than or equal to {ge}"),
            (le is not None and value > le, f"less than or equal to {le}"),
        ):
            if broken:
                raise PydanticCustomError("number_range", "Input should be {bound}", {"bound": bound})
        return value

    return Annotated[int | float, WrapValidator(check)]


Number = number()
NonNegative = number(ge=0)
Unit = number(ge=0, le=1)


def _checked(accepts: Any, message: str, annotation: Any) -> Any:
    """``annotation`` validated by ``accepts(value)`` alone, with one error ``message`` (no per-member
    errors of a union)."""

    def check(value: Any, _handler: ValidatorFunctionWrapHandler) -> Any:
        if not accepts(value):
            raise PydanticCustomError("value_type", message)
        return value

    return Annotated[annotation, WrapValidator(check)]


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _texts(what: str, example: str) -> Any:
    """A non-blank string or a non-empty list of them (``what``, e.g. ``example``)."""
    return _checked(
        lambda v: _is_name(v) or (isinstance(v, list) and bool(v) and all(_is_name(x) for x in v)),
        f"Input should be {what} or a non-empty list of them, e.g. {example}",
        str | list[str],
    )


Names = _texts("a name", "[relevance, groundedness]")
DEFAULT_FEEDBACK = "user_feedback"


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def names(value: str | list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A ``scores`` option as a tuple of names (``default`` when unset)."""
    if value is None:
        return default
    return (value,) if isinstance(value, str) else tuple(value)


# -- curation rules ------------------------------------------------------------------------------------


class ClusterMethodOptions(_Options):
    """How queries are clustered: ``signature`` (shared key terms) or ``jaccard`` (term-set similarity)."""

    method: Literal["signature", "jaccard"] = "signature"
    signature_terms: StrictInt = Field(default=2, ge=1, le=10, description="Key terms per signature")
    threshold: number(gt=0, le=1) = Field(default=0.5, description="Jaccard similarity to join a cluster")


class ClusterStatsOptions(ClusterMethodOptions):
    """What makes a query cluster bad (see :func:`genai_flywheel.curation.clusters.cluster_stats`)."""

    score: StrictStr | None = "relevance"
    feedback: StrictStr | None = DEFAULT_FEEDBACK
    min_volume: StrictInt = Field(default=5, ge=1)
    max_score: Number = 0.5
    min_negative_rate: Number = 0.3
    min_evidence: StrictInt = Field(default=2, ge=1)
    prior_weight: NonNegative = 5.0
    recent_hours: NonNegative = 24.0

    def stats_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``cluster_stats`` (everything but the clustering method)."""
        return self.model_dump(include=set(ClusterStatsOptions.model_fields) - set(ClusterMethodOptions.model_fields))


class FilterRuleOptions(_Options):
    """``kind: filter``: the filter's traces, ranked by ``order``."""

    scores: Names | None = Field(default=None, description="Assessments whose lowest value ranks a trace")
    feedback: StrictStr | None = DEFAULT_FEEDBACK
    order: Literal["worst", "best", "newest"] = "worst"


class QueryClustersOptions(ClusterStatsOptions):
    """``kind: query_clusters``: the worst traces of the worst query clusters."""

    max_clusters: StrictInt = Field(default=5, ge=0)
    per_cluster_cap: StrictInt | None = Field(default=None, ge=1, description="Default: cap // max_clusters")
    scores: Names | None = Field(default=None, description="Default: [score]")
    good_quality: Number = 0.8


class RegressionGuardOptions(ClusterMethodOptions):
    """``kind: regression_guard``: good interactions spread across query clusters."""

    min_score: Number = 0.8
    scores: Names | None = None
    feedback: StrictStr | None = DEFAULT_FEEDBACK
    require_positive_feedback: StrictBool = False


class SegmentAlertsOptions(FilterRuleOptions):
    """``kind: segment_alerts``: traces of the segments per-segment alert rules fired on, in the intervals
    they fired in, ranked by ``order``."""

    alert_rules: Names | None = Field(
        default=None, description="Per-segment alert rules (alerts[].segment) to follow; default: every one"
    )


RULE_OPTIONS: dict[str, type[_Options]] = {
    "filter": FilterRuleOptions,
    "query_clusters": QueryClustersOptions,
    "regression_guard": RegressionGuardOptions,
    "segment_alerts": SegmentAlertsOptions,
}
RuleOptions = FilterRuleOptions | QueryClustersOptions | RegressionGuardOptions | SegmentAlertsOptions


# -- scorers -------------------------------------------------------------------------------------------


class _ScorerOptions(_Options):
    """Options passed to a built-in scorer's factory; an unset option takes the registry's default."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k, v in data.items() if v is None)
            if nulls:
                raise ValueError(f"option(s) {nulls} are null; remove them to use the defaults")
        return data

    def given(self, *, exclude: set[str] | None = None) -> dict[str, Any]:
        """The options written in the YAML, as written (defaults are the registry's)."""
        return self.model_dump(exclude_unset=True, exclude=exclude)


class ThresholdOptions(_ScorerOptions):
    """``relevance``: ``threshold`` (an alias of the scorer's ``threshold:``)."""

    threshold: Number | None = None


class GroundednessOptions(ThresholdOptions):
    sentence_overlap: Unit | None = None


class RefusalOptions(ThresholdOptions):
    extra_phrases: list[StrictStr] | None = None


class PiiOptions(ThresholdOptions):
    kinds: list[StrictStr] | None = None
    extra_patterns: list[StrictStr] | None = Field(default=None, description="Default: export.pii.extra_patterns")

    @field_validator("kinds")
    @classmethod
    def _known(cls, kinds: list[str] | None) -> list[str] | None:
        from genai_flywheel.pii import check_kinds

        check_kinds(kinds or ())
        return kinds

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str] | None) -> list[str] | None:
        from genai_flywheel.pii import compile_patterns

        try:
            compile_patterns(patterns or (), setting="extra_patterns")
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return patterns


class LatencySloOptions(ThresholdOptions):
    slo_ms: number(gt=0) | None = Field(default=None, description="Default: the application's slo.latency_ms")


class FreshnessOptions(ThresholdOptions):
    stale: dict[StrictStr, list[StrictStr]] | None = Field(
        default=None,
        description="Metadata values that mark a retrieved document stale, by key "
        "(default: status archived, deprecated, retired, obsolete; {} for none)",
    )
    max_age_days: number(gt=0) | None = Field(default=None, description="Stale when last updated longer ago")
    updated_key: StrictStr | None = Field(default=None, description="The metadata key of the update time")


class NoOptions(_ScorerOptions):
    """A judge that takes no options."""


class GuidelinesOptions(_ScorerOptions):
    guidelines: _texts("a rule", "['The answer must be polite']") = Field(description="The rules to follow")


FeedbackValueType = Literal["yes_no", "bool", "float", "int", "str"]


class JudgeOptions(_ScorerOptions):
    """``judge`` (MLflow ``make_judge``): a prompt with ``{{ inputs }}``/``{{ outputs }}``/... variables."""

    instructions: Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]
    feedback_value_type: _checked(
        lambda v: (
            v in get_args(FeedbackValueType)
            or (isinstance(v, list) and bool(v) and all(isinstance(x, str | int | float) for x in v))
        ),
        f"Input should be one of {', '.join(get_args(FeedbackValueType))} or a list of allowed values, "
        "e.g. [good, bad]",
        str | list[Any],
    ) = "yes_no"
    description: StrictStr | None = None


BUILTIN_OPTIONS: dict[str, type[_ScorerOptions]] = {
    "relevance": ThresholdOptions,
    "groundedness": GroundednessOptions,
    "refusal": RefusalOptions,
    "pii": PiiOptions,
    "latency_slo": LatencySloOptions,
    "freshness": FreshnessOptions,
}
JUDGE_OPTIONS: dict[str, type[_ScorerOptions]] = {
    "relevance_to_query": NoOptions,
    "safety": NoOptions,
    "retrieval_groundedness": NoOptions,
    "guidelines": GuidelinesOptions,
    "judge": JudgeOptions,
}
ScorerOptions = _ScorerOptions


def validated(model: type[BaseModel], options: Any, owner: str) -> Any:
    """``options`` validated as ``model`` for callers outside a config file; ConfigError naming each bad
    option (``owner`` says whose)."""
    if isinstance(options, model):
        return options
    try:
        return model.model_validate(options)
    except ValidationError as err:
        problems = "; ".join(
            f"option {'.'.join(str(p) for p in e['loc']) or '<options>'}={e.get('input')!r}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"{owner}: {problems}") from None
