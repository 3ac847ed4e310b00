"""The "GenAI Quality" page of the Airflow UI: a read-only FastAPI app mounted by the flywheel plugin.

Modules: :mod:`.lazy` (the ASGI wrapper the plugin registers, so only the api-server builds the app),
:mod:`.app` (routes: the HTML page and the JSON API), :mod:`.collect` (what is read from the data root),
:mod:`.links` (MLflow and Airflow links) and :mod:`.page` (HTML rendering with the report's SVG charts).

Nothing is imported here: every Airflow process loads the plugin, and only the api-server serves the page.
"""
