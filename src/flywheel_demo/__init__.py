"""The embedded default, beside the ``genai_flywheel`` library (which imports nothing of it): the demo GenAI
application ("Acme Cloud" support assistant), its production traffic simulator, and the tooling of
``make demo`` (the ``flywheel-demo`` command).

``flywheel_demo.app`` holds the app (``SupportAssistant``, ``make_app``, ``predict_production``,
``predict_fixed``); ``flywheel_demo.simulate`` writes days of its traffic, with planted incidents, to
MLflow (``simulate``); neither imports MLflow until it traces or writes. ``flywheel_demo.incidents`` shows
the planted incidents in the report, ``flywheel_demo.services`` supervises the local MLflow and Airflow
processes, ``flywheel_demo.run`` drives the whole demo and ``flywheel_demo.cli`` is its command line.
"""

from flywheel_demo.app import SupportAssistant, make_app, predict_fixed, predict_production

__all__ = ["SupportAssistant", "make_app", "predict_fixed", "predict_production"]
