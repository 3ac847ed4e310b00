"""Scoring: MLflow scorers (built-in heuristics, MLflow LLM judges, users' ``@scorer``), their registry,
the judge endpoint adapter, a per-run judge budget, and the batch runner producing ``SCORE_SCHEMA``.

Nothing here imports MLflow or pyarrow at import time; the factories and the runner import them when
called.
"""

from genai_flywheel.scoring.budget import JudgeBudget, estimate_judge_cost
from genai_flywheel.scoring.judges import JudgeEndpoint, judge_environment
from genai_flywheel.scoring.normalize import extract_answer, extract_query
from genai_flywheel.scoring.registry import (
    LoadedScorer,
    available_scorers,
    build_scorer,
    load_scorers,
    scorer_needs_trace,
)
from genai_flywheel.scoring.runner import assessment_id_for, score_table

__all__ = [
    "JudgeBudget",
    "JudgeEndpoint",
    "LoadedScorer",
    "assessment_id_for",
    "available_scorers",
    "build_scorer",
    "estimate_judge_cost",
    "extract_answer",
    "extract_query",
    "judge_environment",
    "load_scorers",
    "score_table",
    "scorer_needs_trace",
]
