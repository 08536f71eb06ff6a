"""The backend conformance suite against SimBackend, adapted where it needs real fds.

The suite makes its sockets with ``socket.socketpair()``/``socket.socket()``;
here they come from the backend under test (``SimBackend.socketpair``,
``SimBackend.socket``), since a simulated backend polls only simulated fds.
Checks that need something the simulation deliberately does not have are
replaced by the simulation's own contract for the same situation:

- pipes (``os.pipe``): a real fd is refused at register() with
  NondeterminismError instead of being polled;
- ``poll(None)`` woken by another thread: there is no other thread in a
  simulated run; ``poll(None)`` with nothing scheduled raises Deadlock at
  once, and a wakeup() made before it makes it return;
- "close releases the backend's own fds": a SimBackend opens no real fd.
"""

from __future__ import annotations

import os
import socket

import pytest

from sansloop import sim
from sansloop.backends.conformance import READ, BackendConformance, expect


class TestConformance_sim(BackendConformance):
    factory = staticmethod(lambda: sim.SimBackend(seed=1, guard=False))

    def new_backend(self):  # type: ignore[no-untyped-def]
        tracked = super().new_backend()
        self._backend = tracked.backend
        return tracked

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = self._backend.socketpair()
        self._cleanups += [a.close, b.close]
        a.setblocking(False)
        b.setblocking(False)
        return a, b

    def test_connection_refused_reported(self) -> None:
        import errno

        t = self.new_backend()
        sock = self._backend.socket()
        self._cleanups.append(sock.close)
        sock.setblocking(False)
        assert sock.connect_ex(("127.0.0.1", 9)) == errno.EINPROGRESS
        t.register(sock.fileno(), READ | 2)
        t.wait_for(sock.fileno(), 2, self.slack)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED

    def test_pipe_hangup_reaches_reader(self) -> None:
        t = self.new_backend()
        r, w = os.pipe()
        self._cleanups += [lambda: os.close(r), lambda: os.close(w)]
        with pytest.raises(sim.NondeterminismError):
            t.register(r, READ)

    def test_pipe_error_reaches_blocked_writer(self) -> None:
        self.test_pipe_hangup_reaches_reader()

    def test_wakeup_from_thread_unblocks_poll_none(self) -> None:
        t = self.new_backend()
        with pytest.raises(sim.Deadlock):
            t.poll(None)
        t.backend.wakeup()
        expect(t.poll(None) == {}, "a wakeup before poll(None) did not make it return")

    def test_wakeup_flood_from_threads(self) -> None:
        t = self.new_backend()
        for _ in range(10_000):
            t.backend.wakeup()
        expect(t.poll(None) == {}, "flood of wakeups")
        start = t.backend.time()
        t.poll(0.02)
        expect(t.backend.time() - start >= 0.02, "a drained flood left a wakeup behind")

    def test_close_releases_own_fds(self) -> None:
        before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
        backend = sim.SimBackend(seed=2, guard=False)
        backend.close()
        after = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
        assert after <= before
