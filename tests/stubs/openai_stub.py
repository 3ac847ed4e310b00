"""A tiny OpenAI-compatible chat-completions server for tests: no network beyond 127.0.0.1, no model.

It answers ``POST /v1/chat/completions`` (and ``/chat/completions``) with a valid chat completion. When
the request carries ``response_format={"type": "json_schema", ...}`` -- as MLflow's judges send -- the
message content is a JSON object that satisfies the schema (``result`` / ``rationale`` for MLflow's
built-in judges). The verdict is deterministic and derived from the prompt: "yes" when the text inside
the answer/output tag shares a content word with the question/input tag, else "no".

Fault injection: ``stub.add_faults("429", "500", "malformed", "timeout")`` queues faults that the next
requests receive in order (then normal answers resume); ``stub.outage = "500"`` makes every request fail
until reset. Every request body and the Authorization header it carried are recorded, so tests can assert
the API key was sent to the endpoint and never appeared anywhere else.

Use it as a context manager (``with OpenAIStub() as stub: stub.base_url``), as the pytest fixture
``openai_stub`` (import it from ``tests.stubs``), or run ``python -m tests.stubs.openai_stub --port 8089``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

logger = logging.getLogger(__name__)

#: Fault names accepted by :meth:`OpenAIStub.add_faults` and :attr:`OpenAIStub.outage`.
FAULTS = frozenset({"429", "500", "502", "503", "malformed", "bad_schema", "timeout", "ok"})

_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_WORD = re.compile(r"[a-z0-9]+")
# Tags MLflow's judge prompts wrap the request and the response in (<question>/<answer>,
# <request>/<response>, ...). A <document> (groundedness judges) is what the answer must overlap with.
_QUESTION_TAGS = ("document", "question", "input", "inputs", "request", "query")
_ANSWER_TAGS = ("answer", "output", "outputs", "response", "context")
_STOP = frozenset(
    "a an and are as at be by do does for from how i in is it me my of on or the this to was what when "
    "where which who why with you your can could would should will".split()
)

Verdict = Callable[[str], str]


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _tagged(prompt: str, tags: tuple[str, ...]) -> str | None:
    for tag in tags:
        m = re.search(rf"<{tag}>(.*?)</{tag}>", prompt, flags=re.S | re.I)
        if m:
            return m.group(1)
    return None


def default_verdict(prompt: str) -> str:
    """Return "yes" when the prompt's answer/output section shares a content word with its question/input."""
    question = _tagged(prompt, _QUESTION_TAGS)
    answer = _tagged(prompt, _ANSWER_TAGS)
    if question is None or answer is None:
        # No recognisable sections (e.g. a make_judge prompt): judge the whole prompt as non-empty.
        return "yes" if prompt.strip() else "no"
    return "yes" if _content_words(question) & _content_words(answer) else "no"


def _value_for(schema: dict[str, Any], verdict: str, defs: dict[str, Any]) -> Any:
    """A value of ``schema`` that encodes ``verdict`` ("yes"/"no") as well as the type allows."""
    if "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _value_for(options[0], verdict, defs)
    if "enum" in schema:
        choices = schema["enum"]
        for choice in choices:
            if str(choice).lower() == verdict:
                return choice
        return choices[0] if verdict == "yes" else choices[-1]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "boolean":
        return verdict == "yes"
    if kind in ("number", "integer"):
        return 1 if verdict == "yes" else 0
    if kind == "array":
        return [_value_for(schema.get("items", {}), verdict, defs)]
    if kind == "object":
        return {k: _value_for(v, verdict, defs) for k, v in schema.get("properties", {}).items()}
    return verdict


def build_content(prompt: str, response_format: dict[str, Any] | None, verdict: str) -> str:
    """The assistant message text: JSON matching ``response_format``'s schema, or result/rationale JSON."""
    rationale = f"Let's think step by step. The stub judged this {verdict!r} from word overlap."
    schema: dict[str, Any] | None = None
    if response_format and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    if not schema or "properties" not in schema:
        return json.dumps({"result": verdict, "rationale": rationale})
    defs = schema.get("$defs", {})
    body: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        if name == "rationale":
            body[name] = rationale
        else:
            body[name] = _value_for(prop, verdict, defs)
    return json.dumps(body)


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


class OpenAIStub:
    """A threaded OpenAI-compatible chat-completions server on 127.0.0.1 with fault injection.

    Attributes a test reads: :attr:`base_url` (``http://127.0.0.1:<port>/v1``), :attr:`request_count`,
    :attr:`requests` (parsed JSON bodies, malformed ones as ``None``), :attr:`auth_headers` (the
    ``Authorization`` header of each request), :attr:`served` (fault or "ok" each request got).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        model: str = "stub-judge",
        verdict: Verdict | str | None = None,
        timeout_sleep_s: float = 3.0,
    ) -> None:
        self._port = port
        self.model = model
        self.verdict: Verdict | str | None = verdict
        #: How long a "timeout" fault stalls before answering; set it above the client's timeout.
        self.timeout_sleep_s = timeout_sleep_s
        #: A fault every request receives while set (a permanent outage), e.g. "500".
        self.outage: str | None = None
        self.requests: list[dict[str, Any] | None] = []
        self.auth_headers: list[str | None] = []
        self.served: list[str] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------------------
    def add_faults(self, *faults: str) -> None:
        """Queue faults ("429", "500", "502", "503", "malformed", "bad_schema", "timeout", "ok")."""
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown stub fault(s) {unknown}; use one of {sorted(FAULTS)}")
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget queued faults, the outage and every recorded request."""
        with self._lock:
            self._faults.clear()
            self.outage = None
            self.requests.clear()
            self.auth_headers.clear()
            self.served.clear()

    @property
    def request_count(self) -> int:
        """Requests received so far (faulted ones included)."""
        with self._lock:
            return len(self.requests)

    @property
    def port(self) -> int:
        """The bound TCP port (a free one chosen by the OS unless given)."""
        if self._server is None:
            raise RuntimeError("the stub is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL clients use (``OPENAI_BASE_URL``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> OpenAIStub:
        """Bind 127.0.0.1 (a free port unless one was given) and serve in a daemon thread."""
        stub = self

        class Handler(_Handler):
            owner = stub

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="openai-stub", kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled "timeout" requests are released at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------------------------
    def _next_fault(self, body: dict[str, Any] | None, auth: str | None) -> str:
        with self._lock:
            self.requests.append(body)
            self.auth_headers.append(auth)
            fault = self.outage or (self._faults.popleft() if self._faults else "ok")
            self.served.append(fault)
            return fault

    def _verdict(self, prompt: str) -> str:
        if isinstance(self.verdict, str):
            return self.verdict
        if callable(self.verdict):
            return self.verdict(prompt)
        return default_verdict(prompt)

    def completion(self, body: dict[str, Any], *, bad_schema: bool = False) -> dict[str, Any]:
        """The chat completion answering ``body`` (deterministic: the id is a hash of the request)."""
        messages = body.get("messages") or []
        prompt = _prompt_text(messages)
        verdict = self._verdict(prompt)
        content = (
            json.dumps({"unexpected": "shape"})
            if bad_schema
            else build_content(prompt, body.get("response_format"), verdict)
        )
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        prompt_tokens = max(1, len(prompt) // 4)
        completion_tokens = max(1, len(content) // 4)
        return {
            "id": f"chatcmpl-{digest}",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": body.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request line to stderr; keep test output (and capfd) clean.
        logger.debug("openai-stub: " + format, *args)

    def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. after a "timeout" fault); nothing left to answer.
            pass

    def _error(self, status: int, message: str, kind: str) -> None:
        self._send(status, json.dumps({"error": {"message": message, "type": kind}}).encode())

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": self.owner.model, "object": "model", "owned_by": "stub"}
            self._send(200, json.dumps({"object": "list", "data": [model]}).encode())
        else:
            self._error(404, f"no route GET {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.split("?", 1)[0] not in _CHAT_PATHS:
            self._error(404, f"no route POST {self.path}; use /v1/chat/completions", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        fault = self.owner._next_fault(body, self.headers.get("Authorization"))
        if body is None or not isinstance(body, dict):
            self._error(400, "request body is not a JSON object", "invalid_request_error")
            return
        if fault == "timeout":
            # Stall past the client's timeout; wake early when the stub stops.
            self.owner._stopping.wait(self.owner.timeout_sleep_s)
            fault = "ok"
        if fault in ("429", "500", "502", "503"):
            kind = "rate_limit_exceeded" if fault == "429" else "server_error"
            self._error(int(fault), f"stub fault {fault}", kind)
        elif fault == "malformed":
            self._send(200, b"<html>this is not JSON</html>", "text/html")
        else:
            completion = self.owner.completion(body, bad_schema=fault == "bad_schema")
            self._send(200, json.dumps(completion).encode())


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A running :class:`OpenAIStub` on a free 127.0.0.1 port, stopped after the test."""
    with OpenAIStub() as stub:
        yield stub


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted: ``python -m tests.stubs.openai_stub --port 8089``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--model", default="stub-judge")
    args = parser.parse_args(argv)
    stub = OpenAIStub(args.port, model=args.model).start()
    print(f"OpenAI-compatible stub listening on {stub.base_url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stub.stop()


if __name__ == "__main__":
    main()
