"""How a pipeline process holds memory: Arrow's pool (jemalloc, not the wheel's default), and
:class:`Column`, a window's per-trace numbers in one array allocated once.

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

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


class Column:
    """One number per row of a window, appended batch by batch into a single array.

    With ``capacity`` (the window's row count, known from its Parquet metadata) the array is allocated once
    and never copied; without it, or past it, it doubles. A list of batches joined at the end held every
    batch and the joined copy at once (twice the column), and left the freed batches as holes in the heap:
    at a million traces that was a quarter of the aggregate stage's growth.
    """

    def __init__(self, dtype: Any, capacity: int | None = None, *, widen_to: Any = None) -> None:
        import numpy as np

        self._array = np.empty(max(0, capacity or 0), dtype=dtype)  # untouched pages cost no memory
        self._size = 0
        # ``widen_to``: a narrow type the values usually fit exactly (whole milliseconds and token counts as
        # float32: half the bytes), widened to this one by the first value it cannot hold exactly.
        self._widen_to = np.dtype(widen_to) if widen_to is not None else None

    def __len__(self) -> int:
        return self._size

    @property
    def dtype(self) -> np.dtype:
        """The type the column holds its values in."""
        return self._array.dtype

    def append(self, values: np.ndarray) -> None:
        """Add ``values`` at the end, cast to the column's type (widened first, with ``widen_to``, when that
        type cannot hold every one of them exactly)."""
        import numpy as np

        if self._widen_to is not None and self._array.dtype != self._widen_to:
            if narrowed(values, self._array.dtype) is values:
                self.widen(self._widen_to)
        end = self._size + values.size
        if end > self._array.size:
            grown = np.empty(max(end, 2 * self._array.size, 1024), dtype=self._array.dtype)
            grown[: self._size] = self._array[: self._size]
            self._array = grown
        self._array[self._size : end] = values
        self._size = end

    def widen(self, dtype: Any) -> None:
        """Hold the column as ``dtype`` from now on (a wider type, for values the current one cannot hold)."""
        self._array = self._array.astype(dtype)

    def values(self) -> np.ndarray:
        """The rows so far: a view, not a copy (sorting it in place sorts the column)."""
        return self._array[: self._size]

    def values_as(self, dtype: Any) -> np.ndarray:
        """The rows so far as ``dtype``: the view :meth:`values` gives when the column holds that type, else a
        copy (the same values: a narrow column holds only values it holds exactly)."""
        import numpy as np

        values = self.values()
        return values if values.dtype == np.dtype(dtype) else values.astype(dtype)


def narrowed(values: np.ndarray, dtype: Any) -> np.ndarray:
    """``values`` cast to ``dtype`` when that holds every one of them exactly (NaN included), else ``values``
    itself (the caller tells the two apart with ``is``)."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):  # a value out of range casts to inf: not exact, kept
        narrow = values.astype(dtype)
    return narrow if np.array_equal(narrow, values, equal_nan=narrow.dtype.kind == "f") else values
