"""Benchmark: the stages that read a whole window (validate, sample, aggregate) on a window made K times
larger by replicating the stage files of a real one, each stage in a fresh process.

``benchmarks/monitor.py --n 10000 --keep --workdir W`` leaves the stage files of one real window under
``W/data``. This script copies them K times into ``OUT/data`` with fresh trace ids (``r<k>-`` before the
original id, so files sorted by trace stay sorted), then runs validate, sample and aggregate on the copy as
Airflow runs them (``benchmarks/stage.py``) and prints each stage's seconds and its own peak RSS. It needs
no MLflow store (the stages it runs read only the stage files, but for the reference profile, which is
copied), so a million-trace window is measured in minutes::

    .venv/bin/python benchmarks/monitor.py --n 10000 --sample-rate 0.1 --baseline-n 0 --no-whole --keep \\
        --workdir /tmp/w10k
    .venv/bin/python benchmarks/replicate_window.py /tmp/w10k --times 100 --out /tmp/w1m

The score and fetched files are replicated too (``aggregate`` reads them), so their figures are those of
a sample K times larger as well; the quarantine of the contract is left as it was.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks.* when run as a script
    sys.path.insert(1, str(ROOT))

from benchmarks.monitor import window  # noqa: E402

STAGE_SCRIPT = Path(__file__).resolve().with_name("stage.py")
#: Stage files (relative to the interval's run folder) whose rows carry a trace id, replicated K times.
REPLICATED = ("infos", "scores", "fetched")
#: Row group size of the copies: the pipeline's own (see genai_flywheel.workspace).
ROW_GROUP = 10_000


def _interval_dir(data_root: Path) -> Path:
    found = sorted(data_root.glob("runs/app=*/interval=*"))
    if len(found) != 1:
        raise SystemExit(f"{data_root} holds {len(found)} interval folders, expected one from benchmarks/monitor.py")
    return found[0]


def replicate_file(source: Path, target: Path, times: int) -> int:
    """``source`` written ``times`` times into ``target`` with ``r<k>-`` before every trace id; rows written."""
    parquet = pq.ParquetFile(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(target, parquet.schema_arrow) as writer:
        for k in range(times):
            for batch in parquet.iter_batches(batch_size=ROW_GROUP):
                table = pa.Table.from_batches([batch])
                index = table.schema.get_field_index("trace_id")
                ids = pc.binary_join_element_wise(f"r{k:03d}", table.column("trace_id"), "-")
                table = table.set_column(index, table.schema.field(index), ids.cast(table.schema.field(index).type))
                writer.write_table(table, row_group_size=ROW_GROUP)
                rows += table.num_rows
    return rows


def replicate(workdir: Path, out: Path, times: int) -> tuple[Path, str, str, str]:
    """The replicated data root under ``out``; returns the config path, app, interval start and end."""
    import yaml

    source_config = workdir / "flywheel-data.yaml"
    cfg = yaml.safe_load(source_config.read_text())
    data_root = out / "data"
    shutil.rmtree(data_root, ignore_errors=True)
    cfg["data_root"] = str(data_root)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "flywheel.yaml"
    config.write_text(yaml.safe_dump(cfg))
    src_run = _interval_dir(workdir / "data")
    dst_run = data_root / src_run.relative_to(workdir / "data")
    for folder in REPLICATED:
        for part in sorted((src_run / folder).glob("*.parquet")):
            n = replicate_file(part, dst_run / folder / part.name, times)
            print(f"replicated {part.relative_to(src_run)}: {n} rows", flush=True)
    # Everything else the stages read as it is (the reference profile, the contract's report).
    for path in (workdir / "data").rglob("*"):
        rel = path.relative_to(workdir / "data")
        if path.is_file() and not (data_root / rel).exists():
            (data_root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, data_root / rel)
    app = src_run.parent.name.removeprefix("app=")
    start, end = window()
    return config, app, start.isoformat(), end.isoformat()


def run_stage(config: Path, app: str, start: str, end: str, function: str) -> dict:
    """One stage in a fresh process (benchmarks/stage.py); its JSON figures."""
    proc = subprocess.run(
        [sys.executable, str(STAGE_SCRIPT), str(config), app, start, end, function],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", type=Path, help="a working directory kept by benchmarks/monitor.py --keep")
    p.add_argument("--times", type=int, default=100, help="copies of the window (default 100)")
    p.add_argument("--out", type=Path, required=True, help="where the replicated window is written")
    p.add_argument("--stages", default="validate,sample,aggregate", help="stages to run, in order")
    args = p.parse_args(argv)
    if args.times < 1:
        raise SystemExit(f"--times must be >= 1, got {args.times}")
    config, app, start, end = replicate(args.workdir, args.out, args.times)
    print(f"window x{args.times}: {app} [{start}, {end})")
    print(f"{'stage':<12} {'seconds':>9} {'peak RSS MB':>12}")
    for stage in args.stages.split(","):
        figure = run_stage(config, app, start, end, stage)
        print(f"{stage:<12} {figure['seconds']:>9.1f} {figure['peak_rss_kib'] / 1024:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
