"""Candidate vs production, record by record and scorer by scorer: the comparison table and its summary.

Inputs are plain rows (dicts), so the logic is testable without Parquet or MLflow:

* records: ``record_id``, ``rule`` (primary selection rule), optional ``rules`` (every rule that selected
  it), ``inputs`` / ``outputs`` (JSON text), optional ``query``, ``source_trace_id``;
* scores: ``record_id``, ``side`` (``candidate`` | ``production``), ``scorer``, ``numeric`` (the value as a
  number, None when the scorer gave none), ``rationale``, ``error``;
* candidate outputs: ``record_id``, ``trace_id``, ``output`` (JSON text), ``error`` (predict_fn failure).

A record counts for a scorer only when both sides have a numeric score (``outcome`` is ``missing``
otherwise). A record is in the breakdown of every rule that selected it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from genai_flywheel.evaluation.stats import DEFAULT_EPSILON, LOSS, outcome, paired_stats

CANDIDATE, PRODUCTION = "candidate", "production"
MISSING = "missing"
TEST_DESCRIPTION = (
    "Wilcoxon signed-rank, two-sided, normal approximation with tie and continuity corrections, "
    "tied pairs (|improvement| <= epsilon) dropped; 95% paired t interval of the mean improvement"
)
SUMMARY_SCHEMA_VERSION = 1
_TEXT_LIMIT = 400  # characters of a query/output/rationale shown in the summary


def comparison_schema() -> Any:
    """Arrow schema of ``comparison.parquet``: one row per (record, scorer)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("rule", pa.string()),
            pa.field("rules", pa.list_(pa.string())),
            pa.field("scorer", pa.string(), nullable=False),
            pa.field("query", pa.string()),
            pa.field("production_value", pa.float64()),
            pa.field("candidate_value", pa.float64()),
            pa.field("improvement", pa.float64()),  # oriented: positive = candidate better
            pa.field("outcome", pa.string(), nullable=False),  # win | loss | tie | missing
            pa.field("production_rationale", pa.string()),
            pa.field("candidate_rationale", pa.string()),
            pa.field("production_error", pa.string()),
            pa.field("candidate_error", pa.string()),
            pa.field("production_output", pa.string()),
            pa.field("candidate_output", pa.string()),
            pa.field("source_trace_id", pa.string()),
            pa.field("candidate_trace_id", pa.string()),
        ]
    )


def query_of(record: Mapping[str, Any]) -> str | None:
    """The record's question: its ``query`` column, else the first string value of its inputs JSON."""
    query = record.get("query")
    if isinstance(query, str) and query.strip():
        return query
    inputs = record.get("inputs")
    try:
        value = json.loads(inputs) if isinstance(inputs, str) else inputs
    except ValueError:
        return inputs if isinstance(inputs, str) else None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("query", "question", "input", "prompt"):
            if isinstance(value.get(key), str):
                return value[key]
        for item in value.values():
            if isinstance(item, str):
                return item
    return None


def output_text(text: str | None) -> str | None:
    """An output JSON text as display text: a JSON string unquoted, an ``{"answer": ...}``-like object's text,
    anything else as compact JSON."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, Mapping):
        for key in ("answer", "output", "response", "content", "text"):
            if isinstance(value.get(key), str):
                return value[key]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _clip(text: str | None, limit: int = _TEXT_LIMIT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def record_rules(record: Mapping[str, Any]) -> list[str]:
    """Every rule that selected the record (its ``rules`` list, else its primary ``rule``)."""
    rules = [r for r in (record.get("rules") or []) if r]
    primary = record.get("rule")
    if primary and primary not in rules:
        rules.insert(0, primary)
    return sorted(set(rules)) if rules else ["(none)"]


def build_comparison(
    records: Sequence[Mapping[str, Any]],
    scores: Iterable[Mapping[str, Any]],
    candidate_outputs: Iterable[Mapping[str, Any]],
    *,
    scorers: Sequence[str],
    lower_is_better: Iterable[str] = (),
    epsilon: float = DEFAULT_EPSILON,
) -> list[dict[str, Any]]:
    """One comparison row per (record, scorer), in record order then ``scorers`` order.

    A record whose production trace gave no answer (it failed) has nothing to compare the candidate's
    answer with: its rows are ``missing``, not wins, so a candidate is not credited for production's
    transient errors.
    """
    lower = set(lower_is_better)
    by_key: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for row in scores:
        by_key[(row["record_id"], row["side"], row["scorer"])] = row
    outputs = {row["record_id"]: row for row in candidate_outputs}
    rows: list[dict[str, Any]] = []
    for record in records:
        rid = record["record_id"]
        out = outputs.get(rid, {})
        has_answer = (output_text(record.get("outputs")) or "").strip() not in ("", "null", "{}")
        for scorer in scorers:
            prod = by_key.get((rid, PRODUCTION, scorer), {})
            cand = by_key.get((rid, CANDIDATE, scorer), {})
            p_val, c_val = _finite(prod.get("numeric")), _finite(cand.get("numeric"))
            if p_val is None or c_val is None or not has_answer:
                improvement, result = None, MISSING
            else:
                improvement = (c_val - p_val) if scorer not in lower else (p_val - c_val)
                result = outcome(improvement, epsilon)
            rows.append(
                {
                    "record_id": rid,
                    "rule": record.get("rule"),
                    "rules": record_rules(record),
                    "scorer": scorer,
                    "query": query_of(record),
                    "production_value": p_val,
                    "candidate_value": c_val,
                    "improvement": improvement,
                    "outcome": result,
                    "production_rationale": prod.get("rationale"),
                    "candidate_rationale": cand.get("rationale"),
                    "production_error": prod.get("error"),
                    "candidate_error": cand.get("error") or out.get("error"),
                    "production_output": record.get("outputs"),
                    "candidate_output": out.get("output"),
                    "source_trace_id": record.get("source_trace_id"),
                    "candidate_trace_id": out.get("trace_id"),
                }
            )
    return rows


def _block(rows: Sequence[Mapping[str, Any]], scorer: str, higher: bool, epsilon: float) -> dict[str, Any]:
    paired = [r for r in rows if r["outcome"] != MISSING]
    stats = paired_stats(
        [r["candidate_value"] for r in paired],
        [r["production_value"] for r in paired],
        higher_is_better=higher,
        epsilon=epsilon,
    ).to_dict()
    stats["n_missing"] = len(rows) - len(paired)
    stats["direction"] = "higher_is_better" if higher else "lower_is_better"
    return stats


def summarize(
    comparison: Sequence[Mapping[str, Any]],
    *,
    scorers: Sequence[str],
    lower_is_better: Iterable[str] = (),
    epsilon: float = DEFAULT_EPSILON,
    worst_k: int = 10,
    candidate_errors: int = 0,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-able summary: per-scorer and per-rule paired statistics and the worst regressions.

    ``context`` (candidate, dataset, ...) is copied in as is.
    """
    lower = set(lower_is_better)
    record_ids = list(dict.fromkeys(r["record_id"] for r in comparison))
    summary: dict[str, Any] = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        **dict(context or {}),
        "n_records": len(record_ids),
        "candidate_errors": int(candidate_errors),
        "test": TEST_DESCRIPTION,
        "confidence": 0.95,
        "tie_epsilon": epsilon,
        "scorers": {},
        "rules": {},
    }
    for scorer in scorers:
        rows = [r for r in comparison if r["scorer"] == scorer]
        summary["scorers"][scorer] = _block(rows, scorer, scorer not in lower, epsilon)
    rule_names = sorted({rule for r in comparison for rule in r["rules"]})
    for rule in rule_names:
        summary["rules"][rule] = {}
        for scorer in scorers:
            rows = [r for r in comparison if r["scorer"] == scorer and rule in r["rules"]]
            summary["rules"][rule][scorer] = _block(rows, scorer, scorer not in lower, epsilon)
    losses = [r for r in comparison if r["outcome"] == LOSS]
    losses.sort(key=lambda r: (r["improvement"], r["scorer"], r["record_id"]))
    summary["worst_regressions"] = [
        {
            "record_id": r["record_id"],
            "rule": r["rule"],
            "scorer": r["scorer"],
            "improvement": r["improvement"],
            "production_value": r["production_value"],
            "candidate_value": r["candidate_value"],
            "query": _clip(r["query"]),
            "production_output": _clip(output_text(r["production_output"])),
            "candidate_output": _clip(output_text(r["candidate_output"])),
            "production_rationale": _clip(r["production_rationale"]),
            "candidate_rationale": _clip(r["candidate_rationale"]),
            "source_trace_id": r["source_trace_id"],
            "candidate_trace_id": r["candidate_trace_id"],
        }
        for r in losses[: max(0, worst_k)]
    ]
    return summary


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(blocks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| scorer | n | production | candidate | improvement | 95% CI | p (Wilcoxon) | p (sign) | W / L / T |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for scorer, s in blocks.items():
        ci = "–" if s["ci_low"] is None else f"{_cell(s['ci_low'])} .. {_cell(s['ci_high'])}"
        missing = f" (+{s['n_missing']} unscored)" if s.get("n_missing") else ""
        lines.append(
            f"| {_cell(scorer)} | {s['n']}{missing} | {_cell(s['production_mean'])} | "
            f"{_cell(s['candidate_mean'])} | {_cell(s['improvement'])} | {ci} | {_cell(s['p_value'])} | "
            f"{_cell(s['sign_test_p'])} | {s['wins']} / {s['losses']} / {s['ties']} |"
        )
    return lines


def render_markdown(summary: Mapping[str, Any]) -> str:
    """A readable report of a summary (deterministic: same summary, same text)."""
    dataset = summary.get("dataset") or {}
    version = dataset.get("version")
    lines = [
        f"# Development evaluation: `{summary.get('candidate', '?')}` vs production",
        "",
        f"- Dataset: `{dataset.get('name', '?')}`"
        + (f" v{version}" if version is not None else "")
        + (f" ({dataset['digest']})" if dataset.get("digest") else ""),
        f"- Records: {summary['n_records']}; candidate errors: {summary['candidate_errors']}",
        f"- Test: {summary['test']}; ties: |improvement| <= {summary['tie_epsilon']}",
        "- Improvement is candidate minus production, sign-flipped for lower-is-better scorers "
        "(positive = candidate better).",
        "",
        "## All records",
        "",
        *_table(summary["scorers"]),
    ]
    for rule, blocks in summary["rules"].items():
        lines += ["", f"## Rule `{rule}`", "", *_table(blocks)]
    lines += ["", "## Worst regressions", ""]
    if not summary["worst_regressions"]:
        lines.append("None: the candidate lost no paired comparison.")
    for i, r in enumerate(summary["worst_regressions"], start=1):
        lines += [
            f"{i}. **{_cell(r['scorer'])}** {_cell(r['production_value'])} → {_cell(r['candidate_value'])} "
            f"on record `{r['record_id']}` (rule `{r['rule']}`, trace `{r['source_trace_id']}`)",
            f"   - query: {_cell(r['query'])}",
            f"   - production: {_cell(r['production_output'])}",
            f"   - candidate: {_cell(r['candidate_output'])}",
        ]
        if r["production_rationale"]:
            lines.append(f"   - production rationale: {_cell(r['production_rationale'])}")
        if r["candidate_rationale"]:
            lines.append(f"   - candidate rationale: {_cell(r['candidate_rationale'])}")
    return "\n".join(lines) + "\n"
