"""Airflow notifiers for flywheel alerts: the task log and a webhook built in; Slack and e-mail through
their Airflow providers when configured (and installed)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def post_json(url: str, payload: dict[str, Any], *, attempts: int = 3, timeout_s: float = 10.0) -> int:
    """POST ``payload`` as JSON; retry with backoff on connection errors and 5xx. Returns the status."""
    body = json.dumps(payload, sort_keys=True).encode()
    for attempt in range(1, attempts + 1):
        req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            if err.code < 500 or attempt == attempts:
                raise
        except (urllib.error.URLError, TimeoutError):
            if attempt == attempts:
                raise
        time.sleep(2 ** (attempt - 1))
    raise AssertionError("unreachable")


class FlywheelAlertNotifier(BaseNotifier):
    """Send one alert notification (a JSON-able payload from ``genai_flywheel.alerts``).

    Always logs it; POSTs it to ``webhook_url`` when set; forwards a text version to Slack
    (``slack_conn_id``, apache-airflow-providers-slack) and e-mail (``email_to``, the SMTP provider)
    when those are configured.
    """

    template_fields = ("webhook_url",)

    def __init__(
        self,
        payload: dict[str, Any],
        *,
        webhook_url: str | None = None,
        slack_conn_id: str | None = None,
        email_to: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.payload = payload
        self.webhook_url = webhook_url
        self.slack_conn_id = slack_conn_id
        self.email_to = email_to or []

    def text(self) -> str:
        p = self.payload
        return (
            f"[{p.get('severity', 'warning')}] {p.get('app')}: alert {p.get('rule')} {p.get('state')} — "
            f"{p.get('metric')} = {p.get('value')} (95% CI {p.get('ci_low')}..{p.get('ci_high')}, "
            f"n={p.get('n')}) {p.get('op', '')} {p.get('threshold')} in {p.get('interval_start')}"
        )

    def notify(self, context: Any) -> None:
        log.warning("flywheel alert: %s", self.text())
        if self.webhook_url:
            status = post_json(self.webhook_url, self.payload)
            log.info("alert %s posted to webhook: HTTP %s", self.payload.get("rule"), status)
        if self.slack_conn_id:
            try:
                from airflow.providers.slack.notifications.slack import SlackNotifier
            except ImportError:
                log.error("slack_conn_id is set but apache-airflow-providers-slack is not installed")
            else:
                SlackNotifier(slack_conn_id=self.slack_conn_id, text=self.text()).notify(context)
        if self.email_to:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(
                to=self.email_to,
                subject=f"genai-flywheel alert {self.payload.get('rule')}",
                html_content=f"<pre>{self.text()}</pre>",
            ).notify(context)


def send_alerts(notifications: list[dict[str, Any]], notify_cfg: Any, context: Any) -> int:
    """Send every notification through a FlywheelAlertNotifier; returns how many were sent."""
    for payload in notifications:
        FlywheelAlertNotifier(
            payload,
            webhook_url=notify_cfg.webhook_url,
            slack_conn_id=notify_cfg.slack_conn_id,
            email_to=list(notify_cfg.email_to),
        ).notify(context)
    return len(notifications)
