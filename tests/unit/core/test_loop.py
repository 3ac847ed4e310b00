"""The improvement loop's use cases: one function per stage, each calling its stage in the DAG run's
folder with the arguments the task gives it, and returning the stage's small dict."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genai_flywheel import loop
from genai_flywheel.config import FlywheelConfig
from genai_flywheel.curation import stages as curation_stages
from genai_flywheel.evaluation import stages as evaluation_stages
from genai_flywheel.export import stages as export_stages

APP = "bot"
RUN = "manual__2026-11-26T07:37:03+00:00"
END = datetime(2026, 11, 26, tzinfo=UTC)
END_MS = int(END.timestamp() * 1000)
DAY_MS = 86_400_000


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlywheelConfig:
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(tmp_path / "data"))
    return FlywheelConfig.model_validate(
        {
            "applications": [
                {
                    "name": APP,
                    "mlflow": {"tracking_uri": "sqlite:///unused.db", "experiment": "bot-prod"},
                    "curation": {"lookback_days": 3},
                    "contract": {"max_bad_fraction": 0.2},
                }
            ]
        }
    )


class Recorder:
    """Stands in for stage functions: records each call and returns a JSON-able dict naming the stage."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def patch(self, module: Any, name: str) -> None:
        def stage(*args: Any, **kwargs: Any) -> dict[str, Any]:
            self.calls[name] = (args, kwargs)
            return {"stage": name, "path": str(args[0]), "rows": 3}

        self.monkeypatch.setattr(module, name, stage)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder(monkeypatch)
    for name in ("extract_stage", "select_stage", "build_stage", "validate_stage", "merge_stage", "publish_stage"):
        rec.patch(curation_stages, name)
    for name in ("load_stage", "run_candidate_stage", "compare_stage", "log_stage", "gate_stage"):
        rec.patch(evaluation_stages, name)
    for name in ("select_examples", "build_jsonl", "log_export"):
        rec.patch(export_stages, name)
    return rec


def _folder(config: FlywheelConfig, kind: str) -> Path:
    return loop.run_folder(config.data_path(), kind, APP, RUN)


CASES: list[tuple[Callable[..., dict], str, str, dict[str, Any]]] = [
    (loop.curate_select, "select_stage", "curation", {}),
    (loop.curate_build, "build_stage", "curation", {"airflow_run_id": RUN}),
    (loop.curate_validate, "validate_stage", "curation", {"max_bad_fraction": 0.2}),
    (loop.curate_publish, "publish_stage", "curation", {}),
    (loop.evaluate_compare, "compare_stage", "evaluations", {}),
    (loop.evaluate_log, "log_stage", "evaluations", {}),
    (loop.evaluate_gate, "gate_stage", "evaluations", {"enforce": True}),
    (loop.export_build, "build_jsonl", "exports", {}),
    (loop.export_log, "log_export", "exports", {}),
]


@pytest.mark.parametrize(("use_case", "stage", "kind", "kwargs"), CASES, ids=[c[1] for c in CASES])
def test_each_use_case_runs_its_stage_in_the_run_folder(
    use_case: Callable[..., dict],
    stage: str,
    kind: str,
    kwargs: dict[str, Any],
    config: FlywheelConfig,
    recorder: Recorder,
) -> None:
    out = use_case(APP, RUN, config=config)
    args, got = recorder.calls[stage]
    folder = _folder(config, kind)
    assert args[0] == folder and folder.is_dir()
    assert got == kwargs
    assert out == {"stage": stage, "path": str(folder), "rows": 3}
    json.dumps(out)  # what the task returns lands in XCom


def test_merge_and_run_candidate_get_the_data_root_and_the_judge(config: FlywheelConfig, recorder: Recorder) -> None:
    loop.curate_merge(APP, RUN, config=config)
    assert recorder.calls["merge_stage"][1] == {"data_root": config.data_path(), "airflow_run_id": RUN}
    judge = object()
    loop.evaluate_run_candidate(APP, RUN, judge=judge, config=config)  # type: ignore[arg-type]
    assert recorder.calls["run_candidate_stage"][1] == {"judge": judge}


def test_curate_extract_window(config: FlywheelConfig, recorder: Recorder) -> None:
    loop.curate_extract(APP, RUN, interval_end=END, config=config)
    assert recorder.calls["extract_stage"][1] == {"interval_end_ms": END_MS, "interval_start_ms": END_MS - 3 * DAY_MS}
    # A window end given on demand wins over the run's interval; so does a lookback param.
    loop.curate_extract(APP, RUN, interval_end=END, window_end="2026-11-20T00:00:00Z", lookback_days=1, config=config)
    moved = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
    assert recorder.calls["extract_stage"][1] == {"interval_end_ms": moved, "interval_start_ms": moved - DAY_MS}
    with pytest.raises(ValueError, match="window end"):
        loop.curate_extract(APP, RUN, interval_end=None, config=config)


def test_evaluate_load_takes_the_triggering_dataset_and_ignores_a_window_in_the_params(
    config: FlywheelConfig, recorder: Recorder
) -> None:
    extra = {"dataset": "flywheel_bot_default", "version": 4}
    loop.evaluate_load(
        APP, RUN, params={"candidate": "m:f", "dataset": None, "window_end_ms": 1}, asset_extra=extra, config=config
    )
    args, kwargs = recorder.calls["load_stage"]
    assert args[0] == _folder(config, "evaluations")
    assert args[2] == {"candidate": "m:f", "dataset": "flywheel_bot_default", "dataset_version": 4}
    assert kwargs == {"data_root": config.data_path()}


def test_evaluate_load_ad_hoc_reads_up_to_the_interval_end(config: FlywheelConfig, recorder: Recorder) -> None:
    loop.evaluate_load(APP, RUN, params={"filter": "trace.status = 'OK'"}, interval_end=END, config=config)
    assert recorder.calls["load_stage"][0][2] == {"filter": "trace.status = 'OK'", "window_end_ms": END_MS}
    with pytest.raises(ValueError, match="window end"):
        loop.evaluate_load(APP, RUN, params={"filter": "trace.status = 'OK'"}, config=config)


def test_export_select_window_and_params(config: FlywheelConfig, recorder: Recorder) -> None:
    start = datetime(2026, 11, 19, tzinfo=UTC)
    loop.export_select(
        APP,
        RUN,
        interval_start=start,
        interval_end=END,
        params={"filter": "", "min_score": 0.8},
        config=config,
    )
    args, kwargs = recorder.calls["select_examples"]
    assert args[0] == _folder(config, "exports")
    assert kwargs == {"start_ms": int(start.timestamp() * 1000), "end_ms": END_MS, "params": {"min_score": 0.8}}
    loop.export_select(
        APP, RUN, interval_start=start, interval_end=END, window_start="2026-11-25T00:00:00Z", config=config
    )
    assert recorder.calls["select_examples"][1]["start_ms"] == END_MS - DAY_MS
    with pytest.raises(ValueError, match="window"):
        loop.export_select(APP, RUN, interval_start=None, interval_end=END, config=config)


def test_run_folder_is_safe_for_any_run_id(tmp_path: Path) -> None:
    path = loop.run_folder(tmp_path, "curation", "app", "manual__2026-11-26T07:37:03.468103+00:00")
    assert path.parent == tmp_path / "curation" / "app=app"
    assert "/" not in path.name and ":" not in path.name and "+" not in path.name


def test_review_collect_on_demand_collects_from_the_schedule_tick_before_its_end(
    config: FlywheelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_flywheel.review import stages as review_stages

    seen: dict[str, Any] = {}
    monkeypatch.setattr(review_stages, "collect_stage", lambda app, backend, **kw: seen.update(kw) or {"labels": 0})
    end = datetime(2026, 11, 26, 17, 51, 7, tzinfo=UTC)
    loop.review_collect(APP, RUN, interval_start=None, interval_end=end.isoformat(), backend=object(), config=config)
    # review.schedule defaults to hourly: a manual run (no data interval) collects [17:00, 17:51:07).
    assert (seen["interval_start"], seen["interval_end"]) == (datetime(2026, 11, 26, 17, tzinfo=UTC), end)
    loop.review_collect(APP, RUN, interval_start=END, interval_end=end, backend=object(), config=config)
    assert seen["interval_start"] == END
    with pytest.raises(ValueError, match="needs the interval end"):
        loop.review_collect(APP, RUN, interval_start=None, interval_end=None, backend=object(), config=config)
