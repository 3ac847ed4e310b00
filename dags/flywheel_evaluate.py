"""Development evaluation: one DAG per application, triggered by its curated dataset Asset, and on demand.

load -> run_candidate -> compare -> log -> gate. Params choose the candidate (``module:function`` or an
MLflow model URI), the dataset (default: the one in the triggering Asset event, else the newest version)
or, for a quick ad-hoc check, a selection filter and a sample size of production inputs; the scorers and
the gate thresholds. The gate task fails when a declared threshold is not met.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from flywheel_airflow.settings import dag_tags, dataset_asset, default_args, flywheel_config


def build_evaluation(app_name: str) -> None:
    app = flywheel_config().app(app_name)

    @dag(
        dag_id=f"flywheel_evaluate_{app_name}",
        description=f"Evaluate a development version of {app_name} against production, and gate it",
        schedule=[dataset_asset(app_name)],
        start_date=app.start_date,
        catchup=False,
        default_args=default_args(app),
        tags=dag_tags("evaluation", app_name),
        params={
            "candidate": Param(
                app.evaluation.candidate,
                type=["null", "string"],
                description="module:function or models:/... / runs:/...",
            ),
            "dataset": Param(None, type=["null", "string"], description="Default: the triggering dataset"),
            "dataset_version": Param(None, type=["null", "integer"], minimum=1),
            "filter": Param(None, type=["null", "string"], description="Ad-hoc: production inputs to use"),
            "sample_size": Param(100, type="integer", minimum=1, maximum=100000),
            "scorers": Param(None, type=["null", "array"]),
            "gates": Param(None, type=["null", "array"], description="Default: evaluation.gates"),
        },
        doc_md=__doc__,
    )
    def evaluate() -> None:
        @task
        def load(params=None, triggering_asset_events=None, data_interval_end=None, run_id=None) -> dict:
            from genai_flywheel import loop

            events = triggering_asset_events[dataset_asset(app_name)] if triggering_asset_events else []
            return loop.evaluate_load(
                app_name,
                run_id,
                params=params,
                asset_extra=events[-1].extra if events else None,
                interval_end=data_interval_end,
            )

        @task
        def run_candidate(run_id=None) -> dict:
            from flywheel_airflow.hooks import judge_endpoint

            from genai_flywheel import loop

            return loop.evaluate_run_candidate(app_name, run_id, judge=judge_endpoint(app))

        @task
        def compare(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.evaluate_compare(app_name, run_id)

        @task
        def log(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.evaluate_log(app_name, run_id)

        @task(retries=0)  # a failed gate is a verdict, not a transient error
        def gate(run_id=None) -> dict:
            from genai_flywheel import loop

            return loop.evaluate_gate(app_name, run_id)

        load() >> run_candidate() >> compare() >> log() >> gate()

    evaluate()


for _app in flywheel_config().applications:
    build_evaluation(_app.name)
