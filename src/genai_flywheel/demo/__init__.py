"""The demo GenAI application ("Acme Cloud" support assistant) and its production traffic simulator.

``genai_flywheel.demo.app`` holds the app (``SupportAssistant``, ``make_app``, ``predict_production``,
``predict_fixed``); ``genai_flywheel.demo.simulate`` writes days of its traffic, with planted incidents, to
MLflow (``simulate``). Neither imports MLflow until it traces or writes.
"""

from genai_flywheel.demo.app import SupportAssistant, make_app, predict_fixed, predict_production

__all__ = ["SupportAssistant", "make_app", "predict_fixed", "predict_production"]
