"""Watchdog: one DAG per application with ``kind: stale`` alert rules, checking every hour that the monitor
still produces intervals. A monitor that stopped (paused, failing, a dead scheduler queue) cannot alert on
itself; this DAG pages through the same notifiers when the newest stored interval is too old.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task
from flywheel_airflow.settings import dag_tags, default_args, flywheel_config

SCHEDULE = "15 * * * *"  # hourly, off the hour so it does not compete with interval-aligned monitor runs


def build_watchdog(app_name: str) -> None:
    app = flywheel_config().app(app_name)

    @dag(
        dag_id=f"flywheel_watchdog_{app_name}",
        description=f"Page when the monitor of {app_name} stops producing intervals",
        schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
        start_date=app.start_date,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(app),
        tags=dag_tags("watchdog", app_name),
        doc_md=__doc__,
    )
    def watchdog() -> None:
        @task
        def check(data_interval_start=None, data_interval_end=None) -> dict:
            from flywheel_airflow.notifiers import send_alerts

            from genai_flywheel import pipeline

            result = pipeline.watchdog(app_name, data_interval_start, data_interval_end)
            result["sent"] = send_alerts(result.pop("notifications"), app.notify, get_current_context())
            return result

        check()

    watchdog()


for _app in flywheel_config().applications:
    if any(rule.kind == "stale" for rule in _app.alerts):
        build_watchdog(_app.name)
