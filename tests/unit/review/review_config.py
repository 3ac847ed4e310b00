"""A review configuration for the review unit tests."""

from __future__ import annotations

from typing import Any

from genai_flywheel.config import Application, parse_config

REVIEW: dict[str, Any] = {
    "label_schemas": [
        {"name": "is_correct", "input": "categorical", "options": ["correct", "incorrect"]},
        {"name": "corrected_answer", "type": "expectation", "input": "text"},
        {"name": "quality", "input": "numeric", "min_value": 1, "max_value": 5},
    ],
    "queues": [
        {
            "name": "wrong-answers",
            "schemas": ["is_correct", "corrected_answer", "quality"],
            "rules": ["negative_feedback"],
            "calibration_rate": 1.0,
            "calibration_cap": 2,
            "cap": 5,
        }
    ],
    "correct_schema": "is_correct",
    "correct_value": "correct",
    "correction_schema": "corrected_answer",
}


def application(review: dict[str, Any] | None = None, **extra: Any) -> Application:
    """An application with the curation rule ``negative_feedback`` and ``review``."""
    app = {
        "name": "demo",
        "mlflow": {"tracking_uri": "sqlite:///unused.db", "experiment": "demo"},
        "curation": {"rules": [{"name": "negative_feedback", "filter": "feedback.user_feedback = 'negative'"}]},
        "review": REVIEW if review is None else review,
        **extra,
    }
    return parse_config({"applications": [app]}).app("demo")
