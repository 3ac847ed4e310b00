"""The genai-flywheel Airflow plugin: the "GenAI Quality" page in the Airflow UI.

Registers a FastAPI app under ``/flywheel`` on the api-server and an external view that shows it in the
Airflow UI (menu Browse > GenAI Quality, route ``/plugin/genai-quality``, embedded in an iframe).

Every Airflow process imports this module (the scheduler, the DAG processor, each task), so it imports
nothing heavy: the app is registered as a :class:`~flywheel_airflow.ui.lazy.LazyASGIApp`, and FastAPI and
the flywheel library load on the first request to the page, in the api-server only.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from flywheel_airflow.ui.lazy import LazyASGIApp

URL_PREFIX = "/flywheel"
VIEW_NAME = "GenAI Quality"

app = LazyASGIApp("flywheel_airflow.ui.app:create_app")


class FlywheelPlugin(AirflowPlugin):
    """The GenAI Quality page: trends, alerts, judge budget, datasets and evaluations per application."""

    name = "genai_flywheel"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": VIEW_NAME}]
    external_views = [
        {
            "name": VIEW_NAME,
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "genai-quality",
        }
    ]
