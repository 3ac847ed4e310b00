"""The scorer registry: turn an application's ``scorers:`` list into ready MLflow scorers.

Names: the built-in heuristics (``relevance``, ``groundedness``, ``refusal``, ``pii``, ``latency_slo``,
``freshness``),
MLflow's judges (``relevance_to_query``, ``safety``, ``retrieval_groundedness``, ``guidelines``,
``judge``), or any name with ``ref: "module:function"`` pointing at a user's ``@scorer``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from genai_flywheel.config_options import BUILTIN_OPTIONS, JUDGE_OPTIONS, validated
from genai_flywheel.exceptions import ScorerError
from genai_flywheel.scoring import builtin
from genai_flywheel.scoring.heuristics import PII_KINDS
from genai_flywheel.scoring.judges import JudgeEndpoint, build_judge

if TYPE_CHECKING:
    from mlflow.genai.scorers import Scorer

    from genai_flywheel.config import Application, ScorerSpec

logger = logging.getLogger(__name__)

SourceType = Literal["CODE", "LLM_JUDGE"]


@dataclass(frozen=True)
class LoadedScorer:
    """A configured scorer, ready for :func:`genai_flywheel.scoring.runner.score_table`.

    ``passed`` is ``numeric >= threshold``, or ``numeric <= threshold`` when ``lower_is_better`` (the
    ``refusal`` and ``pii`` flags, where True is bad). For boolean and yes/no values without a
    threshold, the threshold is 1 (0 when ``lower_is_better``); numeric values without one have no
    pass/fail. ``endpoint`` (judges only) carries the retry policy; its key never appears in ``repr``.
    """

    name: str
    scorer: Scorer
    version: str
    source_type: SourceType
    threshold: float | None
    needs_trace: bool
    is_judge: bool
    lower_is_better: bool = False
    endpoint: JudgeEndpoint | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class _Builtin:
    factory: Callable[..., Scorer]
    defaults: Callable[[Application], dict[str, Any]]
    threshold: float | None
    lower_is_better: bool = False
    threshold_option: bool = False  # whether the factory takes ``threshold``


BUILTINS: dict[str, _Builtin] = {
    "relevance": _Builtin(
        builtin.relevance_scorer, lambda app: {}, builtin.DEFAULT_RELEVANCE_THRESHOLD, threshold_option=True
    ),
    "groundedness": _Builtin(
        builtin.groundedness_scorer,
        lambda app: {"sentence_overlap": builtin.DEFAULT_SENTENCE_OVERLAP},
        builtin.DEFAULT_GROUNDEDNESS_THRESHOLD,
        threshold_option=True,
    ),
    "refusal": _Builtin(builtin.refusal_scorer, lambda app: {"extra_phrases": []}, None, lower_is_better=True),
    # The export's extra patterns are PII to the scorer too: what it flags is what the export redacts.
    "pii": _Builtin(
        builtin.pii_scorer,
        lambda app: {"kinds": list(PII_KINDS), "extra_patterns": list(app.export.pii.extra_patterns)},
        None,
        lower_is_better=True,
    ),
    "latency_slo": _Builtin(builtin.latency_slo_scorer, lambda app: {"slo_ms": app.slo.latency_ms}, None),
    "freshness": _Builtin(
        builtin.freshness_scorer,
        lambda app: {
            "stale": {k: list(v) for k, v in builtin.DEFAULT_STALE_METADATA.items()},
            "updated_key": builtin.DEFAULT_UPDATED_KEY,
        },
        None,
    ),
}
JUDGES = tuple(sorted(JUDGE_OPTIONS))


def available_scorers() -> list[str]:
    """Every name a ``scorers:`` entry can use without ``ref``."""
    return sorted([*BUILTINS, *JUDGES])


def _hash(payload: Any, length: int = 10) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def scorer_needs_trace(scorer: Any) -> bool:
    """Whether ``scorer`` reads the ``trace`` argument (so the runner must rebuild the Trace).

    MLflow built-in judges declare ``required_columns``; ``make_judge`` judges their template variables;
    ``@scorer`` functions their parameters.
    """
    required = getattr(scorer, "required_columns", None)
    if isinstance(required, set | frozenset):
        return "trace" in required
    template_variables = getattr(type(scorer), "template_variables", None)
    if isinstance(template_variables, property):
        return "trace" in scorer.template_variables
    try:
        return "trace" in inspect.signature(scorer.__call__).parameters
    except (TypeError, ValueError):
        return True


def _is_judge(scorer: Any) -> bool:
    from mlflow.genai.judges import Judge

    return isinstance(scorer, Judge)


def _source_hash(obj: Any) -> str:
    from genai_flywheel.mlflow_compat import scorer_function

    func = scorer_function(obj)
    target = func if func is not None else type(obj)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        # No source on disk (e.g. defined in a REPL): fall back to the serialised scorer.
        try:
            source = json.dumps(obj.model_dump(), sort_keys=True, default=str)
        except Exception:  # an unserialisable scorer: version by its qualified name only
            source = f"{type(obj).__module__}.{type(obj).__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def load_ref(ref: str) -> Scorer:
    """Import ``module:attribute`` and check it is an MLflow ``Scorer``."""
    from mlflow.genai.scorers import Scorer

    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ScorerError(f"scorer ref {ref!r} is not 'module:function'; e.g. ref: my_pkg.scorers:tone")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise ScorerError(
            f"scorer ref {ref!r}: cannot import module {module_name!r} ({type(err).__name__}: {err}); "
            "install it in the Airflow workers' environment or fix the module path"
        ) from err
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ScorerError(
            f"scorer ref {ref!r}: module {module_name!r} has no attribute {attr!r}; check the function name"
        ) from None
    if not isinstance(obj, Scorer):
        raise ScorerError(
            f"scorer ref {ref!r} is a {type(obj).__name__}, not an MLflow Scorer; decorate the function "
            "with @mlflow.genai.scorers.scorer (or use an MLflow judge)"
        )
    return obj


def _builtin_options(spec: ScorerSpec, app: Application, entry: _Builtin) -> tuple[dict[str, Any], float | None]:
    """(factory options: the defaults overridden by those written, threshold). ``options.threshold`` is an
    alias of ``threshold:`` (the config rejects two different values)."""
    options = validated(BUILTIN_OPTIONS[spec.name], spec.options, f"scorer {spec.name!r}")
    threshold = spec.threshold if spec.threshold is not None else options.threshold
    given = options.given(exclude={"threshold"})
    return {**entry.defaults(app), **given}, (float(threshold) if threshold is not None else None)


def build_scorer(spec: ScorerSpec, app: Application, judge: JudgeEndpoint | None = None) -> LoadedScorer:
    """The :class:`LoadedScorer` for one ``scorers:`` entry.

    Raises :class:`ScorerError` for an unknown name, a bad option, an unimportable ``ref`` or a judge
    without ``judge`` endpoint.
    """
    if spec.ref:
        obj = load_ref(spec.ref)
        if spec.options:
            raise ScorerError(
                f"scorer {spec.name!r} (ref {spec.ref!r}) takes no options; configure the function itself"
            )
        is_judge = _is_judge(obj)
        return LoadedScorer(
            name=spec.name,
            scorer=obj,
            version=f"u-{_source_hash(obj)}",
            source_type="LLM_JUDGE" if is_judge else "CODE",
            threshold=spec.threshold,
            needs_trace=scorer_needs_trace(obj),
            is_judge=is_judge,
            endpoint=judge if is_judge else None,
        )

    if spec.name in BUILTINS:
        entry = BUILTINS[spec.name]
        options, threshold = _builtin_options(spec, app, entry)
        kwargs = dict(options)
        if entry.threshold_option:
            kwargs["threshold"] = threshold if threshold is not None else entry.threshold
        try:
            obj = entry.factory(**kwargs)
        except (TypeError, ValueError) as err:
            raise ScorerError(f"scorer {spec.name!r}: {err}") from None
        return LoadedScorer(
            name=spec.name,
            scorer=obj,
            # The threshold only decides pass/fail, not the value, so it is not part of the version.
            version=f"b{builtin.BUILTIN_VERSION}-{_hash({'name': spec.name, 'options': options}, 8)}",
            source_type="CODE",
            threshold=threshold if threshold is not None else entry.threshold,
            needs_trace=scorer_needs_trace(obj),
            is_judge=False,
            lower_is_better=entry.lower_is_better,
        )

    if spec.name in JUDGE_OPTIONS:
        if judge is None:
            raise ScorerError(
                f"judge scorer {spec.name!r} needs a judge endpoint; set judge.conn_id to an "
                "OpenAI-compatible Connection"
            )
        options = validated(JUDGE_OPTIONS[spec.name], spec.options, f"judge scorer {spec.name!r}")
        obj = build_judge(spec.name, options, judge)
        import mlflow

        fingerprint = {
            "name": spec.name,
            "model": judge.model_uri,
            "options": options.given(),
            # A judge's prompt ships with MLflow, so a new MLflow is a new judge.
            "mlflow": mlflow.__version__,
        }
        return LoadedScorer(
            name=spec.name,
            scorer=obj,
            version=f"j1-{_hash(fingerprint, 8)}",
            source_type="LLM_JUDGE",
            threshold=spec.threshold,
            needs_trace=scorer_needs_trace(obj),
            is_judge=True,
            endpoint=judge,
        )

    raise ScorerError(
        f"unknown scorer {spec.name!r}; available: {', '.join(available_scorers())}, "
        "or set ref: 'module:function' for your own @scorer"
    )


def _is_judge_spec(spec: ScorerSpec) -> bool:
    return spec.ref is None and spec.name in JUDGE_OPTIONS


def load_scorers(app: Application, judge: JudgeEndpoint | None = None) -> list[LoadedScorer]:
    """Every configured scorer of ``app``, in configuration order.

    Judge scorers are skipped (one log line each, not an error) when no ``judge`` endpoint is given.
    """
    loaded: list[LoadedScorer] = []
    for spec in app.scorers:
        if judge is None and _is_judge_spec(spec):
            logger.warning("judge scorer %s skipped: no judge endpoint configured (set judge.conn_id)", spec.name)
            continue
        item = build_scorer(spec, app, judge)
        if item.is_judge and item.endpoint is None:
            logger.warning("judge scorer %s skipped: no judge endpoint configured (set judge.conn_id)", spec.name)
            continue
        loaded.append(item)
    return loaded


def describe(scorers: list[LoadedScorer]) -> list[Mapping[str, Any]]:
    """Plain dicts describing ``scorers`` (name, version, source, threshold) for logs and run params."""
    return [
        {
            "name": s.name,
            "version": s.version,
            "source_type": s.source_type,
            "threshold": s.threshold,
            "needs_trace": s.needs_trace,
        }
        for s in scorers
    ]
