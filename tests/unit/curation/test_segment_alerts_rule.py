"""The ``segment_alerts`` curation rule: the traces of a segment a per-segment alert fired on, from the
intervals it fired in, and nothing else; query clusters keyed as the monitor keyed them; config checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_flywheel.alerts.state import process_interval
from genai_flywheel.config import Application
from genai_flywheel.curation import stages
from genai_flywheel.exceptions import ConfigError
from genai_flywheel.metrics.aggregate import metrics_schema
from genai_flywheel.metrics.segment_schema import OTHER, segments_schema
from genai_flywheel.metrics.stats import wilson_interval
from genai_flywheel.segments.alerted import segment_alert_masks
from genai_flywheel.segments.clusters import ReferenceCluster
from genai_flywheel.segments.reference import ReferenceProfile, profile_path, write_profile
from tests.unit.curation.curation_tables import BASE_MS, table, trace

T0 = datetime.fromtimestamp(BASE_MS / 1000, tz=UTC)
SIX = timedelta(hours=6)
FEEDBACK = "feedback.user_feedback.positive_rate"
HOURS = 60  # minutes per hour in curation_tables.trace(minute=...)


def app_config(**curation_options: Any) -> dict[str, Any]:
    return {
        "name": "demo",
        "mlflow": {"tracking_uri": "http://mlflow", "experiment": "x"},
        "schedule": "0 */6 * * *",
        "segments": {
            "dimensions": [
                {"name": "version", "source": "tags.version"},
                {"name": "topic", "source": "query_cluster"},
            ]
        },
        "alerts": [
            {
                "name": "version_satisfaction",
                "segment": "version",
                "metric": FEEDBACK,
                "op": "<",
                "threshold": 0.65,
                "min_samples": 4,
            },
            {
                "name": "topic_satisfaction",
                "segment": "topic",
                "metric": FEEDBACK,
                "op": "<",
                "threshold": 0.65,
                "min_samples": 4,
            },
            {"name": "errors", "metric": "error_rate", "op": ">", "threshold": 0.5},
        ],  # fmt: skip
        "curation": {
            "rules": [
                {
                    "name": "negative_feedback",
                    "filter": "assessments.user_feedback.value = 'negative'",
                    "priority": 50,
                    "cap": 50,
                },
                {
                    "name": "alerted_segments",
                    "kind": "segment_alerts",
                    "priority": 10,
                    "cap": 50,
                    "options": curation_options,
                },
            ]
        },  # fmt: skip
    }


def segment_row(dimension: str, segment: str, good: int, n: int, start: datetime) -> dict[str, Any]:
    low, high = wilson_interval(good, n)
    return {
        "app": "demo", "interval_start": start, "interval_end": start + SIX, "dimension": dimension,
        "segment": segment, "label": f"{dimension} {segment}", "metric": FEEDBACK, "value": good / n, "n": n,
        "ci_low": low, "ci_high": high, "examples": None,
    }  # fmt: skip


def monitor_alerts(root: Path, app: Application, plan: list[list[tuple[str, str, int, int]]]) -> None:
    """Run the monitor's alert stage over intervals 0..len(plan)-1 with these segment counts."""
    for h, rows in enumerate(plan):
        start = T0 + h * SIX
        segments = pa.Table.from_pylist([segment_row(*r, start=start) for r in rows], schema=segments_schema())
        empty = metrics_schema().empty_table()
        process_interval(root, app.name, empty, app.alerts, start, start + SIX, timedelta(days=1), segments=segments)


GOOD = [("version", "v1", 19, 20), ("version", "v2", 19, 20), ("topic", "c-sync", 19, 20)]


def write_run(run_dir: Path, rows: list[dict[str, Any]], hours: int = 24, from_hour: int = 0) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(table(rows), run_dir / stages.TRACES_FILE)
    start = BASE_MS + from_hour * 3_600_000
    window = {"app": "demo", "interval_start_ms": start, "interval_end_ms": BASE_MS + hours * 3_600_000}
    (run_dir / stages.WINDOW_FILE).write_text(json.dumps(window))


def tagged(trace_id: str, hour: float, version: str, query: str = "how do I export a report", **kw: Any):
    return trace(trace_id, query, minute=int(hour * HOURS), tags={"version": version}, **kw)


def select(run_dir: Path, app: Application, data_root: Path) -> dict[str, Any]:
    """The curation select stage as the curation DAG runs it (genai_flywheel.loop.curate_select)."""
    return stages.select_stage(run_dir, app, partial(segment_alert_masks, app, data_root))


def selected_ids(run_dir: Path, rule: str) -> list[str]:
    picked = pq.read_table(run_dir / stages.SELECTED_FILE).to_pylist()
    return [r["trace_id"] for r in picked if r["rule"] == rule]


def test_the_traces_of_an_alerted_segment_in_its_firing_intervals_are_curated(tmp_path: Path) -> None:
    app = Application.model_validate(app_config())
    # v2 goes bad in interval 1 (hours 6-12) only; v1 stays good.
    monitor_alerts(tmp_path, app, [GOOD, [("version", "v1", 19, 20), ("version", "v2", 0, 8)], GOOD])
    rows = [
        tagged("early-v2", 1, "v2"),  # the segment, before it fired
        tagged("bad-v2-a", 7, "v2", scores={"relevance": 0.9}),
        tagged("bad-v2-b", 8, "v2", feedback=False),  # also negative feedback: the earlier rule takes it
        tagged("bad-v1", 8, "v1"),  # same interval, another segment
        tagged("late-v2", 13, "v2"),  # after it resolved
    ]
    run_dir = tmp_path / "run"
    write_run(run_dir, rows)
    summary = select(run_dir, app, tmp_path)
    # Worst first: the negative verdict ranks before the well-scored trace.
    assert selected_ids(run_dir, "alerted_segments") == ["bad-v2-b", "bad-v2-a"]
    assert summary["per_rule"] == {"alerted_segments": 2, "negative_feedback": 0}
    [followed] = summary["alerted_segments"]["alerted_segments"]
    assert (followed["rule"], followed["dimension"], followed["segment"]) == ("version_satisfaction", "version", "v2")
    assert followed["interval_start_ms"] == BASE_MS + 6 * 3_600_000
    # The same inputs give the same bytes.
    first = (run_dir / stages.SELECTED_FILE).read_bytes()
    select(run_dir, app, tmp_path)
    assert (run_dir / stages.SELECTED_FILE).read_bytes() == first


def test_an_interval_cut_by_the_window_edge_is_followed_for_the_traces_inside(tmp_path: Path) -> None:
    app = Application.model_validate(app_config())
    monitor_alerts(tmp_path, app, [GOOD, [("version", "v1", 19, 20), ("version", "v2", 0, 8)]])
    run_dir = tmp_path / "run"
    # The curation window starts at 09:00, inside the firing interval 06:00-12:00.
    write_run(run_dir, [tagged("inside", 10, "v2"), tagged("later", 13, "v2")], from_hour=9)
    select(run_dir, app, tmp_path)
    assert selected_ids(run_dir, "alerted_segments") == ["inside"]


def test_query_cluster_segments_are_keyed_by_the_intervals_stored_profile(tmp_path: Path) -> None:
    app = Application.model_validate(app_config(alert_rules="topic_satisfaction"))
    sync = ReferenceCluster("c-sync", ("smart", "sync"), "smart sync", 40)
    profile = ReferenceProfile("demo", T0 - timedelta(days=7), T0, 100, (sync,), {"topic": {"c-sync": 40}})
    write_profile(profile, profile_path(tmp_path, "demo", T0, app.segments.clusters))
    # The topic goes bad in interval 0; the pooled "other" segment fires too, and is not followed.
    monitor_alerts(tmp_path, app, [[("topic", "c-sync", 0, 8), ("topic", OTHER, 0, 8), ("version", "v1", 0, 8)]])
    rows = [
        tagged("sync", 2, "v1", query="Smart Sync stopped working"),
        tagged("dark", 3, "v1", query="turn on dark mode"),
    ]
    run_dir = tmp_path / "run"
    write_run(run_dir, rows)
    summary = select(run_dir, app, tmp_path)
    # version_satisfaction fired on v1 too, but the rule follows topic_satisfaction alone.
    assert selected_ids(run_dir, "alerted_segments") == ["sync"]
    assert [f["segment"] for f in summary["alerted_segments"]["alerted_segments"]] == ["c-sync"]


def test_without_alert_events_the_rule_selects_nothing(tmp_path: Path) -> None:
    app = Application.model_validate(app_config())
    run_dir = tmp_path / "run"
    write_run(run_dir, [tagged("t1", 1, "v2", feedback=False)])
    summary = select(run_dir, app, tmp_path)
    assert summary["per_rule"] == {"alerted_segments": 0, "negative_feedback": 1}
    assert summary["alerted_segments"] == {"alerted_segments": []}


def test_the_rule_needs_the_data_root(tmp_path: Path) -> None:
    app = Application.model_validate(app_config())
    write_run(tmp_path, [tagged("t1", 1, "v2")])
    with pytest.raises(ValueError, match="pass segment_masks"):
        stages.select_stage(tmp_path, app)


def test_config_names_the_key_of_a_rule_that_cannot_follow_anything() -> None:
    from genai_flywheel.config import parse_config

    unknown = app_config(alert_rules=["errors", "nope"])
    with pytest.raises(ConfigError, match=r"curation.rules\[1\].*alert_rules.*\['errors', 'nope'\]"):
        parse_config({"applications": [unknown]})
    lonely = app_config()
    lonely["alerts"] = [a for a in lonely["alerts"] if "segment" not in a]
    with pytest.raises(ConfigError, match="no per-segment alert rule to follow"):
        parse_config({"applications": [lonely]})
    typo = app_config(alert_rule="topic_satisfaction")
    with pytest.raises(ConfigError, match=r"curation.rules\[1\].options.alert_rule: .*did you mean .alert_rules."):
        parse_config({"applications": [typo]})
