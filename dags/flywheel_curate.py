"""Curation: one DAG per application, daily and on demand (with Params).

extract -> select -> build -> validate -> merge -> publish, and select -> enqueue_review when the application
declares review queues (the selected traces go to people; see genai_flywheel.review). The publish task
emits the application's dataset Asset event (extra: dataset, version, digest, record counts per rule),
which triggers the development evaluation DAG.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Metadata, Param, dag, task
from flywheel_airflow.settings import dag_tags, dataset_asset, default_args, flywheel_config


def build_curation(app_name: str) -> None:
    app = flywheel_config().app(app_name)
    asset = dataset_asset(app_name)

    @dag(
        dag_id=f"flywheel_curate_{app_name}",
        description=f"Select production traces of {app_name} into a versioned MLflow evaluation dataset",
        schedule=CronDataIntervalTimetable(app.curation.schedule, timezone="UTC"),
        start_date=app.start_date,
        catchup=False,
        max_active_runs=1,  # versions are numbered in order: two runs at once would race for one number
        default_args=default_args(app),
        tags=dag_tags("curation", app_name),
        params={
            "lookback_days": Param(app.curation.lookback_days, type="integer", minimum=1, maximum=3650),
            "window_end": Param(
                None,
                type=["null", "string"],
                format="date-time",
                description="End of the lookback window (default: the run's interval end)",
            ),
        },
        doc_md=__doc__,
    )
    def curate() -> None:
        @task
        def extract(params=None, data_interval_end=None, run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.curate_extract(
                app_name,
                run_id,
                interval_end=data_interval_end,
                window_end=params["window_end"],
                lookback_days=params["lookback_days"],
            )

        @task
        def select(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.curate_select(app_name, run_id)

        @task
        def build(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.curate_build(app_name, run_id)

        @task(retries=0)  # a broken contract does not heal by retrying
        def validate(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.curate_validate(app_name, run_id)

        @task
        def merge(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.curate_merge(app_name, run_id)

        @task(outlets=[asset])
        def publish(run_id=None):
            from genai_flywheel import loop

            event = loop.curate_publish(app_name, run_id)
            yield Metadata(asset, extra=event)
            return event

        selected = extract() >> select()
        selected >> build() >> validate() >> merge() >> publish()
        if app.review.queues:

            @task
            def enqueue_review(run_id=None) -> dict:
                from genai_flywheel import loop

                return loop.review_enqueue(app_name, run_id)

            selected >> enqueue_review()

    curate()


for _app in flywheel_config().applications:
    build_curation(_app.name)
