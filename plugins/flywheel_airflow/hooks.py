"""Hooks: the only place where Airflow Connections turn into endpoints the library uses."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from airflow.sdk import BaseHook
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from genai_flywheel.exceptions import ConfigError, NotificationError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from genai_flywheel.config import Application
    from genai_flywheel.scoring.judges import JudgeEndpoint

log = logging.getLogger(__name__)


def connection_url(conn: Connection) -> str:
    """The URL of an HTTP Connection: ``host`` as written when it holds a whole URL, else built from
    ``schema`` (the URL scheme, as Airflow's HTTP connections use it), ``host`` and ``port``; ``extra``'s
    ``path`` is appended."""
    url = conn.host or ""
    if conn.schema and not url.startswith(("http://", "https://")):
        url = f"{conn.schema}://{url}"
    if conn.port and f":{conn.port}" not in url:
        url = url.rstrip("/") + f":{conn.port}"
    path = (conn.extra_dejson or {}).get("path")
    if path:
        url = url.rstrip("/") + "/" + str(path).lstrip("/")
    return url


class JudgeHook(BaseHook):
    """An OpenAI-compatible LLM-judge endpoint from an Airflow Connection.

    Connection fields: ``host`` is the base URL (e.g. ``https://api.openai.com/v1``), ``password`` the API
    key, ``extra`` may set ``{"model": "..."}`` to override the configured judge model. The key is handed
    to the judge client in memory only: it is never logged, returned, or written to MLflow.
    """

    conn_name_attr = "judge_conn_id"
    default_conn_name = "flywheel_judge"
    conn_type = "http"
    hook_name = "GenAI Flywheel LLM judge"

    def __init__(self, judge_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.judge_conn_id = judge_conn_id

    def endpoint(self, app: Application) -> JudgeEndpoint:
        from genai_flywheel.scoring.judges import JudgeEndpoint

        conn = self.get_connection(self.judge_conn_id)
        extra = conn.extra_dejson or {}
        return JudgeEndpoint(
            base_url=connection_url(conn),
            api_key=conn.password or "unused",
            model=extra.get("model") or app.judge.model,
            timeout_s=app.judge.timeout_s,
            max_retries=app.judge.max_retries,
        )


def judge_endpoint(app: Application) -> JudgeEndpoint | None:
    """The app's judge endpoint, or None (judges are then skipped) when ``judge.conn_id`` is unset."""
    if not app.judge.conn_id:
        log.info("no judge endpoint configured for %s (judge.conn_id unset): LLM judges are skipped", app.name)
        return None
    return JudgeHook(app.judge.conn_id).endpoint(app)


class WebhookHook(BaseHook):
    """A JSON webhook from an Airflow HTTP Connection (as the Slack provider's webhook hook is).

    Connection fields: ``host`` is the URL (or ``schema`` + ``host`` + ``port``, ``extra.path``), the
    optional ``password`` a secret sent as ``Authorization: Bearer <password>`` or, when ``extra`` sets
    ``{"header": "X-Name"}``, as that header's value. Webhook URLs often carry a secret in their path
    (Slack's do), so neither the URL's path nor the password is ever logged or put in an error message.

    ``url`` instead of a connection id serves the deprecated ``notify.webhook_url``.
    """

    conn_name_attr = "webhook_conn_id"
    default_conn_name = "flywheel_webhook"
    conn_type = "http"
    hook_name = "GenAI Flywheel webhook"

    def __init__(
        self,
        webhook_conn_id: str | None = default_conn_name,
        *,
        url: str | None = None,
        attempts: int = 3,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        if (webhook_conn_id is None) == (url is None):
            raise ConfigError("WebhookHook needs a webhook_conn_id or a url (not both); e.g. notify.webhook_conn_id")
        self.webhook_conn_id = webhook_conn_id
        self.url = url
        self.attempts = attempts
        self.timeout_s = timeout_s

    def target(self) -> tuple[str, dict[str, str]]:
        """The URL and the headers to POST with (the secret header included: keep them out of logs)."""
        if self.url is not None:
            return self.url, {}
        conn = self.get_connection(self.webhook_conn_id)
        url = connection_url(conn)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"webhook connection {self.webhook_conn_id!r} has no http(s) URL (host {conn.host!r} is "
                "not one); set its host to the webhook URL, e.g. https://hooks.example.com/flywheel"
            )
        headers: dict[str, str] = {}
        if conn.password:
            header = str((conn.extra_dejson or {}).get("header") or "Authorization")
            headers[header] = f"Bearer {conn.password}" if header.lower() == "authorization" else conn.password
        return url, headers

    def post(self, payload: Mapping[str, Any]) -> int:
        """POST ``payload`` as JSON; retry connection errors, timeouts and 5xx (``attempts`` in all, 1 s,
        2 s, 4 s... apart). Returns the HTTP status; raises :class:`NotificationError` otherwise."""
        url, headers = self.target()
        where = _host_of(url)
        body = json.dumps(payload, sort_keys=True)

        def once() -> int:
            response = httpx.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=self.timeout_s,
            )
            response.raise_for_status()
            return response.status_code

        def retryable(err: BaseException) -> bool:
            if isinstance(err, httpx.HTTPStatusError):
                return err.response.status_code >= 500
            return isinstance(err, httpx.TransportError)

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=1),
            before_sleep=lambda state: log.info(
                "webhook at %s: attempt %d failed (%s); retrying",
                where,
                state.attempt_number,
                _reason(state.outcome.exception()),
            ),
            reraise=True,
        )
        try:
            return retrying(once)
        except httpx.HTTPError as err:
            attempts = retrying.statistics.get("attempt_number", 1)
            # from None: httpx's own message holds the whole URL, the secret path with it.
            raise NotificationError(
                f"the webhook at {where} did not take the notification after {attempts} attempt(s): "
                f"{_reason(err)}; check the webhook connection's host and password"
            ) from None


def _host_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what may be logged of a webhook URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _reason(err: BaseException | None) -> str:
    """Why a webhook call failed, without the URL: the status, or the transport error's type."""
    if isinstance(err, httpx.HTTPStatusError):
        return f"HTTP {err.response.status_code}"
    return type(err).__name__
