"""A local HTTP endpoint for tests of webhooks and health checks: it records every request and answers
with the statuses a test scripts (then 200).

``with HttpReceiver() as receiver:`` serves on 127.0.0.1 at ``receiver.url``; ``receiver.statuses`` is the
queue of statuses the next requests get (``repeat_last=True`` keeps answering with the last one);
``receiver.requests`` holds ``(method, path, headers, body)`` of each request, the body parsed as JSON
when it is JSON.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class HttpReceiver:
    """Records requests; answers each with the next scripted status (200 when none is left)."""

    def __init__(self, *statuses: int, repeat_last: bool = False) -> None:
        self.statuses = list(statuses)
        self.repeat_last = repeat_last
        self.requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                receiver.requests.append(Request(self.command, self.path, dict(self.headers), body))
                self.send_response(receiver._next_status())
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _next_status(self) -> int:
        if not self.statuses:
            return 200
        if self.repeat_last and len(self.statuses) == 1:
            return self.statuses[0]
        return self.statuses.pop(0)

    def __enter__(self) -> HttpReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
