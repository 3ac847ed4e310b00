"""The ``flywheel`` command line.

flywheel config validate [--config PATH]
flywheel select --app NAME --filter '...' [--start T --end T] [--format table|json]
flywheel monitor --app NAME --start T --end T        (the monitor stages in-process, no Airflow)
flywheel report [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genai_flywheel.exceptions import FlywheelError

log = logging.getLogger("flywheel")


def parse_time(text: str) -> datetime:
    """An ISO date/time (UTC if no offset), or a relative ``-2d``/``-6h``/``now`` (an argparse ``type``)."""
    now = datetime.now(UTC)
    t = text.strip()
    if t == "now":
        return now
    if t.startswith("-") and t[-1] in "dhm" and t[1:-1].isdigit():
        unit = {"d": "days", "h": "hours", "m": "minutes"}[t[-1]]
        return now - timedelta(**{unit: int(t[1:-1])})
    try:
        value = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use ISO 8601 (2026-11-20T06:00Z), 'now' or a relative '-2d'"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_config_validate(args: argparse.Namespace) -> int:
    from genai_flywheel.config import config_path, load_config

    cfg = load_config(args.config)
    apps = ", ".join(a.name for a in cfg.applications)
    print(f"{config_path(args.config)}: valid ({len(cfg.applications)} application(s): {apps})")
    return 0


def _score_summary(assessments: list[dict[str, Any]] | None) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for a in assessments or []:
        if a.get("kind") == "feedback" and a.get("value") is not None:
            latest[a["name"]] = json.loads(a["value"])
    return latest


def run_select(
    app_name: str, filter_text: str, start: datetime, end: datetime, config: Any = None
) -> list[dict[str, Any]]:
    """The traces of ``app_name`` in [start, end) that match ``filter_text`` (pushdown + local)."""
    import pyarrow as pa

    from genai_flywheel.config import load_config
    from genai_flywheel.selection import compile_filter
    from genai_flywheel.traces.extract import extract_window
    from genai_flywheel.workspace import to_ms

    cfg = config or load_config()
    app = cfg.app(app_name)
    compiled = compile_filter(filter_text)
    table = extract_window(
        app.mlflow.tracking_uri,
        app.mlflow.experiment,
        to_ms(start),
        to_ms(end),
        app=app.name,
        filter_string=compiled.pushdown,
    )
    table = table.filter(pa.array(compiled.mask(table), type=pa.bool_()))
    rows = []
    for r in table.select(["trace_id", "timestamp_ms", "status", "query", "assessments"]).to_pylist():
        rows.append(
            {
                "trace_id": r["trace_id"],
                "time": datetime.fromtimestamp(r["timestamp_ms"] / 1000, UTC).isoformat(),
                "status": r["status"],
                "query": r["query"],
                "scores": _score_summary(r["assessments"]),
            }
        )
    return rows


def cmd_select(args: argparse.Namespace) -> int:
    rows = run_select(args.app, args.filter, args.start, args.end)
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{len(rows)} trace(s) match")
    for r in rows:
        scores = " ".join(f"{k}={v}" for k, v in sorted(r["scores"].items()))
        query = (r["query"] or "").replace("\n", " ")[:70]
        print(f"{r['trace_id']}  {r['time'][:19]}  {r['status']:<5}  {query:<70}  {scores}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from genai_flywheel.pipeline import run_monitor_interval

    out = run_monitor_interval(args.app, args.start, args.end)
    print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from genai_flywheel.config import load_config
    from genai_flywheel.report import render_report

    cfg = load_config(args.config)
    path = render_report(cfg.data_path(), [a.name for a in cfg.applications], Path(args.out))
    print(f"report written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flywheel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    cfg = sub.add_parser("config", help="configuration file commands")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    val = cfg_sub.add_parser("validate", help="validate flywheel.yaml")
    val.add_argument("--config", help="path (default $FLYWHEEL_CONFIG or ./flywheel.yaml)")
    val.set_defaults(func=cmd_config_validate)

    sel = sub.add_parser("select", help="run a trace selection filter ad hoc")
    sel.add_argument("--app", required=True)
    sel.add_argument("--filter", required=True, help="e.g. \"inputs.query CONTAINS 'sync' AND trace.status = 'OK'\"")
    sel.add_argument("--start", type=parse_time, default=parse_time("-7d"))
    sel.add_argument("--end", type=parse_time, default=parse_time("now"))
    sel.add_argument("--format", choices=["table", "json"], default="table")
    sel.set_defaults(func=cmd_select)

    mon = sub.add_parser("monitor", help="run the monitor stages of one interval in this process")
    mon.add_argument("--app", required=True)
    mon.add_argument("--start", type=parse_time, required=True)
    mon.add_argument("--end", type=parse_time, required=True)
    mon.set_defaults(func=cmd_monitor)

    rep = sub.add_parser("report", help="write the static HTML report")
    rep.add_argument("--config")
    rep.add_argument("--out", default="data/report.html")
    rep.set_defaults(func=cmd_report)
    return p


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` (whose subcommands set ``func`` and which has ``--verbose``), set up
    logging and run the command; a FlywheelError is printed and exits with 2, without a traceback."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except FlywheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``flywheel``; returns the process exit code."""
    from genai_flywheel.memory import use_process_env

    use_process_env()  # before any stage imports pyarrow (see genai_flywheel.memory)
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
