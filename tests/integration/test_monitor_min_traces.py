"""``sampling.min_traces``: a quiet interval is sampled at the rate that gives at least that many traces, and
the sample and score stages apply the same rate, so the scores carry the weights of the rate used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

START = datetime(2026, 11, 19, 12, tzinfo=UTC)
END = START + timedelta(hours=6)
APP = "support-assistant"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    from flywheel_demo.simulate import simulate

    root = tmp_path_factory.mktemp("min-traces")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    simulate(uri, "support-prod", days=1, traces_per_day=80, end=START + timedelta(hours=12), seed=5, progress=False)
    return uri


def _run(tmp_path: Path, uri: str, min_traces: int) -> dict:
    from genai_flywheel import pipeline
    from genai_flywheel.config import load_config
    from genai_flywheel.workspace import IntervalWorkspace, read_parquet
    from tests.integration.conftest import write_config

    tmp_path.mkdir(parents=True)
    sampling = {"rate": 0.2, "min_traces": min_traces, "seed": "flywheel", "shards": 2}
    cfg = load_config(write_config(tmp_path / "flywheel.yaml", uri, tmp_path / "data", sampling=sampling))
    pipeline.extract(APP, START, END, config=cfg)
    valid = pipeline.validate(APP, START, END, config=cfg)["valid"]
    sampled = pipeline.sample(APP, START, END, config=cfg)
    ws = IntervalWorkspace.of(cfg.data_path(), APP, START, END)
    scores = []
    for shard in sampled["shards"]:
        pipeline.score_shard(APP, START, END, shard, config=cfg)
        scores += read_parquet(ws.shard_path(shard)).to_pylist()
    return {"valid": valid, "sampled": sampled["sampled"], "scores": scores}


def test_a_quiet_interval_is_scored_whole_with_weight_one(tmp_path: Path, store: str) -> None:
    fixed = _run(tmp_path / "fixed", store, 0)
    raised = _run(tmp_path / "raised", store, 1_000)
    assert 0 < fixed["valid"] < 1_000 and fixed["valid"] == raised["valid"]
    # At 20% only part of the interval is read; with min_traces every valid trace is, by every scorer.
    assert fixed["sampled"] < raised["sampled"] == raised["valid"]
    assert {s["weight"] for s in raised["scores"]} == {1.0}
    assert 5.0 in {s["weight"] for s in fixed["scores"]}  # the base stratum at 20%
    # Coordinated: every (trace, scorer) the fixed rate scored is scored again, with the same value.
    raised_by_key = {(s["trace_id"], s["scorer"]): s for s in raised["scores"]}
    for s in fixed["scores"]:
        other = raised_by_key[(s["trace_id"], s["scorer"])]
        assert (other["numeric"], other["passed"]) == (s["numeric"], s["passed"])
