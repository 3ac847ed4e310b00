"""A simulated reviewer for the demo: it answers part of a review queue through MLflow's API.

This is not a person. Like the simulator that planted the incidents, it knows the ground truth: a trace of
the Smart Sync incident got a wrong answer (verdict ``incorrect``, the fixed version's answer as the
correction, a rating of 1-2); any other trace is judged ``correct`` (rating 4-5). It answers a
deterministic share of the pending items (``sha256`` of the trace id) under the reviewer id
``simulated-reviewer``, exactly as a person's answers in the MLflow review UI are stored: HUMAN assessments
named after the label schemas, and the item marked complete.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_flywheel.review.backend import PENDING
from genai_flywheel.traces.sampling import unit_hash

if TYPE_CHECKING:
    from genai_flywheel.config import Application, Review
    from genai_flywheel.review.backend import ReviewBackend

REVIEWER = "simulated-reviewer"
INCIDENT = "smart_sync_wrong_answers"  # the ground truth's incident whose traces were answered wrongly


@dataclass(frozen=True)
class ReviewOutcome:
    """What the simulated reviewer did on one queue."""

    answered: int
    incorrect: int
    corrections: int
    left_pending: int


def answers(review: Review, trace_id: str, query: str | None, wrong: bool, fixed: Callable[[str], str]) -> dict:
    """The labels (name -> (kind, value)) for one trace, for the schemas ``review`` declares."""
    labels: dict[str, tuple[str, Any]] = {}
    rating = (
        (1 if unit_hash("rating", trace_id) < 0.5 else 2)
        if wrong
        else (4 if unit_hash("rating", trace_id) < 0.5 else 5)
    )
    for spec in review.label_schemas:
        if spec.name == review.correct_schema:
            # The first option that is not the "correct" one (e.g. "incorrect" or a pass_fail negative label).
            verdict = next(o for o in spec.options if o != review.correct_value) if wrong else review.correct_value
            labels[spec.name] = ("feedback", verdict)
        elif spec.name == review.correction_schema:
            if wrong and query:
                labels[spec.name] = ("expectation", fixed(query))
        elif spec.input == "numeric":
            labels[spec.name] = ("feedback", rating)
    return labels


def review_queue(
    backend: ReviewBackend,
    review: Review,
    queue_id: str,
    queries: Mapping[str, str | None],
    wrong_ids: Collection[str],
    *,
    share: float = 0.6,
    fixed: Callable[[str], str] | None = None,
    reviewer: str = REVIEWER,
) -> ReviewOutcome:
    """Answer the pending items of ``queue_id`` whose hash falls below ``share``; ``queries`` gives each
    trace's user question, ``wrong_ids`` the traces the ground truth says were answered wrongly."""
    if fixed is None:
        from flywheel_demo.app import fixed_answer

        fixed = fixed_answer
    answered = incorrect = corrections = pending = 0
    wrong_set = set(wrong_ids)
    for item in sorted(backend.queue_items(queue_id, status=PENDING), key=lambda i: i.trace_id):
        if unit_hash(reviewer, item.trace_id) >= share:
            pending += 1
            continue
        wrong = item.trace_id in wrong_set
        labels = answers(review, item.trace_id, queries.get(item.trace_id), wrong, fixed)
        backend.answer(queue_id, item.trace_id, reviewer, labels)
        answered += 1
        incorrect += int(wrong)
        corrections += int(review.correction_schema in labels)
    return ReviewOutcome(answered, incorrect, corrections, pending)


def review_latest_curation(
    app: Application, data_root: Path, truth: Mapping[str, Any], *, share: float = 0.6
) -> dict[str, dict[str, int]]:
    """Answer the queues the newest curation run fed (its ``review_queue.json``); per MLflow queue, what the
    simulated reviewer did. The ground truth's Smart Sync traces are the wrong answers."""
    from genai_flywheel.review.stages import QUEUE_FILE, mlflow_backend
    from genai_flywheel.workspace import read_parquet, read_stage_json

    runs = sorted((Path(data_root) / "curation" / f"app={app.name}").glob(f"*/{QUEUE_FILE}"), key=_mtime)
    if not runs:
        return {}
    run_dir = runs[-1].parent
    fed = read_stage_json(runs[-1], "curation enqueue_review")
    traces = read_parquet(run_dir / "traces.parquet", columns=["trace_id", "query"])
    queries = dict(zip(traces.column("trace_id").to_pylist(), traces.column("query").to_pylist(), strict=True))
    wrong = truth.get("incidents", {}).get(INCIDENT, {}).get("trace_ids", [])
    backend = mlflow_backend(app)
    return {
        q["queue"]: asdict(review_queue(backend, app.review, q["queue_id"], queries, wrong, share=share))
        for q in fed["queues"]
    }


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
