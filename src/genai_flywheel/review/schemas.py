"""``review.label_schemas`` of ``flywheel.yaml`` -> MLflow label schemas, created once and checked after."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genai_flywheel.config import Review
    from genai_flywheel.review.backend import ReviewBackend


def schema_key(name: str) -> str:
    """The configuration key of the label schema ``name`` (errors name it)."""
    return f"review.label_schemas.{name}"


def queue_key(name: str) -> str:
    """The configuration key of the review queue ``name``."""
    return f"review.queues.{name}"


def mlflow_queue_name(app: str, queue: str) -> str:
    """The MLflow review queue of an application's purpose: ``<app>.<queue>`` (one experiment may hold
    several applications' queues)."""
    return f"{app}.{queue}"


def ensure_schemas(backend: ReviewBackend, review: Review, names: list[str] | None = None) -> dict[str, str]:
    """Create the declared label schemas that are missing (only ``names`` when given); name -> schema id.

    An existing schema of the same name must have the same type, input and options, else a ConfigError
    names its key: the answers of an old question must not be read as answers to a new one.
    """
    wanted = [s for s in review.label_schemas if names is None or s.name in names]
    return {spec.name: backend.ensure_label_schema(spec, schema_key(spec.name)) for spec in wanted}
