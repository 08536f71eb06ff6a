"""SocketTransport behaviour, side by side with asyncio's selector transport.

Each scenario runs on stdlib asyncio's own loop (its transport made by
``loop._make_socket_transport``, the reference) and on sansloop loops (loop
mode on each backend, full mode) with ``SocketTransport`` built directly, over
real socket pairs (Unix and loopback TCP). A scenario that passes on asyncio
and fails on sansloop is a sansloop bug.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.compat.sockettransport import SocketTransport

# CPython 3.12.0-3.12.8 and 3.13.0-3.13.1: writelines() never paused (CVE-2024-12254).
_STDLIB_WRITELINES_NEVER_PAUSES = (3, 12) <= sys.version_info[:3] < (3, 12, 9) or (
    3,
    13,
) <= sys.version_info[:3] < (3, 13, 2)


FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "sansloop-epoll": lambda: sansloop.new_event_loop("epoll"),
    "sansloop-poll": lambda: sansloop.new_event_loop("poll"),
    "sansloop-selectors": lambda: sansloop.new_event_loop("selectors"),
    "sansloop-full": sansloop.compat.new_event_loop,
}


@pytest.fixture(params=list(FACTORIES))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FACTORIES[request.param]()
    yield the_loop
    the_loop.close()


def make_transport(
    loop: Any, sock: socket.socket, protocol: Any, waiter: Any = None
) -> asyncio.Transport:
    """The loop's own stream transport for *sock*."""
    if isinstance(loop, sansloop.EventLoop):
        return SocketTransport(loop, sock, protocol, waiter)
    sock.setblocking(False)  # asyncio's callers do this before making the transport
    return loop._make_socket_transport(sock, protocol, waiter)  # type: ignore[no-any-return]


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair (socketpair() is Unix-only on Linux)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


class Recorder(asyncio.Protocol):
    """Records every callback; ``lost`` resolves with connection_lost's argument."""

    def __init__(self, loop: Any, keep_open: bool = False) -> None:
        self.events: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        self.keep_open = keep_open
        self.lost = loop.create_future()
        self.eof = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert type(data) is bytes
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        if not self.eof.done():  # asyncio can deliver EOF twice (see below)
            self.eof.set_result(None)
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))
        if not self.lost.done():
            self.lost.set_result(exc)


async def recv_all(loop: Any, sock: socket.socket) -> bytes:
    """Read *sock* to EOF with the loop's sock_recv."""
    sock.setblocking(False)
    chunks = []
    while True:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def recv_exactly(loop: Any, sock: socket.socket, n: int) -> bytes:
    sock.setblocking(False)
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, n - len(got))
        assert chunk, "EOF before the expected bytes"
        got += chunk
    return bytes(got)


def test_connection_made_data_waiter_and_extra_info(loop: Any) -> None:
    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        waiter = loop.create_future()
        tr = make_transport(loop, a, proto, waiter)
        assert proto.events == []  # connection_made is scheduled, not called
        await waiter
        assert proto.events == ["made"] and proto.transport is tr
        info_sock = tr.get_extra_info("socket")
        assert isinstance(info_sock, asyncio.trsock.TransportSocket)
        assert info_sock.fileno() == a.fileno()
        assert tr.get_extra_info("sockname") == a.getsockname()
        assert tr.get_extra_info("peername") == b.getsockname()
        assert tr.get_extra_info("nothing", "dflt") == "dflt"
        assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) in (0, 1)
        b.setblocking(False)
        await loop.sock_sendall(b, b"hello ")
        await loop.sock_sendall(b, b"world")
        while len(proto.data) < 11:
            await asyncio.sleep(0)
        assert bytes(proto.data) == b"hello world"
        tr.write(b"back")
        tr.write(bytearray(b" at"))
        tr.write(memoryview(b" you"))
        assert await recv_exactly(loop, b, 11) == b"back at you"
        assert tr.get_protocol() is proto
        assert tr.is_reading() and not tr.is_closing()
        tr.close()
        assert tr.is_closing() and not tr.is_reading()
        assert await proto.lost is None
        assert await recv_all(loop, b) == b""
        b.close()
        assert proto.events == ["made", ("lost", None)]

    loop.run_until_complete(main())


def test_close_flushes_then_loses_once(loop: Any) -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB: more than the kernel takes at once

    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        tr.close()  # twice is a no-op
        assert tr.is_closing()
        received = await recv_all(loop, b)
        assert received == payload
        assert await proto.lost is None
        await asyncio.sleep(0)
        b.close()
        assert proto.events.count(("lost", None)) == 1

    loop.run_until_complete(main())


def test_abort_discards_buffer(loop: Any) -> None:
    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.write(b"x" * (8 * 1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        tr.abort()
        tr.close()
        assert tr.is_closing()
        assert await proto.lost is None
        tr.abort()
        tr.close()
        received = await recv_all(loop, b)
        assert len(received) < 8 * 1024 * 1024
        b.close()
        assert [e for e in proto.events if e != "pause"] == ["made", ("lost", None)]

    loop.run_until_complete(main())


def test_peer_eof_closes_unless_kept_open(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        make_transport(loop, a, proto)
        b.shutdown(socket.SHUT_WR)
        await proto.eof
        assert await proto.lost is None
        b.close()

        a, b = socket.socketpair()
        proto = Recorder(loop, keep_open=True)
        tr = make_transport(loop, a, proto)
        b.shutdown(socket.SHUT_WR)
        await proto.eof
        assert not tr.is_closing()
        tr.write(b"still here")
        assert await recv_exactly(loop, b, 10) == b"still here"
        tr.close()
        assert await proto.lost is None
        assert proto.events == ["made", "eof", ("lost", None)]
        b.close()

    loop.run_until_complete(main())


def test_write_eof(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        assert tr.can_write_eof()
        tr.write(b"last words")
        tr.write_eof()
        tr.write_eof()
        with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
            tr.write(b"more")
        assert not tr.is_closing()
        assert await recv_all(loop, b) == b"last words"
        # reading goes on after our write EOF
        await loop.sock_sendall(b, b"reply")
        while len(proto.data) < 5:
            await asyncio.sleep(0)
        assert bytes(proto.data) == b"reply"
        b.close()
        assert await proto.lost is None
        assert proto.events == ["made", "eof", ("lost", None)]

    loop.run_until_complete(main())


def test_write_eof_after_buffered_data_flushes_first(loop: Any) -> None:
    payload = b"y" * (4 * 1024 * 1024)

    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        tr.write_eof()
        assert await recv_all(loop, b) == payload
        tr.close()
        assert await proto.lost is None
        b.close()

    loop.run_until_complete(main())


def test_pause_resume_reading_idempotent(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.pause_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        b.sendall(b"held")
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.resume_reading()
        tr.resume_reading()
        assert tr.is_reading()
        while len(proto.data) < 4:
            await asyncio.sleep(0)
        assert proto.data == b"held"
        tr.close()
        tr.pause_reading()  # no-ops once closing
        tr.resume_reading()
        assert not tr.is_reading()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_write_buffer_limits(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        tr = make_transport(loop, a, Recorder(loop))
        await asyncio.sleep(0)
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        tr.set_write_buffer_limits(high=0)
        assert tr.get_write_buffer_limits() == (0, 0)
        with pytest.raises(ValueError, match=r"high \(1\) must be >= low \(2\) must be >= 0"):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError, match=r"high \(-4\) must be >= low \(-1\) must be >= 0"):
            tr.set_write_buffer_limits(high=-4)
        assert tr.get_write_buffer_size() == 0
        tr.close()
        await asyncio.sleep(0)
        b.close()

    loop.run_until_complete(main())


async def fill_until_paused_then_drain(
    tr: Any, proto: Recorder, b: socket.socket, how: str
) -> None:
    loop = asyncio.get_running_loop()
    tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
    chunk = b"z" * 65536
    sent = 0
    # Fill the kernel buffers and then ours, until the protocol is paused.
    for _ in range(2000):
        if how == "write":
            tr.write(chunk)
        else:
            tr.writelines([chunk[:1000], chunk[1000:]])
        sent += len(chunk)
        if "pause" in proto.events:
            break
    assert proto.events == ["made", "pause"]
    assert tr.get_write_buffer_size() > 64 * 1024
    got = await recv_exactly(loop, b, sent)
    assert len(got) == sent
    assert proto.events == ["made", "pause", "resume"]
    assert tr.get_write_buffer_size() == 0
    tr.close()
    await proto.lost


async def cleanup(tr: Any, proto: Recorder, b: socket.socket) -> None:
    """Abort *tr* and close the peer, even after a failed assertion (xfail runs)."""
    if not proto.lost.done():
        # (asyncio's transport fails on abort() after a flushed close())
        tr.abort()
        await proto.lost
    b.close()


@pytest.mark.parametrize("how", ["write", "writelines"])
def test_pause_and_resume_writing_alternate(
    loop: Any, how: str, request: pytest.FixtureRequest
) -> None:
    if how == "writelines" and "asyncio" in request.node.callspec.id:
        if _STDLIB_WRITELINES_NEVER_PAUSES:
            request.applymarker(pytest.mark.xfail(reason="CVE-2024-12254", strict=True))

    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        try:
            await fill_until_paused_then_drain(tr, proto, b, how)
        finally:
            await cleanup(tr, proto, b)

    loop.run_until_complete(main())


def test_set_limits_pauses_at_once(loop: Any) -> None:
    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.set_write_buffer_limits(high=10**9)
        for _ in range(2000):
            tr.write(b"q" * 65536)
            if tr.get_write_buffer_size() > 100:
                break
        assert proto.events == ["made"]
        tr.set_write_buffer_limits(high=10)
        assert proto.events == ["made", "pause"]
        tr.abort()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_pause_writing_exception_goes_to_handler(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []

    class Failing(Recorder):
        def pause_writing(self) -> None:
            raise ZeroDivisionError

    async def main() -> None:
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        a, b = tcp_pair()
        proto = Failing(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        for _ in range(2000):
            tr.write(b"q" * 65536)
            if tr.get_write_buffer_size() > 65536:
                break
        assert len(contexts) == 1
        assert contexts[0]["message"] == "protocol.pause_writing() failed"
        assert isinstance(contexts[0]["exception"], ZeroDivisionError)
        assert contexts[0]["transport"] is tr and contexts[0]["protocol"] is proto
        tr.abort()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_write_type_errors(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
            tr.write("text")  # type: ignore[arg-type]
        tr.write(b"")
        tr.writelines([])
        tr.close()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_writes_after_connection_lost_are_counted(
    loop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.close()
        await proto.lost
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(4):
                tr.write(b"lost")
            assert caplog.records == []
            tr.write(b"lost")
            tr.write(b"lost")
        assert [r.getMessage() for r in caplog.records] == ["socket.send() raised exception."] * 2
        b.close()

    loop.run_until_complete(main())


def test_peer_reset_loses_connection_with_error(loop: Any) -> None:
    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        make_transport(loop, a, proto)
        await asyncio.sleep(0)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        b.close()  # RST
        exc = await proto.lost
        assert isinstance(exc, ConnectionResetError)
        assert proto.events == ["made", ("lost", exc)]

    loop.run_until_complete(main())


def test_write_to_reset_peer(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.pause_reading()
        b.close()
        tr.write(b"into the void")
        exc = await proto.lost
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
        assert tr.is_closing()

    loop.run_until_complete(main())


def test_data_received_exception_is_fatal(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []

    class Failing(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ValueError("bad data")

    async def main() -> None:
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        a, b = socket.socketpair()
        proto = Failing(loop)
        tr = make_transport(loop, a, proto)
        b.sendall(b"boom")
        exc = await proto.lost
        assert isinstance(exc, ValueError)
        assert [c["message"] for c in contexts] == [
            "Fatal error: protocol.data_received() call failed."
        ]
        assert contexts[0]["transport"] is tr
        b.close()

    loop.run_until_complete(main())


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop: Any) -> None:
        self.buf = bytearray(1000)
        self.data = bytearray()
        self.lost = loop.create_future()
        self.sizes: list[int] = []

    def get_buffer(self, sizehint: int) -> bytearray:
        self.sizes.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buf[:nbytes]

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def test_buffered_protocol_receives_in_place(loop: Any) -> None:
    payload = bytes(range(256)) * 400

    async def main() -> None:
        a, b = socket.socketpair()
        proto = Buffered(loop)
        make_transport(loop, a, proto)
        b.setblocking(False)
        await loop.sock_sendall(b, payload)
        b.shutdown(socket.SHUT_WR)
        assert await proto.lost is None
        assert bytes(proto.data) == payload
        assert set(proto.sizes) == {-1}
        b.close()

    loop.run_until_complete(main())


def test_set_protocol_switches_receiver(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        first = Recorder(loop)
        tr = make_transport(loop, a, first)
        await asyncio.sleep(0)
        second = Buffered(loop)
        tr.set_protocol(second)
        assert tr.get_protocol() is second
        b.sendall(b"to the second")
        b.shutdown(socket.SHUT_WR)
        assert await second.lost is None
        assert second.data == b"to the second" and first.data == b""
        b.close()

    loop.run_until_complete(main())


def test_unclosed_transport_warns(loop: Any) -> None:
    a, b = socket.socketpair()
    tr = make_transport(loop, a, asyncio.Protocol())
    loop.run_until_complete(asyncio.sleep(0))
    assert "fd=" in repr(tr)
    tr.pause_reading()  # the loop no longer holds the transport's read callback
    ident = id(tr)
    with warnings.catch_warnings(record=True) as caught:
        # Only this transport's warning is asserted: garbage left by other
        # tests may warn in the same collection.
        warnings.simplefilter("always")
        del tr
        gc.collect()
    ours = [w for w in caught if id(w.source) == ident]
    assert "unclosed transport" in str(ours[0].message)
    assert len(ours) == 1 and ours[0].category is ResourceWarning
    assert a.fileno() == -1
    b.close()


def test_repr(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        fd = a.fileno()
        await asyncio.sleep(0)
        assert repr(tr).startswith("<")
        assert f"fd={fd}" in repr(tr) and "read=polling" in repr(tr)
        tr.close()
        assert "closing" in repr(tr)
        await proto.lost
        assert "closed" in repr(tr)
        b.close()

    loop.run_until_complete(main())


def test_streams_on_transport(loop: Any) -> None:
    """Streams run on the transport: asyncio's own in loop mode, sansloop's in full mode."""
    streams: Any = sansloop.compat if getattr(loop, "mode", "loop") == "full" else asyncio

    async def main() -> None:
        a, b = tcp_pair()
        reader = streams.StreamReader(limit=2**16)
        proto = streams.StreamReaderProtocol(reader)
        waiter = loop.create_future()
        tr = make_transport(loop, a, proto, waiter)
        await waiter
        writer = streams.StreamWriter(tr, proto, reader, loop)
        b.setblocking(False)
        await loop.sock_sendall(b, b"line one\nline two\n")
        assert await reader.readline() == b"line one\n"
        assert await reader.readline() == b"line two\n"
        # More than twice the limit unread: the stream pauses the transport.
        flood = bytes(range(256)) * 2048
        sending = asyncio.ensure_future(loop.sock_sendall(b, flood))
        for _ in range(1000):
            if not tr.is_reading():
                break
            await asyncio.sleep(0)
        assert not tr.is_reading()
        assert await reader.readexactly(len(flood)) == flood
        await sending
        assert tr.is_reading()
        big = b"w" * (2 * 1024 * 1024)
        writer.write(big)
        drained = asyncio.ensure_future(writer.drain())
        assert await recv_exactly(loop, b, len(big)) == big
        await drained
        writer.write_eof()
        assert await recv_all(loop, b) == b""
        b.close()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()

    loop.run_until_complete(main())


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_many_small_writes_keep_order(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        expected = bytearray()
        for i in range(5000):
            piece = str(i).encode() + b","
            expected += piece
            if i % 3:
                tr.write(piece)
            else:
                tr.writelines([piece[:1], piece[1:]])
        tr.close()
        assert await recv_all(loop, b) == expected
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_writelines_pauses_the_protocol_cve_2024_12254(
    loop: Any, request: pytest.FixtureRequest
) -> None:
    """A writelines() that leaves more than the high mark buffered pauses the writer."""
    if "asyncio" in request.node.callspec.id and _STDLIB_WRITELINES_NEVER_PAUSES:
        request.applymarker(pytest.mark.xfail(reason="CVE-2024-12254 in this stdlib", strict=True))

    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        try:
            tr.set_write_buffer_limits(high=1024)
            # Nothing is read on the other side: the kernel fills, then our buffer.
            tr.writelines([b"a" * (8 * 1024 * 1024), b"b" * 1024])
            assert tr.get_write_buffer_size() > 1024
            assert proto.events == ["made", "pause"]
        finally:
            await cleanup(tr, proto, b)

    loop.run_until_complete(main())


def test_bytearray_reused_after_write_is_not_resent(
    loop: Any, request: pytest.FixtureRequest
) -> None:
    """write() keeps its own copy of a mutable buffer it could not send at once."""
    if "asyncio" in request.node.callspec.id and sys.version_info >= (3, 12):
        request.applymarker(
            pytest.mark.xfail(
                reason="asyncio 3.12+ queues a view of the caller's bytearray", strict=True
            )
        )

    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        try:
            filler = b"f" * (8 * 1024 * 1024)
            tr.write(filler)  # the kernel takes part; the rest is buffered
            assert tr.get_write_buffer_size() > 0
            scratch = bytearray(b"first")
            tr.write(scratch)
            scratch[:] = b"XXXXX"
            tr.close()
            received = await recv_all(loop, b)
            assert received == filler + b"first"
        finally:
            await cleanup(tr, proto, b)

    loop.run_until_complete(main())


def test_reset_is_not_logged_outside_debug_mode(
    loop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    contexts: list[dict[str, Any]] = []

    async def main() -> None:
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        a, b = tcp_pair()
        proto = Recorder(loop)
        make_transport(loop, a, proto)
        await asyncio.sleep(0)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        b.close()
        assert isinstance(await proto.lost, ConnectionResetError)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.run_until_complete(main())
    assert contexts == []  # an OSError of the connection is not the handler's business
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_reset_is_logged_at_debug_level_in_debug_mode(
    loop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        a, b = tcp_pair()
        proto = Recorder(loop)
        make_transport(loop, a, proto)
        await asyncio.sleep(0)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        b.close()
        await proto.lost

    loop.set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.run_until_complete(main())
    fatal = [r for r in caplog.records if "Fatal read error on socket transport" in r.getMessage()]
    assert len(fatal) == 1 and fatal[0].levelno == logging.DEBUG
    assert isinstance(fatal[0].exc_info[1], ConnectionResetError)


def test_empty_buffer_from_get_buffer_is_fatal(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []

    class Empty(Buffered):
        def get_buffer(self, sizehint: int) -> bytearray:
            return bytearray()

    async def main() -> None:
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        a, b = socket.socketpair()
        proto = Empty(loop)
        make_transport(loop, a, proto)
        b.sendall(b"data")
        exc = await proto.lost
        assert isinstance(exc, RuntimeError)
        assert str(exc) == "get_buffer() returned an empty buffer"
        assert [c["message"] for c in contexts] == [
            "Fatal error: protocol.get_buffer() call failed."
        ]
        b.close()

    loop.run_until_complete(main())


def test_eof_received_exception_is_fatal(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []

    class Failing(Recorder):
        def eof_received(self) -> bool:
            raise KeyError("eof")

    async def main() -> None:
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        a, b = socket.socketpair()
        proto = Failing(loop)
        make_transport(loop, a, proto)
        b.shutdown(socket.SHUT_WR)
        assert isinstance(await proto.lost, KeyError)
        assert [c["message"] for c in contexts] == [
            "Fatal error: protocol.eof_received() call failed."
        ]
        b.close()

    loop.run_until_complete(main())


def test_cancelled_waiter_is_left_alone(loop: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        waiter = loop.create_future()
        tr = make_transport(loop, a, proto, waiter)
        waiter.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert waiter.cancelled() and proto.events == ["made"]
        tr.close()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_resume_writing_may_write_and_close(loop: Any) -> None:
    """A protocol that refills from resume_writing() and closes at the end loses nothing."""
    total = 4 * 1024 * 1024

    class Pump(Recorder):
        def __init__(self, loop: Any) -> None:
            super().__init__(loop)
            self.sent = 0

        def pump(self) -> None:
            while self.sent < total and "pause" not in self.events[-1:]:
                self.transport.write(b"p" * 65536)
                self.sent += 65536
            if self.sent >= total:
                self.transport.close()

        def resume_writing(self) -> None:
            super().resume_writing()
            self.pump()

    async def main() -> None:
        a, b = tcp_pair()
        proto = Pump(loop)
        waiter = loop.create_future()
        make_transport(loop, a, proto, waiter)
        await waiter
        proto.pump()
        received = await recv_all(loop, b)
        assert len(received) == total and set(received) == {ord("p")}
        assert await proto.lost is None
        flow = [e for e in proto.events if e in ("pause", "resume")]
        assert flow and flow == ["pause", "resume"] * (len(flow) // 2)
        b.close()

    loop.run_until_complete(main())


def test_connect_accepted_socket_gives_a_working_transport(loop: Any) -> None:
    """The public path: loop.connect_accepted_socket wraps the socket in the loop's transport."""

    async def main() -> None:
        a, b = tcp_pair()
        tr, proto = await loop.connect_accepted_socket(lambda: Recorder(loop), a)
        assert proto.events == ["made"]
        if isinstance(loop, sansloop.EventLoop):
            assert type(tr) is SocketTransport
        assert isinstance(tr, asyncio.Transport)
        tr.writelines([b"ab", bytearray(b"cd"), memoryview(b"ef")])
        assert await recv_exactly(loop, b, 6) == b"abcdef"
        b.shutdown(socket.SHUT_WR)
        await proto.eof
        assert await proto.lost is None
        b.close()

    loop.run_until_complete(main())


# -- documented differences (docs/compat.md, "Stream transports") -----------


def test_eof_is_delivered_once_even_if_reading_is_toggled_after_it(loop: Any) -> None:
    """asyncio still says is_reading() after EOF, and a pause/resume re-reads the EOF."""
    ours = isinstance(loop, sansloop.EventLoop)

    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop, keep_open=True)
        tr = make_transport(loop, a, proto)
        b.shutdown(socket.SHUT_WR)
        await proto.eof
        assert tr.is_reading() is (not ours)
        tr.pause_reading()
        tr.resume_reading()
        for _ in range(10):
            await asyncio.sleep(0)
        assert proto.events.count("eof") == (1 if ours else 2)
        tr.close()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_write_after_write_eof_then_close(loop: Any) -> None:
    """Still refused once closed or lost: write_eof() is remembered through closing."""

    async def main() -> None:
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        tr.write_eof()
        tr.close()
        with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
            tr.write(b"refused while closing")
        await proto.lost
        with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
            tr.write(b"refused once lost")
        b.close()

    loop.run_until_complete(main())


def test_pause_reading_in_connection_made_holds_the_first_bytes(loop: Any) -> None:
    class Shy(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main() -> None:
        a, b = socket.socketpair()
        b.sendall(b"early")
        proto = Shy(loop)
        tr = make_transport(loop, a, proto)
        for _ in range(10):
            await asyncio.sleep(0)
        assert proto.data == b"" and not tr.is_reading()
        tr.resume_reading()
        while not proto.data:
            await asyncio.sleep(0)
        assert proto.data == b"early"
        tr.close()
        await proto.lost
        b.close()

    loop.run_until_complete(main())


def test_close_before_connection_made_runs(loop: Any) -> None:
    """close() right after construction: connection_made, then connection_lost, once each."""

    async def main() -> None:
        a, b = socket.socketpair()
        b.sendall(b"never read")
        proto = Recorder(loop)
        tr = make_transport(loop, a, proto)
        tr.close()
        assert await proto.lost is None
        assert proto.events == ["made", ("lost", None)] and proto.data == b""
        b.close()

    loop.run_until_complete(main())


def test_statistics_say_state_and_buffer() -> None:
    loop = sansloop.new_event_loop()
    try:

        async def main() -> None:
            a, b = socket.socketpair()
            proto = Recorder(loop)
            tr = SocketTransport(loop, a, proto)
            await asyncio.sleep(0)
            tr.pause_reading()
            stats = tr.statistics()
            assert stats["state"] == "reading paused"
            assert stats["size"] == 0 and stats["paused"] is False
            assert (stats["low"], stats["high"]) == (16384, 65536)
            tr.abort()
            await proto.lost
            assert tr.statistics()["state"] == "aborted"
            assert loop._transports.get(a.fileno()) is None
            b.close()

        loop.run_until_complete(main())
    finally:
        loop.close()


def test_blocking_io_error_from_data_received_is_fatal(loop: Any) -> None:
    """Only the socket's own EAGAIN means "try again"; the protocol's is a failure."""

    class Failing(Recorder):
        def data_received(self, data: bytes) -> None:
            raise BlockingIOError("from the protocol")

    async def main() -> None:
        a, b = socket.socketpair()
        proto = Failing(loop)
        make_transport(loop, a, proto)
        b.sendall(b"x")
        exc = await proto.lost
        assert isinstance(exc, BlockingIOError) and str(exc) == "from the protocol"
        b.close()

    loop.run_until_complete(main())


def test_max_size_bounds_each_delivery(loop: Any) -> None:
    sizes: list[int] = []

    class Sizes(Recorder):
        def data_received(self, data: bytes) -> None:
            sizes.append(len(data))
            super().data_received(data)

    async def main() -> None:
        a, b = socket.socketpair()
        proto = Sizes(loop)
        tr = make_transport(loop, a, proto)
        tr.max_size = 1000  # type: ignore[attr-defined]
        b.sendall(b"m" * 50_000)
        b.shutdown(socket.SHUT_WR)
        await proto.lost
        assert sum(sizes) == 50_000 and max(sizes) <= 1000
        b.close()

    loop.run_until_complete(main())


def test_resume_writing_exception_goes_to_handler(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []

    class Failing(Recorder):
        def resume_writing(self) -> None:
            super().resume_writing()
            raise ZeroDivisionError

    async def main() -> None:
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        a, b = tcp_pair()
        proto = Failing(loop)
        tr = make_transport(loop, a, proto)
        await asyncio.sleep(0)
        sent = 0
        for _ in range(2000):
            tr.write(b"r" * 65536)
            sent += 65536
            if "pause" in proto.events:
                break
        assert await recv_exactly(loop, b, sent)
        assert proto.events == ["made", "pause", "resume"]
        assert [c["message"] for c in contexts] == ["protocol.resume_writing() failed"]
        assert isinstance(contexts[0]["exception"], ZeroDivisionError)
        assert not tr.is_closing()  # not fatal: the connection goes on
        tr.close()
        assert await proto.lost is None
        b.close()

    loop.run_until_complete(main())
