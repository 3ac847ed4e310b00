"""The Arrow pool a pipeline process allocates from (genai_flywheel.memory): jemalloc unless the operator
chose another, in every place a pipeline process starts: the image, the local stack, the ``flywheel``
command and the benchmarks' stage processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genai_flywheel.memory import ARROW_POOL, ARROW_POOL_ENV, process_env

ROOT = Path(__file__).resolve().parents[2]
BACKEND = "import pyarrow as pa; pa.array([1, 2, 3]); print(pa.default_memory_pool().backend_name)"


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != ARROW_POOL_ENV}


def test_the_default_is_jemalloc_and_an_operator_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ARROW_POOL_ENV, raising=False)
    assert process_env() == {ARROW_POOL_ENV: "jemalloc"} and ARROW_POOL == "jemalloc"
    monkeypatch.setenv(ARROW_POOL_ENV, "system")
    assert process_env() == {ARROW_POOL_ENV: "system"}


def test_a_process_started_with_it_allocates_from_jemalloc() -> None:
    # The wheel's default is another pool: the setting is what makes the difference, and this wheel has jemalloc.
    assert run_python(BACKEND, clean_env()) != "jemalloc"
    assert run_python(BACKEND, {**clean_env(), **process_env()}) == "jemalloc"


def test_the_flywheel_command_sets_it_before_pyarrow_is_imported(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from genai_flywheel import cli\n"
        "assert 'pyarrow' not in sys.modules, 'importing the command imported pyarrow'\n"
        f"cli.main(['config', 'validate', '--config', {str(ROOT / 'flywheel.yaml')!r}])\n"
        f"{BACKEND}\n"
    )
    assert run_python(code, clean_env()) == "jemalloc"


def test_the_image_and_the_local_stack_set_it(tmp_path: Path) -> None:
    from flywheel_demo.services import Stack

    assert f"{ARROW_POOL_ENV}={ARROW_POOL}" in (ROOT / "Dockerfile").read_text()
    stack = Stack(project=ROOT, home=tmp_path / "stack")
    assert stack.airflow_env()[ARROW_POOL_ENV] == process_env()[ARROW_POOL_ENV]


def test_a_column_with_its_capacity_is_filled_in_place_and_equals_the_batches_joined() -> None:
    import numpy as np

    from genai_flywheel.memory import Column

    batches = [np.arange(i * 10, i * 10 + 7, dtype=np.float64) for i in range(5)]
    sized = Column(np.float64, capacity=35)
    start = sized.values()
    for batch in batches:
        sized.append(batch)
    assert np.shares_memory(sized.values(), start.base if start.base is not None else start)  # never moved
    assert np.array_equal(sized.values(), np.concatenate(batches)) and len(sized) == 35
    # A view: sorting it sorts the column (what the aggregate does with a window's latencies).
    sized.values()[::-1].sort()
    assert sized.values()[0] == 46.0
    # Without a capacity, or past it, the column grows and keeps every value.
    for capacity in (None, 3):
        grown = Column(np.int32, capacity=capacity)
        for batch in batches:
            grown.append(batch.astype(np.int32))
        assert grown.values().dtype == np.int32
        assert np.array_equal(grown.values(), np.concatenate(batches).astype(np.int32))
    assert Column(bool).values().size == 0


def test_a_widened_column_keeps_its_values_and_takes_wider_ones() -> None:
    import numpy as np

    from genai_flywheel.memory import Column

    codes = Column(np.int16, capacity=4)
    codes.append(np.array([1, 2], dtype=np.int32))
    codes.widen(np.int32)
    codes.append(np.array([40_000, 3], dtype=np.int32))
    assert codes.dtype == np.int32 and codes.values().tolist() == [1, 2, 40_000, 3]


def test_a_narrow_column_widens_at_the_first_value_it_cannot_hold_exactly() -> None:
    import numpy as np

    from genai_flywheel.memory import Column, narrowed

    latency = Column(np.float32, capacity=6, widen_to=np.float64)
    latency.append(np.array([120.0, 3_400.0, np.nan]))  # whole milliseconds and a missing one: float32 holds them
    assert latency.dtype == np.float32
    # A view while the column holds the type asked for, a float64 copy of the same values otherwise.
    assert np.shares_memory(latency.values_as(np.float32), latency.values())
    assert latency.values_as(np.float64).dtype == np.float64
    latency.append(np.array([0.1, 2.0**24 + 1]))  # neither is a float32
    assert latency.dtype == np.float64
    assert np.array_equal(latency.values(), [120.0, 3_400.0, np.nan, 0.1, 2.0**24 + 1], equal_nan=True)
    assert latency.values()[3] == 0.1 and latency.values()[4] == 2.0**24 + 1
    # Without widen_to a column casts (the caller's choice), as before.
    plain = Column(np.float32, capacity=1)
    plain.append(np.array([0.1]))
    assert plain.dtype == np.float32 and float(plain.values()[0]) != 0.1
    # narrowed: the narrow copy when exact (NaN included), the values themselves when not (overflow included).
    exact = np.array([1.0, 0.5, np.nan])
    assert narrowed(exact, np.float32).dtype == np.float32
    for inexact in (np.array([1.0, 0.1]), np.array([1e300])):
        assert narrowed(inexact, np.float32) is inexact
