"""The demo GenAI application ("Acme Cloud" support assistant) and its production traffic simulator.

``flywheel_demo.app`` holds the app (``SupportAssistant``, ``make_app``, ``predict_production``,
``predict_fixed``); ``flywheel_demo.simulate`` writes days of its traffic, with planted incidents, to
MLflow (``simulate``). Neither imports MLflow until it traces or writes.
"""

from flywheel_demo.app import SupportAssistant, make_app, predict_fixed, predict_production

__all__ = ["SupportAssistant", "make_app", "predict_fixed", "predict_production"]
