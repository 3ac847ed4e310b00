from __future__ import annotations

import copy

import pytest
from review_config import REVIEW, application

from genai_flywheel.exceptions import ConfigError


def _review(**changes) -> dict:
    review = copy.deepcopy(REVIEW)
    review.update(changes)
    return review


def test_review_section_parses() -> None:
    app = application()
    assert [s.name for s in app.review.label_schemas] == ["is_correct", "corrected_answer", "quality"]
    assert app.review.queues[0].cap == 5


def test_queue_naming_an_undeclared_schema_names_the_key() -> None:
    review = _review(queues=[{"name": "q", "schemas": ["is_correct", "nope"]}])
    with pytest.raises(ConfigError, match=r"review: .*unknown label schema\(s\) \['nope'\]"):
        application(review)


def test_queue_naming_an_unknown_curation_rule_is_rejected() -> None:
    review = _review(queues=[{"name": "q", "schemas": ["is_correct"], "rules": ["no_such_rule"]}])
    with pytest.raises(ConfigError, match=r"unknown curation rule\(s\) \['no_such_rule'\]"):
        application(review)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"name": "v", "input": "categorical", "options": ["only"]}, "at least two options"),
        ({"name": "v", "input": "pass_fail", "options": ["a", "b", "c"]}, r"options \[positive, negative\]"),
        ({"name": "v", "input": "text", "options": ["a", "b"]}, "not 'text'"),
        ({"name": "v", "input": "numeric", "min_value": 5, "max_value": 1}, "must be below"),
        ({"name": "v", "input": "slider"}, r"review\.label_schemas\[0\]\.input"),
    ],
)
def test_bad_label_schema_is_named(schema: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        application({"label_schemas": [schema]})


def test_unknown_review_key_is_forbidden() -> None:
    with pytest.raises(ConfigError, match=r"review\.queue: Extra inputs are not permitted"):
        application({"queue": []})


def test_correct_value_must_be_an_option_of_the_correct_schema() -> None:
    with pytest.raises(ConfigError, match="correct_value"):
        application(_review(correct_value="right"))


def test_alert_rules_may_watch_calibration_metrics_of_configured_scorers() -> None:
    from genai_flywheel.metric_names import is_estimate, unknown_metric

    assert unknown_metric("calibration.relevance.agreement_rolling", ["relevance"]) is None
    assert unknown_metric("calibration.labels", []) is None
    assert "names scorer 'nope'" in unknown_metric("calibration.nope.kappa", ["relevance"])
    assert "not a metric" in unknown_metric("calibration.relevance.accuracy", ["relevance"])
    assert is_estimate("calibration.relevance.kappa") and not is_estimate("calibration.labels")
    rule = {"name": "drift", "metric": "calibration.relevance.agreement_rolling", "op": "<", "threshold": 0.7}
    app = application(scorers=[{"name": "relevance"}], alerts=[rule])
    assert app.alerts[0].metric == "calibration.relevance.agreement_rolling"


def test_alert_rules_may_watch_the_flagged_and_sample_count_calibration_metrics() -> None:
    from genai_flywheel.metric_names import is_estimate, unknown_metric

    assert unknown_metric("calibration.relevance.agreement_flagged_rolling", ["relevance"]) is None
    assert unknown_metric("calibration.relevance.kappa_flagged", ["relevance"]) is None
    assert unknown_metric("calibration.sample_labels_rolling", []) is None
    assert "not a metric" in unknown_metric("calibration.relevance.agreement_rolling_flagged", ["relevance"])
    assert is_estimate("calibration.relevance.correlation_flagged_rolling")
    assert not is_estimate("calibration.sample_labels")
