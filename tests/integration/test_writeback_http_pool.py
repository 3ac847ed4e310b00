"""The write-back's HTTP connection pool: with more writer threads than MLflow's pooled connections
(default 10), urllib3 discards a connection after nearly every request ("Connection pool is full");
``mlflow_compat.size_http_pool`` makes MLflow's session keep one per thread, also when the process already
built its session with the default size. Measured against a local HTTP server that holds each request
a moment, so that all threads are in flight at once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genai_flywheel import mlflow_compat

THREADS = 16
POOL_FULL = "Connection pool is full"


class _SlowOk(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: connections go back to the client's pool

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(0.1)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowOk)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pool_full_warnings(uri: str, caplog: pytest.LogCaptureFixture) -> int:
    """Requests on THREADS threads at once, three rounds, through MLflow's HTTP client: the warnings."""
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request

    creds = MlflowHostCreds(uri)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for _ in range(3):
                responses = list(pool.map(lambda _: http_request(creds, "/x", "GET"), range(THREADS)))
                assert all(r.status_code == 200 for r in responses)
    return sum(POOL_FULL in r.getMessage() for r in caplog.records)


def test_pool_sized_to_the_threads_discards_no_connection(
    server: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Restored after the test; a size no session has makes the next call rebuild MLflow's session.
    monkeypatch.setenv(mlflow_compat.HTTP_POOL_ENV, "0")
    mlflow_compat.size_http_pool(10, grow_only=False)  # MLflow's default, and a session built with it
    assert _pool_full_warnings(server, caplog) > 0, "16 threads on 10 pooled connections discard some"

    mlflow_compat.size_http_pool(THREADS)
    assert _pool_full_warnings(server, caplog) == 0

    mlflow_compat.size_http_pool(4)  # grow only: a smaller pool is never asked for by a write-back
    assert _pool_full_warnings(server, caplog) == 0
