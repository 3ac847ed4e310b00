"""An ASGI app that builds the real one on its first request.

Every Airflow process (scheduler, dag processor, each task) loads the plugins, but only the api-server
serves them. Registering this wrapper instead of a FastAPI instance keeps the plugin import down to the
standard library: FastAPI, pydantic models and the flywheel library load on the first page request.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyASGIApp:
    """An ASGI application built by ``factory`` (``"package.module:function"``) when first needed."""

    def __init__(self, factory: str) -> None:
        module, sep, attr = factory.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"factory {factory!r} must look like 'package.module:function'")
        self.factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp:
        """The real application (built on first access, once, even under concurrent first requests)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    module, _, attr = self.factory.partition(":")
                    log.info("building the GenAI Quality app from %s", self.factory)
                    self._app = getattr(importlib.import_module(module), attr)()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        state = "built" if self._app is not None else "not built yet"
        return f"LazyASGIApp({self.factory!r}, {state})"
