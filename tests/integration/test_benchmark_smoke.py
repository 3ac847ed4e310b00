"""Smoke test of benchmarks/monitor.py: its internals end to end on a tiny window (N=30, baseline 10), once
on the SQLite store and once through an `mlflow server` (--serve).

Asserts the figures' shape and that every rate is positive, never a timing. Every stage task runs in a
fresh process that imports mlflow and great_expectations, so it takes a few minutes, most of it imports.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import monitor
from flywheel_demo.services import pg_bindir

N, BASELINE_N = 30, 10


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    workdir = tmp_path_factory.mktemp("bench")
    summary = monitor.run_benchmark(n=N, baseline_n=BASELINE_N, workdir=workdir, progress=False)
    return summary, workdir


def _scorer_assessments(uri: str) -> int:
    from genai_flywheel.traces.extract import get_experiment_id, iter_traces, window_filter
    from genai_flywheel.workspace import to_ms

    start, end = monitor.window()
    exp = get_experiment_id(uri, monitor.EXPERIMENT)
    return sum(
        1
        for t in iter_traces(uri, exp, window_filter(to_ms(start), to_ms(end)), include_spans=False)
        for a in t.info.assessments or []
        if a.name == "relevance"
    )


def test_summary_has_every_figure_with_positive_rates(bench: tuple[dict, Path]) -> None:
    summary, _ = bench
    assert summary["n"] == N
    assert [s["stage"] for s in summary["stages"]] == list(monitor.STAGES)
    for stage in summary["stages"]:
        assert stage["seconds"] > 0, stage["stage"]
        assert stage["traces_per_s"] > 0, stage["stage"]
        assert stage["peak_rss_after_mb"] >= stage["peak_rss_before_mb"] > 0
        assert stage["process_seconds"] > stage["seconds"]  # a fresh process: interpreter and imports too
    stages = {s["stage"]: s for s in summary["stages"]}
    # One score task per shard that sample returned, each in its own process.
    assert stages["score"]["tasks"] == len(stages["sample"]["result"]["shards"]) >= 1
    assert stages["score"]["result"]["scores"] == summary["scores_computed"]
    whole = summary["whole_monitor"]
    assert whole["tasks"] == 1 and whole["seconds"] > 0 and whole["peak_rss_after_mb"] > 0
    assert set(whole["result"]) == set(monitor.STAGES)  # run_monitor_interval ran every stage
    assert summary["monitor_traces_per_s"] > 0
    assert summary["monitor_seconds"] == pytest.approx(sum(s["seconds"] for s in summary["stages"]))
    assert summary["monitor_traces_per_s"] == pytest.approx(N / summary["monitor_seconds"])
    assert summary["peak_rss_mb"] > 0
    # Sample rate 1.0: every trace scored by every code scorer, none taken from an earlier run.
    baseline = summary["baseline"]
    assert summary["scores_computed"] == N * len(baseline["scorers"])
    assert summary["scores_reused"] == 0
    assert "relevance_to_query" not in baseline["scorers"]  # judges are left out
    assert baseline["requested"] == BASELINE_N
    assert baseline["rows"] == BASELINE_N and baseline["lost"] == 0
    assert baseline["traces_per_s"] > 0
    assert summary["ratio"] == pytest.approx(summary["monitor_traces_per_s"] / baseline["traces_per_s"])
    assert summary["goal_met"] == (summary["ratio"] >= monitor.GOAL_RATIO)
    # Both sides ran the same scorers on the same traces: evaluate's values equal the monitor's.
    assert baseline["compared"] > BASELINE_N
    assert baseline["agreed"] == baseline["compared"]
    assert summary["write"]["written"] == N
    json.dumps(summary)  # what --json writes


def test_report_prints_the_headline_figures(bench: tuple[dict, Path]) -> None:
    summary, _ = bench
    text = monitor.format_report(summary)
    for stage in monitor.STAGES:
        assert f"\n{stage} " in text
    for label in (
        "N:",
        "peak RSS:",
        "monitor combined:",
        "baseline (genai.evaluate):",
        "ratio monitor / baseline:",
    ):
        assert label in text
    assert ("MET" if summary["goal_met"] else "NOT MET") in text


def test_the_traces_store_stays_free_of_scores_and_is_reused(bench: tuple[dict, Path]) -> None:
    _, workdir = bench
    traces_uri = f"sqlite:///{(workdir / 'traces.db').resolve()}"
    run_uri = f"sqlite:///{(workdir / 'run.db').resolve()}"
    assert _scorer_assessments(traces_uri) == 0
    # The monitor's write-back and evaluate each put one relevance assessment on every trace they scored.
    assert _scorer_assessments(run_uri) == N + BASELINE_N
    # The whole monitor in one process ran on a copy of its own: a first run, not a re-run.
    assert _scorer_assessments(f"sqlite:///{(workdir / 'whole.db').resolve()}") == N
    again = monitor.ensure_traces(traces_uri, N, progress=False)
    assert (again.in_window_before, again.written) == (N, 0)


def test_agreement_compares_values_of_the_same_trace_and_scorer() -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "trace_id": ["t1", "t2", "t3"],
            "relevance/value": [0.5, 0.25, float("nan")],
            "pii/value": [False, True, None],
        }
    )
    expected = {("t1", "relevance"): 0.5, ("t2", "relevance"): 0.75, ("t1", "pii"): False, ("t2", "pii"): 1}
    # t2/pii: True vs 1 differ in kind; NaN / None / missing values are not compared.
    assert monitor.agreement(df, expected, ["relevance", "pii"]) == (4, 2)


def test_serve_runs_the_stages_through_an_mlflow_server(tmp_path: Path) -> None:
    summary = monitor.run_benchmark(
        n=20, baseline_n=0, workdir=tmp_path, serve=True, whole=False, progress=False, ceiling_rows=30
    )
    assert summary["tracking_uri"].startswith("http://127.0.0.1:")
    assert summary["backend_store"] == f"sqlite:///{(tmp_path / 'run.db').resolve()}"
    assert summary["write_back_written"] == 20 * 6 and summary["write_back_per_s"] > 0
    assert summary["ceiling"]["rows"] == 30 and summary["ceiling"]["per_s"] > 0  # measured beside it
    assert [s["stage"] for s in summary["stages"]] == list(monitor.STAGES)
    assert summary["scores_computed"] == 20 * 6  # the six code scorers of the bench config
    assert summary["whole_monitor"] is None and summary["baseline"] is None
    port = int(summary["tracking_uri"].rsplit(":", 1)[1])
    with pytest.raises(OSError):  # stopped afterwards
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_stage_process_reports_its_own_peak_rss_not_its_parents() -> None:
    ballast = b"x" * (400 * 1024 * 1024)  # this process's peak grows by 400 MiB before it starts the child
    code = "from benchmarks.stage import peak_rss_kib; print(peak_rss_kib())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=monitor.ROOT)
    assert len(ballast) and 0 < int(out.stdout) < 200 * 1024


def test_a_mapped_stage_adds_up_its_tasks() -> None:
    task = {"rss_before_kib": 100 * 1024, "imports_seconds": 1.0, "process_seconds": 4.0}
    tasks = [
        {**task, "seconds": 1.5, "peak_rss_kib": 300 * 1024, "result": {"scores": 10, "not_scored": 1}},
        {**task, "seconds": 0.5, "peak_rss_kib": 200 * 1024, "result": {"scores": 5, "not_scored": 0}},
    ]
    figure = monitor.stage_figure("score", 40, tasks)
    assert (figure.tasks, figure.seconds, figure.traces_per_s) == (2, 2.0, 20.0)
    assert (figure.peak_rss_before_mb, figure.peak_rss_after_mb) == (100, 300)  # the largest task
    assert figure.result["scores"] == 15 and figure.result["not_scored"] == 1
    assert figure.process_seconds == 8.0


def test_the_score_stage_runs_one_task_per_shard() -> None:
    score = next(c for c in monitor.STAGE_CALLS if c.name == "score")
    assert score.tasks(None, "app", {"sample": [{"shards": [0, 3]}]}) == [{"shard": 0}, {"shard": 3}]


@pytest.mark.parametrize(
    "argv",
    [
        ["--n", "0"],
        ["--baseline-n", "-1"],
        ["--sample-rate", "0"],
        ["--sample-rate", "1.5"],
        ["--serve", "--tracking-uri", "http://127.0.0.1:5000"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        monitor.parse_args(argv)
    assert err.value.code == 2


def test_defaults_match_the_brief() -> None:
    args = monitor.parse_args([])
    assert (args.n, args.baseline_n, args.sample_rate, args.tracking_uri) == (20_000, 500, 1.0, None)
    assert (args.serve, args.whole) == (False, True)


@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
@pytest.mark.parametrize("serve", [False, True], ids=["direct", "served"])
def test_postgres_runs_the_stages_on_a_copy_in_postgresql(tmp_path: Path, serve: bool) -> None:
    summary = monitor.run_benchmark(
        n=20, baseline_n=0, workdir=tmp_path, serve=serve, postgres=True, whole=False, progress=False, ceiling_rows=30
    )
    [copy] = summary["store_copies"]
    assert copy["database"] == "run" and copy["rows"] > 20 * 3  # trace infos, spans, tags, ...
    on_postgres = summary["backend_store"] if serve else summary["tracking_uri"]
    assert on_postgres.startswith("postgresql+psycopg2://postgres@127.0.0.1:") and on_postgres.endswith("/run")
    assert summary["tracking_uri"].startswith("http://" if serve else "postgresql")
    assert [s["stage"] for s in summary["stages"]] == list(monitor.STAGES)
    assert summary["scores_computed"] == summary["write_back_written"] == 20 * 6
    assert (summary["ceiling"] is not None) == serve  # a bare client loop only makes sense against a server
    # The SQLite store it was copied from stays free of scores: every run starts from the same traces.
    assert _scorer_assessments(f"sqlite:///{(tmp_path / 'traces.db').resolve()}") == 0
