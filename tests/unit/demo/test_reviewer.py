from __future__ import annotations

from flywheel_demo.reviewer import REVIEWER, answers, review_queue
from genai_flywheel.config import load_config
from genai_flywheel.review.backend import COMPLETE, PENDING, InMemoryReviewBackend
from genai_flywheel.review.schemas import ensure_schemas


def _review():
    import os

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
