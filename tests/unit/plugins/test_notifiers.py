"""Notifications: the webhook hook reads an Airflow HTTP Connection (URL, secret header) and retries a 5xx
without ever writing the secret path or token into a log line or an error; the alert notifier and the
failure callback send through the configured channels with one cached hook."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest.mock import Mock

import pytest
from pydantic import ValidationError

from genai_flywheel.config import Notify
from genai_flywheel.exceptions import ConfigError, NotificationError
from tests.stubs.http_receiver import HttpReceiver

TOKEN = "tok-0123456789abcdef"
SECRET_PATH = "/services/T000/B000/s3cr3tp4th"


@pytest.fixture
def receiver():
    with HttpReceiver() as r:
        yield r


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields}))


def test_webhook_hook_posts_json_with_the_bearer_token_and_retries_a_5xx(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    from flywheel_airflow.hooks import WebhookHook

    _connection(monkeypatch, "hook_a", host=receiver.url + SECRET_PATH, password=TOKEN)
    receiver.statuses = [503, 502]
    with caplog.at_level("DEBUG"):
        assert WebhookHook("hook_a").post({"b": 1, "a": [2]}) == 200
    assert [(r.path, r.body) for r in receiver.requests] == [(SECRET_PATH, {"a": [2], "b": 1})] * 3
    headers = receiver.requests[-1].headers
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["Content-Type"] == "application/json"
    assert sleeps == [1, 2]
    assert "attempt 1 failed (HTTP 503)" in caplog.text
    assert TOKEN not in caplog.text and "s3cr3t" not in caplog.text


def test_webhook_hook_sends_the_secret_in_the_header_the_connection_names(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flywheel_airflow.hooks import WebhookHook

    _connection(
        monkeypatch, "hook_b", host=receiver.url + "/hook", password=TOKEN, extra={"header": "X-Flywheel-Token"}
    )
    WebhookHook("hook_b").post({})
    headers = receiver.requests[0].headers
    assert headers["X-Flywheel-Token"] == TOKEN and "Authorization" not in headers


def test_webhook_errors_name_the_host_only(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    from flywheel_airflow.hooks import WebhookHook

    _connection(monkeypatch, "hook_c", host=receiver.url + SECRET_PATH, password=TOKEN)
    receiver.statuses = [403]
    with pytest.raises(NotificationError, match=rf"webhook at {receiver.url} .* after 1 attempt\(s\): HTTP 403") as err:
        WebhookHook("hook_c").post({})
    assert sleeps == []  # a 4xx is not retried
    receiver.statuses = [500] * 3
    with pytest.raises(NotificationError, match=r"after 3 attempt\(s\): HTTP 500"):
        WebhookHook("hook_c").post({})
    _connection(monkeypatch, "hook_down", host="http://127.0.0.1:9" + SECRET_PATH, password=TOKEN)
    with caplog.at_level("DEBUG"), pytest.raises(NotificationError, match="ConnectError") as down:
        WebhookHook("hook_down").post({})
    for text in (str(err.value), str(down.value), caplog.text):
        assert TOKEN not in text and "s3cr3t" not in text
    assert down.value.__cause__ is None and down.value.__suppress_context__  # httpx's message holds the URL


def test_webhook_connection_without_a_url_is_named() -> None:
    from flywheel_airflow.hooks import WebhookHook

    with pytest.raises(ConfigError, match="needs a webhook_conn_id or a url"):
        WebhookHook(None)


def test_webhook_connection_host_must_be_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel_airflow.hooks import WebhookHook

    _connection(monkeypatch, "hook_d", host="hooks.example.com")
    with pytest.raises(ConfigError, match="'hook_d' has no http\\(s\\) URL .* set its host to the webhook URL"):
        WebhookHook("hook_d").post({})
    _connection(monkeypatch, "hook_e", host="hooks.example.com", schema="https", port=8443, extra={"path": "/x"})
    assert WebhookHook("hook_e").target() == ("https://hooks.example.com:8443/x", {})


def test_notify_takes_one_webhook_form() -> None:
    assert Notify(webhook_conn_id="flywheel_webhook").webhook_conn_id == "flywheel_webhook"
    with pytest.raises(ValidationError, match="set webhook_conn_id or webhook_url, not both"):
        Notify(webhook_conn_id="c", webhook_url="https://h/x")


def test_alert_notifier_builds_one_hook_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel_airflow import notifiers
    from flywheel_airflow.hooks import WebhookHook

    hook = Mock(spec=WebhookHook)
    hook.post.return_value = 204
    hook_class = Mock(spec=WebhookHook, return_value=hook)
    monkeypatch.setattr(notifiers, "WebhookHook", hook_class)
    notifier = notifiers.FlywheelAlertNotifier({"rule": "r", "app": "a"}, webhook_conn_id="flywheel_webhook")
    notifier.notify({})
    notifier.notify({})
    hook_class.assert_called_once_with("flywheel_webhook")  # cached: one hook per notifier
    assert hook.post.call_args_list == [(({"rule": "r", "app": "a"},),)] * 2


def test_webhook_url_still_posts_but_warns_that_it_is_deprecated(
    receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    from flywheel_airflow.notifiers import send_alerts

    notify = Notify(webhook_url=receiver.url + "/hook")
    with caplog.at_level("WARNING"):
        assert send_alerts([{"rule": "r"}], notify, context={}) == 1
    assert [r.body for r in receiver.requests] == [{"rule": "r"}]
    assert "notify.webhook_url is deprecated" in caplog.text and "notify.webhook_conn_id" in caplog.text


def _failure_context(exception: BaseException | None = None, map_index: int = -1) -> dict:
    ti = SimpleNamespace(
        dag_id="flywheel_monitor_support",
        task_id="score",
        run_id="scheduled__2026-11-20T06:00:00+00:00",
        map_index=map_index,
        try_number=4,
        log_url="http://airflow:8080/dags/flywheel_monitor_support/runs/x/tasks/score?try_number=4",
    )
    return {"ti": ti, "exception": exception}


def test_failure_callback_sends_dag_task_run_try_and_log_url(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.smtp.notifications import smtp
    from flywheel_airflow import notifiers
    from flywheel_airflow.hooks import WebhookHook

    hook = Mock(spec=WebhookHook)
    monkeypatch.setattr(notifiers, "WebhookHook", Mock(spec=WebhookHook, return_value=hook))
    email = Mock(spec=smtp.SmtpNotifier)
    monkeypatch.setattr(smtp, "SmtpNotifier", email)
    notifier = notifiers.TaskFailureNotifier(
        "support", webhook_conn_id="flywheel_webhook", email_to=["oncall@example.com"]
    )
    context = _failure_context(TimeoutError("MLflow did not answer\nTraceback ..."), map_index=1)
    with caplog.at_level("WARNING"):
        notifier(context)  # as Airflow calls an on_failure_callback
    (payload,), _ = hook.post.call_args
    assert payload["schema"] == "genai-flywheel/task-failure/v1"
    assert {k: payload[k] for k in ("app", "dag_id", "task_id", "map_index", "run_id", "try_number")} == {
        "app": "support",
        "dag_id": "flywheel_monitor_support",
        "task_id": "score",
        "map_index": 1,
        "run_id": "scheduled__2026-11-20T06:00:00+00:00",
        "try_number": 4,
    }
    assert payload["log_url"].endswith("/tasks/score?try_number=4")
    assert payload["error"] == "TimeoutError: MLflow did not answer"
    assert payload["title"] == (
        "[genai-flywheel] support: task flywheel_monitor_support.score[1] failed "
        "(run scheduled__2026-11-20T06:00:00+00:00, try 4)"
    )
    assert "flywheel task failed" in caplog.text and payload["log_url"] in caplog.text
    email.assert_called_once()
    assert email.call_args.kwargs["to"] == ["oncall@example.com"]
    assert email.call_args.kwargs["subject"] == payload["title"]
    assert payload["log_url"] in email.call_args.kwargs["html_content"]
    # The same try gives the same id (a receiver drops the duplicate); the next try another.
    again = notifiers.failure_payload(_failure_context(map_index=1), "support")
    assert again["id"] == payload["id"] and again["map_index"] == 1 and again["error"] is None
    context["ti"].try_number = 5
    assert notifiers.failure_payload(context, "support")["id"] != payload["id"]


def test_failure_callback_without_channels_only_logs(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from flywheel_airflow import notifiers

    hook_class = Mock()
    monkeypatch.setattr(notifiers, "WebhookHook", hook_class)
    with caplog.at_level("WARNING"):
        notifiers.TaskFailureNotifier("support").notify(_failure_context())
    assert "task flywheel_monitor_support.score failed" in caplog.text
    hook_class.assert_not_called()


def test_default_args_bind_the_failure_callback_to_the_application() -> None:
    from flywheel_airflow.notifiers import TaskFailureNotifier
    from flywheel_airflow.settings import DEFAULT_ARGS, default_args

    from genai_flywheel.config import load_config
    from tests.conftest import ROOT

    app = load_config(ROOT / "flywheel.yaml").applications[0]
    app = app.model_copy(update={"notify": Notify(webhook_conn_id="flywheel_webhook", email_to=["a@example.com"])})
    args = default_args(app)
    callback = args.pop("on_failure_callback")
    assert args == DEFAULT_ARGS
    assert isinstance(callback, TaskFailureNotifier) and callback.app == app.name
    assert (callback.webhook_conn_id, callback.webhook_url, callback.email_to) == (
        "flywheel_webhook",
        None,
        ["a@example.com"],
    )


def _payloads() -> tuple[dict, dict]:
    """An app-level and a per-segment (grouped) notification payload, as the alert stage returns them."""
    from datetime import UTC, datetime, timedelta

    from genai_flywheel.alerts.payload import Notification, group_segments
    from genai_flywheel.alerts.rules import AlertEvaluation

    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    end = start + timedelta(hours=6)
    base = {
        "rule": "errors", "metric": "error_rate", "op": ">", "threshold": 0.05, "severity": "critical",
        "min_samples": 30, "state": "firing", "value": 0.12, "ci_low": 0.09, "ci_high": 0.16, "n": 400,
        "reason": "error_rate > 0.05: whole CI beyond",
    }  # fmt: skip
    app_level = Notification.from_evaluation("support", AlertEvaluation(**base), "firing", start, end, start)
    segment = {**base, "rule": "topic_satisfaction", "metric": "feedback.user_feedback.positive_rate", "op": "<",
               "threshold": 0.65, "severity": "warning", "min_samples": 4, "dimension": "topic"}  # fmt: skip
    smart = AlertEvaluation(**{**segment, "value": 0.0, "ci_low": 0.0, "ci_high": 0.49, "n": 4},
                            segment="c-1a2b", label="smart sync", p_value=0.0032)  # fmt: skip
    billing = AlertEvaluation(**{**segment, "value": 0.2, "ci_low": 0.06, "ci_high": 0.51, "n": 10},
                              segment="billing", label="billing", p_value=0.004)  # fmt: skip
    (grouped,) = group_segments(
        [Notification.from_evaluation("support", e, "firing", start, end, start) for e in (billing, smart)]
    )
    return app_level.with_links(dashboard_url="http://airflow/flywheel").to_dict(), grouped.to_dict()


def test_alert_text_reads_the_nested_ci_and_interval() -> None:
    from flywheel_airflow.notifiers import FlywheelAlertNotifier

    app_level, _ = _payloads()
    text = FlywheelAlertNotifier(app_level).text()
    assert "None" not in text
    assert "error_rate = 0.12 (95% CI 0.09..0.16, n=400)" in text
    assert "interval 2026-11-20T06:00:00Z to 2026-11-20T12:00:00Z" in text
    assert "dashboard: http://airflow/flywheel" in text and "whole CI beyond" in text


def test_alert_text_of_a_per_segment_rule_lists_its_segments_in_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flywheel_airflow import notifiers
    from flywheel_airflow.hooks import WebhookHook

    _, grouped = _payloads()
    text = notifiers.FlywheelAlertNotifier(grouped).text()
    lines = text.splitlines()
    assert lines[0].startswith(
        "[warning] support: alert topic_satisfaction firing — feedback.user_feedback.positive_rate < 0.65 "
        "in 2 topic segment(s), interval 2026-11-20T06:00:00Z"
    )
    metric = "feedback.user_feedback.positive_rate"
    assert lines[1] == f"  topic=smart sync (c-1a2b): {metric} = 0.0 (95% CI 0.0..0.49, n=4), p=0.0032"
    assert lines[2].startswith(f"  topic=billing: {metric} = 0.2 (95% CI 0.06..0.51, n=10)")
    assert "None" not in text
    hook = Mock(spec=WebhookHook)
    monkeypatch.setattr(notifiers, "WebhookHook", Mock(spec=WebhookHook, return_value=hook))
    assert notifiers.send_alerts([grouped], Notify(webhook_conn_id="flywheel_webhook"), context={}) == 1
    (posted,), _ = hook.post.call_args
    assert [s["segment"] for s in posted["segments"]] == ["c-1a2b", "billing"] and posted["dimension"] == "topic"
