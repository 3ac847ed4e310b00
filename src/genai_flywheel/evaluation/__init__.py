"""Development evaluation: run a candidate on a curated dataset, compare it with production, gate it.

Stages (one Airflow task each, files under one run folder): :func:`load_stage`, :func:`run_candidate_stage`,
:func:`compare_stage`, :func:`log_stage`, :func:`gate_stage`. Pure parts: :mod:`.stats` (paired statistics),
:mod:`.compare` (comparison table and summary), :mod:`.gate` (:func:`evaluate_gates`, :func:`enforce`).
"""

from genai_flywheel.evaluation.candidate import Candidate, resolve_candidate
from genai_flywheel.evaluation.gate import (
    GateCheck,
    GateResult,
    GateSpec,
    enforce,
    evaluate_gates,
    parse_gates,
)
from genai_flywheel.evaluation.stages import (
    EvalParams,
    compare_stage,
    gate_stage,
    load_stage,
    log_stage,
    resolve_params,
    run_candidate_stage,
)
from genai_flywheel.evaluation.stats import (
    PairedStats,
    WilcoxonResult,
    paired_stats,
    paired_t_interval,
    sign_test,
    wilcoxon_signed_rank,
)

__all__ = [
    "Candidate",
    "EvalParams",
    "GateCheck",
    "GateResult",
    "GateSpec",
    "PairedStats",
    "WilcoxonResult",
    "compare_stage",
    "enforce",
    "evaluate_gates",
    "gate_stage",
    "load_stage",
    "log_stage",
    "paired_stats",
    "paired_t_interval",
    "parse_gates",
    "resolve_candidate",
    "resolve_params",
    "run_candidate_stage",
    "sign_test",
    "wilcoxon_signed_rank",
]
