"""What ``flywheel config validate`` rejects up front: cron expressions, selection filters, rule and scorer
options; each error names the dotted key, the bad value and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_flywheel.config import load_config, parse_config
from genai_flywheel.config_options import QueryClustersOptions
from genai_flywheel.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _base() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "flywheel.yaml").read_text())


def _error(mutate: Any) -> str:
    data = _base()
    mutate(data["applications"][0])
    with pytest.raises(ConfigError) as err:
        parse_config(data, "flywheel.yaml")
    return str(err.value)


def test_the_repository_config_validates_with_typed_options() -> None:
    app = load_config(ROOT / "flywheel.yaml").app("support-assistant")
    clusters = app.curation.rules[0].options
    assert isinstance(clusters, QueryClustersOptions)
    assert (clusters.min_volume, clusters.max_clusters, clusters.min_evidence) == (25, 3, 2)  # given, given, default
    assert app.scorers[4].options.given() == {"slo_ms": 2500}  # an int stays an int: scorer versions hash it
    # A rule's options dump as written, so the manifest's rule-set digest does not move with the defaults.
    assert app.curation.rules[0].model_dump(mode="json")["options"] == {
        "score": "relevance",
        "min_volume": 25,
        "max_clusters": 3,
    }


@pytest.mark.parametrize(
    ("where", "key"),
    [
        (lambda app, v: app.__setitem__("schedule", v), "applications[0].schedule"),
        (lambda app, v: app["curation"].__setitem__("schedule", v), "applications[0].curation.schedule"),
        (lambda app, v: app["export"].__setitem__("schedule", v), "applications[0].export.schedule"),
    ],
)
@pytest.mark.parametrize("cron", ["99 99 * * *", "0 24 * * *", "0 0 32 * *", "0 0 * 13 *", "0 0 * * 8"])
def test_an_out_of_range_cron_field_is_rejected_wherever_a_schedule_is(where: Any, key: str, cron: str) -> None:
    message = _error(lambda app: where(app, cron))
    assert f"{key}: Value error, {cron!r} is not a valid cron expression" in message
    assert "use e.g. '0 */6 * * *'" in message


def test_a_schedule_that_is_not_five_fields_is_still_rejected() -> None:
    message = _error(lambda app: app["export"].__setitem__("schedule", "@daily"))
    assert "applications[0].export.schedule: Value error, '@daily' is not a 5-field cron expression" in message


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda app, f: app["sampling"].__setitem__("filter", f), "applications[0].sampling.filter"),
        (
            lambda app, f: app["sampling"]["strata"][1].__setitem__("filter", f),
            "applications[0].sampling.strata[1].filter",
        ),
        (
            lambda app, f: app["curation"]["rules"][2].__setitem__("filter", f),
            "applications[0].curation.rules[2].filter",
        ),
        (
            lambda app, f: app["curation"]["rules"][0].__setitem__("filter", f),
            "applications[0].curation.rules[0].filter",
        ),
    ],
)
def test_a_malformed_filter_is_rejected_at_load_with_the_parsers_position(mutate: Any, key: str) -> None:
    bad = "trace.status = 'ERROR' AND"
    message = _error(lambda app: mutate(app, bad))
    assert f"{key}: Value error, malformed selection filter:" in message
    assert "(at position 26)" in message  # the parser's pointer at the missing operand
    assert f"(got {bad!r})" in message


def test_an_unknown_rule_option_is_named_with_the_closest_allowed_one() -> None:
    message = _error(lambda app: app["curation"]["rules"][0]["options"].__setitem__("min_volum", 5))
    assert "applications[0].curation.rules[0].options.min_volum: Extra inputs are not permitted (got 5)" in message
    assert "did you mean 'min_volume'? allowed options: feedback, good_quality, max_clusters" in message


def test_an_option_of_another_rule_kind_is_unknown() -> None:
    message = _error(lambda app: app["curation"]["rules"][5]["options"].__setitem__("max_clusters", 3))
    assert "applications[0].curation.rules[5].options.max_clusters: Extra inputs are not permitted" in message
    assert "require_positive_feedback" in message  # the regression guard's own options are listed


@pytest.mark.parametrize(
    ("rule", "option", "value", "expected"),
    [
        (0, "min_volume", "many", "Input should be a valid integer"),
        (0, "min_volume", 0, "Input should be greater than or equal to 1"),
        (0, "max_score", True, "Input should be a number"),
        (0, "method", "kmeans", "Input should be 'signature' or 'jaccard'"),
        (0, "threshold", 1.5, "Input should be less than or equal to 1"),
        (2, "order", "random", "Input should be 'worst', 'best' or 'newest'"),
        (5, "require_positive_feedback", "yes", "Input should be a valid boolean"),
        (2, "scores", 5, "Input should be a name or a non-empty list of them, e.g. [relevance, groundedness]"),
    ],
)
def test_a_rule_option_of_the_wrong_type_names_key_and_value(rule: int, option: str, value: Any, expected: str) -> None:
    def mutate(app: dict) -> None:
        app["curation"]["rules"][rule].setdefault("options", {})[option] = value

    message = _error(mutate)
    assert f"applications[0].curation.rules[{rule}].options.{option}: {expected} (got {value!r})" in message


def test_a_filter_rule_without_a_filter_is_rejected() -> None:
    message = _error(lambda app: app["curation"]["rules"][1].pop("filter"))
    assert (
        "applications[0].curation.rules[1]: Value error, curation rule 'negative_feedback' of kind 'filter'" in message
    )


@pytest.mark.parametrize(
    ("scorer", "options", "expected"),
    [
        (4, {"slo_ms": "fast"}, "applications[0].scorers[4].options.slo_ms: Input should be a number (got 'fast')"),
        (4, {"slo_ms": 0}, "applications[0].scorers[4].options.slo_ms: Input should be greater than 0 (got 0)"),
        (4, {"slo": 100}, "options.slo: Extra inputs are not permitted (got 100); did you mean 'slo_ms'?"),
        (3, {"kinds": ["ssn"]}, "applications[0].scorers[3].options.kinds: Value error, unknown PII kinds ['ssn']"),
        (
            3,
            {"extra_patterns": ["("]},
            "scorers[3].options.extra_patterns: Value error, extra_patterns[0] = '(' is not a valid regular expression",
        ),
        (
            2,
            {"extra_phrases": "sorry"},
            "applications[0].scorers[2].options.extra_phrases: Input should be a valid list",
        ),
        (5, {"strict": True}, "options.strict: Extra inputs are not permitted (got True); allowed options: none"),
        (
            1,
            {"sentence_overlap": None},
            "applications[0].scorers[1].options: Value error, option(s) ['sentence_overlap']",
        ),
    ],
)
def test_a_builtin_scorer_or_judge_option_is_checked_at_load(scorer: int, options: dict, expected: str) -> None:
    message = _error(lambda app: app["scorers"][scorer].__setitem__("options", options))
    assert expected in message


def test_judge_options_are_typed() -> None:
    def add(spec: dict) -> Any:
        return lambda app: app["scorers"].append(spec)

    missing = _error(add({"name": "judge"}))
    assert "applications[0].scorers[7].options.instructions: Field required; add it" in missing
    bad_type = _error(
        add({"name": "judge", "options": {"instructions": "Is {{ outputs }} ok?", "feedback_value_type": "dict"}})
    )
    assert "applications[0].scorers[7].options.feedback_value_type" in bad_type
    assert "Input should be one of yes_no, bool, float, int, str or a list of allowed values" in bad_type
    assert "(got 'dict')" in bad_type
    empty = _error(add({"name": "guidelines", "options": {"guidelines": []}}))
    assert "applications[0].scorers[7].options.guidelines: Input should be a rule or a non-empty list of them" in empty


def test_a_ref_scorer_keeps_free_form_options() -> None:
    data = _base()
    data["applications"][0]["scorers"].append({"name": "mine", "ref": "my_pkg.scorers:tone", "options": {"any": [1]}})
    assert parse_config(data).applications[0].scorers[7].options == {"any": [1]}


def test_threshold_set_twice_is_rejected_at_load() -> None:
    message = _error(lambda app: app["scorers"][0].__setitem__("options", {"threshold": 0.7}))
    assert "applications[0].scorers[0]: Value error, scorer 'relevance' sets threshold twice (0.5 and" in message
    assert "keep only 'threshold:'" in message


def test_an_unknown_rule_kind_is_reported_alone() -> None:
    message = _error(lambda app: app["curation"]["rules"][0].__setitem__("kind", "clusters"))
    assert "1 invalid setting(s)" in message  # not also every option the unknown kind cannot check
    assert "applications[0].curation.rules[0].kind: Input should be 'filter', 'query_clusters'" in message
