"""Hooks: the only place where Airflow Connections turn into endpoints the library uses."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from genai_flywheel.config import Application
    from genai_flywheel.scoring.judges import JudgeEndpoint

log = logging.getLogger(__name__)


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
        base_url = conn.host or ""
        if conn.schema and not base_url.startswith(("http://", "https://")):
            base_url = f"{conn.schema}://{base_url}"
        if conn.port and f":{conn.port}" not in base_url:
            base_url = base_url.rstrip("/") + f":{conn.port}"
        extra = conn.extra_dejson or {}
        if extra.get("path"):
            base_url = base_url.rstrip("/") + "/" + str(extra["path"]).lstrip("/")
        return JudgeEndpoint(
            base_url=base_url,
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
