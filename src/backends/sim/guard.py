"""The determinism guard: the real world reached from a simulated run is reported.

A simulated run replays only if everything it observes comes from the
simulation. While a loop whose backend is a guarded SimBackend is running in
the current thread, these raise :class:`~.errors.NondeterminismError` and are
recorded on the backend (``SimBackend.violations``), so that a program that
swallows the exception still fails ``sansloop.sim.run``:

- the real clock: ``time.time``, ``time.time_ns``, ``time.monotonic(_ns)``,
  ``time.perf_counter(_ns)``, and ``time.sleep`` (patched on the ``time``
  module while a guarded backend is open; code that bound them earlier with
  ``from time import time`` escapes this part of the guard);
- a real thread: ``threading.Thread.start`` (patched likewise);
- the real network and processes, through audit events (``sys.addaudithook``;
  the hook is installed once and returns at once when no guarded backend is
  open): creating, binding or connecting a real socket, real name
  resolution, ``subprocess``, ``os.system``, ``os.fork``, ``os.exec*``,
  ``os.posix_spawn``; and removing or renaming real files (``os.remove``/
  ``unlink``, ``os.rename``, ``os.rmdir``) -- which also keeps asyncio's
  "remove a stale Unix socket file" step from deleting a real socket file
  that happens to sit at a simulated socket's path.

Calls made by logging, pytest, pluggy, hypothesis and coverage are let
through (a log record's timestamp or a test framework's bookkeeping does not
feed the program). Not detected: ``datetime.now()`` (C code reads the clock
directly), unseeded ``random``, ``os.urandom``/``uuid4``, and plain file I/O
(``open`` is an audit event too common to forbid: imports use it).

Outside a running simulated loop -- in the test that sets the world up and
checks results, in other threads -- everything behaves normally.
"""

from __future__ import annotations

import asyncio.events as _aio_events
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import NondeterminismError

__all__ = ["acquire", "active_backend", "release", "violation"]

_ALLOWED_PREFIXES = (
    "logging",
    "_pytest",
    "pytest",
    "pluggy",
    "hypothesis",
    "_hypothesis",
    "coverage",
    "faulthandler",
    "pytest_timeout",
)

_TIME_NAMES = (
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
    "sleep",
)

_AUDIT_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.bind",
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.getnameinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "subprocess.Popen",
        "os.system",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "time.sleep",
        "_thread.start_new_thread",
    }
)

_holders = 0
_originals: dict[str, Any] = {}
_original_thread_start: Callable[..., Any] | None = None
_audit_installed = False


def active_backend() -> Any:
    """The guarded SimBackend of the loop running in this thread, or None."""
    loop = _aio_events._get_running_loop()
    if loop is None:
        return None
    backend = getattr(loop, "_backend", None)
    if backend is not None and getattr(backend, "guarded", False) and not backend.closed:
        return backend
    return None


def violation(backend: Any, what: str) -> NondeterminismError:
    """Record *what* on *backend* and return the error to raise."""
    backend.note_violation(what)
    return NondeterminismError(
        f"{what} inside a simulated run: it reads the real world, so the run "
        "cannot replay from its seed. Use the loop's clock (loop.time()), "
        "sansloop.sim's wall_time(), asyncio.sleep and the loop's sockets instead."
    )


def _allowed_caller(depth: int = 2) -> bool:
    frame = sys._getframe(depth)
    name = frame.f_globals.get("__name__", "") or ""
    return isinstance(name, str) and name.startswith(_ALLOWED_PREFIXES)


def _wrap_time(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(*args: Any) -> Any:
        if _holders:
            backend = active_backend()
            if backend is not None and not _allowed_caller():
                raise violation(backend, f"time.{name}()")
        return real(*args)

    guarded.__name__ = name
    guarded.__qualname__ = name
    guarded.__doc__ = real.__doc__
    guarded.__wrapped__ = real  # type: ignore[attr-defined]
    return guarded


def _guarded_start(self: threading.Thread) -> None:
    if _holders:
        backend = active_backend()
        if backend is not None and not _allowed_caller():
            raise violation(backend, f"threading.Thread.start() of {self.name!r}")
    assert _original_thread_start is not None
    _original_thread_start(self)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _holders or event not in _AUDIT_EVENTS:
        return
    backend = active_backend()
    if backend is None or _allowed_caller():
        return
    raise violation(backend, f"real {event} {args[1:3]!r}" if event.startswith("socket") else event)


def acquire() -> None:
    """A guarded backend opens: patch the clock and thread start if not yet done."""
    global _holders, _original_thread_start, _audit_installed
    if not _audit_installed:
        sys.addaudithook(_audit)
        _audit_installed = True
    if _holders == 0:
        for name in _TIME_NAMES:
            real = getattr(time, name)
            _originals[name] = real
            setattr(time, name, _wrap_time(name, real))
        _original_thread_start = threading.Thread.start
        threading.Thread.start = _guarded_start  # type: ignore[method-assign]
    _holders += 1


def release() -> None:
    """A guarded backend closes: restore the real functions after the last one."""
    global _holders
    if _holders == 0:
        return
    _holders -= 1
    if _holders == 0:
        for name, real in _originals.items():
            setattr(time, name, real)
        _originals.clear()
        if _original_thread_start is not None:
            threading.Thread.start = _original_thread_start  # type: ignore[method-assign]
