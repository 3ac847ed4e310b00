"""Benchmark: assessments/s written through an ``mlflow server``, by thread count.

Against a tracking server MLflow has no batch call for assessments: the write-back is one
``log_assessment`` HTTP request per score, on a thread pool (``genai_flywheel.traces.writeback``). This
measures how that rate grows with the threads, to size the pool (``writeback.HTTP_WORKERS``):

1. Start an ``mlflow server`` (``flywheel_demo.services``, the demo's 2 workers) on a fresh SQLite
   database and, when PostgreSQL's server binaries are installed, on a throw-away PostgreSQL cluster
   (``flywheel_demo.services.throwaway_postgres``).
2. Write ``--traces`` simulated traces over HTTP.
3. At each thread count, write ``--rows`` assessments (spread over the traces):
   - ``bare, pool 10``: a plain client loop of ``mlflow.log_feedback`` calls on a thread pool, with
     MLflow's default HTTP connection pool (10 connections);
   - ``bare, pool = threads``: the same with the pool sized to the thread count (``MLFLOW_HTTP_POOL_MAXSIZE``);
   - ``write_back``: the project's ``write_back`` with that many workers (it sizes the pool itself).
   Each figure is rows / wall seconds; ``full`` counts urllib3's "Connection pool is full, discarding
   connection" warnings during that measurement.

Run ``.venv/bin/python benchmarks/writeback_server.py`` (``--help`` for the options). Benchmark process
and server share the machine: on 2 cores the figures are the whole system's ceiling, not the server's.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "src", ROOT):  # the package from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(1, str(_path))

from flywheel_demo.services import Stack, free_port, start_mlflow, stop_all, throwaway_postgres  # noqa: E402

log = logging.getLogger(__name__)

EXPERIMENT = "flywheel-writeback-bench"
END = datetime(2026, 11, 20, tzinfo=UTC)
THREADS = (1, 2, 4, 8, 16, 32)
DEFAULT_POOL = 10  # MLFLOW_HTTP_POOL_MAXSIZE's default in mlflow/environment_variables.py (3.17)
SERVER_WORKERS = 2  # what flywheel_demo.services starts for the demo
POOL_FULL = "Connection pool is full"


class PoolFullCounter(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection" warnings while attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if POOL_FULL in record.getMessage():
            self.count += 1


@contextlib.contextmanager
def pool_full_warnings() -> Iterator[PoolFullCounter]:
    counter = PoolFullCounter()
    logger = logging.getLogger("urllib3.connectionpool")
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)


@contextlib.contextmanager
def mlflow_server(backend: str, workdir: Path) -> Iterator[str]:
    """An ``mlflow server`` on ``backend`` ("sqlite" or "postgresql"); yields its URI, stops it after."""
    with contextlib.ExitStack() as stack_exit:
        backend_uri = None
        if backend == "postgresql":
            backend_uri = stack_exit.enter_context(throwaway_postgres(("mlflow",))).uri("mlflow")
        stack = Stack(project=ROOT, home=workdir / backend, mlflow_port=free_port(), mlflow_backend_uri=backend_uri)
        stack_exit.callback(stop_all, stack)
        yield start_mlflow(
            stack, workers=SERVER_WORKERS, extra_env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, timeout_s=300
        )


def trace_ids(uri: str, n: int) -> list[str]:
    """Write ``n`` simulated traces to ``uri``; their ids."""
    from flywheel_demo.simulate import simulate
    from genai_flywheel.traces.extract import iter_traces, window_filter
    from genai_flywheel.workspace import to_ms

    sim = simulate(uri, EXPERIMENT, days=1, traces_per_day=n, end=END, seed=11, progress=False)
    window = window_filter(to_ms(sim.start), to_ms(sim.end))
    return [t.info.trace_id for t in iter_traces(uri, sim.experiment_id, window, include_spans=False)]


def timed(rows: int, write: Callable[[], None]) -> tuple[float, int]:
    """(rows/s, pool-full warnings) of one call of ``write``."""
    with pool_full_warnings() as counter:
        t0 = time.perf_counter()
        write()
        seconds = time.perf_counter() - t0
        # A response that was not read to its end gives its connection back when it is collected: collect
        # now, so that a discard is counted for the measurement (and pool) it belongs to, not the next one.
        gc.collect()
    return rows / seconds, counter.count


def bare_loop(ids: list[str], rows: int, threads: int, name: str) -> None:
    """``rows`` ``mlflow.log_feedback`` calls on ``threads`` threads (the tracking URI is set globally)."""
    import mlflow
    from mlflow.entities import AssessmentSource

    source = AssessmentSource(source_type="CODE", source_id="writeback-bench")

    def one(i: int) -> None:
        mlflow.log_feedback(trace_id=ids[i % len(ids)], name=name, value=True, source=source)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(rows)))


def write_back_rows(uri: str, ids: list[str], rows: int, threads: int, scorer: str) -> None:
    """The project's ``write_back`` of ``rows`` new scores with ``threads`` workers."""
    import pyarrow as pa

    from genai_flywheel.scoring.runner import assessment_id_for
    from genai_flywheel.traces.schema import SCORE_SCHEMA
    from genai_flywheel.traces.writeback import write_back

    records = [
        {
            "trace_id": ids[i % len(ids)],
            "app": "bench",
            "timestamp_ms": 0,
            "scorer": scorer,
            "scorer_version": "1",
            "source_type": "CODE",
            "value": "true",
            "numeric": 1.0,
            "passed": True,
            "stratum": "",
            "weight": 1.0,
            "assessment_id": assessment_id_for(ids[i % len(ids)], scorer, str(i)),
        }
        for i in range(rows)
    ]
    result = write_back(
        uri, pa.Table.from_pylist(records, schema=SCORE_SCHEMA), existing_ids=set(), run_context={}, workers=threads
    )
    if result.written != rows:
        raise RuntimeError(f"write_back wrote {result.written} of {rows} assessments: {result.as_dict()}")


def measure(uri: str, ids: list[str], rows: int, threads: tuple[int, ...]) -> list[dict[str, Any]]:
    """One row of figures per thread count (see the module docstring)."""
    import mlflow

    from genai_flywheel.mlflow_compat import size_http_pool

    mlflow.set_tracking_uri(uri)
    bare_loop(ids, min(rows, 50), 2, "warm-up")  # the server's and client's first-request costs
    table = []
    for k in threads:
        size_http_pool(DEFAULT_POOL, grow_only=False)
        bare, bare_full = timed(rows, lambda k=k: bare_loop(ids, rows, k, f"bare-{k}-default"))
        size_http_pool(k, grow_only=False)
        sized, sized_full = timed(rows, lambda k=k: bare_loop(ids, rows, k, f"bare-{k}-sized"))
        size_http_pool(DEFAULT_POOL, grow_only=False)  # write_back grows it to its workers itself
        wb, wb_full = timed(rows, lambda k=k: write_back_rows(uri, ids, rows, k, f"write-back-{k}"))
        row = {
            "threads": k,
            "bare_pool10": bare,
            "bare_pool10_full": bare_full,
            "bare_sized": sized,
            "bare_sized_full": sized_full,
            "write_back": wb,
            "write_back_full": wb_full,
        }
        log.info("%s", row)
        table.append(row)
    return table


def run_benchmark(
    *, backends: tuple[str, ...], traces: int, rows: int, threads: tuple[int, ...], workdir: Path
) -> dict[str, list[dict[str, Any]]]:
    """Every backend's table; a backend whose server cannot be had (no PostgreSQL binaries) is skipped."""
    results: dict[str, list[dict[str, Any]]] = {}
    for backend in backends:
        try:
            with mlflow_server(backend, workdir) as uri:
                ids = trace_ids(uri, traces)
                results[backend] = measure(uri, ids, rows, threads)
        except FileNotFoundError as err:
            log.warning("%s skipped: %s", backend, err)
    return results


def format_table(backend: str, table: list[dict[str, Any]]) -> str:
    lines = [
        f"mlflow server ({SERVER_WORKERS} workers) on {backend}: assessments/s (pool-full warnings)",
        f"{'threads':>7} | {'bare, pool 10':>18} | {'bare, pool = threads':>20} | {'write_back':>16}",
    ]
    for r in table:
        lines.append(
            f"{r['threads']:>7} | {r['bare_pool10']:>10.0f} ({r['bare_pool10_full']:>5}) | "
            f"{r['bare_sized']:>12.0f} ({r['bare_sized_full']:>5}) | "
            f"{r['write_back']:>8.0f} ({r['write_back_full']:>5})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=200, help="simulated traces the assessments go on")
    parser.add_argument("--rows", type=int, default=600, help="assessments written per measurement")
    parser.add_argument("--threads", default=",".join(map(str, THREADS)), help="comma-separated thread counts")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"), help="default: both")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("mlflow", "alembic", "genai_flywheel.traces.writeback"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    threads = tuple(int(t) for t in args.threads.split(","))
    with tempfile.TemporaryDirectory(prefix="flywheel-wb-bench-") as tmp:
        results = run_benchmark(
            backends=tuple(args.backend or ("sqlite", "postgresql")),
            traces=args.traces,
            rows=args.rows,
            threads=threads,
            workdir=Path(tmp),
        )
    for backend, table in results.items():
        print(format_table(backend, table) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
