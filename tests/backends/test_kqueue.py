"""The kqueue backend, on Linux, against a stand-in for ``select.kqueue``.

Linux has no kqueue, so these tests drive ``KqueueBackend`` over
``fakekqueue`` (kqueue's rules emulated over poll(2), see that module). They
check the backend's own logic: which kevent changes it makes for each
register/modify/unregister, that a half-applied change is undone, how it
translates EV_EOF and EV_ERROR, its timeouts and ``max_events``, and the
whole backend conformance suite plus a running event loop on top of it.
What they cannot check is a real kernel's kqueue: that has not run here.
"""

from __future__ import annotations

import asyncio
import errno
import math
import select
import socket

import fakekqueue
import pytest

import sansloop
from sansloop.backends import available_backends, default_backend, get_backend
from sansloop.backends._readiness import MAX_TIMEOUT
from sansloop.backends.base import EVENT_READ, EVENT_WRITE
from sansloop.backends.conformance import BackendConformance
from sansloop.backends.kqueue import KqueueBackend
from sansloop.backends.wakeup import Wakeup

READ, WRITE, BOTH = EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE
FR, FW = fakekqueue.KQ_FILTER_READ, fakekqueue.KQ_FILTER_WRITE
ADD, DELETE = fakekqueue.KQ_EV_ADD, fakekqueue.KQ_EV_DELETE
EOF, ERROR = fakekqueue.KQ_EV_EOF, fakekqueue.KQ_EV_ERROR


def make(**kwargs: object) -> KqueueBackend:
    return KqueueBackend(select_module=fakekqueue.module(), **kwargs)  # type: ignore[arg-type]


class TestConformanceOverFakeKqueue(BackendConformance):
    factory = staticmethod(make)


class TestConformanceOverFakeKqueuePipeWakeup(BackendConformance):
    """The macOS configuration: no eventfd, a self-pipe wakes the kqueue."""

    factory = staticmethod(lambda: make(wakeup=Wakeup("pipe")))


@pytest.fixture
def backend():  # type: ignore[no-untyped-def]
    b = make()
    yield b
    b.close()


@pytest.fixture
def pair():  # type: ignore[no-untyped-def]
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def kq(backend: KqueueBackend) -> fakekqueue.kqueue:
    return backend._kq  # type: ignore[return-value]


def new_changes(backend: KqueueBackend, since: int) -> list[tuple[int, int, int]]:
    return kq(backend).changes[since:]


# -- being chosen ----------------------------------------------------------


@pytest.mark.skipif(hasattr(select, "kqueue"), reason="checks a platform without kqueue")
def test_not_offered_where_select_has_no_kqueue() -> None:
    assert "kqueue" not in available_backends()
    with pytest.raises(ValueError, match="kqueue"):
        get_backend("kqueue")
    with pytest.raises(ValueError, match="select.kqueue is missing"):
        KqueueBackend()
    backend = default_backend()  # still the platform's best (epoll on Linux)
    try:
        assert backend.name == available_backends()[0]
    finally:
        backend.close()


# -- registration: the kevent changes made ---------------------------------


def test_register_modify_unregister_changes(backend: KqueueBackend, pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    fd = a.fileno()
    start = len(kq(backend).changes)
    backend.register(fd, BOTH)
    assert new_changes(backend, start) == [(fd, FR, ADD), (fd, FW, ADD)]
    assert backend.statistics()["filters"] == 2
    mark = len(kq(backend).changes)
    backend.modify(fd, BOTH)  # unchanged: no syscall
    assert new_changes(backend, mark) == []
    backend.modify(fd, WRITE)
    assert new_changes(backend, mark) == [(fd, FR, DELETE)]
    mark = len(kq(backend).changes)
    backend.modify(fd, READ)  # add the new filter first, then delete the old
    assert new_changes(backend, mark) == [(fd, FR, ADD), (fd, FW, DELETE)]
    mark = len(kq(backend).changes)
    backend.unregister(fd)
    assert new_changes(backend, mark) == [(fd, FR, DELETE)]
    assert set(kq(backend).knotes) == {(backend._wakeup_fd, FR)}
    assert backend.statistics()["filters"] == 0


class _FailingWriteAdd(fakekqueue.kqueue):
    """Refuses EVFILT_WRITE additions with EPERM (after READ went in)."""

    def _register(self, ev: fakekqueue.kevent) -> int:
        if ev.filter == FW and ev.flags & ADD:
            return errno.EPERM
        return super()._register(ev)


class _FailingDelete(fakekqueue.kqueue):
    def _register(self, ev: fakekqueue.kevent) -> int:
        if ev.flags & DELETE and ev.filter == FW:
            return errno.EPERM
        return super()._register(ev)


def _with_kqueue(cls: type) -> KqueueBackend:
    mod = fakekqueue.module()
    mod.kqueue = cls
    return KqueueBackend(select_module=mod)


def test_half_applied_register_is_undone(pair) -> None:  # type: ignore[no-untyped-def]
    backend = _with_kqueue(_FailingWriteAdd)
    try:
        a, b = pair
        with pytest.raises(PermissionError):
            backend.register(a.fileno(), BOTH)
        assert (a.fileno(), FR) not in kq(backend).knotes  # the READ add was undone
        assert backend.statistics()["registered_fds"] == 0
        backend.register(a.fileno(), READ)  # and the fd can be registered again
        b.send(b"x")
        assert backend.poll(1.0) == [(a.fileno(), READ)]
        with pytest.raises(PermissionError):
            backend.modify(a.fileno(), WRITE)
        assert set(k for k in kq(backend).knotes if k[0] == a.fileno()) == {(a.fileno(), FR)}
        assert backend.poll(0) == [(a.fileno(), READ)]
    finally:
        backend.close()


def test_unexpected_unregister_error_propagates(pair) -> None:  # type: ignore[no-untyped-def]
    backend = _with_kqueue(_FailingDelete)
    try:
        a, _ = pair
        backend.register(a.fileno(), BOTH)
        with pytest.raises(PermissionError):
            backend.unregister(a.fileno())  # READ deleted, WRITE refused
        assert backend.statistics()["registered_fds"] == 1
        assert backend.statistics()["filters"] == 1
        assert backend.poll(0) == [(a.fileno(), WRITE)]  # what is left is what is reported
    finally:
        backend.close()


def test_unregister_after_close_is_counted(backend: KqueueBackend, pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    fd = a.fileno()
    backend.register(fd, BOTH)
    a.close()
    backend.unregister(fd)  # both EV_DELETEs fail with EBADF: the close removed them
    assert backend.statistics()["closed_unregisters"] == 1
    assert backend.statistics()["filters"] == 0
    with pytest.raises(KeyError):
        backend.unregister(fd)


def test_register_of_a_closed_fd_raises(backend: KqueueBackend) -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError) as info:
        backend.register(fd, READ)
    assert info.value.errno == errno.EBADF
    assert backend.statistics()["registered_fds"] == 0


# -- polling: arguments and translation ------------------------------------


def test_max_events_covers_every_filter(backend: KqueueBackend) -> None:
    socks = [socket.socketpair() for _ in range(3)]
    try:
        for a, _ in socks:
            backend.register(a.fileno(), BOTH)
        backend.poll(0)
        assert kq(backend).last_max_events == 3 * 2 + 1
        backend.modify(socks[0][0].fileno(), READ)
        backend.poll(0)
        assert kq(backend).last_max_events == 3 * 2
    finally:
        for a, b in socks:
            a.close()
            b.close()


@pytest.mark.parametrize(
    ("given", "passed"),
    [(None, None), (0, 0.0), (-1.0, 0.0), (-1e9, 0.0), (0.0015, 0.0015), (1e12, MAX_TIMEOUT),
     (math.inf, MAX_TIMEOUT)],
)  # fmt: skip
def test_timeouts_passed_to_kqueue(backend: KqueueBackend, given: float, passed: float) -> None:
    backend.wakeup()  # so that a blocking poll returns at once
    backend.poll(given)
    assert kq(backend).last_timeout == passed


def test_fake_refuses_what_cpython_refuses() -> None:
    # The clamping above is needed: CPython's kqueue.control rejects these.
    q = fakekqueue.kqueue()
    with pytest.raises(ValueError, match="positive"):
        q.control(None, 1, -0.5)
    with pytest.raises(TypeError):
        q.control(None, 1, math.inf)
    with pytest.raises(TypeError):
        q.control(None, 1, 1e12)
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.control(None, 1, 0)


def _translate(backend: KqueueBackend, fd: int, *events: fakekqueue.kevent) -> dict[int, int]:
    kq(backend).inject(*events)
    return dict(backend.poll(0))


@pytest.mark.parametrize(
    ("registered", "kfilter", "flags", "expected"),
    [
        (BOTH, FR, 0, READ),
        (BOTH, FW, 0, WRITE),
        (BOTH, FR, EOF, READ),  # a half-close: the socket can still send
        (BOTH, FW, EOF, BOTH),  # nothing more can be sent: a hang-up
        (WRITE, FW, EOF, WRITE),
        (READ, FR, EOF, READ),
        (BOTH, FR, ERROR, BOTH),  # a failed change: every registered event
        (READ, FW, ERROR, READ),
    ],
)
def test_event_translation(  # type: ignore[no-untyped-def]
    backend: KqueueBackend, pair, registered: int, kfilter: int, flags: int, expected: int
) -> None:
    a, _ = pair
    fd = a.fileno()
    backend.register(fd, registered)
    if registered & WRITE:
        # Fill the send buffer so that poll(2) itself reports nothing for fd.
        try:
            while True:
                a.send(b"x" * 65536)
        except BlockingIOError:
            pass
    assert backend.poll(0) == []
    assert _translate(backend, fd, fakekqueue.kevent(fd, kfilter, flags)) == {fd: expected}


def test_two_filters_merge_into_one_entry(backend: KqueueBackend, pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    b.send(b"x")
    backend.register(a.fileno(), BOTH)
    result = backend.poll(1.0)
    assert result == [(a.fileno(), BOTH)]


def test_events_nobody_asked_for_are_dropped_and_counted(backend: KqueueBackend, pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    backend.register(a.fileno(), READ)
    stray = fakekqueue.kevent(b.fileno(), FR, 0)  # not registered
    wrong_filter = fakekqueue.kevent(a.fileno(), FW, 0)  # WRITE was not asked for
    assert _translate(backend, a.fileno(), stray, wrong_filter) == {}
    assert backend.statistics()["stale_events"] == 2


def test_half_close_does_not_report_a_full_socket_writable(backend: KqueueBackend, pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    backend.register(a.fileno(), BOTH)
    assert backend.poll(0) == []
    b.shutdown(socket.SHUT_WR)  # EV_EOF on a's read filter only
    assert backend.poll(1.0) == [(a.fileno(), READ)]
    assert a.recv(1) == b""


def test_closed_fd_is_no_longer_watched(backend: KqueueBackend, pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    fd = a.fileno()
    backend.register(fd, BOTH)
    assert backend.poll(0) == [(fd, WRITE)]
    a.close()
    assert backend.poll(0) == []  # closing removed the knotes, as kqueue does
    assert backend.statistics()["registered_fds"] == 1  # until the owner unregisters
    backend.unregister(fd)


# -- a loop on it ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["loop", "full"])
def test_event_loop_runs_on_it(mode: str) -> None:
    loop = sansloop.EventLoop(make(), mode=mode)

    async def main() -> bool:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        try:
            payload = bytes(range(256)) * 4096  # 1 MiB: the writer must wait for room
            sender = asyncio.ensure_future(loop.sock_sendall(a, payload))
            got = bytearray()
            while len(got) < len(payload):
                got += await loop.sock_recv(b, 65536)
            await sender
            threaded = loop.create_future()
            loop.call_soon_threadsafe(threaded.set_result, "woken")
            assert await threaded == "woken"
            await asyncio.sleep(0.01)
            return bytes(got) == payload
        finally:
            a.close()
            b.close()

    try:
        assert loop.run_until_complete(main()) is True
    finally:
        loop.close()
