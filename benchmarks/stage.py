"""One monitor stage call in a fresh process, as an Airflow task runs it; prints its figures as JSON.

``python benchmarks/stage.py CONFIG APP START END FUNCTION [KWARGS_JSON]`` calls
``genai_flywheel.pipeline.FUNCTION(APP, START, END, **KWARGS, config=load_config(CONFIG))`` and prints one
JSON line: the call's wall seconds, the imports' seconds, the process's peak RSS (KiB, ``ru_maxrss``) after
the imports and at the end, and the call's return value. benchmarks/monitor.py runs every stage this way,
so each stage's peak RSS is its own, not the high-water mark of the stages before it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run as a script from a checkout without an installed package
    sys.path.insert(1, str(ROOT / "src"))
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

# Everything the stages import lazily (see genai_flywheel.pipeline), imported before the timer starts:
# an Airflow task pays its imports once per process, not per trace.
STAGE_MODULES = (
    "great_expectations",
    "mlflow",
    "mlflow.genai",
    "genai_flywheel.pipeline",
    "genai_flywheel.traces.extract",
    "genai_flywheel.quality.contract",
    "genai_flywheel.traces.sampling",
    "genai_flywheel.scoring",
    "genai_flywheel.scoring.reuse",
    "genai_flywheel.traces.writeback",
    "genai_flywheel.metrics",
    "genai_flywheel.metrics.store",
    "genai_flywheel.monitoring_run",
    "genai_flywheel.alerts",
    "genai_flywheel.evaluation.run",
)


def peak_rss_kib() -> int:
    """This process's own peak resident set size so far, in KiB.

    On Linux ``VmHWM`` from /proc: ``ru_maxrss`` there starts at the parent's peak when forked and keeps
    it across exec, so a stage started by a large benchmark process would report the parent's peak.
    Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def run(config: str, app: str, start: str, end: str, function: str, kwargs: dict) -> dict:
    """Import, then time ``pipeline.<function>``; the figures as a JSON-able dict."""
    from genai_flywheel.memory import use_process_env

    use_process_env()  # the Arrow pool a task process starts with (the image and the local stack set it)
    t0 = time.perf_counter()
    for module in STAGE_MODULES:
        importlib.import_module(module)
    from genai_flywheel import pipeline
    from genai_flywheel.config import load_config

    cfg = load_config(Path(config))
    imports_seconds = time.perf_counter() - t0
    rss_before = peak_rss_kib()
    t0 = time.perf_counter()
    result = getattr(pipeline, function)(app, start, end, **kwargs, config=cfg)
    seconds = time.perf_counter() - t0
    return {
        "function": function,
        "kwargs": kwargs,
        "seconds": seconds,
        "imports_seconds": imports_seconds,
        "rss_before_kib": rss_before,
        "peak_rss_kib": peak_rss_kib(),
        "result": result,
    }


def main(argv: list[str]) -> int:
    """Command line (see the module docstring); the JSON line is the last line of stdout."""
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    config, app, start, end, function = argv[:5]
    kwargs = json.loads(argv[5]) if len(argv) == 6 else {}
    print(json.dumps(run(config, app, start, end, function, kwargs), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
