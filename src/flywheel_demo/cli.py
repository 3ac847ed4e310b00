"""The ``flywheel-demo`` command line: the embedded default (``make demo`` / ``make down``).

flywheel-demo run [--days N --traces-per-day N]      start the services, simulate, backfill, run the loop
flywheel-demo up | down | status                     start / stop / list the local MLflow and Airflow
flywheel-demo simulate [--days N --traces-per-day N --tracking-uri URI --experiment NAME --ground-truth PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genai_flywheel.cli import parse_time, run_command


def cmd_stack(args: argparse.Namespace) -> int:
    """run / up / down / status of the local stack (see :mod:`flywheel_demo.run`)."""
    from flywheel_demo import run

    return run.main(args.command, days=args.days, traces_per_day=args.traces_per_day)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write simulated production traffic of the demo app, with its planted incidents, to MLflow."""
    from flywheel_demo.simulate import simulate

    result = simulate(
        args.tracking_uri,
        args.experiment,
        days=args.days,
        traces_per_day=args.traces_per_day,
        end=args.end,
        seed=args.seed,
        ground_truth_path=Path(args.ground_truth) if args.ground_truth else None,
        progress=not args.quiet,
    )
    print(
        f"wrote {result.n_traces} traces and {result.n_feedback} feedback assessments to "
        f"{args.experiment} ({result.start.isoformat()} .. {result.end.isoformat()})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``flywheel-demo``."""
    p = argparse.ArgumentParser(
        prog="flywheel-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    helps = {
        "run": "start MLflow + Airflow locally, simulate traffic, backfill the monitor, run the loop",
        "up": "start the local MLflow server and Airflow components only",
        "down": "stop everything `run` or `up` started",
        "status": "list the running services and their process ids",
    }
    for action, text in helps.items():
        cmd = sub.add_parser(action, help=text)
        if action == "run":
            cmd.add_argument("--days", type=int, default=3)
            cmd.add_argument("--traces-per-day", type=int, default=400)
        else:
            cmd.set_defaults(days=3, traces_per_day=400)
        cmd.set_defaults(func=cmd_stack)

    sim = sub.add_parser("simulate", help="write simulated production traffic of the demo app to MLflow")
    sim.add_argument("--tracking-uri", default="http://127.0.0.1:5500")
    sim.add_argument("--experiment", default="support-assistant-prod")
    sim.add_argument("--days", type=int, default=3)
    sim.add_argument("--traces-per-day", type=int, default=400)
    sim.add_argument("--end", type=parse_time, default=None, help="end of the traffic (default: now)")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--ground-truth", help="write the planted incidents to this JSON file")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``flywheel-demo``; returns the process exit code."""
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
