"""Production monitor: one DAG per application in flywheel.yaml, one task per stage, per schedule interval.

extract (mapped over time slices) -> validate -> sample -> score (mapped over shards) -> write_back ->
reference -> aggregate -> store -> alert. extract lists the trace infos of its slice (no spans); score reads
its shard's sampled traces in full, checks, scores and summarises them; reference learns the query clusters
and the reference mix the segment and drift metrics use (once per refresh period). Each task makes
one call into ``genai_flywheel.pipeline`` and returns paths and counts, never data.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task
from flywheel_airflow.settings import dag_tags, default_args, flywheel_config, metrics_asset


def build_monitor(app_name: str) -> None:
    app = flywheel_config().app(app_name)

    @dag(
        dag_id=f"flywheel_monitor_{app_name}",
        description=f"Monitor production traces of {app_name}: score, aggregate, store, alert",
        schedule=CronDataIntervalTimetable(app.schedule, timezone="UTC"),
        start_date=app.start_date,
        catchup=False,
        max_active_runs=2,
        default_args=default_args(app),
        tags=dag_tags("monitor", app_name),
        doc_md=__doc__,
    )
    def monitor() -> None:
        # One mapped task instance per time slice: workers list a large window in parallel, and a slice that
        # fails retries alone.
        @task
        def extract(slice_index: int, data_interval_start=None, data_interval_end=None) -> dict:
            from genai_flywheel import pipeline

            return pipeline.extract(app_name, data_interval_start, data_interval_end, slice_index=slice_index)

        @task(retries=0)  # a broken contract does not heal by retrying
        def validate(data_interval_start=None, data_interval_end=None) -> dict:
            from genai_flywheel import pipeline

            return pipeline.validate(app_name, data_interval_start, data_interval_end)

        @task
        def sample(data_interval_start=None, data_interval_end=None) -> list[int]:
            from genai_flywheel import pipeline

            return pipeline.sample(app_name, data_interval_start, data_interval_end)["shards"]

        # Judge calls are rate-limited by an Airflow pool sized in the config (judge.pool_slots).
        @task(pool=app.judge.pool if app.judge.conn_id else "default_pool")
        def score(shard: int, data_interval_start=None, data_interval_end=None) -> dict:
            from flywheel_airflow.hooks import judge_endpoint

            from genai_flywheel import pipeline

            return pipeline.score_shard(
                app_name, data_interval_start, data_interval_end, shard, judge=judge_endpoint(app)
            )

        @task
        def reference(data_interval_start=None, data_interval_end=None) -> dict:
            from genai_flywheel import pipeline

            return pipeline.reference(app_name, data_interval_start, data_interval_end)

        @task(trigger_rule="none_failed")  # an interval with nothing sampled still gets its metrics
        def write_back(data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
            from genai_flywheel import pipeline

            return pipeline.write_back(app_name, data_interval_start, data_interval_end, run_id=run_id)

        @task
        def aggregate(data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
            from genai_flywheel import pipeline

            return pipeline.aggregate(app_name, data_interval_start, data_interval_end, run_id=run_id)

        @task(outlets=[metrics_asset(app_name)])
        def store(data_interval_start=None, data_interval_end=None) -> dict:
            from genai_flywheel import pipeline

            return pipeline.store(app_name, data_interval_start, data_interval_end)

        @task
        def alert(data_interval_start=None, data_interval_end=None) -> dict:
            from flywheel_airflow.notifiers import send_alerts

            from genai_flywheel import pipeline

            result = pipeline.alert(app_name, data_interval_start, data_interval_end)
            result["sent"] = send_alerts(result.pop("notifications"), app.notify, get_current_context())
            return result

        slices = extract.expand(slice_index=list(range(app.extract.slices)))
        shards = slices >> validate() >> sample()
        scored = score.expand(shard=shards)
        scored >> write_back() >> reference() >> aggregate() >> store() >> alert()

    monitor()


for _app in flywheel_config().applications:
    build_monitor(_app.name)
