"""ChaosBackend itself: each fault is the kernel's, drawn from the seed, recorded.

The soak (test_chaos_soak.py) shows the loop survives the faults; these show
the wrapper makes them as documented in sansloop.backends.chaos.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

import sansloop
from sansloop.backends.base import EVENT_READ
from sansloop.backends.chaos import ChaosBackend, ChaosSocket, FaultRates
from sansloop.compat.loop import EventLoop


def chaos(seed: int = 0, **rates: float) -> ChaosBackend:
    return ChaosBackend(sansloop.get_backend("epoll"), seed=seed, rates=FaultRates(**rates))


def pair(backend: ChaosBackend) -> tuple[socket.socket, socket.socket]:
    """A non-blocking connected pair: the first end adopted by *backend*."""
    a, b = socket.socketpair()
    a = backend.adopt(a)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def drive(backend: ChaosBackend, rounds: int = 300) -> list[tuple[str, str, object]]:
    """A fixed sequence of calls on one adopted socket; the faults it met."""
    a, b = pair(backend)
    try:
        for i in range(rounds):
            try:
                a.send(bytes(100 + i))
            except (BlockingIOError, InterruptedError):
                pass
            try:
                a.recv(10)
            except (BlockingIOError, InterruptedError):
                pass
            b.send(b"x" * 3)
            while True:
                try:
                    b.recv(65536)
                except BlockingIOError:
                    break
        return [(f.kind, f.call, f.detail) for f in backend.faults]
    finally:
        a.close()
        b.close()
        backend.close()


def test_the_same_seed_and_calls_make_the_same_faults() -> None:
    rates = {"eagain": 0.2, "eintr": 0.1, "short_write": 0.3, "short_read": 0.2}
    first = drive(chaos(7, **rates))
    assert first == drive(chaos(7, **rates))
    assert first != drive(chaos(8, **rates))
    kinds = {kind for kind, _, _ in first}
    assert kinds == {"eagain", "eintr", "short_write", "short_read"}


def test_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="eagain"):
        FaultRates(eagain=1.5)
    with pytest.raises(ValueError, match="must not exceed 1"):
        FaultRates(eagain=0.6, eintr=0.6)
    with pytest.raises(ValueError, match="reset_within"):
        FaultRates(reset_within=0)
    with pytest.raises(TypeError):
        ChaosBackend(object())  # type: ignore[arg-type]


def test_short_writes_send_what_they_report_and_no_more() -> None:
    backend = chaos(3, short_write=1.0)
    a, b = pair(backend)
    try:
        data = os.urandom(1000)
        sent = a.send(data)
        assert 1 <= sent < len(data)
        assert b.recv(4096) == data[:sent]
        n = a.sendmsg([data[:10], memoryview(data)[10:]])
        assert 1 <= n < len(data)
        assert b.recv(4096) == data[:n]
    finally:
        a.close()
        b.close()
        backend.close()


def test_eagain_and_eintr_leave_the_bytes_where_they_were() -> None:
    backend = chaos(1, eagain=0.5, eintr=0.5)
    a, b = pair(backend)
    try:
        b.send(b"hello")
        with pytest.raises((BlockingIOError, InterruptedError)):
            a.recv(100)
        backend.rates = FaultRates()  # rates may be changed at any time
        assert a.recv(100) == b"hello"
        assert [f.kind for f in backend.faults] in (["eagain"], ["eintr"])
    finally:
        a.close()
        b.close()
        backend.close()


def test_blocking_sockets_are_never_faulted() -> None:
    backend = chaos(eagain=1.0)
    a, b = socket.socketpair()
    a = backend.adopt(a)
    try:
        assert isinstance(a, ChaosSocket)
        b.sendall(b"data")
        assert a.recv(4) == b"data"
        assert a.send(b"back") == 4
        assert b.recv(4) == b"back"
        assert backend.faults == []
    finally:
        a.close()
        b.close()
        backend.close()


def test_reset_at_an_offset_then_epipe_and_the_peer_sees_a_real_rst() -> None:
    backend = chaos(5, reset=1.0, reset_within=1000)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = backend.socket()
        client.setblocking(False)
        try:
            client.connect(listener.getsockname())
        except BlockingIOError:
            pass
        peer, _ = listener.accept()
        client.setblocking(True)  # blocking: no EAGAIN, resets still apply
        offset = backend.faults[0].detail
        assert backend.faults[0].kind == "reset_armed" and 0 <= offset < 1000
        data = bytes(range(256)) * 8
        sent = 0
        with pytest.raises(ConnectionResetError):
            while True:
                sent += client.send(data[sent:])
        assert sent == offset
        assert [r.offset for r in backend.resets] == [offset]
        assert backend.resets[0].peername == listener.getsockname()
        with pytest.raises(BrokenPipeError):
            client.send(b"more")
        assert client.recv(10) == b""
        client.close()
        peer.settimeout(5)
        got = b""
        with pytest.raises(ConnectionResetError):
            while chunk := peer.recv(4096):
                got += chunk
        assert got == data[:offset]
        peer.close()
    finally:
        listener.close()
        backend.close()


def test_spurious_readiness_is_ready_then_eagain() -> None:
    backend = chaos(2, spurious=1.0)
    a, b = pair(backend)
    try:
        backend.register(a.fileno(), EVENT_READ)
        assert backend.poll(0) == [(a.fileno(), EVENT_READ)]  # nothing to read
        with pytest.raises(BlockingIOError):
            a.recv(10)
        b.send(b"x")
        assert backend.poll(0) == [(a.fileno(), EVENT_READ)]  # really ready now
        assert a.recv(10) == b"x"
        backend.unregister(a.fileno())
        assert backend.counts["spurious"] == 1
        assert backend.counts["spurious_eagain"] == 1
    finally:
        a.close()
        b.close()
        backend.close()


def test_emfile_on_accept_backs_off_and_the_connection_waits_in_the_backlog() -> None:
    backend = chaos(emfile=1.0)
    loop = EventLoop(backend)
    reports: list[str] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))

    async def main() -> float:
        accepted = loop.create_future()

        class Accepted(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if not accepted.done():
                    accepted.set_result(loop.time())

        server = await loop.create_server(Accepted, "127.0.0.1", 0)
        server_port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", server_port)
        while not backend.counts["emfile"]:
            await asyncio.sleep(0)
        failed_at = loop.time()
        backend.rates = FaultRates()  # fds are back
        accepted_at = await asyncio.wait_for(accepted, 10)
        transport.close()
        server.close()
        await server.wait_closed()
        return accepted_at - failed_at

    try:
        waited = loop.run_until_complete(main())
    finally:
        loop.close()
    # One report per episode, one failed accept (no spinning), then the retry
    # after the backoff takes the connection that waited in the backlog.
    assert reports == ["socket.accept() out of system resource"]
    assert backend.counts["emfile"] == 1
    assert 0.5 <= waited <= 5


@pytest.mark.parametrize("seed", range(5))
def test_pipes_carry_every_byte_through_faults(seed: int) -> None:
    backend = chaos(seed, eagain=0.2, eintr=0.05, short_write=0.3, short_read=0.3, spurious=0.1)
    loop = EventLoop(backend)
    data = os.urandom(256 * 1024)

    async def main() -> bytes:
        read_fd, write_fd = os.pipe()
        reader = asyncio.StreamReader()
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
        )
        write_transport, write_protocol = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(write_fd, "wb", 0)
        )
        for start in range(0, len(data), 10_000):
            write_transport.write(data[start : start + 10_000])
        write_transport.close()
        got = await reader.read()
        read_transport.close()
        return got

    try:
        got = loop.run_until_complete(main())
    finally:
        loop.close()
    assert got == data
    assert backend.counts["short_write"] + backend.counts["short_read"] > 0, dict(backend.counts)


def test_every_backend_method_is_the_inner_backends_or_faulted() -> None:
    """A method added to the Backend interface must be delegated, not inherited."""
    from sansloop.backends.base import Backend

    public = {name for name in vars(Backend) if not name.startswith("_")}
    own = set(vars(ChaosBackend))
    assert public - {"name", "time", "clock_resolution"} <= own


def test_children_are_spawned_and_watched_by_the_inner_backend() -> None:
    backend = chaos(3, eagain=0.3, short_read=0.3)
    loop = EventLoop(backend)

    async def main() -> tuple[int | None, bytes]:
        proc = await asyncio.create_subprocess_exec("printf", "ok", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return proc.returncode, out

    try:
        assert loop.run_until_complete(main()) == (0, b"ok")
    finally:
        loop.close()
