"""The monitor DAG, run with ``dag.test()`` over simulated intervals against a real MLflow store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, SIM_END

INTERVAL = timedelta(hours=6)
DAG_ID = "flywheel_monitor_support-assistant"
CODE_SCORERS = {"relevance", "groundedness", "refusal", "pii", "latency_slo"}


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "flywheel_monitor.py"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def _run(dag, start):
    from airflow.utils.state import DagRunState

    # A manual run covers the latest whole interval before its logical date: the one ending there.
    dr = dag.test(logical_date=start + INTERVAL)
    assert dr.data_interval_start == start
    assert dr.state == DagRunState.SUCCESS, f"run of {start} ended {dr.state}"
    return dr


def _assessments(uri: str, start_ms: int, end_ms: int) -> dict[str, list]:
    from genai_flywheel.traces.extract import get_experiment_id, iter_traces, window_filter

    exp = get_experiment_id(uri, "support-prod")
    return {
        t.info.trace_id: [(a.name, a.source.source_type) for a in t.info.assessments]
        for t in iter_traces(uri, exp, window_filter(start_ms, end_ms), include_spans=False)
    }


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, production, airflow_db):
    """Every 6-hour interval of the simulated day, monitored by the DAG once."""
    import os

    from tests.integration.conftest import write_config

    base = tmp_path_factory.mktemp("monitor")
    data_root = base / "data"
    cfg = write_config(base / "flywheel.yaml", production["uri"], data_root)
    old = {k: os.environ.get(k) for k in ("FLYWHEEL_CONFIG", "FLYWHEEL_DATA_ROOT")}
    os.environ["FLYWHEEL_CONFIG"], os.environ["FLYWHEEL_DATA_ROOT"] = str(cfg), str(data_root)
    from flywheel_airflow.settings import flywheel_config

    flywheel_config.cache_clear()
    dag = _dag()
    starts = [SIM_END - timedelta(days=2) + i * INTERVAL for i in range(4)]  # day 1
    for s in starts:
        _run(dag, s)
    yield {"dag": dag, "starts": starts, "data_root": data_root, **production}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    flywheel_config.cache_clear()


def test_every_trace_is_counted_and_partitions_exist(monitored) -> None:
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.traces.extract import count_traces, get_experiment_id, window_filter
    from genai_flywheel.workspace import to_ms

    metrics = MetricsStore(monitored["data_root"]).read("support-assistant").to_pylist()
    volume = sum(r["value"] for r in metrics if r["metric"] == "volume")
    quarantined = sum(r["value"] for r in metrics if r["metric"] == "quarantined")
    uri, starts = monitored["uri"], monitored["starts"]
    in_day = count_traces(
        uri, get_experiment_id(uri, "support-prod"), window_filter(to_ms(starts[0]), to_ms(starts[-1] + INTERVAL))
    )
    assert in_day > 200
    assert volume + quarantined == in_day
    assert len({r["interval_start"] for r in metrics}) == 4


def test_sampled_traces_carry_one_assessment_per_scorer(monitored) -> None:
    from genai_flywheel.workspace import IntervalWorkspace, read_parquet, to_ms

    start = monitored["starts"][2]
    ws = IntervalWorkspace.of(monitored["data_root"], "support-assistant", start, start + INTERVAL)
    sample = read_parquet(ws.path("sample.parquet")).to_pylist()
    assert sample, "nothing sampled in a busy interval"
    on_traces = _assessments(monitored["uri"], to_ms(start), to_ms(start + INTERVAL))
    for row in sample:
        names = [n for n, src in on_traces[row["trace_id"]] if src == "CODE"]
        assert sorted(names) == sorted(row["scorers"]), row["trace_id"]
    # Errors are oversampled: every failed trace of the interval was scored.
    errors = [r for r in read_parquet(ws.path("valid.parquet")).to_pylist() if r["status"] == "ERROR"]
    sampled_ids = {r["trace_id"] for r in sample}
    assert all(r["trace_id"] in sampled_ids for r in errors)


def test_rerun_of_an_interval_changes_nothing(monitored) -> None:
    from genai_flywheel.metrics import MetricsStore
    from genai_flywheel.workspace import to_ms

    start = monitored["starts"][1]
    store = MetricsStore(monitored["data_root"])
    part = store.partition_path("support-assistant", start)
    before_bytes = part.read_bytes()
    before = _assessments(monitored["uri"], to_ms(start), to_ms(start + INTERVAL))
    _run(monitored["dag"], start)
    after = _assessments(monitored["uri"], to_ms(start), to_ms(start + INTERVAL))
    assert part.read_bytes() == before_bytes
    assert {k: sorted(v) for k, v in after.items()} == {k: sorted(v) for k, v in before.items()}


def test_alerts_match_the_planted_incidents(monitored) -> None:
    from genai_flywheel.alerts import AlertStore

    truth = monitored["result"].ground_truth["incidents"]
    events = AlertStore(monitored["data_root"]).read_events("support-assistant").to_pylist()
    fired = {(e["rule"], e["interval_start"].isoformat()[:13]) for e in events if e["evaluation"] == "firing"}

    def interval_of(iso: str) -> str:
        t = iso.replace("Z", "+00:00")
        start = next(s for s in monitored["starts"] if s.isoformat() <= t < (s + INTERVAL).isoformat())
        return start.isoformat()[:13]

    assert ("error_rate", interval_of(truth["error_spike"]["start"])) in fired, fired
    assert ("latency_p95", interval_of(truth["chat_latency_regression"]["start"])) in fired, fired
    # No alert on the quiet, healthy parts of the day.
    assert all(rule != "error_rate" or iv == interval_of(truth["error_spike"]["start"]) for rule, iv in fired)


def test_metrics_are_logged_to_the_monitoring_run(monitored) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=monitored["uri"])
    exp = client.get_experiment_by_name("support-prod")
    runs = client.search_runs([exp.experiment_id], "tags.`flywheel.monitor_app` = 'support-assistant'")
    assert len(runs) == 1
    history = client.get_metric_history(runs[0].info.run_id, "volume")
    # One point per monitored interval, none duplicated by the re-run (other tests may monitor day 2).
    ours = [m for m in history if m.timestamp in {int(s.timestamp() * 1000) for s in monitored["starts"]}]
    assert len(ours) == 4
    assert len({(m.timestamp, m.step) for m in history}) == len(history)


def test_contract_report_is_written(monitored) -> None:
    from genai_flywheel.workspace import IntervalWorkspace

    start = monitored["starts"][0]
    ws = IntervalWorkspace.of(monitored["data_root"], "support-assistant", start, start + INTERVAL)
    report = json.loads(Path(ws.path("contract.json")).read_text())
    assert report["rows_checked"] >= 1
