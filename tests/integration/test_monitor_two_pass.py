"""Two-pass extraction against a real MLflow store: trace infos for the whole window, spans only for the
sample; every metric that a full read computes exactly keeps its value, the rest carry n and a CI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import SIM_END, write_config

INTERVAL = timedelta(hours=6)
APP = "support-assistant"


@pytest.fixture(scope="module")
def two_pass(tmp_path_factory, production) -> dict:
    """The monitor over the four intervals of the simulated incident day, with the spans read recorded."""
    from mlflow.tracing.client import TracingClient

    from genai_flywheel import pipeline
    from genai_flywheel.config import load_config

    base = tmp_path_factory.mktemp("two-pass")
    cfg = load_config(write_config(base / "flywheel.yaml", production["uri"], base / "data", extract={"slices": 3}))
    requested: list[str] = []
    original = TracingClient.batch_get_traces

    def recording(self, trace_ids, location=None):
        requested.extend(trace_ids)
        return original(self, trace_ids, location)

    mp = pytest.MonkeyPatch()
    mp.setattr(TracingClient, "batch_get_traces", recording)
    starts = [SIM_END - timedelta(days=1) + INTERVAL * k for k in range(4)]
    runs = {}
    try:
        for start in starts:
            requested.clear()
            out = pipeline.run_monitor_interval(APP, start, start + INTERVAL, config=cfg)
            runs[start] = {"out": out, "requested": list(requested)}
    finally:
        mp.undo()
    return {"cfg": cfg, "runs": runs, "uri": production["uri"]}


def test_spans_are_read_only_for_the_sampled_traces(two_pass) -> None:
    from genai_flywheel.workspace import IntervalWorkspace, read_parquet

    for start, run in two_pass["runs"].items():
        ws = IntervalWorkspace.of(two_pass["cfg"].data_path(), APP, start, start + INTERVAL)
        sampled = read_parquet(ws.path("sample.parquet")).column("trace_id").to_pylist()
        volume = run["out"]["validate"]["valid"]
        assert 0 < len(sampled) < volume
        assert sorted(run["requested"]) == sorted(sampled)
        assert sum(s["read"] + s["quarantined"] for s in run["out"]["score"]) == len(sampled)


def test_every_exact_metric_equals_the_full_read(two_pass) -> None:
    """The reference: the window read in full, with spans, and aggregated whole (the previous path)."""
    import pyarrow as pa

    from genai_flywheel.metrics.aggregate import aggregate, is_estimate
    from genai_flywheel.traces.extract import extract_window
    from genai_flywheel.workspace import IntervalWorkspace, read_parquet, to_ms

    app = two_pass["cfg"].app(APP)
    compared = 0
    for start in two_pass["runs"]:
        ws = IntervalWorkspace.of(two_pass["cfg"].data_path(), APP, start, start + INTERVAL)
        full = extract_window(two_pass["uri"], "support-prod", to_ms(start), to_ms(start + INTERVAL), app=APP)
        # The score files as the score stage wrote them, whole (the monitor de-duplicates them file by file).
        scores = pa.concat_tables([read_parquet(p) for p in ws.parts("scores")])
        reference = aggregate(
            full, scores, app=APP, interval_start=start, interval_end=start + INTERVAL, prices=app.prices
        )
        # Drift metrics come from the segment stage (tests/unit/segments), not from a window's traces alone.
        new = {
            r["metric"]: r
            for r in read_parquet(ws.path("metrics.parquet")).to_pylist()
            if not r["metric"].startswith("drift.")
        }
        for row in reference.to_pylist():
            metric = row["metric"]
            if metric.startswith("span."):
                # An estimate from the sampled traces, weighted 1 / pi, with its n and CI.
                est = new[metric]
                assert 0 < est["n"] <= row["n"]
                if est["ci_low"] is not None:
                    assert est["ci_low"] <= est["value"] <= est["ci_high"]
                continue
            assert new[metric] == row, (start, metric)
            compared += 1
        assert {m for m in new if not m.startswith("span.")} == {
            r["metric"] for r in reference.to_pylist() if not r["metric"].startswith("span.")
        }
        assert any(is_estimate(m) for m in new)
    assert compared > 100


def test_a_sampled_trace_without_readable_spans_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    from mlflow.entities import TraceInfo, TraceLocation, TraceState
    from mlflow.tracking._tracking_service.utils import _get_store

    from flywheel_demo.simulate import simulate
    from genai_flywheel import pipeline
    from genai_flywheel.config import load_config
    from genai_flywheel.traces.fetch import UNREADABLE_REASON
    from genai_flywheel.workspace import read_parquet

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    end = SIM_END
    result = simulate(uri, "support-prod", days=1, traces_per_day=40, end=end, seed=9, progress=False)
    start = end - INTERVAL
    # A finished trace whose span data is gone: its info lists fine, batch_get_traces returns no spans.
    lost = "tr-" + "ab" * 16
    info = TraceInfo(
        trace_id=lost,
        trace_location=TraceLocation.from_experiment_id(result.experiment_id),
        request_time=int((start + timedelta(minutes=5)).timestamp() * 1000),
        execution_duration=120,
        state=TraceState.ERROR,  # the errors stratum samples every failed trace
        trace_metadata={},
        tags={},
    )
    _get_store(uri).start_trace(info)
    cfg = load_config(write_config(tmp_path / "flywheel.yaml", uri, tmp_path / "data"))
    out = pipeline.run_monitor_interval(APP, start, end, config=cfg)
    run_dir = Path(out["aggregate"]["path"]).parent
    quarantined = [r for p in sorted((run_dir / "quarantine").glob("*.parquet")) for r in read_parquet(p).to_pylist()]
    assert [q["trace_id"] for q in quarantined] == [lost]
    assert quarantined[0]["reasons"] == [UNREADABLE_REASON]
    scored = {
        r["trace_id"] for p in sorted((run_dir / "scores").glob("*.parquet")) for r in read_parquet(p).to_pylist()
    }
    assert lost not in scored
    metrics = {r["metric"]: r["value"] for r in read_parquet(run_dir / "metrics.parquet").to_pylist()}
    assert metrics["quarantined"] == 1
