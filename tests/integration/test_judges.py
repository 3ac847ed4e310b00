"""LLM judges against the OpenAI-compatible stub, and the built-in scorers inside ``mlflow.genai.evaluate``.

Real MLflow judges, real HTTP on 127.0.0.1, a real SQLite tracking store in tmp_path; no other network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from genai_flywheel.config import Application
from genai_flywheel.scoring import JudgeEndpoint, judge_environment, load_scorers, score_table
from tests.stubs import OpenAIStub

KEY = "sk-flywheel-test-7f3a9c1e5b"
QUERY = "What is the capital of France?"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One SQLite tracking store for the module (creating one runs every migration: seconds); each test
    uses its own experiment and artifact folder. Yields the store's folder."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    yield root
    mlflow.set_tracking_uri(previous)


def _experiment(root: Path, name: str) -> tuple[str, Path]:
    import mlflow

    artifacts = root / name
    experiment_id = mlflow.create_experiment(name, artifact_location=str(artifacts))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id, artifacts


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(timeout_sleep_s=2.5) as server:
        yield server


def _endpoint(stub: OpenAIStub, max_retries: int = 3) -> JudgeEndpoint:
    return JudgeEndpoint(
        base_url=stub.base_url,
        api_key=KEY,
        model="stub-judge",
        timeout_s=1,
        max_retries=max_retries,
        backoff_s=0.01,
    )


def _app(*scorers: dict[str, Any]) -> Application:
    return Application.model_validate(
        {
            "name": "demo",
            "mlflow": {"tracking_uri": "sqlite:///x.db", "experiment": "demo"},
            "scorers": list(scorers),
        }
    )


def _rows(*pairs: tuple[str, str]) -> pa.Table:
    rows = []
    for n, (query, answer) in enumerate(pairs):
        rows.append(
            {
                "trace_id": f"tr-{n}",
                "app": "demo",
                "timestamp_ms": 1_767_225_600_000 + n,
                "request": json.dumps({"query": query}),
                "response": json.dumps({"answer": answer}),
                "query": query,
                "answer": answer,
                "context": [],
                "trace_json": None,
                "stratum": "base",
                "weight": 5.0,
            }
        )
    return pa.Table.from_pylist(rows)


def _score(stub: OpenAIStub, table: pa.Table, max_retries: int = 3) -> list[dict[str, Any]]:
    scorers = load_scorers(_app({"name": "relevance_to_query"}), _endpoint(stub, max_retries))
    return score_table(table, scorers, max_workers=2).to_pylist()


def test_relevance_to_query_scores_through_the_stub(stub: OpenAIStub) -> None:
    out = _score(stub, _rows((QUERY, "The capital of France is Paris."), (QUERY, "Bananas are yellow.")))
    assert [(r["trace_id"], r["value"], r["numeric"], r["passed"], r["error"]) for r in out] == [
        ("tr-0", '"yes"', 1.0, True, None),
        ("tr-1", '"no"', 0.0, False, None),
    ]
    assert all(r["source_type"] == "LLM_JUDGE" and r["rationale"] for r in out)
    assert stub.request_count == 2
    body = stub.requests[0]
    assert body is not None and body["model"] == "stub-judge"
    assert body["response_format"]["type"] == "json_schema"
    assert set(body["response_format"]["json_schema"]["schema"]["properties"]) == {"result", "rationale"}
    assert stub.auth_headers == [f"Bearer {KEY}"] * 2


@pytest.mark.parametrize("fault", ["429", "500", "malformed", "bad_schema", "timeout"])
def test_faults_are_retried_and_recover(stub: OpenAIStub, fault: str) -> None:
    stub.add_faults(fault)
    (row,) = _score(stub, _rows((QUERY, "Paris is the capital of France.")))
    assert row["error"] is None and row["value"] == '"yes"'
    # One faulty answer, one retry: MLflow's own retry loop is off inside ours.
    assert stub.served == [fault, "ok"]


def test_a_permanent_outage_records_errors_without_raising(stub: OpenAIStub) -> None:
    stub.outage = "500"
    out = _score(stub, _rows((QUERY, "Paris."), (QUERY, "Lyon.")), max_retries=2)
    assert [r["error"] for r in out] == ["judge unavailable after 2 retries: HTTP 500"] * 2
    assert all(r["value"] is None and r["numeric"] is None for r in out)
    assert stub.request_count == 2 * 3


def test_the_key_is_sent_but_never_logged(
    stub: OpenAIStub, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    stub.add_faults("500", "malformed", "429")
    out = _score(stub, _rows((QUERY, "Paris is the capital of France."), (QUERY, "No idea.")), max_retries=1)
    captured = capfd.readouterr()
    assert stub.auth_headers and set(stub.auth_headers) == {f"Bearer {KEY}"}
    assert caplog.records, "expected some log output to search"
    assert KEY not in caplog.text
    assert KEY not in captured.out and KEY not in captured.err
    assert KEY not in json.dumps(out)
    assert any(r["error"] for r in out)  # the failure path (errors, retries) ran too


def test_judges_inside_mlflow_evaluate_do_not_leak_the_key(stub: OpenAIStub, tracking: Path) -> None:
    import mlflow

    experiment_id, artifacts = _experiment(tracking, "judges")
    endpoint = _endpoint(stub)
    scorers = [s.scorer for s in load_scorers(_app({"name": "relevance_to_query"}, {"name": "safety"}), endpoint)]
    data = [{"inputs": {"query": QUERY}, "outputs": {"answer": "The capital of France is Paris."}}]
    with judge_environment(endpoint):
        result = mlflow.genai.evaluate(data=data, scorers=scorers)
    assert result.metrics["relevance_to_query/mean"] == 1.0
    run = mlflow.get_run(result.run_id)
    assert KEY not in json.dumps(run.data.params) + json.dumps(run.data.tags)
    for path in [*artifacts.rglob("*"), tracking / "mlflow.db"]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
    assert traces and all(KEY not in t.to_json() for t in traces)


def test_builtin_scorers_inside_mlflow_evaluate(tracking: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.entities import Document, SpanType

    monkeypatch.setenv("MLFLOW_GENAI_EVAL_MAX_WORKERS", "1")
    experiment_id, _ = _experiment(tracking, "builtins")
    app = _app(*({"name": n} for n in ("relevance", "groundedness", "refusal", "pii", "latency_slo")))
    scorers = [s.scorer for s in load_scorers(app, None)]

    # 1) a static dataset of inputs/outputs
    data = [
        {"inputs": {"query": QUERY}, "outputs": {"answer": "The capital of France is Paris."}},
        {"inputs": {"query": QUERY}, "outputs": {"answer": "I don't know. Mail me at jo@example.com"}},
    ]
    metrics = mlflow.genai.evaluate(data=data, scorers=scorers).metrics
    assert metrics["relevance/mean"] == 0.5
    assert metrics["refusal/mean"] == 0.5 and metrics["pii/mean"] == 0.5
    assert metrics["latency_slo/mean"] == 1.0

    # 2) real traces with a RETRIEVER span, as the monitor DAG sees them
    @mlflow.trace(span_type=SpanType.RETRIEVER)
    def retrieve(query: str) -> list[Document]:
        return [Document(page_content="Paris is the capital and largest city of France.")]

    @mlflow.trace
    def rag(query: str) -> dict[str, str]:
        retrieve(query)
        return {"answer": "Paris is the capital of France."}

    rag(QUERY)
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(locations=[experiment_id], return_type="pandas")
    traces = traces[traces["request"].astype(str).str.contains("capital")].head(1)
    result = mlflow.genai.evaluate(data=traces, scorers=scorers)
    assert result.metrics["groundedness/mean"] == 1.0
    assert result.metrics["relevance/mean"] == 1.0
    assert result.metrics["latency_slo/mean"] == 1.0


def test_the_stub_fixture_speaks_openai(openai_stub: OpenAIStub) -> None:
    import openai

    client = openai.OpenAI(base_url=openai_stub.base_url, api_key=KEY, max_retries=0, timeout=5)
    schema = {
        "type": "object",
        "properties": {"result": {"type": "boolean"}, "rationale": {"type": "string"}},
        "required": ["result", "rationale"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="stub-judge",
        messages=[
            {
                "role": "user",
                "content": "<question>capital of France</question><answer>Paris, capital</answer>",
            }
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Verdict", "schema": schema, "strict": True},
        },
    )
    content = json.loads(completion.choices[0].message.content or "")
    assert content["result"] is True and isinstance(content["rationale"], str)
    assert completion.usage is not None and completion.usage.total_tokens > 0
    openai_stub.add_faults("429")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="stub-judge", messages=[{"role": "user", "content": "hi"}])
    assert openai_stub.request_count == 2 and openai_stub.served == ["ok", "429"]
    assert openai_stub.auth_headers == [f"Bearer {KEY}"] * 2
    assert [m.id for m in client.models.list()] == ["stub-judge"]
