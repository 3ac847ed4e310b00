"""Configuration of per-segment alert rules: `flywheel config validate` names the bad key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_flywheel.config import parse_config
from genai_flywheel.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _with_rule(extra: dict[str, Any]) -> tuple[dict[str, Any], int]:
    data = yaml.safe_load((ROOT / "flywheel.yaml").read_text())
    alerts = data["applications"][0]["alerts"]
    alerts.append({"name": "per_topic", **extra})
    return data, len(alerts) - 1


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        (
            {"segment": "topics", "metric": "error_rate", "op": ">", "threshold": 0.1},
            "segment",
            r"dimension 'topics' is not declared; declare it under segments.dimensions or name one of "
            r"\['app_version', 'model', 'topic'\]",
        ),
        (
            {"segment": "topic", "metric": "tokens_total", "op": ">", "threshold": 1000},
            "metric",
            r"'tokens_total' is not computed per segment; use one of: volume, share, .*; or drop segment:",
        ),
        (
            {"segment": "topic", "metric": "scorer.relevancy.pass_rate", "op": "<", "threshold": 0.5},
            "metric",
            r"'scorer.relevancy.pass_rate' names scorer 'relevancy', which is not configured",
        ),
    ],
)
def test_a_per_segment_rule_on_an_unknown_dimension_or_metric_is_rejected_with_its_key(
    extra: dict[str, Any], key: str, message: str
) -> None:
    data, n = _with_rule(extra)
    where = rf"applications\[0\]\.alerts\[{n}\]\.{key} \(rule 'per_topic'[^)]*\): "
    with pytest.raises(ConfigError, match=where + message):
        parse_config(data)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"kind": "no_data", "segment": "topic"}, "segment: applies to threshold and baseline rules"),
        ({"metric": "error_rate", "op": ">", "threshold": 0.1, "fdr": 0.1}, "fdr: applies to per-segment rules"),
        (
            {"kind": "baseline", "segment": "topic", "metric": "error_rate", "op": ">", "baseline": {"alpha": 0.01}},
            "drop baseline.alpha and set fdr",
        ),
        ({"segment": "topic", "metric": "error_rate", "op": ">", "threshold": 0.1, "fdr": 0.0}, "greater than 0"),
    ],
)
def test_misplaced_segment_settings_are_rejected(extra: dict[str, Any], message: str) -> None:
    data, _ = _with_rule(extra)
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_per_segment_rules_parse_and_existing_rules_are_unchanged() -> None:
    data, _ = _with_rule({"kind": "baseline", "segment": "model", "metric": "latency_p95_ms", "op": ">"})
    app = parse_config(data).applications[0]
    rules = {r.name: r for r in app.alerts}
    assert (rules["per_topic"].segment, rules["per_topic"].fdr) == ("model", 0.05)
    assert (rules["topic_satisfaction"].segment, rules["topic_satisfaction"].threshold) == ("topic", 0.65)
    assert rules["topic_relevance"].metric == "scorer.relevance.pass_rate"
    assert all(r.segment is None for r in app.alerts if not r.name.startswith(("topic_", "per_")))
