"""Environment variables set for one block of code: the knobs MLflow reads only from the environment."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def scoped_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set each variable of ``values`` (remove it where the value is None) for the block; on exit every
    one of them is back to what it was, set or unset. The environment is process-wide: callers that may
    run in threads at once serialise blocks themselves."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
