"""The batch runner: error isolation, order, deterministic ids and bytes, value mapping, judges, budget.

Most tests use tiny fake scorers (anything with ``run(**kwargs)``) so the runner's own logic is tested
without MLflow; the trace-rebuilding tests use the real built-ins.
"""

from __future__ import annotations

import enum
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_flywheel.config import Price
from genai_flywheel.exceptions import DataContractError, ScorerError
from genai_flywheel.scoring import JudgeBudget, JudgeEndpoint, LoadedScorer, assessment_id_for, score_table
from genai_flywheel.scoring.runner import passed_for, to_numeric
from genai_flywheel.traces.schema import SCORE_SCHEMA


@dataclass
class FakeFeedback:
    value: Any = None
    rationale: str | None = None
    error: Any = None
    name: str = "feedback"


class FakeScorer:
    """Calls ``fn(inputs, outputs, trace, expectations)`` and records what it was given."""

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.fn = fn
        self.calls: list[dict[str, Any]] = []

    def run(self, *, inputs: Any = None, outputs: Any = None, expectations: Any = None, trace: Any = None) -> Any:
        self.calls.append({"inputs": inputs, "outputs": outputs, "expectations": expectations, "trace": trace})
        return self.fn(inputs=inputs, outputs=outputs, trace=trace, expectations=expectations)


def loaded(
    name: str,
    fn: Callable[..., Any],
    *,
    threshold: float | None = None,
    lower_is_better: bool = False,
    is_judge: bool = False,
    needs_trace: bool = False,
    endpoint: JudgeEndpoint | None = None,
) -> LoadedScorer:
    return LoadedScorer(
        name=name,
        scorer=FakeScorer(name, fn),  # type: ignore[arg-type]
        version="v1",
        source_type="LLM_JUDGE" if is_judge else "CODE",
        threshold=threshold,
        needs_trace=needs_trace,
        is_judge=is_judge,
        lower_is_better=lower_is_better,
        endpoint=endpoint,
    )


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def answer_length(**kw: Any) -> FakeFeedback:
    return FakeFeedback(value=len(kw["outputs"]["answer"]), rationale="chars")


# -- error isolation, order, ids ---------------------------------------------------------------------


def test_a_scorer_raising_on_one_trace_records_the_error_and_scores_the_rest(trace_row: Callable) -> None:
    def fragile(**kw: Any) -> FakeFeedback:
        if "boom" in kw["outputs"]["answer"]:
            raise ValueError("cannot score this one")
        return FakeFeedback(value=True)

    rows = [trace_row("t1"), trace_row("t2", answer="boom"), trace_row("t3")]
    out = score_table(table(rows), [loaded("fragile", fragile), loaded("length", answer_length)]).to_pylist()
    assert len(out) == 6
    by = {(r["trace_id"], r["scorer"]): r for r in out}
    assert by[("t2", "fragile")]["error"] == "ValueError: cannot score this one"
    assert by[("t2", "fragile")]["value"] is None and by[("t2", "fragile")]["passed"] is None
    assert by[("t2", "length")]["value"] == "4" and by[("t2", "length")]["error"] is None
    assert by[("t1", "fragile")]["value"] == "true" and by[("t3", "fragile")]["passed"] is True


def test_output_is_sorted_with_deterministic_ids_and_bytes(trace_row: Callable) -> None:
    rows = [trace_row("t3", stratum="errors", weight=1.0), trace_row("t1"), trace_row("t2")]
    scorers = [loaded("zeta", answer_length), loaded("alpha", answer_length)]
    first = score_table(table(rows), scorers)
    assert first.schema.equals(SCORE_SCHEMA)
    keys = [(r["trace_id"], r["scorer"]) for r in first.to_pylist()]
    assert keys == sorted(keys) and keys[0] == ("t1", "alpha")
    for r in first.to_pylist():
        assert r["assessment_id"] == assessment_id_for(r["trace_id"], r["scorer"], "v1")
        assert r["app"] == "demo" and r["scorer_version"] == "v1" and r["source_type"] == "CODE"
    t3 = [r for r in first.to_pylist() if r["trace_id"] == "t3"]
    assert {(r["stratum"], r["weight"]) for r in t3} == {("errors", 1.0)}

    second = score_table(table(list(reversed(rows))), list(reversed(scorers)))
    assert first.equals(second)
    buffers = []
    for result in (first, second):
        sink = io.BytesIO()
        pq.write_table(result, sink)
        buffers.append(sink.getvalue())
    assert buffers[0] == buffers[1]


def test_assessment_id_format() -> None:
    aid = assessment_id_for("tr-1", "relevance", "b1-abc")
    assert aid.startswith("a-") and len(aid) == 34
    assert aid == assessment_id_for("tr-1", "relevance", "b1-abc")
    assert aid != assessment_id_for("tr-1", "relevance", "b1-abd")


def test_inputs_outputs_and_expectations_are_parsed(trace_row: Callable) -> None:
    expectation = {
        "assessment_id": "e1",
        "name": "expected_answer",
        "kind": "expectation",
        "value": json.dumps("Paris"),
        "source_type": "HUMAN",
        "source_id": "me",
        "rationale": None,
        "error": None,
        "create_time_ms": 1,
    }
    feedback = {**expectation, "assessment_id": "f1", "name": "thumbs", "kind": "feedback", "value": "true"}
    row = trace_row("t1", assessments=[expectation, feedback])
    other = trace_row("t2", assessments=[])
    other["request"] = "not json"
    scorer = loaded("echo", lambda **kw: FakeFeedback(value=1.0))
    score_table(table([row, other]), [scorer])
    calls = scorer.scorer.calls  # type: ignore[attr-defined]
    assert calls[0]["inputs"] == {"query": "What is the capital of France?"}
    assert calls[0]["outputs"] == {"answer": "Paris is the capital of France."}
    assert calls[0]["expectations"] == {"expected_answer": "Paris"}
    assert calls[0]["trace"] is None  # needs_trace=False: no Trace rebuilt
    assert calls[1]["inputs"] == "not json" and calls[1]["expectations"] is None


# -- value -> numeric / passed -----------------------------------------------------------------------


class Rating(str, enum.Enum):  # noqa: UP042 - shaped like MLflow's CategoricalRating
    YES = "yes"
    NO = "no"


@pytest.mark.parametrize(
    ("value", "threshold", "lower", "value_json", "numeric", "passed"),
    [
        (True, None, False, "true", 1.0, True),
        (False, None, False, "false", 0.0, False),
        (True, None, True, "true", 1.0, False),  # refusal/pii: True is bad
        (False, None, True, "false", 0.0, True),
        ("yes", None, False, '"yes"', 1.0, True),
        ("No", None, False, '"No"', 0.0, False),
        (Rating.YES, None, False, '"yes"', 1.0, True),
        (0.7, 0.5, False, "0.7", 0.7, True),
        (0.3, 0.5, False, "0.3", 0.3, False),
        (0.5, 0.5, False, "0.5", 0.5, True),
        (3, None, False, "3", 3.0, None),  # a number without threshold has no pass/fail
        ("maybe", 0.5, False, '"maybe"', None, None),
        ({"b": 1, "a": 2}, None, False, '{"a": 2, "b": 1}', None, None),
        (float("nan"), 0.5, False, "NaN", None, None),
    ],
)
def test_value_mapping(
    trace_row: Callable,
    value: Any,
    threshold: float | None,
    lower: bool,
    value_json: str,
    numeric: float | None,
    passed: bool | None,
) -> None:
    scorer = loaded(
        "s",
        lambda **kw: FakeFeedback(value=value, rationale="why"),
        threshold=threshold,
        lower_is_better=lower,
    )
    (row,) = score_table(table([trace_row("t1")]), [scorer]).to_pylist()
    assert (row["value"], row["numeric"], row["passed"], row["rationale"]) == (
        value_json,
        numeric,
        passed,
        "why",
    )


def test_primitive_results_lists_and_feedback_errors(trace_row: Callable) -> None:
    class Err:
        error_code = "NO_CONTEXT"
        error_message = "no retrieved context"

    scorers = [
        loaded("plain", lambda **kw: 0.9, threshold=0.5),
        loaded(
            "many",
            lambda **kw: [FakeFeedback(value="no", name="other"), FakeFeedback(value="yes", name="many")],
        ),
        loaded("errored", lambda **kw: FakeFeedback(value=None, error=Err())),
        loaded("nothing", lambda **kw: None),
    ]
    out = {r["scorer"]: r for r in score_table(table([trace_row("t1")]), scorers).to_pylist()}
    assert (out["plain"]["numeric"], out["plain"]["passed"]) == (0.9, True)
    assert out["many"]["value"] == '"yes"'
    assert out["errored"]["error"] == "NO_CONTEXT: no retrieved context" and out["errored"]["value"] is None
    assert out["nothing"]["error"] == "scorer returned no value"


def test_to_numeric_and_passed_for_helpers() -> None:
    assert to_numeric(True) == 1.0 and to_numeric(" YES ") == 1.0 and to_numeric("no") == 0.0
    assert to_numeric(None) is None and to_numeric([1]) is None
    assert passed_for(True, 1.0, None, False) is True
    assert passed_for(0.2, 0.2, 0.3, True) is True


# -- tables and arguments ----------------------------------------------------------------------------


def test_empty_table_gives_an_empty_score_table(trace_row: Callable) -> None:
    empty = table([trace_row("t1")]).slice(0, 0)
    out = score_table(empty, [loaded("s", answer_length)])
    assert out.num_rows == 0 and out.schema.equals(SCORE_SCHEMA)


def test_bad_calls_raise(trace_row: Callable) -> None:
    with pytest.raises(DataContractError, match=r"lacks column\(s\) \['response'\]"):
        score_table(table([trace_row("t1")]).drop(["response"]), [loaded("s", answer_length)])
    with pytest.raises(ScorerError, match="repeated: \\['s'\\]"):
        score_table(table([trace_row("t1")]), [loaded("s", answer_length), loaded("s", answer_length)])
    with pytest.raises(ScorerError, match="max_workers"):
        score_table(table([trace_row("t1")]), [loaded("s", answer_length)], max_workers=0)


def test_trace_is_rebuilt_once_per_row_and_only_when_needed(
    trace_row: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_flywheel.scoring import builtin, runner

    calls = []
    original = runner.trace_from_json

    def counting(text: str) -> Any:
        calls.append(1)
        return original(text)

    monkeypatch.setattr(runner, "trace_from_json", counting)

    def ls(name: str, scorer: Any, needs: bool, lower: bool = False) -> LoadedScorer:
        return LoadedScorer(name, scorer, "v", "CODE", None, needs, False, lower_is_better=lower)

    scorers = [
        ls("groundedness", builtin.groundedness_scorer(), True),
        ls("latency_slo", builtin.latency_slo_scorer(1000), True),
        ls("pii", builtin.pii_scorer(), False, lower=True),
    ]
    rows = [trace_row("t1", documents=["Paris is the capital of France."], duration_ms=500), trace_row("t2")]
    rows.append(trace_row("t3", with_trace=False))
    bad = trace_row("t4")
    bad["trace_json"] = "{not a trace"
    rows.append(bad)
    out = {(r["trace_id"], r["scorer"]): r for r in score_table(table(rows), scorers).to_pylist()}
    assert len(calls) == 3  # t1, t2, t4 (t3 has no trace_json); twice-needed, built once
    assert out[("t1", "groundedness")]["numeric"] == 1.0
    assert out[("t1", "latency_slo")]["passed"] is True
    assert out[("t2", "latency_slo")]["passed"] is False
    assert out[("t3", "latency_slo")]["error"].startswith("no trace")
    assert out[("t4", "groundedness")]["error"].startswith("trace_json is not a valid MLflow trace")
    assert out[("t4", "pii")]["error"] is None and out[("t4", "pii")]["passed"] is True


# -- judges: retries, environment, budget ------------------------------------------------------------


class ChatCompletionError(Exception):
    """Same name and ``status_code`` as MLflow's gateway error, which the classifier recognises."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def _wrapped(status: int) -> Exception:
    try:
        raise ChatCompletionError(status)
    except ChatCompletionError as cause:
        try:
            raise RuntimeError(f"Failed to invoke judge model: stub fault {status}") from cause
        except RuntimeError as err:
            return err


def _endpoint(max_retries: int = 2) -> JudgeEndpoint:
    return JudgeEndpoint(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-unit-secret",
        model="m",
        max_retries=max_retries,
        backoff_s=0,
    )


def test_judge_failures_are_retried_then_recorded(trace_row: Callable) -> None:
    failures: dict[str, list[Exception]] = {
        "t1": [_wrapped(500), _wrapped(429)],  # recovers on the 3rd attempt
        "t2": [_wrapped(500)] * 10,  # permanent outage
        "t3": [_wrapped(401)],  # not retryable
        "t4": [json.JSONDecodeError("Expecting value", "<html>", 0)],
    }
    seen_keys: list[str | None] = []

    def judge(**kw: Any) -> FakeFeedback:
        seen_keys.append(os.environ.get("OPENAI_API_KEY"))
        queue = failures[kw["inputs"]["trace"]]
        if queue:
            raise queue.pop(0)
        return FakeFeedback(value="yes", rationale="fine")

    rows = [trace_row(t, query="q", request=json.dumps({"trace": t})) for t in ("t1", "t2", "t3", "t4")]
    before = os.environ.get("OPENAI_API_KEY")
    out = {
        r["trace_id"]: r
        for r in score_table(table(rows), [loaded("j", judge, is_judge=True, endpoint=_endpoint())]).to_pylist()
    }
    assert out["t1"]["value"] == '"yes"' and out["t1"]["error"] is None
    assert out["t2"]["error"] == "judge unavailable after 2 retries: HTTP 500"
    assert out["t3"]["error"] == "judge call failed: HTTP 401"
    assert out["t4"]["value"] == '"yes"'
    assert len(seen_keys) == 3 + 3 + 1 + 2
    assert set(seen_keys) == {"sk-unit-secret"}  # the key is set for the calls ...
    assert os.environ.get("OPENAI_API_KEY") == before  # ... and removed afterwards
    assert all("sk-unit-secret" not in json.dumps(r) for r in out.values())


def test_budget_skips_judge_calls_once_spent(trace_row: Callable) -> None:
    price = Price(input_per_1k=1.0, output_per_1k=1.0)
    rows = [trace_row(f"t{i}", query="q" * 400, answer="a" * 400, documents=[]) for i in range(5)]
    one_call = JudgeBudget(10.0, price).estimate(rows[0])
    budget = JudgeBudget(one_call * 2.5, price)
    judge = loaded("j", lambda **kw: FakeFeedback(value="yes"), is_judge=True, endpoint=_endpoint())
    code = loaded("c", answer_length)
    out = score_table(table(rows), [judge, code], budget=budget).to_pylist()
    judged = [r for r in out if r["scorer"] == "j"]
    assert [r["error"] for r in judged[:2]] == [None, None]
    reason = f"skipped: judge budget of ${one_call * 2.5:.2f} per run reached"
    assert [r["error"] for r in judged[2:]] == [reason] * 3
    assert all(r["error"] is None for r in out if r["scorer"] == "c")  # code scorers are never budgeted
    assert len(judge.scorer.calls) == 2  # type: ignore[attr-defined]
    summary = budget.summary()
    assert (summary["calls"], summary["skipped"], summary["priced"]) == (2, 3, True)
    assert summary["spent_usd"] == pytest.approx(one_call * 2)


def test_judges_with_different_endpoints_are_refused(trace_row: Callable) -> None:
    other = JudgeEndpoint(base_url="http://127.0.0.1:10/v1", api_key="k", model="m")
    scorers = [
        loaded("a", lambda **kw: 1, is_judge=True, endpoint=_endpoint()),
        loaded("b", lambda **kw: 1, is_judge=True, endpoint=other),
    ]
    with pytest.raises(ScorerError, match="share one endpoint"):
        score_table(table([trace_row("t1")]), scorers)
