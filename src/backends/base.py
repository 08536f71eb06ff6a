"""The Backend interface: everything sansloop asks of the outside world.

A backend is one object handed to ``sansloop.new_event_loop(backend=...)``. The
loop holds it; it never subclasses it. Implementing one is an afternoon's work:
the abstract methods below are all that is required, and the defaults of the
rest (clock, sockets, name resolution, executor) are the real OS ones.

Readiness
    ``register(fd, events)``, ``modify(fd, events)``, ``unregister(fd)`` keep the
    set of file descriptors the loop is interested in; ``events`` is a bit mask
    of ``EVENT_READ`` and ``EVENT_WRITE`` (the same values as ``selectors``).
    ``poll(timeout)`` blocks for at most *timeout* seconds (``None``: until an
    event or a wakeup; ``0``: not at all) and returns a list of ``(fd, events)``.
    Readiness is level-triggered: an fd that stays readable is reported again.
    Each fd appears at most once per poll, with only the events it is
    registered for. An error or hang-up must reach the fd's owner: the
    built-in backends report it as every registered event, so that the
    callback's own ``recv``/``send`` sees the error.
    Misuse raises, never passes silently: ``register`` of a registered fd, and
    ``modify``/``unregister`` of an unregistered one, raise KeyError; a
    negative fd or an event mask that is empty or has other bits raise
    ValueError. Unregistering an fd its owner already closed is allowed.

Wakeup
    ``wakeup()`` may be called from any thread (and from a signal handler's
    thread) and makes a concurrent or the next ``poll`` return promptly. It is
    a flag, not a queue: many wakeups before a poll cost one.

Clock
    ``time()`` is the loop's clock (monotonic seconds); ``clock_resolution``
    its granularity. A simulated backend returns virtual time.

Network and names
    ``socket(family, type, proto)`` makes a socket object and ``getaddrinfo`` /
    ``getnameinfo`` resolve names (blocking; the loop runs them in the
    executor). A simulated backend returns simulated sockets.

File transfer
    ``sendfile(out_fd, in_fd, offset, count)`` sends up to *count* bytes of
    the file *in_fd*, from *offset*, to the stream socket *out_fd* without
    copying them through Python (``os.sendfile``'s semantics: the number of
    bytes sent, 0 at the end of the file; BlockingIOError when the socket
    is full). NotImplementedError where there is no such call; the loop's
    ``sock_sendfile`` then reads and sends instead. A simulated backend
    moves the bytes itself.

Pipes and other file descriptors
    ``read(fd, n)`` and ``write(fd, data)`` move bytes through a
    non-blocking pipe, character device (a pty) or socket fd, with ``os.read``
    / ``os.write`` semantics: ``read`` returns at most *n* bytes (``b""`` at
    end of file), ``write`` returns how many bytes of *data* were written;
    both raise BlockingIOError when the fd is not ready and OSError on
    failure (BrokenPipeError once the reader is gone, EIO from a pty whose
    other side closed). ``set_blocking(fd, blocking)`` is ``os.set_blocking``:
    the loop's pipe transports make their fd non-blocking through it. A
    simulated backend that owns pipes implements the three.

Child processes
    ``spawn_child(args, **kwargs)`` starts a child with ``subprocess.Popen``'s
    arguments and semantics and returns the Popen (or an object with its
    ``pid``, ``stdin``/``stdout``/``stderr``, ``poll``, ``send_signal``,
    ``terminate``, ``kill`` and ``returncode``).
    ``watch_child(pid, callback)`` arranges for ``callback(pid, returncode)``
    to be called once child *pid* has exited and been reaped (``returncode``
    is None when someone else collected the status first). The callback may
    run in any thread, inside ``poll()`` or inside ``watch_child`` itself; it
    must only hand the result over. The default reaps with a waiter thread per
    child; the Linux readiness backends poll a pidfd instead (see
    ``children.py``). A simulated backend owns its simulated children.

Executor
    ``default_executor()`` returns the ``concurrent.futures.Executor`` used
    when ``run_in_executor`` is given ``None``.

Lifecycle
    ``close()`` releases the backend's own resources; it is called by
    ``loop.close()`` and is idempotent. Registered fds belong to their owners
    and are not closed. Afterwards register/modify/unregister/poll raise
    RuntimeError and ``wakeup()`` is a no-op (other threads race with close).

``sansloop.backends.conformance`` checks all of this against any backend;
docs/backends.md explains it and walks through a complete example.
"""

from __future__ import annotations

import abc
import concurrent.futures
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Backend", "EVENT_READ", "EVENT_WRITE"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


class Backend(abc.ABC):
    """Base class and documentation of the backend interface."""

    #: Short name shown by ``python -m sansloop info`` and in reprs.
    name: str = "custom"

    # -- readiness (required) --------------------------------------------

    @abc.abstractmethod
    def register(self, fd: int, events: int) -> None:
        """Start watching *fd* for *events* (EVENT_READ | EVENT_WRITE).

        KeyError if *fd* is already registered; ValueError for a bad fd or mask.
        """

    @abc.abstractmethod
    def modify(self, fd: int, events: int) -> None:
        """Change the events watched for *fd*; KeyError if it is not registered."""

    @abc.abstractmethod
    def unregister(self, fd: int) -> None:
        """Stop watching *fd*; KeyError if it is not registered.

        Succeeds for an fd its owner closed while it was registered.
        """

    @abc.abstractmethod
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to *timeout* seconds; return ready ``(fd, events)`` pairs.

        ``None`` blocks until an event or a wakeup, ``<= 0`` does not block.
        Round a timeout *up* to the mechanism's resolution, never down: a poll
        that returns early wakes a timer early or spins. It may return with no
        events before the timeout (a wakeup; a timeout capped at a day).
        """

    @abc.abstractmethod
    def wakeup(self) -> None:
        """Make a blocked or the next ``poll`` return soon. Thread-safe."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend's own resources; idempotent."""

    # -- clock -------------------------------------------------------------

    #: Granularity of ``time()``; timers due within it of now are run.
    clock_resolution: float = time.get_clock_info("monotonic").resolution

    #: The loop's clock, in seconds: ``time.monotonic`` itself, so that reading
    #: the clock (several times per tick) costs no Python frame.
    time: Callable[[], float] = staticmethod(time.monotonic)

    # -- network and names ---------------------------------------------------

    def socket(
        self,
        family: int = socket.AF_INET,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        """Create a socket (blocking mode is left to the caller)."""
        return socket.socket(family, type, proto)

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Resolve *host*/*port*; blocking, run in the executor by the loop."""
        return socket.getaddrinfo(host, port, family, type, proto, flags)

    def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """Reverse-resolve *sockaddr*; blocking, run in the executor by the loop."""
        return socket.getnameinfo(sockaddr, flags)

    # -- file transfer ---------------------------------------------------------

    def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        """Send up to *count* bytes of file *in_fd* from *offset* to socket *out_fd*.

        ``os.sendfile`` semantics: returns the bytes sent (0 at end of file),
        raises BlockingIOError when *out_fd* (non-blocking) is full and
        OSError on failure (for example when *in_fd* is not a regular file).
        NotImplementedError where the platform has no ``os.sendfile``.
        """
        try:
            send = os.sendfile
        except AttributeError:
            raise NotImplementedError("os.sendfile() is not available") from None
        return send(out_fd, in_fd, offset, count)

    # -- pipes and other file descriptors ------------------------------------

    def read(self, fd: int, n: int) -> bytes:
        """Read at most *n* bytes from *fd* (``os.read``; ``b""`` at end of file)."""
        return os.read(fd, n)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        """Write *data* to *fd*; the count written (``os.write``)."""
        return os.write(fd, data)

    def set_blocking(self, fd: int, blocking: bool) -> None:
        """Set or clear *fd*'s blocking mode (``os.set_blocking``)."""
        os.set_blocking(fd, blocking)

    # -- child processes -------------------------------------------------------

    _child_reaper: Any = None

    def spawn_child(self, args: Any, **kwargs: Any) -> Any:
        """Start a child process: ``subprocess.Popen(args, **kwargs)``.

        Errors are Popen's (FileNotFoundError, PermissionError, ...).
        """
        import subprocess

        return subprocess.Popen(args, **kwargs)

    def watch_child(self, pid: int, callback: Callable[[int, int | None], object]) -> None:
        """Call ``callback(pid, returncode)`` once child *pid* has exited and been reaped.

        Exactly once; *returncode* is the exit code, ``-signum`` for a child
        killed by a signal, or None if the status was collected by someone
        else. Any thread may run the callback (see the module docstring).
        """
        reaper = self._child_reaper
        if reaper is None:
            reaper = self._child_reaper = self._make_child_reaper()
        reaper.watch(pid, callback)

    def _make_child_reaper(self) -> Any:
        """The reaper behind ``watch_child``: waiter threads unless overridden."""
        from .children import ChildReaper

        return ChildReaper()

    def _child_statistics(self) -> dict[str, Any]:
        """The reaper's counts for ``statistics()`` (nothing before the first child)."""
        reaper = self._child_reaper
        return {} if reaper is None else dict(reaper.statistics())

    def _close_child_reaper(self) -> None:
        """Hand children still running to waiter threads (for ``close()``)."""
        reaper = self._child_reaper
        if reaper is not None:
            reaper.close()

    # -- executor ------------------------------------------------------------

    def default_executor(self) -> concurrent.futures.Executor:
        """A new executor for ``run_in_executor(None, ...)``."""
        from .threadpool import ThreadPoolExecutor

        return ThreadPoolExecutor(thread_name_prefix="sansloop")

    def shutdown_executor(
        self, executor: concurrent.futures.Executor, done: Callable[[], object]
    ) -> None:
        """Shut *executor* down, waiting for its jobs, without blocking the caller.

        *done* is called (from any thread) once the executor has finished; the
        loop uses it for ``shutdown_default_executor()``.
        """

        def join() -> None:
            try:
                executor.shutdown(wait=True)
            finally:
                done()

        threading.Thread(target=join, name="sansloop-executor-shutdown", daemon=True).start()

    # -- signals -------------------------------------------------------------

    def signal_channel(self) -> Any:
        """A new :class:`~sansloop.backends.signals.SignalChannel`.

        The loop asks for one the first time ``add_signal_handler`` is used; a
        simulated backend returns a stand-in that delivers simulated signals.
        """
        from .signals import SignalChannel

        return SignalChannel()

    # -- introspection -------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """Counts for tests and users (at least ``registered_fds``)."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
