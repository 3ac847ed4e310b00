from __future__ import annotations

import os

from flywheel_demo.reviewer import REVIEWER, answers, review_queue
from genai_flywheel.config import load_config
from genai_flywheel.review.backend import COMPLETE, PENDING, InMemoryReviewBackend
from genai_flywheel.review.schemas import ensure_schemas


def _review():
    return load_config(os.environ["FLYWHEEL_CONFIG"]).applications[0].review


def test_a_wrong_answer_gets_the_incorrect_verdict_the_fixed_answer_and_a_low_rating() -> None:
    review = _review()
    labels = answers(review, "tr-1", "Does Smart Sync work?", True, lambda q: f"fixed: {q}")
    assert labels[review.correct_schema] == ("feedback", "incorrect")
    assert labels[review.correction_schema] == ("expectation", "fixed: Does Smart Sync work?")
    assert labels["answer_quality"][1] in (1, 2)
    good = answers(review, "tr-2", "How do I log in?", False, lambda q: "unused")
    assert good[review.correct_schema] == ("feedback", "correct") and review.correction_schema not in good
    assert good["answer_quality"][1] in (4, 5)


def test_the_reviewer_answers_a_deterministic_share_of_the_pending_items() -> None:
    review = _review()
    backend = InMemoryReviewBackend()
    ids = ensure_schemas(backend, review)
    queue_id = backend.ensure_queue("q", list(ids.values()), [], "k")
    traces = [f"tr-{i:03d}" for i in range(100)]
    backend.add_items(queue_id, traces)
    wrong = set(traces[:30])
    queries = {t: f"question {t}" for t in traces}
    outcome = review_queue(backend, review, queue_id, queries, wrong, share=0.5, fixed=lambda q: "right")
    assert 30 < outcome.answered < 70 and outcome.answered + outcome.left_pending == 100
    done = backend.queue_items(queue_id, status=COMPLETE)
    assert len(done) == outcome.answered and {i.completed_by for i in done} == {REVIEWER}
    assert outcome.corrections == outcome.incorrect == len({i.trace_id for i in done} & wrong)
    again = review_queue(backend, review, queue_id, queries, wrong, share=0.5, fixed=lambda q: "right")
    assert again.answered == 0 and len(backend.queue_items(queue_id, status=PENDING)) == outcome.left_pending


def test_the_demo_summary_reports_the_reviewer_and_the_calibration_with_its_ci(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from flywheel_demo.run import _review_lines
    from genai_flywheel.metrics.aggregate import metrics_schema
    from genai_flywheel.metrics.store import MetricsStore
    from genai_flywheel.review.stages import calibration_store_root

    app = load_config(os.environ["FLYWHEEL_CONFIG"]).applications[0]
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def write(agreement: float) -> None:
        row = {"app": app.name, "interval_start": start, "interval_end": start + timedelta(hours=1), "n": 30}
        rows = [
            {
                **row,
                "metric": "calibration.relevance.agreement_flagged_rolling",
                "value": agreement,
                "ci_low": 0.3,
                "ci_high": 0.6,
            },
            {**row, "metric": "calibration.relevance.agreement", "value": 0.1, "ci_low": None, "ci_high": None},
        ]
        MetricsStore(calibration_store_root(tmp_path)).write_partition(pa.Table.from_pylist(rows, metrics_schema()))

    write(0.45)
    loop = {"reviewed": {"q": {"answered": 20, "incorrect": 8, "corrections": 8, "left_pending": 12}}}
    text = "\n".join(_review_lines(tmp_path, app, loop))
    assert "answered 20 (8 wrong answers, 8 corrections), 12 left for people" in text
    assert "calibration.relevance.agreement_flagged_rolling" in text and "0.45 (95% CI 0.30..0.60, n=30)" in text
    assert "agreement with people is low" in text
    write(0.9)
    assert "is low" not in "\n".join(_review_lines(tmp_path, app, loop))
