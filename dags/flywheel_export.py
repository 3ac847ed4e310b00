"""Fine-tuning export: one DAG per application, weekly by default and on demand.

select -> build -> log: good interactions and corrected bad ones of the interval become chat-format JSONL
(PII redacted, deduplicated, split train/validation), with a manifest, logged to MLflow.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from flywheel_airflow.settings import dag_tags, default_args, flywheel_config


def build_export(app_name: str) -> None:
    app = flywheel_config().app(app_name)

    @dag(
        dag_id=f"flywheel_export_{app_name}",
        description=f"Export fine-tuning data from {app_name}'s production traces",
        schedule=CronDataIntervalTimetable(app.export.schedule, timezone="UTC"),
        start_date=app.start_date,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(app),
        tags=dag_tags("export", app_name),
        params={
            "filter": Param(None, type=["null", "string"], description="Extra selection filter"),
            "min_score": Param(app.export.min_score, type="number", minimum=0, maximum=1),
            "window_start": Param(None, type=["null", "string"], format="date-time"),
            "window_end": Param(None, type=["null", "string"], format="date-time"),
        },
        doc_md=__doc__,
    )
    def export() -> None:
        @task
        def select(params=None, data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.export_select(
                app_name,
                run_id,
                interval_start=data_interval_start,
                interval_end=data_interval_end,
                window_start=params["window_start"],
                window_end=params["window_end"],
                params={"filter": params["filter"], "min_score": params["min_score"]},
            )

        @task
        def build(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.export_build(app_name, run_id)

        @task
        def log(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.export_log(app_name, run_id)

        select() >> build() >> log()

    export()


for _app in flywheel_config().applications:
    build_export(_app.name)
