"""How a pipeline process allocates Arrow memory: jemalloc, not the wheel's default pool.

Measured on the monitor's stages (README, "Performance"): with pyarrow's default pool (mimalloc) a stage
process holds about 50 MB more from its imports on, and keeps freed pages, so the window-reading stages
grew with the window (aggregate 401 -> 556 MB, sample 397 -> 495 MB from 10,000 to 1,000,000 traces);
with jemalloc the same stages took 347 -> 476 MB and 346 -> 399 MB, in the same time.

Arrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, at its first allocation, so the setting belongs in the
environment a task process starts with: the image sets it, the local stack passes :func:`process_env` to
Airflow, and the ``flywheel`` command sets it for itself before anything imports pyarrow. A value an
operator set is kept (``system`` and ``mimalloc`` are the others Arrow knows).
"""

from __future__ import annotations

import os

#: The variable Arrow reads for its default memory pool.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
#: The pool a pipeline process uses unless the operator chose another.
ARROW_POOL = "jemalloc"


def process_env() -> dict[str, str]:
    """What a pipeline process's environment should hold: the Arrow pool (the operator's choice if set)."""
    return {ARROW_POOL_ENV: os.environ.get(ARROW_POOL_ENV) or ARROW_POOL}


def use_process_env() -> None:
    """Put :func:`process_env` into this process's environment; in effect only if pyarrow has not
    allocated yet (call it before importing the pipeline)."""
    os.environ.update(process_env())
