"""The Airflow adapters: the judge hook reads a Connection without leaking its key; the alert notifier
POSTs its payload to the webhook (retrying a 5xx) and logs it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from genai_flywheel.config import load_config
from tests.conftest import ROOT

SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def app():
    return load_config(ROOT / "flywheel.yaml").applications[0]


def test_judge_hook_builds_the_endpoint_from_a_connection(app, monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel_airflow.hooks import JudgeHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_MY_JUDGE",
        json.dumps(
            {
                "conn_type": "http",
                "host": "http://127.0.0.1:9999/v1",
                "password": SECRET,
                "extra": {"model": "judge-model"},
            }
        ),
    )
    endpoint = JudgeHook("my_judge").endpoint(app)
    assert endpoint.base_url == "http://127.0.0.1:9999/v1"
    assert endpoint.api_key == SECRET
    assert endpoint.model == "judge-model"
    assert SECRET not in repr(endpoint)


def test_no_connection_id_means_no_judges(app) -> None:
    from flywheel_airflow.hooks import judge_endpoint

    assert app.judge.conn_id is None
    assert judge_endpoint(app) is None


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Receiver.bodies.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_notifier_posts_to_the_webhook_and_retries_a_5xx(app, caplog: pytest.LogCaptureFixture) -> None:
    from flywheel_airflow.notifiers import send_alerts

    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.bodies, _Receiver.fail_first = [], 1
    payload = {
        "app": "support-assistant",
        "rule": "error_rate",
        "state": "firing",
        "metric": "error_rate",
        "value": 0.3,
        "threshold": 0.05,
        "n": 120,
        "severity": "critical",
    }
    notify = app.notify.model_copy(update={"webhook_url": f"http://127.0.0.1:{server.server_port}/hook"})
    try:
        with caplog.at_level("WARNING"):
            assert send_alerts([payload], notify, context={}) == 1
    finally:
        server.shutdown()
    assert _Receiver.bodies == [payload]
    assert "alert error_rate firing" in caplog.text
