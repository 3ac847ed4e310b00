"""``make demo``: the whole loop on the embedded default, through the real Airflow scheduler.

1. start an ``mlflow server`` (SQLite) and Airflow (api-server, scheduler, dag-processor, triggerer;
   SQLite, LocalExecutor);
2. simulate a few days of production traffic of the demo app, with planted incidents;
3. backfill the monitor DAG over every interval of those days (``airflow backfill create``) and wait;
4. run the improvement loop: curation (which triggers the development evaluation through its Asset)
   and the fine-tuning export; curation feeds the review queue, a SIMULATED reviewer (it knows the planted
   incidents) answers part of it through MLflow's API, and the review DAG collects the answers and
   calibrates the scorers against them;
5. print a summary against the planted incidents and write the static HTML report.

The services keep running afterwards (``make down`` stops them).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flywheel_demo.services import (
    ServiceError,
    Stack,
    airflow,
    ensure_airflow,
    init_airflow,
    start_airflow,
    start_mlflow,
    stop_all,
)
from genai_flywheel.config import Application, load_config

PROJECT = Path(os.environ.get("FLYWHEEL_PROJECT") or Path.cwd()).resolve()
TERMINAL = {"success", "failed"}
UNCHANGED_CANDIDATE = "flywheel_demo.app:predict_production"
# The curation rule that catches the planted Smart Sync incident: the worst-performing query pattern.
INCIDENT_RULE = "bad_query_clusters"


def say(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def stack_from_env() -> Stack:
    return Stack(
        project=PROJECT,
        home=Path(os.environ.get("FLYWHEEL_HOME") or PROJECT / ".demo"),
        mlflow_port=int(os.environ.get("FLYWHEEL_MLFLOW_PORT", "5500")),
        airflow_port=int(os.environ.get("FLYWHEEL_AIRFLOW_PORT", "8080")),
        parallelism=int(os.environ.get("AIRFLOW__CORE__PARALLELISM", "4")),
    )


def interval_bounds(app: Application, days: int, now: datetime | None = None) -> tuple[datetime, datetime, timedelta]:
    """The last ``days`` days of whole schedule intervals before ``now``: (start, end, interval length)."""
    from croniter import croniter

    now = now or datetime.now(UTC)
    it = croniter(app.schedule, now)
    end = it.get_prev(datetime)
    step = end - it.get_prev(datetime)
    start = end - timedelta(days=days)
    return start, end, step


def up(stack: Stack) -> None:
    cfg = load_config(os.environ.get("FLYWHEEL_CONFIG") or PROJECT / "flywheel.yaml")
    say(f"starting mlflow server on {stack.mlflow_uri} (logs: {stack.logs})")
    start_mlflow(stack)
    say("initialising Airflow (metadata DB, login, judge pools)")
    init_airflow(stack, {a.judge.pool: a.judge.pool_slots for a in cfg.applications})
    say(f"starting Airflow api-server, scheduler, dag-processor, triggerer on {stack.airflow_url}")
    start_airflow(stack)


def wait_for_dag(stack: Stack, dag_id: str, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = airflow(stack, "dags", "list", "-o", "json", check=False).stdout
        if dag_id in out:
            return
        time.sleep(3)
    errors = airflow(stack, "dags", "list-import-errors", check=False).stdout
    raise ServiceError(f"DAG {dag_id} was not parsed within {timeout_s:.0f} s; import errors:\n{errors}")


def dag_runs(stack: Stack, dag_id: str) -> list[dict[str, Any]]:
    proc = airflow(stack, "dags", "list-runs", dag_id, "-o", "json", check=False)
    # The JSON list is the last line that is one; Airflow may log lines of its own before it.
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("[{") or line.strip() == "[]":
            return json.loads(line)
    return []


def wait_runs(stack: Stack, dag_id: str, expected: int, label: str, timeout_s: float = 1500) -> list[dict]:
    """Wait until ``expected`` runs of ``dag_id`` have finished; print progress as it changes."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        ensure_airflow(stack)
        # One run per logical date: a run the scheduler made on unpause and a backfill run of the same
        # interval are the same interval.
        runs = list({r["logical_date"]: r for r in reversed(dag_runs(stack, dag_id))}.values())
        done = [r for r in runs if r.get("state") in TERMINAL]
        ok = sum(1 for r in done if r["state"] == "success")
        line = f"{label}: {len(done)}/{expected} runs finished ({ok} succeeded, {len(done) - ok} failed)"
        if line != last:
            say(line)
            last = line
        if len(done) >= expected:
            return runs
        time.sleep(5)
    raise ServiceError(f"{label}: runs did not finish within {timeout_s:.0f} s ({last}); see {stack.logs}")


def run(stack: Stack, days: int, traces_per_day: int) -> int:
    """The whole demo; returns the process exit code."""
    from flywheel_demo.simulate import simulate

    t0 = time.monotonic()
    cfg = load_config(os.environ.get("FLYWHEEL_CONFIG") or PROJECT / "flywheel.yaml")
    app = cfg.applications[0]
    up(stack)
    start, end, step = interval_bounds(app, days)
    truth_path = cfg.data_path() / "ground_truth.json"
    say(f"simulating {days} days of traffic ({traces_per_day}/day) into {app.mlflow.experiment}")
    sim = simulate(
        stack.mlflow_uri,
        app.mlflow.experiment,
        days=days,
        traces_per_day=traces_per_day,
        end=end,
        ground_truth_path=truth_path,
        progress=True,
    )
    say(f"wrote {sim.n_traces} traces, {sim.n_feedback} user feedback")

    dag_id = f"flywheel_monitor_{app.name}"
    wait_for_dag(stack, dag_id)
    airflow(stack, "dags", "unpause", dag_id)
    n_intervals = int((end - start) / step)
    say(f"backfilling {dag_id}: {n_intervals} intervals, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    airflow(
        stack,
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        start.isoformat(),
        "--to-date",
        (end - step).isoformat(),
        "--max-active-runs",
        "2",
        "--reprocess-behavior",
        "failed",
    )
    runs = wait_runs(stack, dag_id, n_intervals, "monitor backfill")
    failed = [r for r in runs if r["state"] == "failed"]

    loop = run_loop(stack, app, data_root=cfg.data_path(), truth=sim.ground_truth)
    summary = summarize(stack, cfg, sim.ground_truth, n_intervals, failed, loop)
    say(f"finished in {time.monotonic() - t0:.0f} s")
    print(summary)
    return 1 if failed else 0


def trigger(stack: Stack, dag_id: str, label: str, conf: dict[str, Any] | None = None) -> str:
    """Trigger a run of ``dag_id`` under a run id of our own, so we wait for that run and no other."""
    run_id = f"demo__{label}__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    args = ["dags", "trigger", dag_id, "--run-id", run_id]
    if conf:
        args += ["--conf", json.dumps(conf)]
    airflow(stack, *args)
    return run_id


def wait_for(
    stack: Stack, dag_id: str, label: str, pick: Any, complete: Any = bool, timeout_s: float = 1200
) -> list[dict[str, Any]]:
    """Wait until the runs of ``dag_id`` that ``pick(run)`` selects are ``complete(runs)`` (default: at
    least one) and have all finished."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        ensure_airflow(stack)
        runs = [r for r in dag_runs(stack, dag_id) if pick(r)]
        done = [r for r in runs if r.get("state") in TERMINAL]
        line = f"{label}: {', '.join(r['state'] for r in runs) or 'waiting for the run to be created'}"
        if line != last:
            say(line)
            last = line
        if complete(runs) and len(done) == len(runs):
            return runs
        time.sleep(5)
    raise ServiceError(f"{label}: not finished within {timeout_s:.0f} s ({last}); see {stack.logs}")


def run_loop(
    stack: Stack, app: Application, *, data_root: Path | None = None, truth: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The improvement loop, through the scheduler: unpaused, the curation and export DAGs run their
    latest interval; the curated dataset's Asset event triggers the evaluation of the configured (fixed)
    candidate, and an on-demand evaluation of the unchanged production version runs beside it."""
    curate, evaluate, export = (f"flywheel_{s}_{app.name}" for s in ("curate", "evaluate", "export"))
    for dag_id in (curate, evaluate, export):
        wait_for_dag(stack, dag_id)
    for dag_id in (evaluate, export, curate):
        airflow(stack, "dags", "unpause", dag_id)
    results: dict[str, Any] = {}
    say("curating evaluation datasets from the production traces (the curation DAG's latest interval)")
    results["curate"] = wait_for(stack, curate, "curation", lambda r: r["run_id"].startswith("scheduled__"))
    say(
        f"the dataset's Asset event triggers the evaluation of {app.evaluation.candidate}; the unchanged "
        f"production version ({UNCHANGED_CANDIDATE}) is evaluated beside it, on demand"
    )
    run_id = trigger(stack, evaluate, "unchanged", {"candidate": UNCHANGED_CANDIDATE})
    results["evaluate"] = wait_for(
        stack,
        evaluate,
        "development evaluations",
        lambda r: r["run_id"] == run_id or r["run_id"].startswith("asset_triggered__"),
        complete=lambda runs: {r["run_id"] == run_id for r in runs} == {True, False},
    )
    results["export"] = wait_for(stack, export, "fine-tuning export", lambda r: r["run_id"].startswith("scheduled__"))
    if app.review.queues and data_root is not None:
        results.update(run_review(stack, app, data_root, truth or {}))
    return results


def run_review(stack: Stack, app: Application, data_root: Path, truth: dict[str, Any]) -> dict[str, Any]:
    """The curation run fed the review queue; a simulated reviewer answers part of it, then the review DAG
    collects the answers (up to now) and calibrates the scorers against them."""
    from flywheel_demo.reviewer import REVIEWER, review_latest_curation

    say(f"a SIMULATED reviewer ({REVIEWER}, it knows the planted incidents) answers part of the review queue")
    reviewed = review_latest_curation(app, data_root, truth)
    review = f"flywheel_review_{app.name}"
    wait_for_dag(stack, review)
    airflow(stack, "dags", "unpause", review)
    run_id = trigger(stack, review, "collect", {"interval_end": datetime.now(UTC).replace(microsecond=0).isoformat()})
    runs = wait_for(stack, review, "review collection and judge calibration", lambda r: r["run_id"] == run_id)
    return {"reviewed": reviewed, "review": runs}


def _trace_urls(stack: Stack, app: Application) -> dict[str, Any]:
    """The report's links from a trace id (the judge calibration's disagreeing traces) to the MLflow UI."""
    from genai_flywheel.report.calibration import mlflow_trace_url
    from genai_flywheel.traces.extract import get_experiment_id

    experiment_id = get_experiment_id(stack.mlflow_uri, app.mlflow.experiment)
    return {app.name: mlflow_trace_url(stack.mlflow_uri, experiment_id)}


def _review_lines(data_root: Path, app: Application, loop: dict[str, Any]) -> list[str]:
    """The review queue, the simulated reviewer and each scorer's measured agreement with the reviewers."""
    from genai_flywheel.metrics.store import MetricsStore
    from genai_flywheel.review.stages import calibration_store_root

    lines = []
    for queue, outcome in loop.get("reviewed", {}).items():
        lines.append(
            f"review queue                : {queue}: the simulated reviewer answered {outcome['answered']} "
            f"({outcome['incorrect']} wrong answers, {outcome['corrections']} corrections), "
            f"{outcome['left_pending']} left for people"
        )
    rows = MetricsStore(calibration_store_root(data_root)).read(app.name).to_pylist()
    latest = [r for r in rows if r["interval_start"] == rows[-1]["interval_start"]] if rows else []
    shown = {
        r["metric"]: r
        for r in latest
        if r["metric"].endswith("_rolling") and r["metric"].count(".") == 2 and r["value"] is not None
    }
    for metric, row in shown.items():
        low, high = row["ci_low"], row["ci_high"]
        ci = f"95% CI {low:.2f}..{high:.2f}, " if low is not None and high is not None else ""
        lines.append(f"  {metric:<42} {row['value']:.2f} ({ci}n={row['n']})")
    if shown:
        lines.append(
            "  (without suffix: the weighted random calibration sample, i.e. the traffic; _flagged: the traces the "
            "curation rules sent, unweighted)"
        )
    relevance = shown.get("calibration.relevance.agreement_flagged_rolling")
    if relevance is not None and relevance["value"] < 0.8:
        lines.append(
            "  the heuristic relevance scorer finds the Smart Sync wrong answers relevant (they are on topic), the "
            "reviewers call them incorrect: its agreement with people is low on the flagged traces of this incident"
        )
    return lines


def _stats_text(stats: dict[str, Any]) -> str:
    low, high = stats.get("ci_low") or 0, stats.get("ci_high") or 0
    return (
        f"{stats.get('improvement') or 0:+.3f} (95% CI {low:+.3f}..{high:+.3f}, p={stats.get('p_value', 1):.2g}, "
        f"{stats.get('wins', 0)} wins / {stats.get('losses', 0)} losses, n={stats.get('n', 0)})"
    )


def _evaluation_lines(data_root: Path, app: str, scorer: str, incident_rule: str) -> list[str]:
    """Per development evaluation: the candidate, its improvement over production on all records and on
    the records of ``incident_rule``, and the gate's verdict."""
    lines = []
    base = data_root / "evaluations" / f"app={app}"
    for summary_file in sorted(base.glob("*/summary.json"), key=lambda p: p.stat().st_mtime):
        summary = json.loads(summary_file.read_text())
        gate_file = summary_file.with_name("gate.json")
        gate = json.loads(gate_file.read_text()) if gate_file.exists() else {}
        verdict = "passed" if gate.get("passed") else "REJECTED"
        lines.append(f"  {summary.get('candidate', '?')}: gate {verdict}")
        overall = summary.get("scorers", {}).get(scorer, {})
        lines.append(f"    {scorer}, all {summary.get('n_records', 0)} records: {_stats_text(overall)}")
        incident = summary.get("rules", {}).get(incident_rule, {}).get(scorer)
        if incident:
            lines.append(f"    {scorer}, {incident_rule} records: {_stats_text(incident)}")
    return lines


def summarize(stack: Stack, cfg: Any, truth: dict[str, Any], n_intervals: int, failed: list, loop: dict) -> str:
    """The closing summary: monitor counts, alerts against the planted incidents, the loop's results."""
    from flywheel_demo.incidents import detections, parse_incidents, report_extras
    from genai_flywheel.report import render_report
    from genai_flywheel.report.data import load_app, summary_of

    app = cfg.applications[0]
    data_root = cfg.data_path()
    data = load_app(data_root, app.name)
    s = summary_of(data)
    extras = report_extras(truth, [app.name])
    report = render_report(
        data_root,
        [app.name],
        data_root / "report.html",
        links={"MLflow UI": stack.mlflow_uri, "Airflow UI": stack.airflow_url},
        trace_urls=_trace_urls(stack, app),
        **extras,
    )
    user, password = stack.login()
    lines = [
        "",
        "=== genai-flywheel demo ===",
        f"monitor intervals processed : {n_intervals - len(failed)}/{n_intervals} (backfill through the scheduler)",
        f"traces                      : {s['traces']} ({s['error_traces']} errors, {s['quarantined']} quarantined)",
        f"traces scored               : {s['sampled']} sampled, {s['scored']} scores written back as assessments",
        f"alerts raised               : {s['alerts_raised']} {s['alerts_fired_by_rule']}",
        "planted incidents           :",
    ]
    for d in detections(parse_incidents(truth, app.name), data.events):
        found = f"detected by {', '.join(d.rules)}" if d.detected else "NOT detected"
        lines.append(f"  {d.incident.name:<28} {d.incident.start:%m-%d %H:%M}..{d.incident.end:%m-%d %H:%M}  {found}")
    for run in loop.get("curate", []):
        lines.append(f"curation run                : {run['state']}")
    lines.append(f"datasets                    : {', '.join(sorted({d['dataset'] for d in data.datasets})) or '-'}")
    scorer = app.evaluation.gates[0].scorer if app.evaluation.gates else "relevance"
    lines.append("development evaluations     : improvement over the production answers")
    lines += _evaluation_lines(data_root, app.name, scorer, INCIDENT_RULE)
    lines += _review_lines(data_root, app, loop)
    exports = sorted((data_root / "exports" / f"app={app.name}").glob("*/manifest.json"))
    if exports:
        manifest = json.loads(exports[-1].read_text())
        counts = manifest.get("counts", {})
        lines.append(f"fine-tuning export          : {json.dumps(counts, sort_keys=True)}")
    lines += [
        f"HTML report                 : file://{Path(report).resolve()}",
        f"MLflow UI                   : {stack.mlflow_uri}",
        f"Airflow UI                  : {stack.airflow_url}  (login {user} / {password}; page: GenAI Quality)",
        "stop everything             : make down",
    ]
    return "\n".join(lines)


def main(action: str, *, days: int = 3, traces_per_day: int = 400) -> int:
    """``run`` (the whole demo), ``up`` (the services only), ``down`` or ``status``; the exit code."""
    stack = stack_from_env()
    if action == "down":
        stopped = stop_all(stack)
        say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if action == "up":
        up(stack)
        user, password = stack.login()
        say(f"MLflow UI {stack.mlflow_uri} · Airflow UI {stack.airflow_url} (login {user} / {password})")
        return 0
    if action == "status":
        for pid_file in sorted(stack.pids.glob("*.pid")) if stack.pids.exists() else []:
            print(pid_file.stem, pid_file.read_text().strip())
        return 0
    try:
        return run(stack, days, traces_per_day)
    except ServiceError as err:
        print(f"demo failed: {err}", file=sys.stderr)
        return 1
