from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from review_config import application

from genai_flywheel.metrics.stats import wilson_interval
from genai_flywheel.metrics.store import MetricsStore
from genai_flywheel.review.backend import InMemoryReviewBackend, TraceAssessment
from genai_flywheel.review.calibration import calibration_metrics
from genai_flywheel.review.labels import LabelRow, LabelStore, collect_labels, label_row
from genai_flywheel.review.stages import calibration_store_root, collect_stage

START = datetime(2026, 1, 2, tzinfo=UTC)
END = START + timedelta(hours=6)
START_MS = int(START.timestamp() * 1000)


def _app():
    return application(scorers=[{"name": "relevance", "threshold": 0.5}, {"name": "groundedness"}])


def _scored_backend(n: int, *, agree: int) -> tuple[InMemoryReviewBackend, str]:
    """``n`` reviewed traces; the relevance scorer agrees with the reviewer on the first ``agree``."""
    app = _app()
    backend = InMemoryReviewBackend()
    from genai_flywheel.review.schemas import ensure_schemas

    ids = ensure_schemas(backend, app.review)
    queue_id = backend.ensure_queue("demo.wrong-answers", list(ids.values()), [], "k")
    for i in range(n):
        trace_id = f"tr-{i:02d}"
        correct = i % 2 == 0
        score = (0.9 if correct else 0.1) if i < agree else (0.1 if correct else 0.9)
        backend.trace_assessments[trace_id] = [
            TraceAssessment(f"s-{i}", "relevance", "feedback", score, "CODE", "flywheel", 0),
            TraceAssessment(f"u-{i}", "user_feedback", "feedback", "negative", "HUMAN", "user", 0),
        ]
        labels = {"is_correct": ("feedback", "correct" if correct else "incorrect"), "quality": ("feedback", 1 + i % 5)}
        if not correct:
            labels["corrected_answer"] = ("expectation", f"fixed answer {i}")
        backend.add_items(queue_id, [trace_id])
        backend.answer(queue_id, trace_id, "alice", labels)
    # the in-memory reviewer completes at time 0: move completion into the interval
    for trace_id, item in list(backend.items[queue_id].items()):
        backend.items[queue_id][trace_id] = type(item)(trace_id, item.status, item.completed_by, START_MS + 1000)
    return backend, queue_id


def _write_plan(data_root, trace_ids, *, source: str = "calibration", weight: float = 1.0, run: str = "run1") -> None:
    """A curation run's ``review_queue.json`` that queued ``trace_ids`` to demo.wrong-answers."""
    items = [
        {"queue": "demo.wrong-answers", "queue_id": "rq", "trace_id": t, "source": source, "stratum": "all",
         "weight": weight}
        for t in trace_ids
    ]  # fmt: skip
    folder = data_root / "curation" / "app=demo" / run
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review_queue.json").write_text(json.dumps({"queues": [], "added": len(items), "items": items}))


def _sampled(rows: list[LabelRow], weight: float = 1.0) -> list[LabelRow]:
    """``rows`` as items of the calibration sample."""
    return [replace(r, source="calibration", weight=weight) for r in rows]


def test_label_row_keeps_the_latest_human_answer_and_the_scorers_values() -> None:
    app = _app()
    found = [
        TraceAssessment("a1", "is_correct", "feedback", "correct", "HUMAN", "bob", 1),
        TraceAssessment("a2", "is_correct", "feedback", "incorrect", "HUMAN", "alice", 2),
        TraceAssessment("a3", "corrected_answer", "expectation", "  the fix ", "HUMAN", "alice", 2),
        TraceAssessment("a4", "relevance", "feedback", 0.2, "CODE", "flywheel", 1),
        TraceAssessment("a5", "is_correct", "feedback", "correct", "LLM_JUDGE", "judge", 3),  # not a person
    ]
    row = label_row(app, "demo.q", "tr-1", "alice", 5, found)
    assert row.correct is False and row.correction == "the fix"
    assert row.label_ids == {"is_correct": "a2", "corrected_answer": "a3"}
    assert row.scores == {"relevance": 0.2}
    assert LabelRow.from_row(row.to_row()) == row


def test_collect_labels_takes_only_items_completed_in_the_interval() -> None:
    backend, queue_id = _scored_backend(4, agree=4)
    app = _app()
    assert len(collect_labels(backend, app, START_MS, START_MS + 10_000)) == 4
    assert collect_labels(backend, app, START_MS + 10_000, START_MS + 20_000) == []
    backend.add_items(queue_id, ["tr-pending"])  # pending items are not labels
    assert "tr-pending" not in {r.trace_id for r in collect_labels(backend, app, START_MS, START_MS + 10_000)}


def test_calibration_metrics_need_min_labels_and_report_agreement_kappa_and_correlation() -> None:
    backend, _ = _scored_backend(20, agree=15)
    app = _app()
    rows = _sampled(collect_labels(backend, app, START_MS, START_MS + 10_000))
    table = calibration_metrics(app, rows[:5], rows, START, END)
    metrics = {r["metric"]: r for r in table.to_pylist()}
    assert metrics["calibration.labels"]["value"] == 5
    assert "calibration.relevance.agreement" not in metrics  # 5 labels < min_labels 10
    rolling = metrics["calibration.relevance.agreement_rolling"]
    assert rolling["value"] == pytest.approx(0.75) and rolling["n"] == 20
    assert rolling["ci_low"] < 0.75 < rolling["ci_high"]
    assert metrics["calibration.relevance.kappa_rolling"]["value"] == pytest.approx(0.5)
    assert "calibration.relevance.correlation_rolling" in metrics
    assert not any(m.startswith("calibration.groundedness") for m in metrics)  # no scores, no metric


def test_collect_stage_stores_labels_metrics_and_disagreements(tmp_path) -> None:
    backend, _ = _scored_backend(12, agree=6)
    app = _app()
    _write_plan(tmp_path, [f"tr-{i:02d}" for i in range(12)])
    run_dir = tmp_path / "run"
    out = collect_stage(app, backend, data_root=tmp_path, run_dir=run_dir, interval_start=START, interval_end=END)
    assert out["labels"] == 12 and out["corrections"] == 6
    assert out["metrics"]["calibration.relevance.agreement"] == pytest.approx(0.5)
    stored = MetricsStore(calibration_store_root(tmp_path)).read(app.name)
    assert "calibration.relevance.kappa_rolling" in stored.column("metric").to_pylist()
    disagreeing = json.loads((run_dir / "disagreements.json").read_text())["traces"]
    assert sorted(d["trace_id"] for d in disagreeing) == [f"tr-{i:02d}" for i in range(6, 12)]
    # The next interval finds no new reviews, but the rolling window still holds these labels.
    later = collect_stage(
        app, backend, data_root=tmp_path, run_dir=run_dir, interval_start=END, interval_end=END + timedelta(hours=6)
    )
    assert later["labels"] == 0 and later["window_labels"] == 12
    assert "calibration.relevance.agreement" not in later["metrics"]
    assert later["metrics"]["calibration.relevance.agreement_rolling"] == pytest.approx(0.5)
    assert len(LabelStore(tmp_path).read(app.name, START, END + timedelta(hours=6))) == 12


def test_a_calibration_alert_rule_fires_when_the_scorer_drifts_from_people(tmp_path) -> None:
    backend, _ = _scored_backend(40, agree=10)
    rule = {
        "name": "relevance_drift",
        "metric": "calibration.relevance.agreement_rolling",
        "op": "<",
        "threshold": 0.7,
        "min_samples": 10,
    }
    app = application(scorers=[{"name": "relevance", "threshold": 0.5}], alerts=[rule])
    _write_plan(tmp_path, [f"tr-{i:02d}" for i in range(40)])
    out = collect_stage(
        app, backend, data_root=tmp_path, run_dir=tmp_path / "r", interval_start=START, interval_end=END
    )
    assert [n["rule"] for n in out["notifications"]] == ["relevance_drift"]


def test_rule_items_are_left_out_of_the_weighted_statistics_and_reported_as_flagged() -> None:
    backend, _ = _scored_backend(20, agree=10)  # the scorer agrees on tr-00..09, disagrees on tr-10..19
    app = _app()
    rows = collect_labels(backend, app, START_MS, START_MS + 10_000)
    sample = _sampled(rows[:10], weight=3.0)
    flagged = [replace(r, source="negative_feedback") for r in rows[10:]]
    metrics = {r["metric"]: r for r in calibration_metrics(app, sample + flagged, [], START, END).to_pylist()}
    assert metrics["calibration.relevance.agreement"]["value"] == pytest.approx(1.0)
    assert metrics["calibration.relevance.agreement"]["n"] == 10
    assert metrics["calibration.relevance.agreement_flagged"]["value"] == pytest.approx(0.0)
    assert metrics["calibration.relevance.agreement_flagged"]["n"] == 10
    assert (metrics["calibration.labels"]["value"], metrics["calibration.sample_labels"]["value"]) == (20, 10)
    # the flagged statistics are unweighted: a weight on a rule item is ignored
    heavy = [replace(r, weight=50.0) for r in flagged[:5]] + flagged[5:]
    again = {r["metric"]: r for r in calibration_metrics(app, heavy, [], START, END).to_pylist()}
    assert again["calibration.relevance.agreement_flagged"]["ci_high"] == pytest.approx(
        metrics["calibration.relevance.agreement_flagged"]["ci_high"]
    )


def test_weights_of_the_calibration_sample_move_the_agreement() -> None:
    backend, _ = _scored_backend(12, agree=6)
    app = _app()
    rows = collect_labels(backend, app, START_MS, START_MS + 10_000)
    # the six agreeing items stand for 3 traces each, the six disagreeing ones for 1: agreement 18 / 24
    weighted = _sampled(rows[:6], weight=3.0) + _sampled(rows[6:], weight=1.0)
    metrics = {r["metric"]: r for r in calibration_metrics(app, weighted, [], START, END).to_pylist()}
    stat = metrics["calibration.relevance.agreement"]
    assert stat["value"] == pytest.approx(0.75) and stat["n"] == 12
    n_eff = 24**2 / (6 * 9 + 6 * 1)  # 9.6
    assert stat["ci_low"] == pytest.approx(wilson_interval(0.75 * n_eff, n_eff)[0])


def test_collect_stage_reads_which_items_are_the_calibration_sample_from_the_plans(tmp_path) -> None:
    backend, _ = _scored_backend(12, agree=12)
    app = _app()
    _write_plan(tmp_path, [f"tr-{i:02d}" for i in range(10)], weight=4.0, run="run1")
    _write_plan(tmp_path, ["tr-10", "tr-11"], source="negative_feedback", run="run2")
    out = collect_stage(
        app, backend, data_root=tmp_path, run_dir=tmp_path / "r", interval_start=START, interval_end=END
    )
    assert (out["labels"], out["sample_labels"]) == (12, 10)
    assert out["metrics"]["calibration.relevance.agreement"] == pytest.approx(1.0)
    assert "calibration.relevance.agreement_flagged" not in out["metrics"]  # 2 rule labels < min_labels
    stored = {r.trace_id: r for r in LabelStore(tmp_path).read(app.name, START, END)}
    assert (stored["tr-00"].source, stored["tr-00"].weight) == ("calibration", 4.0)
    assert (stored["tr-11"].source, stored["tr-11"].weight) == ("negative_feedback", None)


def test_a_labels_partition_without_origin_columns_reads_as_unknown_origin(tmp_path) -> None:
    from genai_flywheel.review.labels import labels_table
    from genai_flywheel.workspace import atomic_write_parquet

    backend, _ = _scored_backend(2, agree=2)
    store = LabelStore(tmp_path)
    old = labels_table(collect_labels(backend, _app(), START_MS, START_MS + 10_000)).drop_columns(["source", "weight"])
    atomic_write_parquet(old, store.path("demo", START))
    rows = store.read("demo", START, END)
    assert len(rows) == 2 and all(r.source is None and not r.sampled for r in rows)
