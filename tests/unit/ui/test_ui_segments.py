"""The worst segments on the GenAI Quality page, a segment's history page and their JSON endpoints."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from flywheel_airflow.ui import links
from flywheel_airflow.ui.app import create_app

from genai_flywheel.config import load_config
from tests.unit.report.report_helpers import table_rows
from tests.unit.report.segment_helpers import APP, FEEDBACK, S0, STEP, N, write_segment_store
from tests.unit.ui.ui_seed import write_config

pytestmark = pytest.mark.unit

MLFLOW = "http://mlflow.test:5000"
TRACES = f"{MLFLOW}/#/experiments/17/traces"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("ui-segments")
    config = write_config(base / "flywheel.yaml", base / "data", MLFLOW)
    write_segment_store(base / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FLYWHEEL_DATA_ROOT", raising=False)
        links.clear_cache()
        # The experiment id as if MLflow had answered the lookup (the lookup itself is tested elsewhere).
        mp.setitem(links._found, (MLFLOW, load_config(config).app(APP).mlflow.experiment), "17")
        yield TestClient(create_app(require_auth=False, config_loader=lambda: load_config(config)))
    links.clear_cache()


def test_page_lists_the_worst_segments_per_dimension_worst_first(client: TestClient) -> None:
    response = client.get(f"/apps/{APP}")
    assert response.status_code == 200, response.text
    html = response.text
    tables = re.findall(r'<table class="worst-segments">.*?</table>', html, re.S)
    assert [re.search(r"<caption>Dimension (\w+)", t).group(1) for t in tables] == ["app_version", "topic"]
    assert [row[1] for row in table_rows(tables[0], "worst-segments")] == ["1.4.0", "1.3.9"]
    topic = table_rows(tables[1], "worst-segments")
    assert [row[1] for row in topic] == ["c-sync", "c-bill", "other"]
    # segment, key, traces, worst metric, value, CI, n, baseline (n), app, gap, links
    assert [re.sub(r"<[^>]+>", "", cell) for cell in topic[0][:10]] == [
        "smart sync", "c-sync", "40", FEEDBACK, "0.0%", "0.0% to 49.0%", "4", "92.0% (28)", "92.0%", "+43.0 pp",
    ]  # fmt: skip
    assert re.sub(r"<[^>]+>", "", topic[0][10]) == "tr-c-sync-0, tr-c-sync-1"
    assert "billing &lt;invoice&gt;" in html  # labels are escaped
    assert f'href="{TRACES}?selectedEvaluationId=tr-c-sync-0&amp;traceId=tr-c-sync-0" target="_blank"' in html
    # a tag dimension links the filtered trace list; the segment's name opens its history
    assert f'href="{TRACES}?filter=TAG%3A%3A%3D%3A%3A1.4.0%3A%3Aapp_version"' in html
    assert 'href="../apps/support-assistant/segments/history?dimension=topic&amp;segment=c-sync"' in html
    assert '<tr class="firing">' in tables[1]  # a significant gap is highlighted


def test_history_json_has_value_ci_and_n_per_interval(client: TestClient) -> None:
    response = client.get(f"/api/apps/{APP}/segments/history", params={"dimension": "topic", "segment": "c-sync"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["label"], body["days"]) == ("smart sync", 7)
    feedback = [p for p in body["points"] if p["metric"] == FEEDBACK]
    assert len(feedback) == N
    assert feedback[-1] == {
        "interval_start": (S0 + (N - 1) * STEP).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "interval_end": (S0 + N * STEP).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metric": FEEDBACK,
        "value": 0.0,
        "n": 4,
        "ci_low": 0.0,
        "ci_high": 0.49,
    }
    one_day = client.get(
        f"/api/apps/{APP}/segments/history", params={"dimension": "topic", "segment": "c-sync", "days": 1}
    ).json()
    assert len({p["interval_start"] for p in one_day["points"]}) == 4


def test_history_rejects_an_undeclared_dimension_and_bad_days(client: TestClient) -> None:
    bad = client.get(f"/api/apps/{APP}/segments/history", params={"dimension": "nope", "segment": "x"})
    assert bad.status_code == 404 and "app_version" in bad.json()["detail"]
    days = client.get(f"/api/apps/{APP}/segments/history", params={"dimension": "topic", "segment": "x", "days": 91})
    assert days.status_code == 422


def test_history_page_is_a_table_per_interval(client: TestClient) -> None:
    response = client.get(f"/apps/{APP}/segments/history", params={"dimension": "topic", "segment": "c-sync"})
    assert response.status_code == 200, response.text
    rows = table_rows(response.text, "segment-history")
    assert len(rows) == N
    assert rows[-1][2:4] == ["2.5% [0.4% to 13.0%] n=40", "0.0% [0.0% to 49.0%] n=4"]  # after interval, volume
    assert 'href="../../../apps/support-assistant"' in response.text


def test_api_segments_json(client: TestClient) -> None:
    body = client.get(f"/api/apps/{APP}/segments").json()
    assert body["interval"]["start"] == (S0 + (N - 1) * STEP).strftime("%Y-%m-%dT%H:%M:%SZ")
    first = body["dimensions"]["topic"][0]
    assert (first["segment"], first["significant"], first["metrics"][0]["metric"]) == ("c-sync", True, FEEDBACK)
    assert first["metrics"][0]["gap"] == pytest.approx(0.43)


def test_page_charts_the_drift_metrics(client: TestClient) -> None:
    html = client.get(f"/apps/{APP}").text
    assert re.findall(r'<title id="[^"]+-title">(Drift[^<]*)</title>', html) == ["Drift: PSI of the traffic mix"]
