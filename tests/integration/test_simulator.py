"""The traffic simulator against a real MLflow SQLite store: counts, trace contents, feedback, idempotency,
and fidelity to what the live (MLflow-traced) app produces."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flywheel_demo.app import CHAT_USAGE_KEY, make_app
from flywheel_demo.simulate import simulate

# Noon UTC: the error spike (busiest 2 h of the first 6 h) lands on the afternoon peak.
END = datetime(2026, 1, 2, 12, tzinfo=UTC)


def _all_traces(uri: str, experiment_id: str) -> list:
    from mlflow.tracing.client import TracingClient

    return list(TracingClient(uri).search_traces(locations=[experiment_id], max_results=10_000))


def _live_trace(uri: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """One request through the app with real MLflow tracing, as deployed; MLflow's global tracking URI,
    tracer and active experiment are restored afterwards."""
    import mlflow
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    with tracking_utils._use_tracking_uri(uri):  # resets the tracer provider on entry and exit
        mlflow.set_experiment("live")
        app = make_app("production")
        app.answer("How do I cancel my Pro plan?", session_id="sess-live", user_id="user-live")
        mlflow.flush_trace_async_logging()
        return mlflow.get_trace(mlflow.get_last_active_trace_id())


def test_simulate_writes_complete_idempotent_traffic(
    sqlite_tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns; keep it out of the repo
    gt_path = tmp_path / "truth" / "ground_truth.json"
    result = simulate(
        sqlite_tracking_uri,
        "demo-it",
        days=1,
        traces_per_day=60,
        end=END,
        seed=7,
        ground_truth_path=gt_path,
        progress=False,
    )
    gt = json.loads(gt_path.read_text())
    assert gt == result.ground_truth
    assert (result.n_traces, result.n_written) == (60, 60)
    assert result.start == datetime(2026, 1, 1, 12, tzinfo=UTC) and result.end == END

    traces = _all_traces(sqlite_tracking_uri, result.experiment_id)
    assert len(traces) == 60
    by_id = {t.info.trace_id: t for t in traces}
    errors = [t for t in traces if t.info.state.value == "ERROR"]
    assert len(errors) == gt["n_errors"] > 0
    for t in traces:
        info = t.info
        assert result.start.timestamp() * 1000 <= info.timestamp_ms < END.timestamp() * 1000
        assert info.tags["app_version"] == "v1" and info.tags["model"] == "demo-chat-1"
        assert info.trace_metadata["mlflow.trace.session"].startswith("sess-")
        assert info.trace_metadata["mlflow.trace.user"].startswith("user-")
        assert json.loads(info.request_preview)["query"]
        types = {s.span_type for s in t.data.spans}
        if info.state.value == "OK":
            assert types == {"CHAIN", "RETRIEVER", "CHAT_MODEL"}
            assert info.token_usage["total_tokens"] > 0
            assert json.loads(info.response_preview)["answer"]
            retriever = next(s for s in t.data.spans if s.span_type == "RETRIEVER")
            assert all("doc_uri" in d["metadata"] for d in retriever.outputs)
        else:
            root = next(s for s in t.data.spans if s.parent_id is None)
            assert root.status.status_code.value == "ERROR"
            assert root.events[0].attributes["exception.type"] in {"TimeoutError", "RateLimitError"}

    wrong = gt["incidents"]["smart_sync_wrong_answers"]["trace_ids"]
    assert wrong and all("supported" in json.loads(by_id[i].info.response_preview)["answer"] for i in wrong)

    def assessments(name: str) -> list:
        return [
            a
            for t in _all_traces(sqlite_tracking_uri, result.experiment_id)
            for a in t.info.assessments
            if a.name == name
        ]

    feedback = assessments("user_feedback")
    assert len(feedback) == result.n_feedback == gt["n_feedback"] > 0
    assert all(a.source.source_type == "HUMAN" and a.source.source_id.startswith("user-") for a in feedback)
    assert sum(a.value is False for a in feedback) == gt["n_negative_feedback"]
    assert len(assessments("expected_answer")) == gt["n_expectations"]
    # Feedback is stamped minutes after its trace, not at write time.
    first = min(feedback, key=lambda a: a.create_time_ms)
    assert first.create_time_ms < END.timestamp() * 1000

    again = simulate(sqlite_tracking_uri, "demo-it", days=1, traces_per_day=60, end=END, seed=7, progress=False)
    assert (again.n_written, again.n_feedback_written) == (0, 0)
    assert again.ground_truth == gt
    assert len(_all_traces(sqlite_tracking_uri, result.experiment_id)) == 60
    assert len(assessments("user_feedback")) == len(feedback)

    # A simulated trace carries what the live MLflow-traced app records (plus the OTLP transport fields).
    live = _live_trace(sqlite_tracking_uri, monkeypatch)
    sim = next(t for t in traces if t.info.state.value == "OK")
    transport = {"session.id", "user.id"}
    for live_span, sim_span in zip(live.data.spans, sim.data.spans, strict=True):
        assert (live_span.name, live_span.span_type) == (sim_span.name, sim_span.span_type)
        sim_keys = {k for k in sim_span.attributes if not k.startswith("mlflow.traceTag.")} - transport
        assert set(live_span.attributes) == sim_keys
        assert live_span.attributes["mlflow.spanLogLevel"] == sim_span.attributes["mlflow.spanLogLevel"]
    assert CHAT_USAGE_KEY in live.data.spans[2].attributes
    assert live.info.token_usage["total_tokens"] > 0
    assert live.info.trace_metadata["mlflow.trace.session"] == "sess-live"
    assert {"app_version", "model"} <= set(live.info.tags)
