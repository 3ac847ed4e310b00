"""Benchmark: does the monitor alert on each planted incident in its first interval, and never on clean days?

The measurement of issue 9 ("Find the broken slice within one interval"). For each seed:

1. Fill a fresh SQLite MLflow store with ``--days`` days x ``--per-day`` traces of the demo simulator's
   traffic (the bulk loader, benchmarks/bulkload.py), with its planted incidents (Smart Sync wrong answers
   over the last 24 h, an error spike and a chat latency regression before it) or, with ``--clean``,
   the same traffic without them (``Profile(incidents=False)``).
2. Run the whole monitor (``pipeline.run_monitor_interval``, what ``flywheel monitor`` runs) over every
   interval of the repository's schedule in that period, in order, in this process, with the
   repository's flywheel.yaml pointed at the store and a fresh data root (code scorers only: no LLM judge).
3. Match the alert events against the simulator's ground truth (``flywheel_demo.incidents``): per planted
   incident, the first interval in which a rule fired, the rules that fired in it (a per-segment alert as
   ``rule[segment]``) and how many intervals late that was (0 = the first interval overlapping the
   incident); and every rule firing in an interval that overlaps no incident (a false alert), app-level
   and per-segment apart.

Run ``.venv/bin/python benchmarks/alerting_week.py --help``; benchmarks/README.md describes the output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run as a script from a checkout without an installed package
    sys.path.insert(1, str(ROOT / "src"))
if str(ROOT) not in sys.path:  # benchmarks.* when run as a script
    sys.path.insert(1, str(ROOT))

from benchmarks.bulkload import RecordedApps, bulkload, demo_schedule, demo_simulate  # noqa: E402
from benchmarks.monitor import EXPERIMENT, write_config  # noqa: E402
from flywheel_demo.incidents import detections, overlaps, parse_incidents  # noqa: E402
from genai_flywheel.config import DATA_ROOT_ENV  # noqa: E402
from genai_flywheel.environ import scoped_environ  # noqa: E402

log = logging.getLogger(__name__)

# A fixed period (not "now"), so the same arguments simulate the same traffic.
WEEK_END = datetime(2026, 11, 20, tzinfo=UTC)
# Seeds no test simulates with (the tests use 1, 5, 7, 8, 9, 11 and 23).
DEFAULT_SEEDS = (31, 32, 33)

Interval = tuple[datetime, datetime]


def schedule_intervals(schedule: str, start: datetime, end: datetime) -> list[Interval]:
    """The intervals of the cron ``schedule`` that lie wholly in ``[start, end)``, in order."""
    from croniter import croniter

    ticks = croniter(schedule, start - timedelta(microseconds=1))
    out: list[Interval] = []
    lo = ticks.get_next(datetime)
    while True:
        hi = ticks.get_next(datetime)
        if hi > end:
            return out
        out.append((lo, hi))
        lo = hi


def planted_truth(seed: int, *, days: int, per_day: int, end: datetime, incidents: bool) -> dict[str, Any]:
    """The simulator's ground truth of the traffic :func:`bulkload` writes for these arguments."""
    profile = replace(demo_schedule.PROFILE, incidents=incidents)
    start = end - timedelta(days=days)
    plans, windows = demo_schedule.plan_traffic(
        experiment=EXPERIMENT, start=start, end=end, n_traces=days * per_day, seed=seed, profile=profile
    )
    apps = RecordedApps()
    outcomes = [demo_simulate.run_plan(p, apps, profile) for p in plans]
    return demo_simulate.ground_truth(
        outcomes,
        windows,
        experiment=EXPERIMENT,
        seed=seed,
        days=days,
        traces_per_day=per_day,
        start=start,
        end=end,
        profile=profile,
    )


def alert_label(event: dict[str, Any]) -> str:
    """An alert event's rule, with the segment a per-segment rule's event names:
    ``rule[dimension=segment "label"]`` (the label, cut to 40 characters, when it says more than the key)."""
    segment = event.get("segment")
    if not segment:
        return str(event["rule"])
    name = f"{event['dimension']}={segment}" if event.get("dimension") else str(segment)
    label = event.get("label")
    if label and label != segment:
        name += f' "{label[:40]}"'
    return f"{event['rule']}[{name}]"


def _alert(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "interval_start": event["interval_start"].isoformat(),
        "rule": event["rule"],
        "dimension": event.get("dimension"),
        "segment": event.get("segment"),
        "label": event.get("label"),
        "metric": event["metric"],
        "value": event["value"],
        "ci_low": event["ci_low"],
        "ci_high": event["ci_high"],
        "n": event["n"],
        "op": event["op"],
        "threshold": event["threshold"],
    }


def match_alerts(
    truth: dict[str, Any], intervals: Sequence[Interval], events: Sequence[dict[str, Any]], app: str
) -> dict[str, Any]:
    """The alert ``events`` of the monitor run over ``intervals`` against the planted incidents of ``truth``.

    ``incidents``: per planted incident its window, the first interval overlapping it, the first interval
    in which a rule fired (``first_alert``), the rules that fired then, and ``late`` (intervals between the
    two; None when no rule fired during the incident). ``false_alerts``: every firing in an interval that
    overlaps no incident, oldest first. Each incident also lists every rule's evaluation in its first
    interval (``first_interval_evaluations``: state, estimate, CI, n). Built on
    :func:`flywheel_demo.incidents.detections`.
    """
    incidents = parse_incidents(truth, app)
    firing = tuple({**e, "rule": alert_label(e)} for e in events if e["evaluation"] == "firing")
    position = {interval: i for i, interval in enumerate(intervals)}
    found = []
    for d in detections(incidents, firing):
        inc = d.incident
        first = next((iv for iv in intervals if overlaps(*iv, inc.start, inc.end)), None)
        row: dict[str, Any] = {
            "incident": inc.name,
            "kind": inc.kind,
            "start": inc.start.isoformat(),
            "end": inc.end.isoformat(),
            "first_interval": first[0].isoformat() if first else None,
            "first_alert": None,
            "late": None,
            "rules": [],
            "rules_during_incident": list(d.rules),
            # Why it fired or not: every rule's evaluation in the incident's first interval.
            "first_interval_evaluations": [
                {**_alert(e), "rule": alert_label(e), "evaluation": e["evaluation"]}
                for e in events
                if first is not None and (e["interval_start"], e["interval_end"]) == first
            ],
        }
        if d.first_firing is not None:
            row["first_alert"] = d.first_firing[0].isoformat()
            row["rules"] = sorted(
                {e["rule"] for e in firing if (e["interval_start"], e["interval_end"]) == d.first_firing}
            )
            if first is not None and d.first_firing in position:
                row["late"] = position[d.first_firing] - position[first]
        found.append(row)
    outside = [
        e
        for e in events
        if e["evaluation"] == "firing"
        and not any(overlaps(e["interval_start"], e["interval_end"], i.start, i.end) for i in incidents)
    ]
    outside.sort(key=lambda e: (e["interval_start"], alert_label(e)))
    return {
        "incidents": found,
        "false_alerts": [_alert(e) for e in outside],
        "false_alert_counts": {
            "app": sum(1 for e in outside if not e.get("segment")),
            "segment": sum(1 for e in outside if e.get("segment")),
            "by_rule": dict(sorted(Counter(str(e["rule"]) for e in outside).items())),
        },
    }


def run_week(
    seed: int,
    *,
    days: int,
    per_day: int,
    incidents: bool,
    workdir: Path,
    end: datetime = WEEK_END,
) -> dict[str, Any]:
    """Simulate, monitor every interval and match the alerts, for one seed; the figures as JSON-ready data."""
    from genai_flywheel.pipeline import run_monitor_interval
    from genai_flywheel.report.data import load_events

    base = workdir / f"seed-{seed}-{'incidents' if incidents else 'clean'}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    uri = f"sqlite:///{(base / 'traces.db').resolve()}"
    t0 = time.perf_counter()
    loaded = bulkload(
        uri,
        EXPERIMENT,
        days=days,
        traces_per_day=per_day,
        end=end,
        seed=seed,
        artifact_location=base / "artifacts",
        incidents=incidents,
    )
    truth = planted_truth(seed, days=days, per_day=per_day, end=end, incidents=incidents)
    load_seconds = time.perf_counter() - t0
    data_root = base / "data"
    config = write_config(base / "flywheel.yaml", uri, data_root, sample_rate=None, schedule=None)
    app = config.applications[0]
    intervals = schedule_intervals(app.schedule, end - timedelta(days=days), end)
    t0 = time.perf_counter()
    with scoped_environ({DATA_ROOT_ENV: str(data_root)}):  # the config's data root, whatever the env says
        for k, (lo, hi) in enumerate(intervals, 1):
            t1 = time.perf_counter()
            run_monitor_interval(app.name, lo, hi, config=config)
            log.info("seed %d: interval %d/%d (%s) in %.1f s", seed, k, len(intervals), lo, time.perf_counter() - t1)
    monitor_seconds = time.perf_counter() - t0
    events = load_events(data_root, app.name)
    return {
        "seed": seed,
        "incidents_planted": incidents,
        "days": days,
        "per_day": per_day,
        "n_traces": loaded.n_traces,
        "n_intervals": len(intervals),
        "schedule": app.schedule,
        "load_seconds": round(load_seconds, 2),
        "monitor_seconds": round(monitor_seconds, 2),
        "seconds_per_interval": round(monitor_seconds / max(1, len(intervals)), 2),
        **match_alerts(truth, intervals, events, app.name),
    }


def format_report(weeks: Sequence[dict[str, Any]]) -> str:
    """The printed tables: detection per planted incident, then false alerts per week."""
    lines = []
    rows = [(w["seed"], d) for w in weeks for d in w["incidents"]]
    if rows:
        lines += [
            "planted incident              seed  first interval     first alert        late  rules that fired",
            "-" * 110,
        ]
        for seed, d in rows:
            late = "missed" if d["first_alert"] is None else str(d["late"])
            first_alert = d["first_alert"][:16] if d["first_alert"] else "-"
            first = (d["first_interval"] or "-")[:16]
            rules = ", ".join(d["rules"]) or "-"
            lines.append(f"{d['incident']:<29} {seed:>4}  {first:<18} {first_alert:<18} {late:>6}  {rules}")
        lines.append("")
    lines += [
        "week                 intervals  false alerts: app-level  per-segment  by rule",
        "-" * 110,
    ]
    for w in weeks:
        counts = w["false_alert_counts"]
        label = f"seed {w['seed']} ({'incidents' if w['incidents_planted'] else 'clean'})"
        by_rule = ", ".join(f"{rule} x{n}" for rule, n in counts["by_rule"].items()) or "-"
        lines.append(f"{label:<20} {w['n_intervals']:>9}  {counts['app']:>23}  {counts['segment']:>11}  {by_rule}")
    lines.append("")
    lines.append(
        "timings: "
        + "; ".join(
            f"seed {w['seed']}: load {w['load_seconds']:.0f} s, monitor {w['monitor_seconds']:.0f} s "
            f"({w['seconds_per_interval']:.1f} s/interval)"
            for w in weeks
        )
    )
    return "\n".join(lines)


def summarize(weeks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Headline figures over the weeks: incidents alerted in their first interval, false alerts by kind."""
    detections_ = [d for w in weeks for d in w["incidents"]]
    return {
        "incidents": len(detections_),
        "alerted_in_first_interval": sum(1 for d in detections_ if d["late"] == 0),
        "late": sum(1 for d in detections_ if d["late"] is not None and d["late"] > 0),
        "missed": sum(1 for d in detections_ if d["first_alert"] is None),
        "false_alerts_app": sum(w["false_alert_counts"]["app"] for w in weeks),
        "false_alerts_segment": sum(w["false_alert_counts"]["segment"] for w in weeks),
    }


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--seeds {text!r} is not a comma-separated list of integers") from exc
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds is empty; give e.g. 31,32,33")
    return seeds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(
        description="Alerts against planted incidents (or clean weeks) over every monitor interval of simulated weeks."
    )
    p.add_argument(
        "--seeds", type=_seeds, default=DEFAULT_SEEDS, help="comma-separated simulator seeds (default 31,32,33)"
    )
    p.add_argument("--days", type=int, default=7, help="simulated days per seed (default 7)")
    p.add_argument("--per-day", type=int, default=800, help="traces per day (default 800)")
    p.add_argument(
        "--clean", action="store_true", help="simulate the same traffic without incidents: count false alerts"
    )
    p.add_argument("--workdir", type=Path, default=None, help="working directory (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the working directory (stores, data roots)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
    args = p.parse_args(argv)
    if args.days < 1:
        p.error(f"--days must be >= 1, got {args.days}")
    if args.per_day < 1:
        p.error(f"--per-day must be >= 1, got {args.per_day}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every seed and print the tables; exits 0 whatever they show (a measurement)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="flywheel-week-"))
    weeks = []
    try:
        for seed in args.seeds:
            t0 = time.perf_counter()
            weeks.append(
                run_week(seed, days=args.days, per_day=args.per_day, incidents=not args.clean, workdir=workdir)
            )
            log.info("seed %d done in %.0f s", seed, time.perf_counter() - t0)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = {"mode": "clean" if args.clean else "incidents", "summary": summarize(weeks), "weeks": weeks}
    print(format_report(weeks))
    print("summary: " + json.dumps(summary["summary"]))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
