"""Human review: one DAG per application that declares review queues, on ``review.schedule``.

collect: the review items completed in the interval become label rows, and each automated scorer's
agreement with the reviewers becomes ``calibration.<scorer>.*`` metrics (the interval and a rolling
window); alert rules on those metrics notify like the monitor's. The queues are fed by the curation DAG
(its enqueue_review task).
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task
from flywheel_airflow.settings import dag_tags, default_args, flywheel_config


def build_review(app_name: str) -> None:
    app = flywheel_config().app(app_name)

    @dag(
        dag_id=f"flywheel_review_{app_name}",
        description=f"Collect human reviews of {app_name} and calibrate its scorers against them",
        schedule=CronDataIntervalTimetable(app.review.schedule, timezone="UTC"),
        start_date=app.start_date,
        catchup=False,
        max_active_runs=1,  # the rolling window reads the label partitions earlier runs wrote
        default_args=default_args(app),
        tags=dag_tags("review", app_name),
        params={
            "interval_end": Param(
                None,
                type=["null", "string"],
                format="date-time",
                description="Collect reviews completed up to this time (default: the run's interval end)",
            ),
        },
        doc_md=__doc__,
    )
    def review() -> None:
        @task
        def collect(params=None, data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
            from flywheel_airflow.notifiers import send_alerts

            from genai_flywheel import loop

            result = loop.review_collect(
                app_name,
                run_id,
                interval_start=data_interval_start,
                interval_end=params["interval_end"] or data_interval_end,
            )
            result["sent"] = send_alerts(result.pop("notifications"), app.notify, get_current_context())
            return result

        collect()

    review()


for _app in flywheel_config().applications:
    if _app.review.queues:
        build_review(_app.name)
