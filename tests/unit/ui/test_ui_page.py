"""The GenAI Quality app through FastAPI's TestClient, on a data root written with the library's APIs."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from flywheel_airflow.ui import links
from flywheel_airflow.ui.app import create_app
from flywheel_airflow.ui.lazy import LazyASGIApp

from genai_flywheel.config import load_config
from genai_flywheel.report.charts import CHART_CSS
from tests.unit.report.report_helpers import table_rows
from tests.unit.ui.ui_seed import (
    APP,
    BUDGET_INTERVALS,
    BUDGET_SKIPPED_PER_INTERVAL,
    DATASET,
    EMPTY_APP,
    N_INTERVALS,
    XSS,
    latency,
    seed,
    write_config,
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", autouse=True)
def _data_root_from_config() -> Iterator[None]:
    # tests/conftest.py points $FLYWHEEL_DATA_ROOT at the test Airflow home; it would win over data_root.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FLYWHEEL_DATA_ROOT", raising=False)
        yield


@pytest.fixture(autouse=True)
def _fresh_link_cache() -> Iterator[None]:
    links.clear_cache()
    yield
    links.clear_cache()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded data root and a config whose MLflow does not answer (nothing listens on the port)."""
    base = tmp_path_factory.mktemp("ui")
    config = write_config(base / "flywheel.yaml", base / "data", f"http://127.0.0.1:{_closed_port()}")
    seed(base / "data", config)
    return config


def _client(config: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(require_auth=False, config_loader=lambda: load_config(config), **kwargs))


@pytest.fixture(scope="module")
def client(seeded: Path) -> TestClient:
    return _client(seeded)


@pytest.fixture(scope="module")
def page(client: TestClient) -> str:
    response = client.get("/")
    assert response.status_code == 200, response.text
    return response.text


def _section(page: str, app: str) -> str:
    match = re.search(rf'<section class="app" id="app-{re.escape(app)}".*?</section>', page, re.S)
    assert match, f"no section for {app}"
    return match.group(0)


def _chart_titles(html: str) -> list[str]:
    return re.findall(r'<title id="[^"]+-title">([^<]*)</title>', html)


def test_page_shows_trend_charts_with_ci_threshold_and_alert_window(page: str) -> None:
    section = _section(page, APP)
    titles = _chart_titles(section)
    # A rule on a metric no standard chart shows gets a chart of its own (judge_outage: judge.error_rate).
    assert "Alerted metric judge.error_rate" in titles
    assert [t for t in titles if not t.startswith("Alerted metric")] == [
        "Latency p95",
        "Error rate",
        "Scorer pii: mean score",
        "Scorer relevance: pass rate",
        "Scorer relevance_to_query: pass rate",
        "Feedback user_feedback: positive rate",
        "Volume",
    ]
    latency_svg = re.search(r'<svg [^>]*id="c-support-assistant-1".*?</svg>', section, re.S).group(0)  # type: ignore[union-attr]
    assert 'class="ci-band"' in latency_svg
    assert "latency_p95: &gt; 2,500 ms" in latency_svg  # the configured rule's threshold line
    assert latency_svg.count('class="alert-window"') == 1  # intervals 8-11 merged into one window
    assert "alert firing: latency_p95" in latency_svg


def test_page_lists_firing_alert_rules_and_recent_events(page: str) -> None:
    section = _section(page, APP)
    firing = table_rows(section, "firing-now")
    assert [r[0] for r in firing] == ["latency_p95"]
    assert firing[0][3] == "2026-01-05 08:00 UTC"  # firing since the first spiked interval
    assert firing[0][5] == "4,000 ms" and firing[0][6] == "3,400 ms to 4,600 ms"
    rules = {r[0]: r[4] for r in table_rows(section, "rules")}
    assert set(rules) == {
        "latency_p95",
        "error_rate",
        "relevance_pass_rate",
        "user_satisfaction",
        "judge_outage",
        "no_traffic",
        "monitor_stalled",
        "topic_satisfaction",
        "topic_relevance",
        "stale_documents",
        "topic_freshness",
    }
    assert ">firing<" in rules["latency_p95"] and ">ok<" in rules["error_rate"]
    events = [(r[1], r[2]) for r in table_rows(section, "recent-events")]
    assert events == [("latency_p95", "fired"), ("error_rate", "resolved"), ("error_rate", "fired")]


def test_page_counts_budget_skipped_judge_calls_per_interval(page: str) -> None:
    section = _section(page, APP)
    rows = table_rows(section, "budget")
    assert len(rows) == N_INTERVALS  # fewer than the 24 the table covers
    newest = rows[: len(BUDGET_INTERVALS)]
    assert [r[1] for r in newest] == [str(BUDGET_SKIPPED_PER_INTERVAL)] * len(BUDGET_INTERVALS)
    assert newest[0][0] == "2026-01-05 11:00 to 2026-01-05 12:00"
    assert newest[0][2] == f"relevance_to_query: {BUDGET_SKIPPED_PER_INTERVAL}"
    assert rows[len(BUDGET_INTERVALS)][1] == "n/a (no run files)"
    total = BUDGET_SKIPPED_PER_INTERVAL * len(BUDGET_INTERVALS)
    assert re.search(rf"judge calls skipped \(budget\)</dt><dd>{total} ", section)


def test_page_shows_latest_dataset_version_and_failed_gate(page: str) -> None:
    section = _section(page, APP)
    datasets = table_rows(section, "datasets")
    assert [(r[0], r[1], r[2]) for r in datasets] == [(DATASET, "v2", "3")]
    evaluation = table_rows(section, "evaluations")[0]
    assert evaluation[2] == f"{DATASET} v2"  # the compare stage's dataset dict, read like the report reads it
    assert "gate" not in evaluation[4] and 'class="badge fail">failed' in evaluation[4]
    assert "relevance improvement 0.040 is below 0.05" in evaluation[4]
    assert "relevance: +0.040 [+0.010, +0.070] (n=3)" in evaluation[5]
    assert "/#/experiments/42/runs/run123" in evaluation[0]  # the evaluation run in MLflow


def test_page_links_airflow_and_falls_back_to_mlflow_experiments_when_it_is_down(page: str) -> None:
    section = _section(page, APP)
    assert 'href="/dags/flywheel_monitor_support-assistant" target="_top"' in section
    assert 'href="/dags/flywheel_monitor_support-assistant/runs" target="_top"' in section
    assert re.search(r'href="http://127\.0\.0\.1:\d+/#/experiments" target="_blank"', section)
    assert "/traces" not in section
    assert "MLflow did not answer" in section


def test_everything_is_escaped_and_the_page_loads_nothing(client: TestClient, page: str) -> None:
    assert XSS not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert not re.search(r"<(link|img|iframe)\b", page)
    assert CHART_CSS in page  # the charts are styled as in the static report
    headers = client.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_app_without_data_renders_empty_states(client: TestClient, page: str) -> None:
    section = _section(page, EMPTY_APP)
    assert "<svg" not in section
    assert "No metrics yet for billing-bot" in section
    assert "No alert rule has been evaluated yet" in section
    assert "No interval has been scored yet" in section
    assert "No curated dataset yet" in section and "No development evaluation yet" in section
    single = client.get(f"/apps/{EMPTY_APP}")
    assert single.status_code == 200 and "No metrics yet for billing-bot" in single.text
    assert 'href="../">All applications' in single.text


def test_empty_data_root_renders_every_app_without_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "f.yaml", tmp_path / "nothing-here", f"http://127.0.0.1:{_closed_port()}")
    c = _client(config)
    response = c.get("/")
    assert response.status_code == 200
    assert response.text.count("No metrics yet for") == 2
    apps = c.get("/api/apps").json()["apps"]
    assert [(a["name"], a["intervals"], a["latest_interval"], a["firing"]) for a in apps] == [
        (APP, 0, None, []),
        (EMPTY_APP, 0, None, []),
    ]
    assert c.get(f"/api/apps/{APP}/metrics").json()["metrics"] == {}
    assert c.get(f"/api/apps/{APP}/alerts").json()["firing"] == []


def test_unknown_app_is_404_naming_the_configured_ones(client: TestClient) -> None:
    html = client.get("/apps/nope")
    assert html.status_code == 404 and "text/html" in html.headers["content-type"]
    assert "no application &#x27;nope&#x27;" in html.text
    for path in ("/api/apps/nope/alerts", "/api/apps/nope/metrics"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["detail"].endswith("configured: support-assistant, billing-bot")


def test_api_apps(client: TestClient) -> None:
    apps = {a["name"]: a for a in client.get("/api/apps").json()["apps"]}
    assert list(apps) == [APP, EMPTY_APP]
    a = apps[APP]
    assert a["intervals"] == N_INTERVALS and a["firing"] == ["latency_p95"]
    assert a["latest_interval"] == {"start": "2026-01-05T11:00:00Z", "end": "2026-01-05T12:00:00Z"}
    assert a["links"]["airflow_dag"] == "/dags/flywheel_monitor_support-assistant"
    assert a["links"]["mlflow"]["traces"] is None and a["links"]["mlflow"]["experiments"].endswith("/#/experiments")


def test_api_metrics_filters_by_name_and_window(client: TestClient) -> None:
    body = client.get(f"/api/apps/{APP}/metrics", params={"metric": ["latency_p95_ms", "no.such"]}).json()
    assert list(body["metrics"]) == ["latency_p95_ms", "no.such"]
    series = body["metrics"]["latency_p95_ms"]
    assert [p["value"] for p in series] == [latency(i) for i in range(N_INTERVALS)]
    assert series[-1] == {
        "interval_start": "2026-01-05T11:00:00Z",
        "interval_end": "2026-01-05T12:00:00Z",
        "value": 4000.0,
        "n": 200,
        "ci_low": 3400.0,
        "ci_high": 4600.0,
    }
    assert body["metrics"]["no.such"] == [] and "scorer.relevance.pass_rate" in body["available"]
    last3 = client.get(f"/api/apps/{APP}/metrics", params={"metric": "error_rate", "intervals": 3}).json()
    assert [i["start"] for i in last3["intervals"]] == [f"2026-01-05T{h:02d}:00:00Z" for h in (9, 10, 11)]
    assert len(last3["metrics"]["error_rate"]) == 3
    everything = client.get(f"/api/apps/{APP}/metrics").json()
    assert sorted(everything["metrics"]) == everything["available"]
    bad = client.get(f"/api/apps/{APP}/metrics", params={"intervals": 0})
    assert bad.status_code == 422 and "intervals" in bad.json()["detail"]


def test_api_alerts(client: TestClient) -> None:
    body = client.get(f"/api/apps/{APP}/alerts").json()
    [firing] = body["firing"]
    assert firing["rule"] == "latency_p95" and firing["since"] == "2026-01-05T08:00:00Z"
    assert (firing["value"], firing["ci_low"], firing["ci_high"], firing["n"]) == (
        4000.0,
        3400.0,
        4600.0,
        200,
    )
    assert {r["rule"]: r["status"] for r in body["rules"]} == {
        "latency_p95": "firing",
        "error_rate": "ok",
        "relevance_pass_rate": "ok",
        "user_satisfaction": "ok",
        "judge_outage": "ok",
        "no_traffic": "ok",
        "monitor_stalled": "not evaluated",  # the watchdog's rule: the monitor never evaluates it
        "topic_satisfaction": "not evaluated",  # per-segment rules: this fixture stores no segment table
        "topic_relevance": "not evaluated",
        "stale_documents": "ok",
        "topic_freshness": "not evaluated",
    }
    assert [(e["rule"], e["kind"], e["interval_start"]) for e in body["recent_events"]] == [
        ("latency_p95", "fired", "2026-01-05T08:00:00Z"),
        ("error_rate", "resolved", "2026-01-05T05:00:00Z"),
        ("error_rate", "fired", "2026-01-05T03:00:00Z"),
    ]


class _FakeMlflow(BaseHTTPRequestHandler):
    seen_auth: list[str | None] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        type(self).seen_auth.append(self.headers.get("Authorization"))
        name = parse_qs(parts.query).get("experiment_name", [""])[0]
        if parts.path == "/api/2.0/mlflow/experiments/get-by-name" and name == "support-assistant-prod":
            body, status = {"experiment": {"experiment_id": "17", "name": name}}, 200
        else:
            body, status = {"error_code": "RESOURCE_DOES_NOT_EXIST"}, 404
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_mlflow() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeMlflow)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _FakeMlflow.seen_auth = []
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_mlflow_links_point_at_the_experiment_without_leaking_credentials(
    seeded: Path, fake_mlflow: str, tmp_path: Path
) -> None:
    data_root = load_config(seeded).data_path()
    config = write_config(tmp_path / "f.yaml", data_root, f"http://ops:s3cret@{fake_mlflow}/")
    c = _client(config)
    page = c.get("/").text
    section = _section(page, APP)
    assert f'href="http://{fake_mlflow}/#/experiments/17/traces"' in section
    assert f'href="http://{fake_mlflow}/#/experiments/17/runs"' in section
    # The empty app's experiment does not exist yet: the experiments list, with the reason.
    empty = _section(page, EMPTY_APP)
    assert f'href="http://{fake_mlflow}/#/experiments"' in empty and "no experiment" in empty
    assert "s3cret" not in page and "ops:" not in page
    assert "s3cret" not in c.get("/api/apps").text
    assert _FakeMlflow.seen_auth[0] == "Basic b3BzOnMzY3JldA=="  # ops:s3cret, sent to MLflow only
    # The id is cached: a second page does not ask again for the app whose experiment exists.
    asked = len(_FakeMlflow.seen_auth)
    c.get(f"/apps/{APP}")
    assert len(_FakeMlflow.seen_auth) == asked


def test_calibration_panel_shows_the_review_metrics_and_links_the_disagreeing_traces(
    seeded: Path, fake_mlflow: str, tmp_path: Path
) -> None:
    data_root = load_config(seeded).data_path()
    config = write_config(tmp_path / "f.yaml", data_root, f"http://{fake_mlflow}/")
    section = _section(_client(config).get(f"/apps/{APP}").text, APP)
    rows = {(r[0], r[1], r[2]): r[3:] for r in table_rows(section, "calibration")}
    assert rows[("relevance", "agreement", "calibration sample (weighted)")][1:] == [
        "0.42", "0.25 to 0.61", "24", "2026-01-07 00:00", "0.55", "0.4 to 0.69", "44",
    ]  # fmt: skip
    assert rows[("relevance", "agreement", "flagged by curation rules")][5:] == ["0.31", "0.15 to 0.52", "15"]
    trace = f"http://{fake_mlflow}/#/experiments/17/traces?selectedEvaluationId=tr-%3C1%3E&amp;traceId=tr-%3C1%3E"
    assert f'href="{trace}" target="_blank" rel="noopener noreferrer">tr-&lt;1&gt;</a>' in section
    assert "(scorer failed, reviewer: correct; queued by low_judge_scores)" in section


def test_calibration_traces_are_listed_unlinked_while_mlflow_is_down(page: str) -> None:
    section = _section(page, APP)
    assert "Judge calibration" in section and "<li>relevance: tr-&lt;1&gt; (scorer passed" in section
    assert "selectedEvaluationId" not in section
    assert "Judge calibration" not in _section(page, EMPTY_APP)  # no reviews: no panel


def test_non_http_tracking_uri_links_nothing_and_shows_no_secret(seeded: Path, tmp_path: Path) -> None:
    data_root = load_config(seeded).data_path()
    config = write_config(tmp_path / "f.yaml", data_root, "postgresql://flywheel:pw-123@db:5432/mlflow")
    section = _section(_client(config).get("/").text, APP)
    assert "&#x27;postgresql&#x27; store, not an MLflow server" in section
    assert "pw-123" not in section and "MLflow experiments" not in section


def test_configuration_problem_is_a_friendly_503(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    c = _client(missing)
    html = c.get("/")
    assert html.status_code == 503 and "could not be loaded" in html.text and "missing.yaml" in html.text
    api = c.get("/api/apps")
    assert api.status_code == 503 and "not found" in api.json()["detail"]


def test_unreadable_metrics_partition_is_reported_not_a_500(seeded: Path, tmp_path: Path) -> None:
    import shutil

    data_root = tmp_path / "data"
    shutil.copytree(load_config(seeded).data_path(), data_root)
    part = next((data_root / "metrics" / f"app={APP}").glob("interval=*/part.parquet"))
    part.write_bytes(b"not parquet")
    config = write_config(tmp_path / "f.yaml", data_root, f"http://127.0.0.1:{_closed_port()}")
    c = _client(config)
    response = c.get(f"/apps/{APP}")
    assert response.status_code == 200
    assert "Files that could not be read" in response.text and "cannot read metrics partition" in response.text
    assert table_rows(response.text, "firing-now")[0][0] == "latency_p95"  # the rest of the page still shows
    api = c.get(f"/api/apps/{APP}/metrics")
    assert api.status_code == 500 and "delete it and re-run that interval" in api.json()["detail"]


def test_same_data_gives_the_same_page(client: TestClient, page: str) -> None:
    assert client.get("/").text == page


def test_default_loader_reads_flywheel_config(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel_airflow.settings import flywheel_config

    cfg = load_config(seeded)
    monkeypatch.setenv("FLYWHEEL_CONFIG", str(seeded))
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(cfg.data_path()))
    flywheel_config.cache_clear()
    try:
        body = TestClient(create_app(require_auth=False)).get("/api/apps").json()
    finally:
        flywheel_config.cache_clear()
    assert [(a["name"], a["intervals"]) for a in body["apps"]] == [(APP, N_INTERVALS), (EMPTY_APP, 0)]


def test_lazy_app_builds_once_on_first_request(seeded: Path) -> None:
    import sys
    import types

    built: list[int] = []
    module = types.ModuleType("ui_lazy_factory_for_test")

    def factory() -> Any:
        built.append(1)
        return create_app(require_auth=False, config_loader=lambda: load_config(seeded))

    module.factory = factory  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        lazy = LazyASGIApp(f"{module.__name__}:factory")
        assert built == [] and "not built yet" in repr(lazy)
        c = TestClient(lazy)
        assert c.get("/api/apps").status_code == 200 and c.get(f"/apps/{APP}").status_code == 200
        assert built == [1]
    finally:
        del sys.modules[module.__name__]
    with pytest.raises(ValueError, match="package.module:function"):
        LazyASGIApp("no_colon_here")
