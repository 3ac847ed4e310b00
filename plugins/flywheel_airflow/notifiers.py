"""Airflow notifiers of genai-flywheel: alert transitions (:class:`FlywheelAlertNotifier`) and failed tasks
(:class:`TaskFailureNotifier`, every flywheel task's ``on_failure_callback``).

Both send through an application's ``notify:`` channels: the task log always; a webhook through
:class:`~flywheel_airflow.hooks.WebhookHook` (``webhook_conn_id``, an Airflow HTTP Connection; the
deprecated ``webhook_url`` still works); Slack (``slack_conn_id``, apache-airflow-providers-slack) and
e-mail (``email_to``, the SMTP provider) when configured. The webhook hook is built once per notifier
(``@cached_property hook``, as the Slack provider's ``SlackWebhookNotifier`` does); its secrets stay in the
Connection and never reach a log line or XCom.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cached_property
from typing import Any

from airflow.sdk import BaseNotifier

from flywheel_airflow.hooks import WebhookHook

log = logging.getLogger(__name__)

FAILURE_SCHEMA = "genai-flywheel/task-failure/v1"


class _ChannelNotifier(BaseNotifier):
    """What both notifiers share: the channels of one application's ``notify:`` block and the sending."""

    def __init__(
        self,
        *,
        webhook_conn_id: str | None = None,
        webhook_url: str | None = None,
        slack_conn_id: str | None = None,
        email_to: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.webhook_conn_id = webhook_conn_id
        self.webhook_url = webhook_url
        self.slack_conn_id = slack_conn_id
        self.email_to = list(email_to or [])

    @classmethod
    def channels(cls, notify_cfg: Any) -> dict[str, Any]:
        """The keyword arguments of a notifier for an application's ``notify:`` configuration."""
        return {
            "webhook_conn_id": notify_cfg.webhook_conn_id,
            "webhook_url": notify_cfg.webhook_url,
            "slack_conn_id": notify_cfg.slack_conn_id,
            "email_to": list(notify_cfg.email_to),
        }

    @cached_property
    def hook(self) -> WebhookHook | None:
        """The webhook to POST to, None when none is configured."""
        if self.webhook_conn_id:
            return WebhookHook(self.webhook_conn_id)
        if self.webhook_url:
            log.warning(
                "notify.webhook_url is deprecated: create an HTTP connection whose host is the URL (and whose "
                "password is the token, if the receiver wants one) and set notify.webhook_conn_id to its id"
            )
            return WebhookHook(None, url=self.webhook_url)
        return None

    def send(self, context: Any, *, payload: dict[str, Any], text: str, subject: str) -> None:
        """``payload`` to the webhook, ``text`` to Slack and (with ``subject``) to e-mail."""
        if self.hook is not None:
            status = self.hook.post(payload)
            log.info("%s posted to the webhook: HTTP %s", subject, status)
        if self.slack_conn_id:
            try:
                from airflow.providers.slack.notifications.slack import SlackNotifier
            except ImportError:
                log.error("slack_conn_id is set but apache-airflow-providers-slack is not installed")
            else:
                SlackNotifier(slack_conn_id=self.slack_conn_id, text=text).notify(context)
        if self.email_to:
            from html import escape

            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(to=self.email_to, subject=subject, html_content=f"<pre>{escape(text)}</pre>").notify(context)


class FlywheelAlertNotifier(_ChannelNotifier):
    """Send one alert notification (a JSON-able payload from ``genai_flywheel.alerts``): logged, then
    through the configured channels."""

    template_fields = ("webhook_url",)

    def __init__(self, payload: dict[str, Any], **channels: Any) -> None:
        super().__init__(**channels)
        self.payload = payload

    def text(self) -> str:
        """The Slack and e-mail text: one line for the alert, one per segment of a per-segment rule's group,
        then the links. Reads the payload as ``Notification.to_dict()`` nests it (``ci``, ``interval``)."""
        p = self.payload
        interval = p.get("interval") or {}
        lines = [
            f"[{p.get('severity', 'warning')}] {p.get('app')}: alert {p.get('rule')} {p.get('state')} — "
            f"{p.get('metric')} {p.get('op', '')} {p.get('threshold')}"
            + (f" in {len(p['segments'])} {p.get('dimension')} segment(s)" if p.get("segments") else "")
            + f", interval {interval.get('start')} to {interval.get('end')}"
        ]
        for entry in p.get("segments") or [p]:
            ci = entry.get("ci") or {}
            where = ""
            if "segment" in entry:
                key, label = entry["segment"], entry.get("label") or entry["segment"]
                where = f"{p.get('dimension')}={label}" + (f" ({key})" if label != key else "") + ": "
            lines.append(
                f"  {where}{p.get('metric')} = {entry.get('value')} (95% CI {ci.get('low')}..{ci.get('high')}, "
                f"n={entry.get('n')})" + (f", p={entry['p_value']:.3g}" if entry.get("p_value") is not None else "")
            )
        if p.get("reason") and not p.get("segments"):
            lines.append(f"  {p['reason']}")
        links = p.get("links") or {}
        lines += [f"  {name}: {url}" for name, url in sorted(links.items()) if url]
        return "\n".join(lines)

    def notify(self, context: Any) -> None:
        log.warning("flywheel alert: %s", self.text())
        self.send(
            context,
            payload=self.payload,
            text=self.text(),
            subject=f"genai-flywheel alert {self.payload.get('rule')}",
        )


def send_alerts(notifications: list[dict[str, Any]], notify_cfg: Any, context: Any) -> int:
    """Send every notification through a FlywheelAlertNotifier; returns how many were sent."""
    for payload in notifications:
        FlywheelAlertNotifier(payload, **FlywheelAlertNotifier.channels(notify_cfg)).notify(context)
    return len(notifications)


def failure_payload(context: Any, app: str) -> dict[str, Any]:
    """What a failed task's notification says: application, DAG, task, run, map index, try number, log URL
    and the exception's type and first line. ``id`` is the same for the same try, so a receiver can drop
    a duplicate."""
    ti = context.get("ti") or context["task_instance"]
    map_index = getattr(ti, "map_index", None)
    map_index = map_index if isinstance(map_index, int) and map_index >= 0 else None
    exc = context.get("exception")
    key = f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{map_index}\x1f{ti.try_number}"
    task = f"{ti.dag_id}.{ti.task_id}" + (f"[{map_index}]" if map_index is not None else "")
    return {
        "schema": FAILURE_SCHEMA,
        "id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "title": f"[genai-flywheel] {app}: task {task} failed (run {ti.run_id}, try {ti.try_number})",
        "app": app,
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "map_index": map_index,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "log_url": getattr(ti, "log_url", None),
        "error": None if exc is None else f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}",
    }


class TaskFailureNotifier(_ChannelNotifier):
    """The ``on_failure_callback`` of every task of ``app``'s DAGs (see ``settings.default_args``): a task
    that failed for good (its retries spent) sends a "task failed" message through the same channels as
    the application's alerts."""

    def __init__(self, app: str, **channels: Any) -> None:
        super().__init__(**channels)
        self.app = app

    def notify(self, context: Any) -> None:
        payload = failure_payload(context, self.app)
        text = payload["title"] + (f"\nlog: {payload['log_url']}" if payload["log_url"] else "")
        if payload["error"]:
            text += f"\nerror: {payload['error']}"
        log.warning("flywheel task failed: %s", text)
        self.send(context, payload=payload, text=text, subject=payload["title"])
