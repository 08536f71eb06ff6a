"""The facts each backend file opens with, checked on the real mechanism.

The conformance suite checks the contract every backend shares; these check
what is particular to ours: epoll's stale registrations after close with a
surviving dup, poll's POLLNVAL, hang-ups as read *and* write, maxevents.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
from collections.abc import Iterator

import pytest

from sansloop.backends import EVENT_READ, EVENT_WRITE, Backend, get_backend

READ, WRITE, BOTH = EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE
OURS = [n for n in ("epoll", "poll", "selectors") if n != "epoll" or hasattr(select, "epoll")]


@pytest.fixture(params=OURS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    b = get_backend(request.param)
    yield b
    b.close()


def test_pure_hangup_is_reported_as_every_registered_event(backend: Backend) -> None:
    r, w = os.pipe()
    try:
        backend.register(r, BOTH)  # a pipe's read end is never writable...
        assert backend.poll(0) == []
        os.close(w)  # ...but a hang-up (POLLHUP alone on Linux) is both
        assert backend.poll(0) == [(r, BOTH)]
        backend.unregister(r)
    finally:
        os.close(r)


def test_one_poll_reports_more_than_fd_setsize_fds(backend: Backend) -> None:
    pairs = [socket.socketpair() for _ in range(1100)]
    try:
        for a, b in pairs:
            backend.register(a.fileno(), READ)
            b.send(b"x")
        ready = backend.poll(0)
        assert len(ready) == 1100
        assert backend.statistics()["registered_fds"] == 1100
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_statistics_counts_polls_and_writes(backend: Backend) -> None:
    for _ in range(1000):
        backend.wakeup()
    backend.poll(None)
    backend.poll(0)
    stats = backend.statistics()
    assert stats["wakeups"] == 1
    assert stats["polls"] == 2
    assert stats["registered_fds"] == 0
    assert stats["backend"] == backend.name


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
class TestEpollStaleFds:
    def test_closed_fd_with_a_dup_stays_in_epoll(self) -> None:
        backend = get_backend("epoll")
        a, b = socket.socketpair()
        fd = a.fileno()
        dup = os.dup(fd)
        try:
            backend.register(fd, READ)
            a.close()  # the dup keeps the file description, so epoll keeps it
            b.send(b"x")
            # Still registered with us: reported, and the callback's recv
            # fails with EBADF, so the owner's bug is seen.
            assert backend.poll(0) == [(fd, READ)]
            backend.unregister(fd)  # EBADF: accepted, since we had it registered
            assert backend.statistics()["closed_unregisters"] == 1
            # The kernel's registration cannot be removed any more (DEL needs
            # an open fd): it keeps firing under the old number; we drop it.
            assert backend.poll(0) == []
            assert backend.poll(0) == []
            assert backend.statistics()["stale_events"] == 2
            os.close(dup)  # the last reference: now the kernel forgets it
            dup = -1
            assert backend.poll(0) == []
            assert backend.statistics()["stale_events"] == 2
        finally:
            if dup >= 0:
                os.close(dup)
            b.close()
            backend.close()

    def test_unregister_of_reused_number_is_enoent_and_accepted(self) -> None:
        backend = get_backend("epoll")
        a, b = socket.socketpair()
        fd = a.fileno()
        backend.register(fd, READ)
        a.close()
        c = socket.socket()  # most likely takes fd's number
        try:
            backend.unregister(fd)
            assert backend.statistics()["closed_unregisters"] == 1
            assert backend.statistics()["registered_fds"] == 0
            with pytest.raises(KeyError):
                backend.unregister(fd)  # a second time is a bug: not swallowed
        finally:
            c.close()
            b.close()
            backend.close()

    def test_other_epoll_errors_propagate(self) -> None:
        backend = get_backend("epoll")
        r, w = os.pipe()
        try:
            with pytest.raises(PermissionError):  # EPERM: a regular file
                with open(__file__, "rb") as f:
                    backend.register(f.fileno(), READ)
            assert backend.statistics()["registered_fds"] == 0
            backend.register(r, READ)
        finally:
            backend.close()
            os.close(r)
            os.close(w)


def test_poll_reports_pollnval_for_a_closed_registered_fd() -> None:
    backend = get_backend("poll")
    r, w = os.pipe()
    try:
        backend.register(r, READ)
        os.close(r)  # closed while registered: the owner's bug
        assert backend.poll(0) == [(r, READ)]  # POLLNVAL reaches the callback
        with pytest.raises(OSError):
            os.read(r, 1)  # ... whose read fails with EBADF: the bug is seen
        backend.unregister(r)
        assert backend.poll(0) == []
    finally:
        os.close(w)
        backend.close()


def test_registering_the_wakeup_fd_is_refused(backend: Backend) -> None:
    fd = backend._wakeup.fileno()  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        backend.register(fd, READ)
    with pytest.raises(KeyError):
        backend.unregister(fd)
    with pytest.raises(KeyError):
        backend.modify(fd, READ)


# -- EINTR: a signal landing on the polling thread (PEP 475 retries) ----------
#
# A signal that arrives after the interpreter's last check but before the
# syscall starts does not interrupt it: its Python handler runs only when the
# poll returns. That is why signal.set_wakeup_fd exists, and why these tests
# repeat the signal until the poll has returned rather than send it once.


class _Boom(Exception):
    pass


def _signal_main_thread(go: threading.Event, stop: threading.Event, times: int) -> threading.Thread:
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main

    def kill() -> None:
        go.wait(10)
        for _ in range(times):
            signal.pthread_kill(main, signal.SIGUSR1)
            if stop.wait(0.005):
                return

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


@pytest.fixture
def usr1() -> Iterator[list[int]]:
    calls: list[int] = []
    previous = signal.getsignal(signal.SIGUSR1)
    yield calls
    signal.signal(signal.SIGUSR1, previous)


def test_eintr_is_retried_with_the_remaining_timeout(backend: Backend, usr1: list[int]) -> None:
    signal.signal(signal.SIGUSR1, lambda *_: usr1.append(1))
    go, stop = threading.Event(), threading.Event()
    thread = _signal_main_thread(go, stop, times=5)
    start = backend.time()
    go.set()
    assert backend.poll(0.2) == []
    elapsed = backend.time() - start
    stop.set()
    thread.join(10)
    assert usr1  # handlers ran...
    assert elapsed >= 0.2  # ...and did not cut the timeout short


def test_a_signal_handler_that_wakes_the_backend_ends_the_poll(
    backend: Backend, usr1: list[int]
) -> None:
    signal.signal(signal.SIGUSR1, lambda *_: backend.wakeup())
    go, stop = threading.Event(), threading.Event()
    thread = _signal_main_thread(go, stop, times=400)
    start = backend.time()
    go.set()
    assert backend.poll(5.0) == []
    elapsed = backend.time() - start
    stop.set()
    thread.join(10)
    assert elapsed < 2.0


def test_a_signal_handler_that_raises_leaves_poll(backend: Backend, usr1: list[int]) -> None:
    def boom(*_: object) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: None)  # raise once
        raise _Boom

    signal.signal(signal.SIGUSR1, boom)
    go, stop = threading.Event(), threading.Event()
    thread = _signal_main_thread(go, stop, times=400)
    start = backend.time()
    try:
        with pytest.raises(_Boom):
            go.set()
            backend.poll(5.0)
    finally:
        stop.set()
        thread.join(10)
    assert backend.time() - start < 2.0
    assert backend.poll(0) == []  # still usable afterwards
