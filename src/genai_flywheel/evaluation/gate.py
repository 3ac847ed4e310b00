"""Release gates of a development evaluation: declared thresholds checked against ``summary.json``.

A :class:`~genai_flywheel.config.Gate` names a scorer and any of ``min_mean`` (the candidate's mean),
``min_improvement`` (mean improvement over production, positive = better) and ``max_p_value`` (Wilcoxon
signed-rank). Each declared threshold is one :class:`GateCheck`. A gate may be scoped to the records of one
curation rule (e.g. the badly answered query clusters) with a ``rule`` key in its params dict; the config
model has no such field yet, so :func:`parse_gates` accepts it beside the model's keys.

:func:`evaluate_gates` is pure; :func:`enforce` raises :class:`~genai_flywheel.exceptions.GateFailedError`
listing every failed check with its value and threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from genai_flywheel.config import Gate
from genai_flywheel.exceptions import ConfigError, GateFailedError


@dataclass(frozen=True)
class GateSpec:
    """A config :class:`Gate`, optionally restricted to the records selected by one curation ``rule``."""

    gate: Gate
    rule: str | None = None

    @property
    def label(self) -> str:
        """``relevance`` or ``relevance[rule=bad_query_clusters]``."""
        return self.gate.scorer if self.rule is None else f"{self.gate.scorer}[rule={self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able params form accepted by :func:`parse_gates`."""
        out = self.gate.model_dump(mode="json", exclude_none=True)
        if self.rule is not None:
            out["rule"] = self.rule
        return out


@dataclass(frozen=True)
class GateCheck:
    """One threshold of one gate."""

    gate: str  # GateSpec.label
    criterion: str  # min_mean | min_improvement | max_p_value | available | max_candidate_error_rate
    threshold: float | None
    actual: float | None
    passed: bool
    message: str


@dataclass(frozen=True)
class GateResult:
    """All checks; ``passed`` only when every check passed (no gates at all also passes)."""

    passed: bool
    checks: list[GateCheck]

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``gate.json``)."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def parse_gates(gates: Iterable[Gate | GateSpec | Mapping[str, Any]] | None) -> list[GateSpec]:
    """Gates from config objects or params dicts (``{"scorer": ..., "max_p_value": ..., "rule": ...}``)."""
    specs: list[GateSpec] = []
    for i, item in enumerate(gates or ()):
        if isinstance(item, GateSpec):
            specs.append(item)
        elif isinstance(item, Gate):
            specs.append(GateSpec(item))
        elif isinstance(item, Mapping):
            data = dict(item)
            rule = data.pop("rule", None)
            if rule is not None and (not isinstance(rule, str) or not rule):
                raise ConfigError(f"gates[{i}].rule must be a rule name, got {rule!r}")
            try:
                specs.append(GateSpec(Gate.model_validate(data), rule))
            except ValidationError as err:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
                raise ConfigError(
                    f"gates[{i}] = {dict(item)!r} is not a valid gate ({problems}); use keys scorer, "
                    "min_mean, min_improvement, max_p_value and optionally rule"
                ) from None
        else:
            raise ConfigError(f"gates[{i}] must be a Gate or a dict, got {type(item).__name__}")
    return specs


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _stats_for(summary: Mapping[str, Any], spec: GateSpec) -> tuple[Mapping[str, Any] | None, str]:
    """The stats block a gate applies to, or None with the reason."""
    if spec.rule is None:
        block = summary.get("scorers", {})
        where = "the comparison"
    else:
        rules = summary.get("rules", {})
        if spec.rule not in rules:
            return None, f"no records of rule {spec.rule!r} in the comparison; rules: {sorted(rules)}"
        block = rules[spec.rule]
        where = f"the records of rule {spec.rule!r}"
    stats = block.get(spec.gate.scorer)
    if stats is None:
        return None, f"scorer {spec.gate.scorer!r} is not in {where}; scored: {sorted(block)}"
    if not stats.get("n"):
        return None, f"no record has both a candidate and a production {spec.gate.scorer!r} score in {where}"
    return stats, ""


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def evaluate_gates(
    summary: Mapping[str, Any],
    gates: Sequence[Gate | GateSpec | Mapping[str, Any]] | None,
    *,
    max_candidate_error_rate: float | None = 0.0,
) -> GateResult:
    """Check every declared threshold of ``gates`` against a comparison ``summary`` (``summary.json``).

    A scorer missing from the summary, or without paired scores, fails its gate (an unmeasured gate must not
    pass silently). ``max_candidate_error_rate`` (default 0: none allowed; None: unchecked) is checked
    whenever at least one gate is declared, so a candidate that crashes on records cannot pass by scoring
    only the others.
    """
    specs = parse_gates(gates)
    checks: list[GateCheck] = []
    for spec in specs:
        stats, why = _stats_for(summary, spec)
        gate = spec.gate
        declared = [
            ("min_mean", gate.min_mean),
            ("min_improvement", gate.min_improvement),
            ("max_p_value", gate.max_p_value),
        ]
        declared = [(name, value) for name, value in declared if value is not None]
        if stats is None:
            checks.append(GateCheck(spec.label, "available", None, None, False, f"{spec.label}: {why}"))
            continue
        if not declared:
            checks.append(GateCheck(spec.label, "available", None, None, True, f"{spec.label}: measured"))
        for criterion, threshold in declared:
            if criterion == "min_mean":
                actual = _num(stats.get("candidate_mean"))
                ok = actual is not None and actual >= threshold
                text = f"candidate mean {_fmt(actual)} {'>=' if ok else '<'} min_mean {_fmt(threshold)}"
            elif criterion == "min_improvement":
                actual = _num(stats.get("improvement"))
                ok = actual is not None and actual >= threshold
                text = (
                    f"improvement over production {_fmt(actual)} (95% CI {_fmt(_num(stats.get('ci_low')))}"
                    f"..{_fmt(_num(stats.get('ci_high')))}) {'>=' if ok else '<'} min_improvement "
                    f"{_fmt(threshold)}"
                )
            else:
                actual = _num(stats.get("p_value"))
                ok = actual is not None and actual <= threshold
                text = f"p-value {_fmt(actual)} {'<=' if ok else '>'} max_p_value {_fmt(threshold)}"
                if ok and (_num(stats.get("improvement")) or 0.0) <= 0.0:
                    # A significant *regression* has a small p-value too; only an improvement may pass.
                    ok = False
                    text += " but the difference is not an improvement"
            checks.append(
                GateCheck(
                    spec.label,
                    criterion,
                    float(threshold),
                    actual,
                    ok,
                    f"{spec.label}: {text} (n={stats['n']})",
                )
            )
    if specs and max_candidate_error_rate is not None:
        records = int(summary.get("n_records") or 0)
        errors = int(summary.get("candidate_errors") or 0)
        rate = errors / records if records else 0.0
        ok = rate <= max_candidate_error_rate
        checks.append(
            GateCheck(
                "candidate",
                "max_candidate_error_rate",
                float(max_candidate_error_rate),
                rate,
                ok,
                f"candidate: {errors} of {records} records failed to predict (rate {_fmt(rate)} "
                f"{'<=' if ok else '>'} max {_fmt(max_candidate_error_rate)})",
            )
        )
    return GateResult(passed=all(c.passed for c in checks), checks=checks)


def enforce(
    summary: Mapping[str, Any] | GateResult,
    gates: Sequence[Gate | GateSpec | Mapping[str, Any]] | None = None,
    *,
    max_candidate_error_rate: float | None = 0.0,
) -> GateResult:
    """Check the gates (or take an already computed :class:`GateResult`) and return the result when it
    passed; else raise GateFailedError listing each failed check with its value and threshold."""
    result = (
        summary
        if isinstance(summary, GateResult)
        else evaluate_gates(summary, gates, max_candidate_error_rate=max_candidate_error_rate)
    )
    if result.passed:
        return result
    lines = "\n".join(f"  - {c.message}" for c in result.failed)
    raise GateFailedError(
        f"{len(result.failed)} of {len(result.checks)} gate check(s) failed:\n{lines}\n"
        "Improve the candidate, or change the thresholds under evaluation.gates if they are wrong."
    )
