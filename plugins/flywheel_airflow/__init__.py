"""Airflow adapters of genai-flywheel: DAG settings, hooks, notifiers and the UI plugin's app.

The logic lives in ``genai_flywheel`` (no Airflow there); this package only connects it to Airflow.
"""
