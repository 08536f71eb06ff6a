"""asyncio 3.11-3.13's child-watcher names, kept for compatibility.

In asyncio a "child watcher" decides how the loop learns that a child exited
(SIGCHLD, a thread per child, a pidfd). In sansloop that decision belongs to
the loop's backend (``Backend.watch_child``; pidfd where the kernel has it, a
waiter thread otherwise), so these classes choose nothing: every one of them
hands the children given to ``add_child_handler`` to the backend of its loop
(the attached loop, else the running one) and calls
``callback(pid, returncode, *args)`` on that loop once the child is reaped.
Their differences in asyncio (signal handlers, ``waitpid(-1)``, threads) are
not reproduced: none of them steals another party's children.

- ``AbstractChildWatcher`` is asyncio's own class (``isinstance`` and
  ``set_child_watcher``'s check keep working);
- ``get_child_watcher``/``set_child_watcher`` are asyncio's own functions:
  they act on the current policy, sansloop's included (its policy derives
  from asyncio's default one);
- on Python 3.12 and 3.13, ``SafeChildWatcher()``, ``FastChildWatcher()`` and
  ``MultiLoopChildWatcher()`` warn ``DeprecationWarning`` as asyncio's do.
  On 3.14+, where asyncio removed the API, this module exports nothing.

A loop that is not sansloop's has no backend: its children are then reaped
by waiter threads (``children.ChildReaper`` in thread mode).
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from typing import Any

from ..backends.children import ChildReaper

__all__: list[str] = []

_STDLIB_ABSTRACT: Any = getattr(asyncio, "AbstractChildWatcher", None)
_HAS_WATCHERS = _STDLIB_ABSTRACT is not None

#: Watchers that reap only the children handed to them.
PER_PID_WATCHERS: tuple[type, ...] = ()

if _HAS_WATCHERS:
    __all__ = [
        "AbstractChildWatcher",
        "FastChildWatcher",
        "MultiLoopChildWatcher",
        "PidfdChildWatcher",
        "SafeChildWatcher",
        "ThreadedChildWatcher",
        "get_child_watcher",
        "set_child_watcher",
    ]
    AbstractChildWatcher = _STDLIB_ABSTRACT
    get_child_watcher = asyncio.get_child_watcher
    set_child_watcher = asyncio.set_child_watcher

    _fallback_reaper: ChildReaper | None = None

    def _reaper_for(loop: Any) -> Any:
        backend = getattr(loop, "_backend", None)
        if backend is not None and hasattr(backend, "watch_child"):
            return backend
        global _fallback_reaper
        if _fallback_reaper is None:
            _fallback_reaper = ChildReaper(use_pidfd=False)
        return _fallback_reaper

    def _deprecated(name: str) -> None:
        if sys.version_info >= (3, 12):
            warnings.warn(
                f"{name!r} is deprecated as of Python 3.12 and will be removed in Python 3.14.",
                DeprecationWarning,
                stacklevel=3,
            )

    # asyncio 3.12+ warns when AbstractChildWatcher is subclassed outside
    # asyncio; these subclasses are the compatibility shims, not users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)

        class _BackendChildWatcher(AbstractChildWatcher):  # type: ignore[misc,valid-type]
            """Hands children to the loop's backend; see the module docstring."""

            # State is made on first use: asyncio 3.12's PidfdChildWatcher has
            # no __init__ of its own, and its signature is copied exactly.
            _loop: Any = None

            @property
            def _handlers(self) -> dict[int, tuple[Any, tuple[Any, ...]]]:
                handlers: dict[int, tuple[Any, tuple[Any, ...]]]
                handlers = self.__dict__.setdefault("_handler_table", {})
                return handlers

            def add_child_handler(self, pid: int, callback: Any, *args: Any) -> None:
                """Call ``callback(pid, returncode, *args)`` on the loop once *pid* exits."""
                loop = self._loop if self._loop is not None else asyncio.get_running_loop()
                self._handlers[pid] = (callback, args)
                _reaper_for(loop).watch_child(pid, lambda p, rc: self._reaped(loop, p, rc))

            def _reaped(self, loop: Any, pid: int, returncode: int | None) -> None:
                try:
                    loop.call_soon_threadsafe(self._deliver, pid, returncode)
                except RuntimeError:
                    pass  # loop closed: the child is reaped, nobody to tell

            def _deliver(self, pid: int, returncode: int | None) -> None:
                entry = self._handlers.pop(pid, None)
                if entry is None:
                    return  # removed meanwhile
                if returncode is None:
                    from .errors import logger

                    logger.warning("Unknown child process pid %d, will report returncode 255", pid)
                    returncode = 255
                callback, args = entry
                callback(pid, returncode, *args)

            def remove_child_handler(self, pid: int) -> bool:
                """Forget *pid*'s callback; True if there was one."""
                return self._handlers.pop(pid, None) is not None

            def attach_loop(self, loop: Any) -> None:
                """Deliver callbacks on *loop* (None: the running loop)."""
                self._loop = loop

            def close(self) -> None:
                """Forget every callback."""
                self._handlers.clear()

            def is_active(self) -> bool:
                """True: the backend watches children whatever the loop does."""
                return True

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc_info: Any) -> None:
                return None

        class ThreadedChildWatcher(_BackendChildWatcher):
            """asyncio's name; the backend decides how children are watched."""

            def __init__(self) -> None:
                self._loop = None

        class PidfdChildWatcher(_BackendChildWatcher):
            """asyncio's name; the backend decides how children are watched."""

            if sys.version_info < (3, 12):  # 3.12 made asyncio's stateless

                def __init__(self) -> None:
                    self._loop = None

        class SafeChildWatcher(_BackendChildWatcher):
            """asyncio's name (deprecated in 3.12); the backend decides."""

            def __init__(self) -> None:
                self._loop = None
                _deprecated("SafeChildWatcher")

        class FastChildWatcher(_BackendChildWatcher):
            """asyncio's name (deprecated in 3.12); the backend decides."""

            def __init__(self) -> None:
                self._loop = None
                _deprecated("FastChildWatcher")

        class MultiLoopChildWatcher(_BackendChildWatcher):
            """asyncio's name (deprecated in 3.12); the backend decides."""

            def __init__(self) -> None:
                self._loop = None
                _deprecated("MultiLoopChildWatcher")

    PER_PID_WATCHERS = (_BackendChildWatcher,) + tuple(
        getattr(asyncio, name)
        for name in (
            "ThreadedChildWatcher",
            "PidfdChildWatcher",
            "SafeChildWatcher",
            "MultiLoopChildWatcher",
        )
        if hasattr(asyncio, name)
    )
