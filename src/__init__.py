"""sansloop: asyncio rebuilt as a sans-IO core with pluggable I/O backends.

Two ways to use it:

- **loop mode** (a drop-in loop, like uvloop)::

      asyncio.run(main(), loop_factory=sansloop.new_event_loop)   # 3.12+
      sansloop.run(main())                                          # any version
      sansloop.install()  # asyncio.new_event_loop() now gives sansloop loops

- **full mode**: ``import sansloop.compat as asyncio``; every future, task, lock
  and queue is sansloop's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from .backends import Backend, available_backends, default_backend, get_backend
from .compat.loop import EventLoop
from .compat.policy import EventLoopPolicy

__all__ = [
    "Backend",
    "EventLoop",
    "EventLoopPolicy",
    "available_backends",
    "default_backend",
    "get_backend",
    "install",
    "new_event_loop",
    "run",
    "__version__",
]

__version__ = "0.1.0"

_T = TypeVar("_T")


def _resolve_backend(backend: Backend | str | None) -> Backend | None:
    if isinstance(backend, str):
        return get_backend(backend)
    return backend


def new_event_loop(backend: Backend | str | None = None) -> EventLoop:
    """A new sansloop loop in loop mode (stdlib futures and tasks on our loop).

    *backend* is a Backend instance, a backend name ('epoll', 'poll',
    'selectors') or None for the platform's best.
    """
    return EventLoop(_resolve_backend(backend), mode="loop")


def install() -> None:
    """Make asyncio create sansloop loops (sets sansloop's event loop policy)."""
    asyncio.set_event_loop_policy(EventLoopPolicy())


def run(
    main: Coroutine[Any, Any, _T],
    *,
    backend: Backend | str | None = None,
    debug: bool | None = None,
) -> _T:
    """Run coroutine *main* on a new sansloop loop (loop mode) and close it.

    Like ``asyncio.run``: cancels leftover tasks, shuts down async generators
    and the default executor.
    """
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    with asyncio.Runner(debug=debug, loop_factory=lambda: new_event_loop(backend)) as runner:
        return runner.run(main)
