"""The segment metrics store and the GenAI Quality page at scale: 20 dimensions x 50 segments x 4 intervals a
day for 90 days (360 intervals, 10 metrics per segment: 10,000 segment rows an interval, 3.6 million in all).

``python benchmarks/segments_store.py [--days 90] [--per-day 4] [--dimensions 20] [--segments 50]
[--repeat 5] [--workdir DIR [--reuse]] [--keep] [--json FILE]`` synthesises the store (segment files and app-level
partitions, through ``MetricsStore``), then times, each the median of ``--repeat`` runs after one warm-up:

* writing one interval's segment file (``MetricsStore.write_segments``, a re-run of the latest interval);
* reading the latest interval's segments (``read_segments`` over one interval);
* one segment's 90-day history (``segment_history``: 360 files, filters pushed into the Parquet reader);
* the worst-segments computation (``worst_segments``: the latest interval, 7 days of baselines, the
  app-level values);
* the page's routes through FastAPI's TestClient: the application page, ``/api/apps/{app}/segments``, the
  history JSON and the history page over 90 days;

and prints the figures and the store's size on disk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "src", ROOT / "plugins", ROOT):  # run as a script from a checkout
    if str(path) not in sys.path:
        sys.path.insert(1, str(path))

APP = "support-assistant"
T0 = datetime(2026, 9, 1, tzinfo=UTC)
SCORERS = ("relevance", "groundedness")
SEGMENT_METRICS = (
    "volume", "share", "error_rate", "latency_p50_ms", "latency_p95_ms", "feedback.user_feedback.positive_rate",
    *(f"scorer.{s}.{stat}" for s in SCORERS for stat in ("pass_rate", "mean")),
)  # fmt: skip


def segment_table(start: datetime, end: datetime, dimensions: int, segments: int, seed: int) -> Any:
    """One interval's segment table: every (dimension, segment, metric) with a value, n and a CI."""
    import numpy as np
    import pyarrow as pa

    from genai_flywheel.metrics.segment_schema import OTHER, segments_schema

    rng = np.random.default_rng(seed)
    dims = [f"dim{d:02d}" for d in range(dimensions)]
    segs = [f"seg-{s:03d}" for s in range(segments - 1)] + [OTHER]
    keys = [(d, s) for d in dims for s in segs]
    k, m = len(keys), len(SEGMENT_METRICS)
    value = rng.uniform(0.6, 0.99, size=(k, m))
    n = rng.integers(5, 400, size=(k, m))
    half = 1.96 * np.sqrt(value * (1 - value) / n)
    examples = [[f"tr-{seed}-{i}-{j}" for j in range(5)] for i in range(k)]
    rows = k * m
    return pa.table(
        {
            "app": pa.array([APP] * rows),
            "interval_start": pa.array([start] * rows, pa.timestamp("ms", tz="UTC")),
            "interval_end": pa.array([end] * rows, pa.timestamp("ms", tz="UTC")),
            "dimension": pa.array([d for d, _ in keys for _ in range(m)]),
            "segment": pa.array([s for _, s in keys for _ in range(m)]),
            "label": pa.array([f"{d} {s}" for d, s in keys for _ in range(m)]),
            "metric": pa.array(list(SEGMENT_METRICS) * k),
            "value": pa.array(value.ravel()),
            "n": pa.array(n.ravel()),
            "ci_low": pa.array(np.clip(value - half, 0, 1).ravel()),
            "ci_high": pa.array(np.clip(value + half, 0, 1).ravel()),
            "examples": pa.array(
                [examples[i] if j == 0 else None for i in range(k) for j in range(m)], pa.list_(pa.string())
            ),
        },
        schema=segments_schema(),
    )


def app_partition(start: datetime, end: datetime, dimensions: int) -> Any:
    """One interval's app-level metrics partition, drift metrics included."""
    import pyarrow as pa

    from genai_flywheel.metrics import metrics_schema

    rows: dict[str, tuple[float, int, float | None, float | None]] = {
        "volume": (5000.0, 5000, None, None),
        "error_rate": (0.03, 5000, 0.025, 0.035),
        "latency_p95_ms": (1800.0, 5000, 1700.0, 1900.0),
        "feedback.user_feedback.positive_rate": (0.9, 800, 0.88, 0.92),
        **{f"scorer.{s}.pass_rate": (0.85, 1000, 0.83, 0.87) for s in SCORERS},
        **{f"scorer.{s}.mean": (0.8, 1000, 0.79, 0.81) for s in SCORERS},
        **{f"drift.dim{d:02d}.psi": (0.05, 5000, None, None) for d in range(dimensions)},
    }
    names = sorted(rows)
    return pa.table(
        {
            "app": [APP] * len(names),
            "interval_start": [start] * len(names),
            "interval_end": [end] * len(names),
            "metric": names,
            **{col: [rows[m][i] for m in names] for i, col in enumerate(("value", "n", "ci_low", "ci_high"))},
        },
        schema=metrics_schema(),
    )


def write_config(path: Path, data_root: Path, dimensions: int) -> Path:
    """The repository's flywheel.yaml with ``data_root``, ``dimensions`` tag dimensions and an MLflow URI on
    a closed port (the page then links the experiments list, without waiting)."""
    import yaml

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = yaml.safe_load((ROOT / "flywheel.yaml").read_text(encoding="utf-8"))
    data["data_root"] = str(data_root)
    app = next(a for a in data["applications"] if a["name"] == APP)
    app["mlflow"]["tracking_uri"] = f"http://127.0.0.1:{port}"
    app.setdefault("segments", {})["dimensions"] = [
        {"name": f"dim{d:02d}", "source": f"tags.key{d:02d}"} for d in range(dimensions)
    ]
    data["applications"] = [app]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median wall seconds of ``repeat`` calls of ``fn`` after one warm-up call, and its last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def size_of(path: Path) -> tuple[int, int]:
    """Bytes and number of files under ``path``."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=4)
    parser.add_argument("--dimensions", type=int, default=20)
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="measure the store already in --workdir")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import logging

    logging.disable(logging.INFO)  # the store logs every write
    from fastapi.testclient import TestClient
    from flywheel_airflow.ui.app import create_app

    from genai_flywheel.config import load_config
    from genai_flywheel.metrics.store import MetricsStore
    from genai_flywheel.report.segments import segment_history, worst_segments

    work = args.workdir or Path(tempfile.mkdtemp(prefix="flywheel-segbench-"))
    data_root = work / "data"
    store = MetricsStore(data_root)
    step = timedelta(hours=24 // args.per_day)
    count = args.days * args.per_day
    figures: dict[str, Any] = {
        "intervals": count,
        "dimensions": args.dimensions,
        "segments_per_dimension": args.segments,
        "metrics_per_segment": len(SEGMENT_METRICS),
        "segment_rows_per_interval": args.dimensions * args.segments * len(SEGMENT_METRICS),
    }
    try:
        t = time.perf_counter()
        starts = [T0 + i * step for i in range(count)]
        for i, start in enumerate(starts):
            if args.reuse and store.segments_path(APP, start).is_file():
                continue
            store.write_partition(app_partition(start, start + step, args.dimensions))
            store.write_segments(
                segment_table(start, start + step, args.dimensions, args.segments, i), app=APP, interval_start=start
            )
        figures["synthesis_s"] = round(time.perf_counter() - t, 1)
        table = segment_table(starts[-1], starts[-1] + step, args.dimensions, args.segments, count - 1)
        latest = starts[-1]
        size, files = size_of(store.base)
        seg_size = sum(store.segments_path(APP, s).stat().st_size for s in starts)
        figures.update(
            store_bytes=size,
            store_files=files,
            segment_file_bytes_each=seg_size // count,
            segment_files_bytes=seg_size,
        )

        def rewrite() -> Any:
            return store.write_segments(table, app=APP, interval_start=latest)

        def read_latest() -> Any:
            return store.read_segments(APP, latest, latest + step)

        def history() -> Any:
            return segment_history(store, APP, "dim07", "seg-013", days=args.days)

        def worst() -> Any:
            return worst_segments(store, APP)

        figures["write_one_interval_s"], _ = timed(rewrite, args.repeat)
        figures["read_latest_interval_s"], rows = timed(read_latest, args.repeat)
        figures["read_latest_interval_rows"] = rows.num_rows
        figures["history_s"], (_, points) = timed(history, args.repeat)
        figures["history_points"] = len(points)
        figures["worst_segments_s"], _ = timed(worst, args.repeat)

        config = write_config(work / "flywheel.yaml", data_root, args.dimensions)
        client = TestClient(create_app(require_auth=False, config_loader=lambda: load_config(config)))
        params = {"dimension": "dim07", "segment": "seg-013", "days": args.days}
        routes = {
            "page_app_s": (f"/apps/{APP}", None),
            "api_segments_s": (f"/api/apps/{APP}/segments", None),
            "api_history_s": (f"/api/apps/{APP}/segments/history", params),
            "page_history_s": (f"/apps/{APP}/segments/history", params),
        }
        for name, (url, query) in routes.items():

            def get(url: str = url, query: dict[str, Any] | None = query) -> Any:
                response = client.get(url, params=query)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
                return response

            figures[name], response = timed(get, args.repeat)
            figures[name.removesuffix("_s") + "_bytes"] = len(response.content)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    for key, value in figures.items():
        if isinstance(value, float) and key.endswith("_s") and key != "synthesis_s":
            figures[key] = round(value, 4)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:,}" if isinstance(value, int) else f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
