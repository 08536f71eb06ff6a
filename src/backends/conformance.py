"""The backend conformance suite: what every readiness backend must do.

Run it against your own backend in one of two ways.

With pytest, subclass :class:`BackendConformance` in a test module under a
``Test*`` name and give it a factory; pytest collects the inherited checks::

    from sansloop.backends.conformance import BackendConformance

    class TestMyBackend(BackendConformance):
        factory = staticmethod(MyBackend)

Without pytest, :func:`run` returns one result per check, and
``python -m sansloop.backends.conformance package.module:MyBackend`` prints
them and exits non-zero on a failure.

The contract checked (see docs/backends.md for the reasons):

- register/modify/unregister: KeyError for a second register, and for modify
  or unregister of an fd that is not registered; ValueError for a negative fd
  or an event mask that is empty or outside ``EVENT_READ | EVENT_WRITE``;
  unregistering an fd its owner already closed succeeds.
- ``poll`` returns a list of ``(fd, events)`` with each fd at most once, only
  registered fds (never the backend's own wakeup fd) and only registered
  events; readiness is level-triggered; an error or hang-up reaches the owner
  (our backends report it as every registered event).
- ``poll(0)`` and negative timeouts do not block; ``poll(t)`` does not return
  before ``t`` seconds of ``time()`` when nothing happens (round up, never
  down), and not much later; huge timeouts are accepted.
- ``wakeup()`` from another thread unblocks ``poll(None)`` promptly; before a
  poll it makes that poll return; it is consumed by the poll it wakes; ten
  thousand wakeups from eight threads neither block nor fill anything.
- ``close()`` is idempotent, closes the backend's own fds and no one else's;
  afterwards ``register``/``modify``/``unregister``/``poll`` raise
  RuntimeError and ``wakeup()`` is a harmless no-op.
- ``time()`` never goes backwards and advances with a blocking poll.

Why one ~600-line file: it is the contract in executable form, read top to
bottom by someone writing a backend; the checks are small independent methods,
grouped by topic (registration, polling, wakeup, errors, lifecycle, clock).

Each check makes its own backend and sockets and closes them afterwards.
Timing bounds are generous (``slack`` seconds) so a loaded CI machine passes,
yet a poll that ignores its timeout or a lost wakeup still fails.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from .base import EVENT_READ, EVENT_WRITE, Backend

__all__ = ["BackendConformance", "ConformanceFailure", "run", "main"]

READ, WRITE, BOTH = EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE


class ConformanceFailure(AssertionError):
    """A backend broke the contract (raised instead of ``assert``, so ``-O`` keeps it)."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise ConformanceFailure(message)


def expect_raises(exc_type: type[BaseException], func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except exc_type:
        return
    except BaseException as exc:
        name = getattr(func, "__name__", func)
        raise ConformanceFailure(
            f"{name}{args!r} raised {type(exc).__name__}: {exc}, expected {exc_type.__name__}"
        ) from exc
    name = getattr(func, "__name__", func)
    raise ConformanceFailure(f"{name}{args!r} did not raise {exc_type.__name__}")


class Tracked:
    """A backend plus the registrations the suite made, to check every poll."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.interest: dict[int, int] = {}

    def register(self, fd: int, events: int) -> None:
        self.backend.register(fd, events)
        self.interest[fd] = events

    def modify(self, fd: int, events: int) -> None:
        self.backend.modify(fd, events)
        self.interest[fd] = events

    def unregister(self, fd: int) -> None:
        self.backend.unregister(fd)
        del self.interest[fd]

    def poll(self, timeout: float | None) -> dict[int, int]:
        """Poll, check the result's shape, return it as ``{fd: events}``."""
        result = self.backend.poll(timeout)
        expect(isinstance(result, list), f"poll() returned {type(result).__name__}, not a list")
        ready: dict[int, int] = {}
        for item in result:
            expect(
                isinstance(item, tuple) and len(item) == 2, f"poll() item {item!r} is not a pair"
            )
            fd, events = item
            expect(fd in self.interest, f"poll() reported fd {fd}, which is not registered")
            expect(fd not in ready, f"poll() reported fd {fd} twice")
            expect(
                events and not events & ~self.interest[fd],
                f"poll() reported events {events} for fd {fd} registered for {self.interest[fd]}",
            )
            ready[fd] = events
        return ready

    def wait_for(self, fd: int, events: int, within: float) -> dict[int, int]:
        """Poll until *fd* reports (at least) *events*; fail after *within* seconds."""
        deadline = self.backend.time() + within
        while True:
            remaining = deadline - self.backend.time()
            ready = self.poll(max(remaining, 0.0))
            if ready.get(fd, 0) & events == events:
                return ready
            expect(remaining > 0, f"fd {fd} not reported with events {events} within {within} s")


class BackendConformance:
    """The checks, as methods a test runner calls on a fresh instance each."""

    #: A callable returning a new, open backend. Set it in a subclass.
    factory: Callable[[], Backend]
    #: Seconds of tolerance on every timing upper bound.
    slack: float = 2.0

    # -- fixtures ------------------------------------------------------------

    def setup_method(self, method: object = None) -> None:
        self._cleanups: list[Callable[[], object]] = []

    def teardown_method(self, method: object = None) -> None:
        while self._cleanups:
            self._cleanups.pop()()

    def new_backend(self) -> Tracked:
        backend = type(self).factory()
        self._cleanups.append(backend.close)
        return Tracked(backend)

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        self._cleanups += [a.close, b.close]
        a.setblocking(False)
        b.setblocking(False)
        return a, b

    def fill(self, sock: socket.socket) -> None:
        """Send until the socket's buffers are full."""
        chunk = b"x" * 65536
        for _ in range(10_000):
            try:
                sock.send(chunk)
            except BlockingIOError:
                return
        raise ConformanceFailure("socket buffer never filled")

    def spawn(self, target: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._cleanups.append(lambda: thread.join(30))
        return thread

    # -- registration --------------------------------------------------------

    def test_read_readiness(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        expect(t.poll(0) == {}, "an empty socket was reported readable")
        b.send(b"x")
        expect(t.wait_for(a.fileno(), READ, self.slack)[a.fileno()] == READ, "read readiness")

    def test_write_readiness(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        t.register(a.fileno(), WRITE)
        expect(t.poll(0) == {a.fileno(): WRITE}, "a fresh socket was not reported writable")

    def test_read_and_write_in_one_entry(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), BOTH)
        expect(t.poll(0) == {a.fileno(): WRITE}, "only WRITE expected before data arrives")
        b.send(b"x")
        t.wait_for(a.fileno(), BOTH, self.slack)

    def test_only_registered_events_reported(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        b.send(b"x")
        t.register(a.fileno(), WRITE)  # readable too, but READ was not asked for
        expect(t.poll(0) == {a.fileno(): WRITE}, "events not registered for were reported")

    def test_modify_changes_events(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        expect(t.poll(0) == {}, "nothing should be ready")
        t.modify(a.fileno(), WRITE)
        expect(t.poll(0) == {a.fileno(): WRITE}, "modify to WRITE not honoured")
        t.modify(a.fileno(), READ)
        expect(t.poll(0) == {}, "modify back to READ not honoured")
        b.send(b"x")
        t.wait_for(a.fileno(), READ, self.slack)
        t.modify(a.fileno(), READ)  # same events again: allowed
        expect(t.poll(0) == {a.fileno(): READ}, "modify to the same events broke it")

    def test_register_twice_raises_keyerror(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        expect_raises(KeyError, t.backend.register, a.fileno(), WRITE)
        expect_raises(KeyError, t.backend.register, a.fileno(), READ)
        b.send(b"x")
        expect(
            t.wait_for(a.fileno(), READ, self.slack)[a.fileno()] == READ,
            "a failed second register changed the first registration",
        )

    def test_modify_unknown_raises_keyerror(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        expect_raises(KeyError, t.backend.modify, a.fileno(), READ)
        t.register(a.fileno(), READ)
        t.unregister(a.fileno())
        expect_raises(KeyError, t.backend.modify, a.fileno(), READ)

    def test_unregister_unknown_raises_keyerror(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        expect_raises(KeyError, t.backend.unregister, a.fileno())
        t.register(a.fileno(), READ)
        t.unregister(a.fileno())
        expect_raises(KeyError, t.backend.unregister, a.fileno())

    def test_bad_arguments_raise_valueerror(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        for events in (0, 4, BOTH | 8, -1):
            expect_raises(ValueError, t.backend.register, a.fileno(), events)
        expect_raises(ValueError, t.backend.register, -1, READ)
        t.register(a.fileno(), READ)
        for events in (0, 4, -1):
            expect_raises(ValueError, t.backend.modify, a.fileno(), events)
        expect(t.poll(0) == {}, "a rejected modify changed the registration")

    def test_unregister_stops_reports(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        b.send(b"x")
        t.wait_for(a.fileno(), READ, self.slack)
        t.unregister(a.fileno())
        expect(t.poll(0) == {}, "an unregistered fd was reported")
        t.register(a.fileno(), READ)  # and it can come back
        expect(t.poll(0) == {a.fileno(): READ}, "re-registered fd not reported")

    def test_unregister_after_owner_closed_fd(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        fd = a.fileno()
        t.register(fd, READ)
        a.close()
        t.unregister(fd)  # legitimate: a transport may close before the loop forgets
        expect(t.poll(0) == {}, "nothing is registered")
        c, d = self.socketpair()  # likely reuses fd's number
        t.register(c.fileno(), READ)
        d.send(b"x")
        expect(t.wait_for(c.fileno(), READ, self.slack)[c.fileno()] == READ, "reused fd number")

    def test_unregister_after_fd_number_reused(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        fd = a.fileno()
        t.register(fd, READ)
        a.close()
        c, d = self.socketpair()  # c or d takes fd's number on POSIX
        t.unregister(fd)
        t.register(c.fileno(), READ)
        t.register(d.fileno(), READ)
        d.send(b"y")
        expect(t.wait_for(c.fileno(), READ, self.slack) == {c.fileno(): READ}, "after reuse")

    def test_statistics_counts_registered_fds(self) -> None:
        t = self.new_backend()
        pairs = [self.socketpair() for _ in range(3)]
        expect(t.backend.statistics().get("registered_fds") == 0, "registered_fds at start")
        for a, _ in pairs:
            t.register(a.fileno(), READ)
        expect(t.backend.statistics().get("registered_fds") == 3, "registered_fds after 3")
        t.unregister(pairs[0][0].fileno())
        expect(t.backend.statistics().get("registered_fds") == 2, "registered_fds after unreg")

    # -- polling -------------------------------------------------------------

    def test_level_triggered(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        b.send(b"xy")
        t.wait_for(a.fileno(), READ, self.slack)
        expect(t.poll(0) == {a.fileno(): READ}, "unread data not reported again")
        a.recv(1)
        expect(t.poll(0) == {a.fileno(): READ}, "partly read data not reported again")
        a.recv(1)
        expect(t.poll(0) == {}, "drained socket still reported")

    def test_many_fds(self) -> None:
        t = self.new_backend()
        pairs = [self.socketpair() for _ in range(200)]
        for a, _ in pairs:
            t.register(a.fileno(), READ)
        chosen = {pairs[i][0].fileno() for i in range(0, 200, 3)}
        for i in range(0, 200, 3):
            pairs[i][1].send(b"x")
        ready = t.poll(0)
        expect(set(ready) == chosen, f"{len(ready)} fds ready, expected {len(chosen)}")
        expect(set(ready.values()) == {READ}, "wrong events among many fds")

    def test_poll_zero_does_not_block(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        t.register(a.fileno(), READ)
        start = t.backend.time()
        for _ in range(100):
            expect(t.poll(0) == {}, "nothing is ready")
        t.poll(-1.0)  # negative: treated as 0, never as "forever"
        t.poll(-1e9)
        elapsed = t.backend.time() - start
        expect(elapsed < self.slack, f"100 poll(0) calls took {elapsed:.3f} s")

    def test_timeout_honoured(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        t.register(a.fileno(), READ)
        start = t.backend.time()
        expect(t.poll(0.05) == {}, "nothing is ready")
        elapsed = t.backend.time() - start
        expect(elapsed >= 0.05, f"poll(0.05) returned after {elapsed:.6f} s")
        expect(elapsed < 0.05 + self.slack, f"poll(0.05) returned after {elapsed:.3f} s")

    def test_short_timeouts_never_early(self) -> None:
        t = self.new_backend()
        for timeout in (1e-7, 1e-4, 0.0015, 0.0105):
            start = t.backend.time()
            t.poll(timeout)
            elapsed = t.backend.time() - start
            expect(elapsed >= timeout, f"poll({timeout}) returned after {elapsed:.7f} s: early")
            expect(elapsed < timeout + self.slack, f"poll({timeout}) took {elapsed:.3f} s")

    def test_huge_timeouts_accepted(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        t.register(a.fileno(), WRITE)
        for timeout in (1e7, 1e12, float("inf")):
            expect(t.poll(timeout) == {a.fileno(): WRITE}, f"poll({timeout})")

    # -- wakeup --------------------------------------------------------------

    def poll_forever(self, t: Tracked, what: str, just_before: Callable[[], object] = int) -> float:
        """``poll(None)`` that must be woken by a wakeup; returns seconds blocked.

        A watchdog makes a guard socket readable after ``slack`` seconds, so a
        lost wakeup fails the check instead of hanging it.
        """
        guard, peer = self.socketpair()
        t.register(guard.fileno(), READ)
        done = threading.Event()

        def watchdog() -> None:
            if not done.wait(self.slack):
                peer.send(b"!")

        self.spawn(watchdog)
        just_before()
        start = t.backend.time()
        try:
            ready = t.poll(None)
        finally:
            done.set()
        elapsed = t.backend.time() - start
        t.unregister(guard.fileno())
        expect(guard.fileno() not in ready, f"{what}: poll(None) not woken after {elapsed:.3f} s")
        expect(ready == {}, f"{what}: unexpected events {ready}")
        return elapsed

    def test_wakeup_before_poll(self) -> None:
        t = self.new_backend()
        t.backend.wakeup()
        t.backend.wakeup()
        self.poll_forever(t, "wakeup() before poll")

    def test_wakeup_is_consumed(self) -> None:
        t = self.new_backend()
        t.backend.wakeup()
        self.poll_forever(t, "wakeup() before poll")
        start = t.backend.time()
        t.poll(0.05)
        elapsed = t.backend.time() - start
        expect(elapsed >= 0.05, f"a consumed wakeup woke a later poll after {elapsed:.6f} s")

    def test_wakeup_from_thread_unblocks_poll_none(self) -> None:
        t = self.new_backend()
        for round_ in range(20):
            go = threading.Event()

            def waker(go: threading.Event = go, spin: int = round_ * 50) -> None:
                go.wait(self.slack)
                for _ in range(spin):  # land during the poll, a little later each round
                    pass
                t.backend.wakeup()

            self.spawn(waker)
            self.poll_forever(t, f"round {round_}", go.set)

    def test_wakeup_flood_from_threads(self) -> None:
        t = self.new_backend()
        n_threads, per_thread = 8, 1250
        barrier = threading.Barrier(n_threads)

        def flood() -> None:
            barrier.wait(self.slack * 5)
            for _ in range(per_thread):
                t.backend.wakeup()

        # First with no poll at all: nothing may fill up or block.
        threads = [self.spawn(flood) for _ in range(n_threads)]
        for thread in threads:
            thread.join(self.slack * 5)
            expect(not thread.is_alive(), "wakeup() blocked under a flood with no poll")
        self.poll_forever(t, "after a flood of wakeups")
        writes = t.backend.statistics().get("wakeups")
        if writes is not None:
            expect(writes <= n_threads, f"{writes} writes for one pending wakeup")
        # Then with the loop thread polling meanwhile.
        barrier.reset()
        threads = [self.spawn(flood) for _ in range(n_threads)]
        deadline = t.backend.time() + self.slack * 5
        while any(thread.is_alive() for thread in threads):
            expect(t.poll(0.001) == {}, "the wakeup fd leaked into the results")
            expect(t.backend.time() < deadline, "wakeup() blocked under a flood while polling")
        t.poll(0)  # drain what the last wakeups left
        start = t.backend.time()
        t.poll(0.02)
        expect(t.backend.time() - start >= 0.02, "a drained flood left a wakeup behind")

    # -- errors and hang-ups -------------------------------------------------

    def test_hangup_reaches_reader(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        b.close()
        t.wait_for(a.fileno(), READ, self.slack)
        expect(a.recv(1) == b"", "EOF expected")

    def test_hangup_reaches_blocked_writer(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        self.fill(a)
        t.register(a.fileno(), WRITE)
        expect(t.poll(0) == {}, "a socket with full buffers was reported writable")
        b.close()
        t.wait_for(a.fileno(), WRITE, self.slack)

    if os.name == "posix":

        def pipe(self) -> tuple[int, int]:
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._cleanups += [lambda: _close_fd(r), lambda: _close_fd(w)]
            return r, w

        def test_pipe_hangup_reaches_reader(self) -> None:
            t = self.new_backend()
            r, w = self.pipe()
            t.register(r, READ)
            expect(t.poll(0) == {}, "an empty pipe was reported readable")
            os.close(w)  # POLLHUP without POLLIN on Linux
            t.wait_for(r, READ, self.slack)
            expect(os.read(r, 1) == b"", "EOF expected")

        def test_pipe_error_reaches_blocked_writer(self) -> None:
            t = self.new_backend()
            r, w = self.pipe()
            for _ in range(10_000):
                try:
                    os.write(w, b"x" * 65536)
                except BlockingIOError:
                    break
            t.register(w, WRITE)
            expect(t.poll(0) == {}, "a full pipe was reported writable")
            os.close(r)  # POLLERR on the write end
            t.wait_for(w, WRITE, self.slack)

    def test_connection_refused_reported(self) -> None:
        t = self.new_backend()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens on port now
        sock = socket.socket()
        self._cleanups.append(sock.close)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        expect(code in (0, errno.EINPROGRESS, errno.ECONNREFUSED, errno.EWOULDBLOCK), str(code))
        t.register(sock.fileno(), BOTH)
        t.wait_for(sock.fileno(), WRITE, self.slack)  # where asyncio's sock_connect waits
        if code != errno.ECONNREFUSED:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            expect(err == errno.ECONNREFUSED, f"SO_ERROR {err}")

    # -- lifecycle -----------------------------------------------------------

    def test_close_is_idempotent(self) -> None:
        t = self.new_backend()
        t.backend.close()
        t.backend.close()

    def test_closed_backend_raises_runtimeerror(self) -> None:
        t = self.new_backend()
        a, _ = self.socketpair()
        t.register(a.fileno(), READ)
        t.backend.close()
        expect_raises(RuntimeError, t.backend.register, a.fileno() + 1000, READ)
        expect_raises(RuntimeError, t.backend.modify, a.fileno(), WRITE)
        expect_raises(RuntimeError, t.backend.unregister, a.fileno())
        expect_raises(RuntimeError, t.backend.poll, 0)
        t.backend.wakeup()  # other threads race with close: no error
        t.backend.statistics()

    def test_close_leaves_registered_fds_open(self) -> None:
        t = self.new_backend()
        a, b = self.socketpair()
        t.register(a.fileno(), READ)
        t.backend.close()
        a.send(b"still open")
        expect(b.recv(100) == b"still open", "close() closed a registered fd")

    if os.path.isdir("/proc/self/fd"):

        def test_close_releases_own_fds(self) -> None:
            before = len(os.listdir("/proc/self/fd"))
            backend = type(self).factory()
            backend.wakeup()
            backend.poll(0)
            backend.close()
            after = len(os.listdir("/proc/self/fd"))
            expect(after == before, f"close() leaked {after - before} fds")

    # -- clock ---------------------------------------------------------------

    def test_time_is_monotonic(self) -> None:
        t = self.new_backend()
        previous = t.backend.time()
        for _ in range(10_000):
            now = t.backend.time()
            expect(now >= previous, f"time() went backwards: {previous} -> {now}")
            previous = now
        t.poll(0.02)
        expect(t.backend.time() - previous >= 0.02, "time() did not advance with poll(0.02)")
        resolution = t.backend.clock_resolution
        expect(0 < resolution < 1, f"clock_resolution {resolution!r}")


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass  # the check closed it already, on purpose


def run(factory: Callable[[], Backend]) -> list[tuple[str, BaseException | None]]:
    """Run every check against backends made by *factory*; ``(name, error or None)``."""
    suite = type("Conformance", (BackendConformance,), {"factory": staticmethod(factory)})
    results: list[tuple[str, BaseException | None]] = []
    for name in sorted(n for n in dir(suite) if n.startswith("test_")):
        instance = suite()
        instance.setup_method()
        error: BaseException | None = None
        try:
            getattr(instance, name)()
        except Exception as exc:
            error = exc
        finally:
            instance.teardown_method()
        results.append((name, error))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m sansloop.backends.conformance module:factory [...]``."""
    import importlib

    targets = sys.argv[1:] if argv is None else argv
    if not targets:
        print("usage: python -m sansloop.backends.conformance module:factory ...", file=sys.stderr)
        return 2
    failed = 0
    for target in targets:
        module_name, _, attr = target.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        results = run(factory)
        for name, error in results:
            print(f"{'FAIL' if error else 'ok  '} {target} {name}")
            if error is not None:
                traceback.print_exception(error, file=sys.stdout)
        failures = sum(error is not None for _, error in results)
        print(f"{target}: {len(results) - failures}/{len(results)} checks passed")
        failed += failures
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
