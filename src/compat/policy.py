"""The event loop policy that makes asyncio create sansloop loops.

``sansloop.install()`` sets it, so ``asyncio.new_event_loop()`` and
``asyncio.run()`` (3.11 has no ``loop_factory=``) give sansloop loops in loop
mode. The policy API is deprecated from Python 3.14; ``loop_factory=`` is the
way forward where it exists.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..backends import Backend

__all__ = ["EventLoopPolicy"]


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, but new loops are sansloop EventLoops."""

    def __init__(self, backend_factory: Any = None, *, mode: str = "loop") -> None:
        super().__init__()
        self._backend_factory = backend_factory
        self._mode = mode

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new sansloop EventLoop (with a fresh backend from the factory)."""
        from .loop import EventLoop

        backend: Backend | None = self._backend_factory() if self._backend_factory else None
        return EventLoop(backend, mode=self._mode)
