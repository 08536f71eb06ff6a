"""loop.sock_sendfile and loop.sendfile, side by side on asyncio and sansloop.

Every scenario runs on stdlib asyncio's own loop (the reference) and on
sansloop in loop mode over each readiness backend and in full mode, over
real loopback sockets (socketpairs and TCP). Transfers are byte-exact checks
of multi-MB random files. The zero-copy path is left by giving a file with
no ``fileno()`` (asyncio and sansloop both fall back then), and, on sansloop,
by a backend without zero-copy. The sansloop-only tests at the end cover
where sansloop deliberately differs (pipes, the position after a cancel).
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.backends.epoll import EpollBackend

SIZE = 3 * 1024 * 1024 + 4097  # a few MB, not a multiple of any buffer size
DATA = random.Random(20261125).randbytes(SIZE)


class NoZeroCopy(EpollBackend):
    """A backend whose platform has no sendfile call."""

    def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        raise NotImplementedError("no sendfile here")


FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "loop-epoll": lambda: sansloop.new_event_loop("epoll"),
    "loop-poll": lambda: sansloop.new_event_loop("poll"),
    "loop-selectors": lambda: sansloop.new_event_loop("selectors"),
    "full-epoll": sansloop.compat.new_event_loop,
    "loop-no-zero-copy": lambda: sansloop.new_event_loop(NoZeroCopy()),
}


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


@pytest.fixture(params=list(FACTORIES))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FACTORIES[request.param]()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture(params=[name for name in FACTORIES if name != "loop-no-zero-copy"])
def zero_copy_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FACTORIES[request.param]()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture
def sansloop_loop() -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = sansloop.new_event_loop()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture
def datafile() -> Iterator[Any]:
    with tempfile.TemporaryFile() as f:
        f.write(DATA)
        f.seek(0)
        yield f


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _socketpair(opened: list[socket.socket]) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    opened += [a, b]
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def _tcp_pair(opened: list[socket.socket]) -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    opened += [client, server]
    client.setblocking(False)
    server.setblocking(False)
    return client, server


PAIRS = {"socketpair": _socketpair, "tcp": _tcp_pair}


async def _read_all(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    got = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, 1 << 20)
        if not chunk:
            return bytes(got)
        got += chunk


async def _read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, n - len(got))
        assert chunk, f"EOF after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


# -- sock_sendfile -----------------------------------------------------------


@pytest.mark.parametrize("kind", list(PAIRS))
def test_sock_sendfile_is_byte_exact(loop, datafile, sockets, kind: str) -> None:  # type: ignore[no-untyped-def]
    a, b = PAIRS[kind](sockets)

    async def main() -> tuple[int, bytes]:
        reader = asyncio.ensure_future(_read_all(loop, b))
        sent = await loop.sock_sendfile(a, datafile)
        a.shutdown(socket.SHUT_WR)
        return sent, await reader

    sent, got = loop.run_until_complete(main())
    assert sent == SIZE
    assert got == DATA
    assert datafile.tell() == SIZE


@pytest.mark.parametrize(
    ("offset", "count", "expected"),
    [
        (0, 1, DATA[:1]),
        (1000, 123_457, DATA[1000:124_457]),
        (SIZE - 10, None, DATA[-10:]),
        (SIZE - 10, 1000, DATA[-10:]),  # count past the end: up to the end
        (SIZE + 5, None, b""),  # offset past the end: nothing
        (2_000_000, 1_500_000, DATA[2_000_000:]),
    ],
)
def test_sock_sendfile_offset_and_count(  # type: ignore[no-untyped-def]
    loop, datafile, sockets, offset: int, count: int | None, expected: bytes
) -> None:
    a, b = _socketpair(sockets)

    async def main() -> tuple[int, bytes]:
        reader = asyncio.ensure_future(_read_all(loop, b))
        sent = await loop.sock_sendfile(a, datafile, offset, count)
        a.shutdown(socket.SHUT_WR)
        return sent, await reader

    sent, got = loop.run_until_complete(main())
    assert got == expected
    assert sent == len(expected)
    if expected:
        assert datafile.tell() == offset + len(expected)


def test_sock_sendfile_mixes_with_sendall(loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    a, b = _tcp_pair(sockets)
    head, tail = b"head" * 20_000, b"tail" * 20_000

    async def main() -> bytes:
        reader = asyncio.ensure_future(_read_all(loop, b))
        await loop.sock_sendall(a, head)
        assert await loop.sock_sendfile(a, datafile, 7, 100_000) == 100_000
        await loop.sock_sendall(a, tail)
        a.shutdown(socket.SHUT_WR)
        return await reader

    assert loop.run_until_complete(main()) == head + DATA[7:100_007] + tail


def test_sock_sendfile_empty_file(loop, sockets) -> None:  # type: ignore[no-untyped-def]
    a, b = _socketpair(sockets)
    with tempfile.TemporaryFile() as empty:
        assert loop.run_until_complete(loop.sock_sendfile(a, empty)) == 0
        assert empty.tell() == 0


@pytest.mark.parametrize("count", [None, 777_777])
def test_sock_sendfile_fallback_for_a_file_without_fileno(loop, sockets, count) -> None:  # type: ignore[no-untyped-def]
    a, b = _socketpair(sockets)
    f = io.BytesIO(DATA)

    async def main() -> tuple[int, bytes]:
        reader = asyncio.ensure_future(_read_all(loop, b))
        sent = await loop.sock_sendfile(a, f, 3, count)
        a.shutdown(socket.SHUT_WR)
        return sent, await reader

    sent, got = loop.run_until_complete(main())
    expected = DATA[3:] if count is None else DATA[3 : 3 + count]
    assert got == expected
    assert sent == len(expected)
    assert f.tell() == 3 + len(expected)


def test_sock_sendfile_without_fallback_refuses_a_file_without_fileno(loop, sockets) -> None:  # type: ignore[no-untyped-def]
    a, b = _socketpair(sockets)
    f = io.BytesIO(DATA)
    with pytest.raises(asyncio.SendfileNotAvailableError):
        loop.run_until_complete(loop.sock_sendfile(a, f, fallback=False))
    assert f.tell() == 0
    loop.run_until_complete(loop.sock_sendall(a, b"still usable"))
    assert loop.run_until_complete(_read_exactly(loop, b, 12)) == b"still usable"


def test_sock_sendfile_cancelled_leaves_the_socket_usable(loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    a, b = _socketpair(sockets)

    async def main() -> tuple[bytes, bytes]:
        task = asyncio.ensure_future(loop.sock_sendfile(a, datafile))
        while True:  # until the peer's buffers are full and the sender waits
            await asyncio.sleep(0)
            if not task.done() and len(await _peek(loop, b)) > 0:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reader = asyncio.ensure_future(_read_all(loop, b))
        await loop.sock_sendall(a, b"<after>")
        a.shutdown(socket.SHUT_WR)
        got = await reader
        return got[:-7], got[-7:]

    sent, after = loop.run_until_complete(main())
    assert 0 < len(sent) < SIZE
    assert sent == DATA[: len(sent)]
    assert after == b"<after>"


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((0, 0), ValueError, "count must be a positive integer (got 0)"),
        ((0, -5), ValueError, "count must be a positive integer (got -5)"),
        ((0, "10"), TypeError, "count must be a positive integer (got '10')"),
        ((0, 1.5), TypeError, "count must be a positive integer (got 1.5)"),
        ((-1, None), ValueError, "offset must be a non-negative integer (got -1)"),
        (("0", None), TypeError, "offset must be a non-negative integer (got '0')"),
        ((0.0, None), TypeError, "offset must be a non-negative integer (got 0.0)"),
    ],
)
def test_sock_sendfile_bad_arguments(loop, datafile, sockets, args, exc, message) -> None:  # type: ignore[no-untyped-def]
    a, _ = _socketpair(sockets)
    with pytest.raises(exc) as info:
        loop.run_until_complete(loop.sock_sendfile(a, datafile, *args))
    assert str(info.value) == message
    assert datafile.tell() == 0


def test_sock_sendfile_refuses_text_files_datagrams_and_ssl(loop, sockets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, _ = _socketpair(sockets)
    path = tmp_path / "text.txt"
    path.write_text("text")
    with open(path) as text:
        with pytest.raises(ValueError, match="^file should be opened in binary mode$"):
            loop.run_until_complete(loop.sock_sendfile(a, text))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets.append(udp)
    udp.setblocking(False)
    with open(path, "rb") as binary:
        with pytest.raises(ValueError, match="^only SOCK_STREAM type sockets are supported$"):
            loop.run_until_complete(loop.sock_sendfile(udp, binary))
        tls = ssl.create_default_context().wrap_socket(
            socket.socket(), server_hostname="localhost", do_handshake_on_connect=False
        )
        sockets.append(tls)
        with pytest.raises(TypeError, match="^Socket cannot be of type SSLSocket$"):
            loop.run_until_complete(loop.sock_sendfile(tls, binary))


def test_sock_sendfile_blocking_socket_in_debug_mode(loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    a, _ = _socketpair(sockets)
    a.setblocking(True)
    loop.set_debug(True)
    with pytest.raises(ValueError, match="^the socket must be non-blocking$"):
        loop.run_until_complete(loop.sock_sendfile(a, datafile))


# -- sendfile on transports -------------------------------------------------


class Recorder(asyncio.Protocol):
    """The user's protocol on the sending transport: records what it hears."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lost: asyncio.Future[Exception | None] | None = None
        self.data = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def eof_received(self) -> None:
        self.calls.append("eof")  # returning None: the transport closes

    def data_received(self, data: bytes) -> None:
        self.data += data

    def pause_writing(self) -> None:
        self.calls.append("pause")

    def resume_writing(self) -> None:
        self.calls.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        assert self.lost is not None
        self.lost.set_result(exc)


def _transport(
    loop, sockets, small_buffers=False, unix=False
) -> tuple[Any, Recorder, socket.socket]:  # type: ignore[no-untyped-def]
    client, server = (_socketpair if unix else _tcp_pair)(sockets)
    if small_buffers:  # so that a close by the peer lands mid-transfer
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport, proto = loop.run_until_complete(loop.create_connection(Recorder, sock=client))
    return transport, proto, server


def _finish(loop, transport, proto) -> None:  # type: ignore[no-untyped-def]
    transport.close()
    loop.run_until_complete(proto.lost)


@pytest.mark.parametrize("via", ["file", "bytesio"])
def test_sendfile_on_a_transport_with_data_around(loop, datafile, sockets, via: str) -> None:  # type: ignore[no-untyped-def]
    transport, proto, peer = _transport(loop, sockets)
    f = datafile if via == "file" else io.BytesIO(DATA)  # BytesIO: the fallback
    head, tail = b"H" * 100_000, b"T" * 10_000

    async def main() -> tuple[int, bytes]:
        reader = asyncio.ensure_future(_read_all(loop, peer))
        transport.write(head)  # buffered: must go out before the file
        sent = await loop.sendfile(transport, f, 11, SIZE - 20)
        transport.write(tail)
        transport.write_eof()
        return sent, await reader

    sent, got = loop.run_until_complete(main())
    assert sent == SIZE - 20
    assert got == head + DATA[11 : SIZE - 9] + tail
    assert f.tell() == SIZE - 9
    assert transport.is_reading()
    peer.sendall(b"reply")
    peer.shutdown(socket.SHUT_WR)
    assert loop.run_until_complete(proto.lost) is None  # after eof_received
    assert bytes(proto.data) == b"reply"


def test_sendfile_fallback_obeys_flow_control(loop, sockets, request) -> None:  # type: ignore[no-untyped-def]
    if request.node.callspec.params["loop"] == "asyncio" and sys.version_info >= (3, 12):
        # stdlib 3.12+ queues a view of the caller's buffer when a write must
        # wait, and its sendfile fallback reuses one buffer for every chunk:
        # bytes already queued are overwritten (see docs/compat.md, stream
        # transports: "A bytearray ... is copied when it has to be buffered").
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="stdlib 3.12+ corrupts the fallback's data")
        )
    # A Unix socketpair with small buffers: the kernel cannot absorb the file
    # (loopback TCP can take all of it), and no delayed ACKs slow it down.
    transport, proto, peer = _transport(loop, sockets, small_buffers=True, unix=True)
    transport.set_write_buffer_limits(high=32 * 1024)
    high = transport.get_write_buffer_limits()[1]
    f = io.BytesIO(DATA)  # its position shows how far the fallback has read
    peak = 0

    async def reader() -> bytes:
        nonlocal peak
        # Read nothing until the kernel's buffers are full and the transport
        # buffers; then watch the file position: a fallback that obeys flow
        # control stops reading the file while writing is paused.
        still = 0
        for _ in range(200_000):
            await asyncio.sleep(0)
            peak = max(peak, transport.get_write_buffer_size())
            before = f.tell()
            if before == SIZE:
                break  # everything is buffered already: flow control was ignored
            if peak > high:
                still = still + 1 if f.tell() == before else 0
                if still >= 1000:
                    break
        got = bytearray()
        while len(got) < SIZE:
            peak = max(peak, transport.get_write_buffer_size())
            chunk = await loop.sock_recv(peer, 65536)
            assert chunk
            got += chunk
        return bytes(got)

    async def main() -> tuple[int, bytes]:
        reading = asyncio.ensure_future(reader())
        sent = await loop.sendfile(transport, f)
        return sent, await reading

    sent, got = loop.run_until_complete(main())
    try:
        assert sent == SIZE
        assert got == DATA
        # Each chunk waits while writing is paused: the buffer stays within the
        # high-water mark plus one chunk (64 KiB), never the whole file.
        assert peak <= high + 64 * 1024, peak
        assert transport.get_write_buffer_size() == 0
        # The user's protocol heard nothing (or strictly alternating calls that
        # end resumed): its view of flow control is right after the transfer.
        calls = proto.calls
        assert calls == ["pause", "resume"] * (len(calls) // 2)
    finally:
        _finish(loop, transport, proto)


def test_sendfile_prevents_bare_write(zero_copy_loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    loop = zero_copy_loop
    transport, proto, peer = _transport(loop, sockets)

    async def main() -> tuple[int, bytes]:
        reader = asyncio.ensure_future(_read_all(loop, peer))
        task = asyncio.ensure_future(loop.sendfile(transport, datafile))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.write(b"data")
        sent = await task
        transport.write(b"!")
        transport.write_eof()
        return sent, await reader

    sent, got = loop.run_until_complete(main())
    assert sent == SIZE
    assert got == DATA + b"!"
    _finish(loop, transport, proto)


def test_sendfile_cancelled_leaves_the_transport_usable(loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    transport, proto, peer = _transport(loop, sockets)

    async def main() -> bytes:
        task = asyncio.ensure_future(loop.sendfile(transport, datafile))
        while not (await _peek(loop, peer)):
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        transport.write(b"<after>")
        transport.write_eof()
        return await _read_all(loop, peer)

    got = loop.run_until_complete(main())
    assert got.endswith(b"<after>")
    assert got[:-7] == DATA[: len(got) - 7]
    assert transport.is_reading()
    peer.sendall(b"back")
    peer.shutdown(socket.SHUT_WR)
    assert loop.run_until_complete(proto.lost) is None  # after eof_received
    assert bytes(proto.data) == b"back"


@pytest.mark.parametrize("via", ["file", "bytesio"])
def test_sendfile_peer_closes_in_the_middle(loop, datafile, sockets, via: str) -> None:  # type: ignore[no-untyped-def]
    transport, proto, peer = _transport(loop, sockets, small_buffers=True)
    f = datafile if via == "file" else io.BytesIO(DATA)

    async def main() -> None:
        await _read_exactly(loop, peer, 1024)
        peer.close()

    async def both() -> None:
        closer = asyncio.ensure_future(main())
        with pytest.raises(ConnectionError):
            await loop.sendfile(transport, f)
        await closer

    loop.run_until_complete(both())
    assert 1024 <= f.tell() < SIZE
    loop.run_until_complete(proto.lost)
    assert transport.is_closing()


def test_sendfile_on_a_closing_transport(loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    transport, proto, _ = _transport(loop, sockets)
    transport.close()
    with pytest.raises(RuntimeError, match="^Transport is closing$"):
        loop.run_until_complete(loop.sendfile(transport, datafile))
    assert datafile.tell() == 0
    loop.run_until_complete(proto.lost)


class _PlainTransport(asyncio.WriteTransport):
    """A transport that says nothing about sendfile (like a datagram or pipe one)."""

    def is_closing(self) -> bool:
        return False


class _TlsLikeTransport(_PlainTransport):
    _sendfile_compatible = asyncio.constants._SendfileMode.FALLBACK


def test_sendfile_unsupported_transports(loop, datafile) -> None:  # type: ignore[no-untyped-def]
    plain = _PlainTransport()
    with pytest.raises(RuntimeError, match="^sendfile is not supported for transport "):
        loop.run_until_complete(loop.sendfile(plain, datafile))
    with pytest.raises(RuntimeError, match="^fallback is disabled and native sendfile is not"):
        loop.run_until_complete(loop.sendfile(_TlsLikeTransport(), datafile, fallback=False))
    assert datafile.tell() == 0


def test_sendfile_without_fallback_when_zero_copy_is_impossible(loop, sockets) -> None:  # type: ignore[no-untyped-def]
    transport, proto, peer = _transport(loop, sockets)
    f = io.BytesIO(DATA)
    with pytest.raises(asyncio.SendfileNotAvailableError):
        loop.run_until_complete(loop.sendfile(transport, f, fallback=False))
    assert f.tell() == 0
    transport.write(b"fine")  # not stuck in "sendfile is in progress"
    assert loop.run_until_complete(_read_exactly(loop, peer, 4)) == b"fine"
    _finish(loop, transport, proto)


# -- sansloop only: where it differs from asyncio, and the backend hook -----


def test_zero_copy_goes_through_the_backend(datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    calls: list[tuple[int, int]] = []

    class Counting(EpollBackend):
        def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
            calls.append((offset, count))
            return super().sendfile(out_fd, in_fd, offset, count)

    loop = sansloop.new_event_loop(Counting())
    try:
        a, b = _socketpair(sockets)

        async def main() -> bytes:
            reader = asyncio.ensure_future(_read_all(loop, b))
            assert await loop.sock_sendfile(a, datafile, 5, 1_000_000) == 1_000_000
            a.shutdown(socket.SHUT_WR)
            return await reader

        assert loop.run_until_complete(main()) == DATA[5:1_000_005]
        assert calls and calls[0] == (5, 1_000_000)
        assert sum(1 for _ in calls) >= 1
    finally:
        _close_loop(loop)


def test_no_zero_copy_backend_without_fallback(sockets, datafile) -> None:  # type: ignore[no-untyped-def]
    loop = sansloop.new_event_loop(NoZeroCopy())
    try:
        a, _ = _socketpair(sockets)
        with pytest.raises(asyncio.SendfileNotAvailableError, match="no sendfile here"):
            loop.run_until_complete(loop.sock_sendfile(a, datafile, fallback=False))
    finally:
        _close_loop(loop)


def test_a_pipe_is_sent_by_the_fallback(sansloop_loop, sockets) -> None:  # type: ignore[no-untyped-def]
    # asyncio returns 0 here without sending: it takes the pipe's st_size of 0
    # for an empty regular file.
    loop = sansloop_loop
    a, b = _socketpair(sockets)
    r, w = os.pipe()
    os.write(w, b"through a pipe")
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        with pytest.raises(asyncio.SendfileNotAvailableError):
            loop.run_until_complete(loop.sock_sendfile(a, pipe, fallback=False))
        assert loop.run_until_complete(loop.sock_sendfile(a, pipe)) == 14
    assert loop.run_until_complete(_read_exactly(loop, b, 14)) == b"through a pipe"


def test_position_after_a_cancel_says_what_was_sent(sansloop_loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    # asyncio leaves the position at 0 here although bytes went out.
    loop = sansloop_loop
    a, b = _socketpair(sockets)

    async def main() -> bytes:
        task = asyncio.ensure_future(loop.sock_sendfile(a, datafile))
        while not (await _peek(loop, b)):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        a.shutdown(socket.SHUT_WR)
        return await _read_all(loop, b)

    got = loop.run_until_complete(main())
    assert got == DATA[: len(got)]
    assert datafile.tell() == len(got) > 0


def test_replacing_the_native_step_forces_the_fallback(loop, datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    # Code (and CPython's own tests) replace loop._sendfile_native on an
    # instance to force the fallback; that works on every loop here.
    transport, proto, peer = _transport(loop, sockets)

    async def unavailable(*args: Any) -> int:
        raise asyncio.SendfileNotAvailableError("forced")

    loop._sendfile_native = unavailable
    with pytest.raises(asyncio.SendfileNotAvailableError, match="^forced$"):
        loop.run_until_complete(loop.sendfile(transport, datafile, fallback=False))
    assert datafile.tell() == 0

    async def main() -> tuple[int, bytes]:
        reader = asyncio.ensure_future(_read_all(loop, peer))
        sent = await loop.sendfile(transport, datafile, 0, 1_000_000)
        transport.write_eof()
        return sent, await reader

    assert loop.run_until_complete(main()) == (1_000_000, DATA[:1_000_000])
    assert datafile.tell() == 1_000_000
    _finish(loop, transport, proto)


def test_a_backend_failing_midway_does_not_repeat_bytes(datafile, sockets) -> None:  # type: ignore[no-untyped-def]
    class GivesUp(EpollBackend):
        def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
            if offset > 0:
                raise NotImplementedError("gave up")
            return super().sendfile(out_fd, in_fd, offset, min(count, 1000))

    loop = sansloop.new_event_loop(GivesUp())
    try:
        a, b = _socketpair(sockets)
        with pytest.raises(NotImplementedError, match="gave up"):
            loop.run_until_complete(loop.sock_sendfile(a, datafile))
        assert datafile.tell() == 1000
        a.shutdown(socket.SHUT_WR)
        assert loop.run_until_complete(_read_all(loop, b)) == DATA[:1000]
    finally:
        _close_loop(loop)
