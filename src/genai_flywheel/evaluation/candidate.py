"""The candidate under evaluation: a ``module:function`` entry point or an MLflow model URI, as a predict_fn.

``mlflow.genai.evaluate`` calls ``predict_fn(**inputs)`` with each record's inputs dict (e.g.
``{"query": ...}``), so an entry point takes the app's own keyword arguments. A model URI (``models:/name/3``,
``models:/name@champion``, ``runs:/<run_id>/model``) is loaded once with ``mlflow.pyfunc.load_model`` and
called with the inputs dict; a one-element prediction (list, array, Series, one-row DataFrame) is unwrapped.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genai_flywheel.exceptions import ConfigError

logger = logging.getLogger(__name__)

_ENTRY_POINT = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)$")
_MODEL_URI = re.compile(r"^(?:models|runs):/\S+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Candidate:
    """A resolved candidate: its spec as given, a short name for run names, and the callable."""

    spec: str
    short_name: str
    predict_fn: Callable[..., Any]
    kind: str  # "entry_point" | "model"


def short_name(spec: str) -> str:
    """A short, run-name-safe name: ``pkg.app:predict_fixed`` -> ``predict_fixed``,
    ``models:/assistant/3`` -> ``assistant-3``, ``runs:/0123abcd.../model`` -> ``run-0123abcd``."""
    spec = spec.strip()
    match = _ENTRY_POINT.match(spec)
    if match:
        name = match.group("attr").split(".")[-1]
    elif spec.startswith("runs:/"):
        name = "run-" + spec.removeprefix("runs:/").split("/", 1)[0][:8]
    elif spec.startswith("models:/"):
        name = "-".join(p for p in re.split(r"[/@]", spec.removeprefix("models:/")) if p)
    else:
        name = spec
    return _UNSAFE.sub("-", name).strip("-")[:60] or "candidate"


def _unwrap(prediction: Any) -> Any:
    """A single prediction out of pyfunc's batch-shaped return values."""
    # Duck-typed so that plain predictions never pay for importing pandas.
    if hasattr(prediction, "iloc") and hasattr(prediction, "columns"):  # a DataFrame
        if len(prediction) == 1:
            row = prediction.iloc[0].to_dict()
            return next(iter(row.values())) if len(row) == 1 else row
        return prediction.to_dict(orient="records")
    if hasattr(prediction, "tolist") and not isinstance(prediction, str | bytes):
        prediction = prediction.tolist()  # numpy arrays and pandas Series
    if isinstance(prediction, list | tuple) and len(prediction) == 1:
        return prediction[0]
    return prediction


def _load_entry_point(spec: str) -> Callable[..., Any]:
    match = _ENTRY_POINT.match(spec)
    if not match:
        raise ConfigError(
            f"candidate {spec!r} is neither module:function nor an MLflow model URI; use e.g. "
            "'my_app.serving:predict', 'models:/assistant/3' or 'runs:/<run_id>/model'"
        )
    module_name, attr = match.group("module"), match.group("attr")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"candidate {spec!r}: cannot import module {module_name!r} ({err}); check the name and that the "
            "package is installed where the task runs"
        ) from err
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"candidate {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise ConfigError(f"candidate {spec!r} is a {type(target).__name__}, not a callable")
    return target


def _load_model(spec: str, tracking_uri: str | None) -> Callable[..., Any]:
    import mlflow

    try:
        if tracking_uri:
            from genai_flywheel.mlflow_compat import use_tracking_uri

            with use_tracking_uri(tracking_uri):
                model = mlflow.pyfunc.load_model(spec)
        else:
            model = mlflow.pyfunc.load_model(spec)
    except Exception as err:  # MLflow raises several kinds for a bad or unreachable URI
        raise ConfigError(f"candidate model {spec!r} cannot be loaded: {err}; check the URI and registry") from err

    def predict_fn(**inputs: Any) -> Any:
        try:
            return _unwrap(model.predict(inputs))
        except Exception:  # some signatures only accept a DataFrame; retry in that shape
            import pandas as pd

            return _unwrap(model.predict(pd.DataFrame([inputs])))

    predict_fn.__name__ = short_name(spec).replace("-", "_")
    return predict_fn


def resolve_candidate(spec: str, *, tracking_uri: str | None = None) -> Candidate:
    """Resolve a candidate spec into a :class:`Candidate` (imports or loads it now, so a typo fails early)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("no candidate given; set evaluation.candidate or pass the 'candidate' param")
    spec = spec.strip()
    if _MODEL_URI.match(spec):
        return Candidate(spec, short_name(spec), _load_model(spec, tracking_uri), "model")
    return Candidate(spec, short_name(spec), _load_entry_point(spec), "entry_point")
