"""A small data root for the GenAI Quality page, written through the library's own APIs.

Twelve hourly intervals of ``support-assistant`` (the app of the repo's flywheel.yaml, whose alert rules are
used as they are): the error rate spikes in intervals 3-4 (``error_rate`` fires, then resolves) and latency
p95 jumps from interval 8 on (``latency_p95`` fires and is still firing at the end). The last three
intervals have score shards with judge calls skipped by the budget. One curated dataset with two versions
and one development evaluation whose gate failed, and the review DAG's judge calibration, complete it. A
second application, ``billing-bot``, has no data at all (the empty state).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.unit.report.report_helpers import metrics_partition, write_calibration

ROOT = Path(__file__).resolve().parents[3]
APP = "support-assistant"
EMPTY_APP = "billing-bot"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
N_INTERVALS = 12
ERROR_SPIKE = (3, 4)
LATENCY_FROM = 8
BUDGET_INTERVALS = (9, 10, 11)
# Budget-skipped judge calls per budget interval: 5 in shard 0 and 2 in shard 1.
BUDGET_SKIPPED_PER_INTERVAL = 7
DATASET = f"flywheel_{APP}_default"
XSS = "<script>alert('x')</script>"


def write_config(path: Path, data_root: Path, tracking_uri: str) -> Path:
    """The repo's flywheel.yaml with ``data_root`` and ``tracking_uri`` replaced and an empty second app."""
    data = yaml.safe_load((ROOT / "flywheel.yaml").read_text(encoding="utf-8"))
    data["data_root"] = str(data_root)
    app = data["applications"][0]
    app["mlflow"]["tracking_uri"] = tracking_uri
    app["judge"]["conn_id"] = "flywheel_judge"  # judges on, so the budget is what skips them
    empty = {"name": EMPTY_APP, "mlflow": {"tracking_uri": tracking_uri, "experiment": "billing-prod"}}
    data["applications"] = [app, empty]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def latency(i: int) -> float:
    """The seeded latency p95 of interval ``i``."""
    return 4000.0 if i >= LATENCY_FROM else 1500.0


def _partition(i: int) -> Any:
    lat = latency(i)
    err = (0.3, 0.22, 0.38) if i in ERROR_SPIKE else (0.02, 0.008, 0.05)
    budget = i in BUDGET_INTERVALS
    rows: dict[str, tuple[float | None, int, float | None, float | None]] = {
        "volume": (200.0, 200, None, None),
        "sampled": (40.0, 40, None, None),
        "latency_p95_ms": (lat, 200, lat * 0.85, lat * 1.15),
        "error_rate": (err[0], 200, err[1], err[2]),
        "scorer.relevance.pass_rate": (0.85, 40, 0.7, 0.93),
        "scorer.relevance.n": (40.0, 40, None, None),
        "scorer.relevance.errors": (0.0, 40, None, None),
        "scorer.relevance_to_query.pass_rate": (0.8, 10, 0.49, 0.94),
        "scorer.relevance_to_query.n": (10.0 - (7 if budget else 0), 10, None, None),
        "scorer.relevance_to_query.errors": (7.0 if budget else 0.0, 10, None, None),
        "scorer.pii.mean": (0.01, 40, 0.0, 0.03),
        "scorer.pii.n": (40.0, 40, None, None),
        "feedback.user_feedback.positive_rate": (0.7, 20, 0.48, 0.85),
    }
    start = T0 + i * HOUR
    return metrics_partition(APP, start, start + HOUR, rows)


def _score_rows(i: int, shard: int, skipped: int, scored: int) -> Any:
    import pyarrow as pa

    from genai_flywheel.traces.schema import SCORE_SCHEMA

    rows = []
    for k in range(skipped + scored):
        budget = k < skipped
        rows.append(
            {
                "trace_id": f"tr-{i}-{shard}-{k}",
                "app": APP,
                "timestamp_ms": int((T0 + i * HOUR).timestamp() * 1000) + k,
                "scorer": "relevance_to_query" if budget or k % 2 else "relevance",
                "scorer_version": "1",
                "source_type": "LLM_JUDGE" if budget or k % 2 else "CODE",
                "value": None if budget else "true",
                "numeric": None if budget else 1.0,
                "passed": None if budget else True,
                "rationale": None,
                "error": "skipped: judge budget of $1.00 per run reached" if budget else None,
                "stratum": None,
                "weight": 2.0,
                "assessment_id": f"a-{i}-{shard}-{k}",
            }
        )
    return pa.Table.from_pylist(rows, schema=SCORE_SCHEMA)


def _records(ids: list[str]) -> Any:
    import pyarrow as pa

    from genai_flywheel.curation.records import record_schema

    return pa.Table.from_pylist(
        [{"record_id": r, "source_trace_id": f"tr-{r}", "rule": "negative_feedback", "app": APP} for r in ids],
        schema=record_schema(),
    )


def seed(root: Path, config_path: Path) -> Path:
    """Write the whole data root under ``root`` (alerts evaluated with the rules of ``config_path``)."""
    from genai_flywheel.alerts import process_interval
    from genai_flywheel.config import load_config
    from genai_flywheel.curation.datasets import commit_snapshot
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.metrics.intervals import interval_label
    from genai_flywheel.workspace import atomic_write_json, atomic_write_parquet

    rules = load_config(config_path).app(APP).alerts
    store = MetricsStore(root)
    for i in range(N_INTERVALS):
        start = T0 + i * HOUR
        store.write_partition(_partition(i))
        process_interval(root, APP, store.read(APP, start, start + HOUR), rules, start, start + HOUR, HOUR * 24)
        if i in BUDGET_INTERVALS:
            scores = root / "runs" / f"app={APP}" / f"interval={interval_label(start)}" / "scores"
            atomic_write_parquet(_score_rows(i, 0, 5, 4), scores / "shard=000.parquet")
            atomic_write_parquet(_score_rows(i, 1, 2, 3), scores / "shard=001.parquet")

    window = {
        "interval_start_ms": int(T0.timestamp() * 1000),
        "interval_end_ms": int((T0 + 12 * HOUR).timestamp() * 1000),
    }
    commit_snapshot(
        root,
        DATASET,
        _records(["r1", "r2"]),
        {"app": APP, "per_rule": {"negative_feedback": 2}, "added": 2, "updated": 0, **window},
    )
    commit_snapshot(
        root,
        DATASET,
        _records(["r1", "r2", "r3"]),
        {"app": APP, "per_rule": {"negative_feedback": 3}, "added": 1, "updated": 0, **window},
    )

    run = root / "evaluations" / f"app={APP}" / "dev-eval-cand-v2"
    atomic_write_json(
        {
            "candidate": XSS,
            "dataset": {"name": DATASET, "version": 2, "digest": "sha256:abc", "source": "curated"},
            "run_id": "run123",
            "n_records": 3,
            "candidate_errors": 0,
            "scorers": {"relevance": {"n": 3, "improvement": 0.04, "ci_low": 0.01, "ci_high": 0.07, "p_value": 0.2}},
            "rules": {},
        },
        run / "summary.json",
    )
    atomic_write_json(
        {
            "passed": False,
            "checks": [
                {"gate": "relevance", "criterion": "min_improvement", "threshold": 0.05, "actual": 0.04,
                 "passed": False, "message": "relevance improvement 0.040 is below 0.05"}
            ],
        },
        run / "gate.json",
    )  # fmt: skip
    atomic_write_json({"run_id": "run123", "experiment_id": "42", "experiment": "support-prod-dev-eval"},
                      run / "eval_run.json")  # fmt: skip
    write_calibration(root, APP)  # the review DAG's judge calibration and its disagreeing traces
    return root
