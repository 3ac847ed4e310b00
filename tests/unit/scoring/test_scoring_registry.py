"""The scorer registry: names, options, versions, ``ref`` loading, judge skipping and errors."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from genai_flywheel.config import Application, PiiRedaction, ScorerSpec
from genai_flywheel.exceptions import ScorerError
from genai_flywheel.scoring import JudgeEndpoint, available_scorers, build_scorer, load_scorers

ENDPOINT = JudgeEndpoint(base_url="http://127.0.0.1:9/v1", api_key="sk-registry-secret", model="stub-judge")


def _app(*scorers: dict[str, Any], latency_ms: float = 5000.0) -> Application:
    return Application.model_validate(
        {
            "name": "demo",
            "mlflow": {"tracking_uri": "sqlite:///x.db", "experiment": "demo"},
            "scorers": list(scorers),
            "slo": {"latency_ms": latency_ms},
        }
    )


class _FakeTrace:
    """Just enough of an MLflow Trace for latency_slo: ``trace.info.execution_duration``."""

    def __init__(self, duration_ms: int) -> None:
        self.info = type("Info", (), {"execution_duration": duration_ms})()


def _spec(**kwargs: Any) -> ScorerSpec:
    return ScorerSpec.model_validate(kwargs)


def test_available_names() -> None:
    assert available_scorers() == [
        "freshness",
        "groundedness",
        "guidelines",
        "judge",
        "latency_slo",
        "pii",
        "refusal",
        "relevance",
        "relevance_to_query",
        "retrieval_groundedness",
        "safety",
    ]


def test_builtins_load_with_metadata() -> None:
    app = _app(*({"name": n} for n in ("relevance", "groundedness", "refusal", "pii", "latency_slo")))
    loaded = {s.name: s for s in load_scorers(app, None)}
    assert list(loaded) == ["relevance", "groundedness", "refusal", "pii", "latency_slo"]
    assert {n: s.needs_trace for n, s in loaded.items()} == {
        "relevance": False,
        "groundedness": True,
        "refusal": False,
        "pii": False,
        "latency_slo": True,
    }
    assert loaded["relevance"].threshold == 0.5 and loaded["groundedness"].threshold == 0.6
    assert loaded["refusal"].lower_is_better and loaded["pii"].lower_is_better
    assert not loaded["latency_slo"].lower_is_better
    for s in loaded.values():
        assert s.source_type == "CODE" and not s.is_judge and s.version.startswith("b1-")
        assert s.scorer.name == s.name


def test_versions_are_stable_and_track_options_not_thresholds() -> None:
    def version(**kwargs: Any) -> str:
        return build_scorer(_spec(**kwargs), _app()).version

    assert version(name="relevance") == version(name="relevance")
    assert version(name="relevance") == version(name="relevance", threshold=0.9)
    assert version(name="pii") != version(name="pii", options={"kinds": ["email"]})
    slow = build_scorer(_spec(name="latency_slo"), _app(latency_ms=9000.0)).version
    assert version(name="latency_slo") != slow
    assert version(name="latency_slo", options={"slo_ms": 9000.0}) == slow


def test_pii_scorer_takes_the_export_extra_patterns() -> None:
    base = _app()
    app = base.model_copy(
        update={"export": base.export.model_copy(update={"pii": PiiRedaction(extra_patterns=[r"\bTCK-\d+"])})}
    )
    loaded = build_scorer(_spec(name="pii"), app)
    assert loaded.scorer.run(outputs="ticket TCK-42").value is True
    assert build_scorer(_spec(name="pii"), _app()).scorer.run(outputs="ticket TCK-42").value is False
    assert loaded.version != build_scorer(_spec(name="pii"), _app()).version


def test_threshold_and_options_are_applied() -> None:
    loaded = build_scorer(_spec(name="relevance", threshold=0.9), _app())
    assert loaded.threshold == 0.9
    alias = build_scorer(_spec(name="groundedness", options={"threshold": 0.7}), _app())
    assert alias.threshold == 0.7
    slo = build_scorer(_spec(name="latency_slo", options={"slo_ms": 100}), _app())
    assert "100 ms" in slo.scorer.run(trace=_FakeTrace(150)).rationale


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "relevence"}, "unknown scorer 'relevence'; available: freshness, groundedness, guidelines"),
    ],
)
def test_bad_specs_raise_scorer_error(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ScorerError) as err:
        build_scorer(_spec(**spec), _app())
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "pii", "options": {"kind": ["email"]}}, "options.kind\n  Extra inputs are not permitted"),
        ({"name": "pii", "options": {"kinds": ["ssn"]}}, "options.kinds\n  Value error, unknown PII kinds ['ssn']"),
        ({"name": "relevance", "threshold": 0.5, "options": {"threshold": 0.6}}, "sets threshold twice"),
        ({"name": "latency_slo", "options": {"slo_ms": -1}}, "options.slo_ms\n  Input should be greater than 0"),
        ({"name": "refusal", "options": {"threshold": "high"}}, "options.threshold\n  Input should be a number"),
        ({"name": "guidelines"}, "options.guidelines\n  Field required"),
        ({"name": "judge"}, "options.instructions\n  Field required"),
        (
            {"name": "judge", "options": {"instructions": "x {{ outputs }}", "feedback_value_type": "dict"}},
            "options.feedback_value_type",
        ),
        ({"name": "safety", "options": {"strict": True}}, "options.strict\n  Extra inputs are not permitted"),
    ],
)
def test_bad_scorer_options_are_rejected_when_the_spec_is_read(spec: dict[str, Any], message: str) -> None:
    """Options are typed per built-in scorer and judge: a bad one fails when flywheel.yaml is loaded."""
    with pytest.raises(ValidationError) as err:
        _spec(**spec)
    assert message in str(err.value)


# -- ref: a user's @scorer ---------------------------------------------------------------------------

USER_MODULE = """
from mlflow.entities import Feedback
from mlflow.genai.scorers import scorer


@scorer
def word_count(outputs) -> Feedback:
    return Feedback(value=len(str(outputs).split()), rationale="counted")


@scorer
def uses_trace(trace):
    return trace is not None


def not_a_scorer(outputs):
    return 1
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"flywheel_user_scorers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_ref_loads_a_user_scorer(user_module: str) -> None:
    loaded = build_scorer(_spec(name="words", ref=f"{user_module}:word_count", threshold=3), _app())
    assert loaded.name == "words"
    assert loaded.source_type == "CODE" and not loaded.is_judge and not loaded.needs_trace
    assert loaded.version.startswith("u-") and len(loaded.version) == 14
    assert loaded.threshold == 3
    assert loaded.scorer.run(outputs="one two three").value == 3
    traced = build_scorer(_spec(name="traced", ref=f"{user_module}:uses_trace"), _app())
    assert traced.needs_trace


def test_ref_version_follows_the_source(user_module: str, tmp_path: Path) -> None:
    first = build_scorer(_spec(name="words", ref=f"{user_module}:word_count"), _app()).version
    other = build_scorer(_spec(name="traced", ref=f"{user_module}:uses_trace"), _app()).version
    assert first != other
    assert build_scorer(_spec(name="words", ref=f"{user_module}:word_count"), _app()).version == first


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
        ("{mod}:missing", "has no attribute 'missing'"),
        ("{mod}:not_a_scorer", "is a function, not an MLflow Scorer; decorate the function with @mlflow"),
    ],
)
def test_ref_errors_name_the_ref_and_the_fix(user_module: str, ref: str, message: str) -> None:
    ref = ref.format(mod=user_module)
    with pytest.raises(ScorerError) as err:
        build_scorer(_spec(name="mine", ref=ref), _app())
    assert ref in str(err.value) and message in str(err.value)


def test_ref_rejects_options(user_module: str) -> None:
    with pytest.raises(ScorerError, match="takes no options"):
        build_scorer(_spec(name="words", ref=f"{user_module}:word_count", options={"x": 1}), _app())


# -- judges ------------------------------------------------------------------------------------------


def test_judges_are_skipped_without_an_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    app = _app({"name": "relevance"}, {"name": "safety"}, {"name": "relevance_to_query"})
    with caplog.at_level(logging.INFO, logger="genai_flywheel.scoring.registry"):
        loaded = load_scorers(app, None)
    assert [s.name for s in loaded] == ["relevance"]
    skipped = [r.getMessage() for r in caplog.records]
    assert skipped == [
        "judge scorer safety skipped: no judge endpoint configured (set judge.conn_id)",
        "judge scorer relevance_to_query skipped: no judge endpoint configured (set judge.conn_id)",
    ]


def test_judges_load_with_an_endpoint() -> None:
    from mlflow.genai.scorers import Guidelines, RelevanceToQuery, RetrievalGroundedness, Safety

    app = _app(
        {"name": "relevance_to_query"},
        {"name": "safety"},
        {"name": "retrieval_groundedness"},
        {"name": "guidelines", "options": {"guidelines": ["Answer in English"]}},
        {
            "name": "judge",
            "options": {"instructions": "Is {{ outputs }} polite?", "feedback_value_type": "bool"},
        },
    )
    loaded = {s.name: s for s in load_scorers(app, ENDPOINT)}
    assert isinstance(loaded["relevance_to_query"].scorer, RelevanceToQuery)
    assert isinstance(loaded["safety"].scorer, Safety)
    assert isinstance(loaded["retrieval_groundedness"].scorer, RetrievalGroundedness)
    assert isinstance(loaded["guidelines"].scorer, Guidelines)
    for s in loaded.values():
        assert s.is_judge and s.source_type == "LLM_JUDGE" and s.version.startswith("j1-")
        assert s.scorer.model == "openai:/stub-judge"
        assert s.endpoint is ENDPOINT
        assert "sk-registry-secret" not in repr(s)
    assert loaded["retrieval_groundedness"].needs_trace
    assert not loaded["relevance_to_query"].needs_trace and not loaded["judge"].needs_trace


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "judge", "options": {"instructions": "no template variables"}}, "could not be built"),
    ],
)
def test_bad_judge_specs(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ScorerError) as err:
        build_scorer(_spec(**spec), _app(), ENDPOINT)
    assert message in str(err.value)


def test_build_scorer_for_a_judge_needs_an_endpoint() -> None:
    with pytest.raises(ScorerError, match="set judge.conn_id"):
        build_scorer(_spec(name="safety"), _app(), None)


def test_endpoint_hides_its_key_and_validates() -> None:
    assert "sk-registry-secret" not in repr(ENDPOINT)
    assert ENDPOINT.model_uri == "openai:/stub-judge"
    assert ENDPOINT.redact("bad key sk-registry-secret") == "bad key ***"
    assert [ENDPOINT.backoff(a) for a in range(3)] == [1.0, 2.0, 4.0]
    with pytest.raises(ScorerError, match="not an http"):
        JudgeEndpoint(base_url="127.0.0.1:9", api_key="k")
    with pytest.raises(ScorerError, match="no API key"):
        JudgeEndpoint(base_url="http://127.0.0.1:9", api_key="")
