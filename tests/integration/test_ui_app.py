"""The flywheel plugin as Airflow loads it: registration, the plugins API model, a light import, and the
app mounted by Airflow's own ``init_plugins`` behind Airflow authentication."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_registers_the_fastapi_app_and_the_external_view() -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse

    plugins, errors = plugins_manager._get_plugins()
    assert not {path: e for path, e in errors.items() if "flywheel" in path}, errors
    mine = [p for p in plugins if p.name == "genai_flywheel"]
    assert len(mine) == 1
    assert str(mine[0].source).endswith("flywheel_plugin.py")  # the loader skipped flywheel_airflow/

    apps, _ = plugins_manager.get_fastapi_plugins()
    [entry] = [a for a in apps if a.get("url_prefix") == "/flywheel"]
    assert entry["name"] == "GenAI Quality" and callable(entry["app"])

    views, _ = plugins_manager._get_ui_plugins()
    [view] = [v for v in views if v.get("url_route") == "genai-quality"]
    assert view == {
        "name": "GenAI Quality",
        "href": "/flywheel/",
        "destination": "nav",
        "category": "browse",
        "url_route": "genai-quality",
    }

    # What GET /api/v2/plugins serves: the plugin must validate against its response model.
    [info] = [i for i in plugins_manager.get_plugin_info() if i["name"] == "genai_flywheel"]
    response = PluginResponse.model_validate(info)
    assert [v.url_route for v in response.external_views] == ["genai-quality"]
    assert [a.url_prefix for a in response.fastapi_apps] == ["/flywheel"]


def test_plugin_import_loads_no_heavy_library() -> None:
    # Every Airflow process loads the plugin: it must not pull in FastAPI, MLflow, pandas or pyarrow.
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "import airflow.plugins_manager;"
        "before = set(sys.modules); import flywheel_plugin;"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "plugins")], check=True, capture_output=True, text=True
    ).stdout
    new = set(json.loads(out.strip().splitlines()[-1]))
    assert new <= {"flywheel_plugin", "flywheel_airflow"}, new
    assert not new & {"fastapi", "mlflow", "pandas", "pyarrow", "genai_flywheel"}


def test_app_mounted_by_airflow_requires_an_airflow_user() -> None:
    from airflow.api_fastapi.app import init_plugins

    root = FastAPI()
    init_plugins(root)  # mounts every plugin's fastapi app as the api-server does
    client = TestClient(root)
    page = client.get("/flywheel/")
    assert page.status_code == 401 and "text/html" in page.headers["content-type"]
    assert "Sign in to Airflow" in page.text and 'href="/" target="_top"' in page.text
    api = client.get("/flywheel/api/apps")
    assert api.status_code == 401 and api.json() == {"detail": "Not authenticated"}
