"""loop.sock_* and name resolution, run side by side on asyncio and sansloop.

Every scenario in the ``loop`` fixture runs on stdlib asyncio's own loop (the
reference), on a sansloop loop in loop mode and on one in full mode, over
real loopback sockets. A scenario that passes on asyncio and fails on sansloop
is a sansloop bug. The few sansloop-only tests at the end cover what asyncio
cannot show: that names go through the backend, and a fix of an asyncio hang.
"""

from __future__ import annotations

import array
import asyncio
import errno
import logging
import random
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.backends import Backend


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def _sansloop_loop() -> asyncio.AbstractEventLoop:
    return sansloop.new_event_loop()


def _sansloop_full_loop() -> asyncio.AbstractEventLoop:
    return sansloop.compat.new_event_loop()


FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": _asyncio_loop,
    "sansloop": _sansloop_loop,
    "sansloop-full": _sansloop_full_loop,
}


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


@pytest.fixture(params=sorted(FACTORIES))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FACTORIES[request.param]()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """A list whose sockets are closed at teardown."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _nonblocking(opened: list[socket.socket], *socks: socket.socket) -> None:
    for sock in socks:
        sock.setblocking(False)
        opened.append(sock)


@pytest.fixture
def pair(sockets: list[socket.socket]) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    _nonblocking(sockets, a, b)
    return a, b


@pytest.fixture
def listener(sockets: list[socket.socket]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    _nonblocking(sockets, sock)
    return sock


def _tcp_client(sockets: list[socket.socket]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _nonblocking(sockets, sock)
    return sock


@pytest.fixture
def udp_pair(sockets: list[socket.socket]) -> tuple[socket.socket, socket.socket]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    _nonblocking(sockets, a, b)
    return a, b


async def _started(task: asyncio.Future[Any]) -> None:
    """Let a freshly created task run its first step, and check it is waiting."""
    await asyncio.sleep(0)
    assert not task.done()


def _outcome(func: Callable[..., Any], *args: Any) -> Any:
    try:
        return ("ok", func(*args))
    except Exception as exc:
        return ("raised", type(exc), exc.args)


async def _async_outcome(awaitable: Any) -> Any:
    try:
        return ("ok", await awaitable)
    except Exception as exc:
        return ("raised", type(exc), exc.args)


# -- sock_sendall / sock_recv -------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_sendall_several_megabytes_byte_exact(loop, pair, kind):
    a, b = pair
    payload = random.Random(7).randbytes(6 * 1024 * 1024 + 13)

    async def read_all() -> bytes:
        chunks = []
        received = 0
        while received < len(payload):
            chunk = await loop.sock_recv(b, 65536)
            assert chunk, "unexpected end of stream"
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    async def main() -> bytes:
        reader = loop.create_task(read_all())
        assert await loop.sock_sendall(a, kind(payload)) is None
        return await reader

    assert loop.run_until_complete(main()) == payload


def test_sendall_empty_returns_at_once(loop, pair):
    a, b = pair
    assert loop.run_until_complete(loop.sock_sendall(a, b"")) is None
    with pytest.raises(BlockingIOError):
        b.recv(1)


def test_recv_waits_for_data(loop, pair):
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_recv(a, 100))
        await _started(task)
        b.send(b"hello")
        return await task

    assert loop.run_until_complete(main()) == b"hello"


def test_recv_returns_empty_bytes_at_eof(loop, pair):
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_recv(a, 100))
        await _started(task)
        b.close()
        return await task

    assert loop.run_until_complete(main()) == b""


def test_recv_into_fills_the_buffer(loop, pair):
    a, b = pair
    buf = bytearray(8)

    async def main() -> tuple[int, int]:
        b.send(b"abc")
        first = await loop.sock_recv_into(a, buf)
        task = loop.create_task(loop.sock_recv_into(a, memoryview(buf)[3:]))
        await _started(task)
        b.send(b"defghijk")
        return first, await task

    assert loop.run_until_complete(main()) == (3, 5)
    assert bytes(buf) == b"abcdefgh"
    assert a.recv(10) == b"ijk"


def test_waiting_recv_gets_connection_reset(loop, listener, sockets):
    client = _tcp_client(sockets)

    async def main() -> Any:
        connecting = loop.create_task(loop.sock_connect(client, listener.getsockname()))
        conn, _ = await loop.sock_accept(listener)
        sockets.append(conn)
        await connecting
        task = loop.create_task(loop.sock_recv(conn, 100))
        await _started(task)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # linger 0: the peer gets a reset
        return await _async_outcome(task)

    outcome = loop.run_until_complete(main())
    assert outcome[:2] == ("raised", ConnectionResetError)
    assert outcome[2][0] == errno.ECONNRESET


# -- cancellation -------------------------------------------------------------


def test_cancelled_recv_leaves_no_reader_and_a_usable_socket(loop, pair):
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_recv(a, 100))
        await _started(task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a.fileno()) is False
        b.send(b"after")
        return await loop.sock_recv(a, 100)

    assert loop.run_until_complete(main()) == b"after"


@pytest.mark.parametrize(
    "start",
    [
        lambda loop, sock: loop.sock_recv_into(sock, bytearray(10)),
        lambda loop, sock: loop.sock_recvfrom(sock, 10),
        lambda loop, sock: loop.sock_recvfrom_into(sock, bytearray(10)),
    ],
    ids=["recv_into", "recvfrom", "recvfrom_into"],
)
def test_cancelled_datagram_reads_leave_no_reader(loop, udp_pair, start):
    a, b = udp_pair

    async def main() -> tuple[bytes, Any]:
        task = loop.create_task(start(loop, a))
        await _started(task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a.fileno()) is False
        b.sendto(b"later", a.getsockname())
        return await loop.sock_recvfrom(a, 100)

    assert loop.run_until_complete(main()) == (b"later", b.getsockname())


def test_cancelled_sendall_leaves_no_writer_and_a_usable_socket(loop, pair):
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_sendall(a, b"x" * (8 * 1024 * 1024)))
        await _started(task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_writer(a.fileno()) is False
        drained = 0
        while True:  # a socketpair delivers synchronously: this ends
            try:
                chunk = b.recv(1 << 20)
            except BlockingIOError:
                break
            assert chunk and set(chunk) == {ord("x")}
            drained += len(chunk)
        assert 0 < drained < 8 * 1024 * 1024
        await loop.sock_sendall(a, b"tail")
        return await loop.sock_recv(b, 100)

    assert loop.run_until_complete(main()) == b"tail"


def test_cancelled_accept_leaves_no_reader(loop, listener, sockets):
    client = _tcp_client(sockets)

    async def main() -> Any:
        task = loop.create_task(loop.sock_accept(listener))
        await _started(task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(listener.fileno()) is False
        await loop.sock_connect(client, listener.getsockname())
        conn, address = await loop.sock_accept(listener)
        sockets.append(conn)
        return address

    assert loop.run_until_complete(main()) == client.getsockname()


def test_cancelling_a_replaced_waiter_keeps_the_newer_one(loop, pair):
    # Two sock_recv on one socket: the second's reader replaces the first's.
    # Cancelling the first must not remove the reader the second relies on.
    a, b = pair

    async def main() -> bytes:
        first = loop.create_task(loop.sock_recv(a, 100))
        await _started(first)
        second = loop.create_task(loop.sock_recv(a, 100))
        await _started(second)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        b.send(b"for the second")
        guard = loop.call_later(5, second.cancel)  # a failure must not hang
        try:
            return await second
        finally:
            guard.cancel()

    assert loop.run_until_complete(main()) == b"for the second"


async def _bounded(loop: Any, awaitable: Any, seconds: float = 5) -> Any:
    """Await *awaitable*, cancelling it after *seconds* so a failure cannot hang."""
    task = asyncio.ensure_future(awaitable, loop=loop)
    guard = loop.call_later(seconds, task.cancel)
    try:
        return await task
    finally:
        guard.cancel()


def test_recv_restarted_right_after_a_cancel(loop, pair):
    # Cancel a waiting sock_recv and start another in the same step: the
    # cancelled one's clean-up runs an iteration later, after the new reader
    # is registered, and must leave that reader alone.
    a, b = pair

    async def main() -> bytes:
        first = loop.create_task(loop.sock_recv(a, 100))
        await _started(first)

        async def cancel_and_restart() -> bytes:
            first.cancel()
            loop.call_soon(b.send, b"data")
            return await loop.sock_recv(a, 100)

        data = await _bounded(loop, cancel_and_restart())
        assert first.cancelled()
        return data

    assert loop.run_until_complete(main()) == b"data"


def _fill(sock: socket.socket, byte: bytes) -> None:
    """Send *byte* repeatedly until not even one more fits in *sock*'s buffer."""
    size = 1 << 16
    while size:
        try:
            while True:  # bounded: the kernel buffer is finite
                sock.send(byte * size)
        except BlockingIOError:
            size //= 2


def test_sendall_restarted_right_after_a_cancel(loop, pair):
    a, b = pair
    big = b"a" * (4 * 1024 * 1024)

    async def main() -> bytes:
        first = loop.create_task(loop.sock_sendall(a, big))
        await _started(first)
        _fill(a, b"a")  # so that even one byte would block

        async def cancel_and_restart() -> None:
            first.cancel()
            await loop.sock_sendall(a, b"b" * 1000)

        again = loop.create_task(cancel_and_restart())  # runs before any reading
        received = bytearray()
        while not received.endswith(b"b" * 1000):
            received += await _bounded(loop, loop.sock_recv(b, 1 << 20))
        await again
        assert first.cancelled()
        return bytes(received)

    received = loop.run_until_complete(main())
    assert received.endswith(b"b" * 1000)
    assert set(received[:-1000]) == {ord("a")}


class _Wrapper:
    """A socket stand-in whose methods can be swapped while a call waits."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_socket_methods_are_looked_up_at_each_retry(loop, udp_pair):
    a, b = udp_pair
    wrapper = _Wrapper(a)

    def would_block(*args: Any) -> int:
        raise BlockingIOError

    wrapper.sendto = would_block  # type: ignore[attr-defined]

    async def attempt() -> int:
        # The first try (in this step) would block; the swap happens before
        # the retry, which must use the new method.
        loop.call_soon(setattr, wrapper, "sendto", a.sendto)
        return await loop.sock_sendto(wrapper, b"late", b.getsockname())

    async def main() -> Any:
        sent = await _bounded(loop, attempt())
        return sent, await loop.sock_recvfrom(b, 100)

    assert loop.run_until_complete(main()) == (4, (b"late", a.getsockname()))


# -- connect and accept -------------------------------------------------------


def test_connect_and_accept(loop, listener, sockets):
    client = _tcp_client(sockets)

    async def main() -> tuple[Any, Any, bytes]:
        accepting = loop.create_task(loop.sock_accept(listener))
        await _started(accepting)
        assert await loop.sock_connect(client, listener.getsockname()) is None
        conn, address = await accepting
        sockets.append(conn)
        assert conn.gettimeout() == 0
        await loop.sock_sendall(client, b"ping")
        data = await loop.sock_recv(conn, 10)
        return address, conn.getpeername(), data

    address, peer, data = loop.run_until_complete(main())
    assert address == peer == client.getsockname()
    assert data == b"ping"
    assert client.getpeername() == listener.getsockname()


def test_connect_refused(loop, sockets):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()  # nothing listens there now
    client = _tcp_client(sockets)

    with pytest.raises(ConnectionRefusedError) as info:
        loop.run_until_complete(loop.sock_connect(client, address))
    assert info.value.errno == errno.ECONNREFUSED
    assert info.value.strerror == f"Connect call failed {address}"
    assert loop.remove_writer(client.fileno()) is False


def test_connect_resolves_a_host_name(loop, listener, sockets):
    client = _tcp_client(sockets)
    port = listener.getsockname()[1]

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, ("localhost", port))
        conn, _ = await accepting
        sockets.append(conn)

    loop.run_until_complete(main())
    assert client.getpeername() == ("127.0.0.1", port)


def test_connect_unix_address_is_not_resolved(loop, sockets, tmp_path):
    path = str(tmp_path / "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _nonblocking(sockets, server, client)

    async def main() -> None:
        await loop.sock_connect(client, path)
        conn, _ = await loop.sock_accept(server)
        sockets.append(conn)

    loop.run_until_complete(main())
    assert client.getpeername() == path


# -- datagrams ----------------------------------------------------------------


def test_sendto_and_recvfrom(loop, udp_pair):
    a, b = udp_pair

    async def main() -> tuple[int, Any, Any]:
        sent = await loop.sock_sendto(a, b"datagram", b.getsockname())
        first = await loop.sock_recvfrom(b, 100)
        task = loop.create_task(loop.sock_recvfrom(b, 4))
        await _started(task)
        await loop.sock_sendto(a, bytearray(b"truncated"), b.getsockname())
        return sent, first, await task

    sent, first, second = loop.run_until_complete(main())
    assert sent == 8
    assert first == (b"datagram", a.getsockname())
    assert second == (b"trun", a.getsockname())


def test_recvfrom_into(loop, udp_pair):
    a, b = udp_pair
    buf = bytearray(10)

    async def main() -> list[Any]:
        results = []
        a.sendto(b"abcdefgh", b.getsockname())
        results.append(await loop.sock_recvfrom_into(b, buf, 4))
        results.append(bytes(buf))
        task = loop.create_task(loop.sock_recvfrom_into(b, buf))
        await _started(task)
        a.sendto(b"0123456789ABC", b.getsockname())
        results.append(await task)
        results.append(bytes(buf))
        return results

    here = a.getsockname()
    assert loop.run_until_complete(main()) == [
        (4, here),
        b"abcd" + bytes(6),
        (10, here),
        b"0123456789",
    ]


def test_recvfrom_into_nbytes_larger_than_buffer(loop, udp_pair):
    a, b = udp_pair
    a.sendto(b"kept", b.getsockname())

    with pytest.raises(ValueError, match="^nbytes is greater than the length of the buffer$"):
        loop.run_until_complete(loop.sock_recvfrom_into(b, bytearray(3), 4))
    # The datagram was not consumed by the refused call.
    assert loop.run_until_complete(loop.sock_recvfrom(b, 100)) == (b"kept", a.getsockname())


# -- refused sockets ----------------------------------------------------------


def _all_calls(blocking: socket.socket, address: Any) -> list[Callable[[Any], Any]]:
    return [
        lambda loop: loop.sock_recv(blocking, 1),
        lambda loop: loop.sock_recv_into(blocking, bytearray(1)),
        lambda loop: loop.sock_recvfrom(blocking, 1),
        lambda loop: loop.sock_recvfrom_into(blocking, bytearray(1)),
        lambda loop: loop.sock_sendall(blocking, b"x"),
        lambda loop: loop.sock_sendto(blocking, b"x", address),
        lambda loop: loop.sock_connect(blocking, address),
        lambda loop: loop.sock_accept(blocking),
    ]


@pytest.mark.parametrize("timeout", [None, 1.5])
def test_blocking_socket_refused_in_debug_mode(loop, sockets, timeout):
    sock = socket.socket()
    sockets.append(sock)
    sock.settimeout(timeout)
    loop.set_debug(True)
    for call in _all_calls(sock, ("127.0.0.1", 9)):
        with pytest.raises(ValueError, match="^the socket must be non-blocking$"):
            loop.run_until_complete(call(loop))
    assert sock.gettimeout() == timeout


def test_blocking_socket_used_as_is_outside_debug_mode(loop, sockets):
    a, b = socket.socketpair()
    sockets += [a, b]
    b.sendall(b"ready")
    loop.set_debug(False)
    assert loop.run_until_complete(loop.sock_recv(a, 10)) == b"ready"


def test_ssl_socket_refused(loop, sockets):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    raw = socket.socket()
    sockets.append(raw)
    tls = context.wrap_socket(raw, server_hostname="example.test", do_handshake_on_connect=False)
    sockets.append(tls)
    loop.set_debug(True)  # the SSL check comes before the blocking check
    for call in _all_calls(tls, ("127.0.0.1", 9)):
        with pytest.raises(TypeError, match="^Socket cannot be of type SSLSocket$"):
            loop.run_until_complete(call(loop))


# -- name resolution ----------------------------------------------------------

_QUERIES = [
    ("127.0.0.1", 80, {}),
    ("localhost", "http", {"type": socket.SOCK_STREAM}),
    (b"127.0.0.1", b"53", {"family": socket.AF_INET, "type": socket.SOCK_DGRAM}),
    ("::1", 443, {"family": socket.AF_INET6, "proto": socket.IPPROTO_TCP}),
    (None, 8080, {"flags": socket.AI_PASSIVE, "type": socket.SOCK_STREAM}),
    ("127.0.0.1", "no-such-service-here", {}),
]


@pytest.mark.parametrize("host, port, kwargs", _QUERIES)
def test_getaddrinfo_equals_socket_getaddrinfo(loop, host, port, kwargs):
    expected = _outcome(lambda: socket.getaddrinfo(host, port, **kwargs))
    got = loop.run_until_complete(_async_outcome(loop.getaddrinfo(host, port, **kwargs)))
    assert got == expected


@pytest.mark.parametrize(
    "sockaddr, flags",
    [
        (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
        (("127.0.0.1", 80), 0),
        (("127.0.0.1", 53), socket.NI_DGRAM),
        (("::1", 443, 0, 0), socket.NI_NUMERICHOST),
    ],
)
def test_getnameinfo_equals_socket_getnameinfo(loop, sockaddr, flags):
    expected = _outcome(socket.getnameinfo, sockaddr, flags)
    got = loop.run_until_complete(_async_outcome(loop.getnameinfo(sockaddr, flags)))
    assert got == expected


def test_getaddrinfo_debug_logging(loop, caplog):
    loop.set_debug(True)
    caplog.set_level(logging.DEBUG, logger="asyncio")
    result = loop.run_until_complete(
        loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    )
    messages = [r.getMessage() for r in caplog.records if "address info" in r.getMessage()]
    query = f"127.0.0.1:80, type={socket.SOCK_STREAM!r}, flags={socket.AI_NUMERICHOST!r}"
    assert len(messages) == 2
    assert messages[0] == f"Get address info {query}"
    assert messages[1].startswith(f"Getting address info {query} took ")
    assert messages[1].endswith(f"ms: {result!r}")


# -- sansloop only --------------------------------------------------------------


class _FakeNames(Backend):
    """A backend that delegates readiness to a real one but owns name resolution."""

    name = "fake-names"

    def __init__(self) -> None:
        self.inner = sansloop.default_backend()
        self.queries: list[tuple[Any, ...]] = []

    def register(self, fd: int, events: int) -> None:
        self.inner.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self.inner.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self.inner.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        return self.inner.poll(timeout)

    def wakeup(self) -> None:
        self.inner.wakeup()

    def close(self) -> None:
        self.inner.close()

    def time(self) -> float:
        return self.inner.time()

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        self.queries.append((host, port, family, type, proto, flags))
        if host != "db.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    def getnameinfo(self, sockaddr, flags=0):
        self.queries.append((sockaddr, flags))
        return ("db.test", str(sockaddr[1]))


@pytest.fixture(params=["loop", "full"])
def fake_names_loop(request) -> Iterator[tuple[Any, _FakeNames]]:
    backend = _FakeNames()
    if request.param == "loop":
        the_loop = sansloop.new_event_loop(backend=backend)
    else:
        the_loop = sansloop.compat.loop.EventLoop(backend, mode="full")
    yield the_loop, backend
    _close_loop(the_loop)


def test_names_are_resolved_by_the_backend(fake_names_loop, listener, sockets):
    loop, backend = fake_names_loop
    client = _tcp_client(sockets)
    port = listener.getsockname()[1]

    async def main() -> Any:
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, ("db.test", port))
        conn, _ = await accepting
        sockets.append(conn)
        return await loop.getnameinfo(("127.0.0.1", port))

    assert loop.run_until_complete(main()) == ("db.test", str(port))
    assert backend.queries == [
        ("db.test", port, socket.AF_INET, socket.SOCK_STREAM, 0, 0),
        (("127.0.0.1", port), 0),
    ]
    with pytest.raises(socket.gaierror):
        loop.run_until_complete(loop.getaddrinfo("elsewhere.test", 1))


def test_numeric_address_skips_the_resolver(fake_names_loop, listener, sockets):
    loop, backend = fake_names_loop
    client = _tcp_client(sockets)

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accepting
        sockets.append(conn)

    loop.run_until_complete(main())
    assert backend.queries == []


def test_sendall_counts_bytes_not_items(pair):
    # asyncio compares bytes sent with len(data), which counts items: an
    # array('i') then never finishes. sansloop counts bytes.
    a, b = pair
    data = array.array("i", range(400_000))
    loop = sansloop.new_event_loop()

    async def main() -> bytes:
        async def read_all() -> bytes:
            chunks = []
            received = 0
            while received < data.itemsize * len(data):
                chunk = await loop.sock_recv(b, 65536)
                assert chunk, "unexpected end of stream"
                chunks.append(chunk)
                received += len(chunk)
            return b"".join(chunks)

        reader = loop.create_task(read_all())
        await loop.sock_sendall(a, data)
        return await reader

    try:
        assert loop.run_until_complete(main()) == data.tobytes()
    finally:
        _close_loop(loop)


# -- the numeric-address shortcut, against asyncio's own ---------------------------

_SHORTCUT_CASES = [
    ("127.0.0.1", 80, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, ()),
    ("127.0.0.1", "80", socket.AF_INET, socket.SOCK_DGRAM, 0, ()),
    (b"10.0.0.1", b"", socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, ()),
    ("127.0.0.1", None, socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_UDP, ()),
    ("::1", 443, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, ()),
    ("::1", 443, socket.AF_INET6, socket.SOCK_STREAM, 0, (5, 7)),
    ("fe80::1%lo", 443, socket.AF_INET6, socket.SOCK_STREAM, 0, ()),
    ("::1", 443, socket.AF_INET, socket.SOCK_STREAM, 0, ()),
    ("127.0.0.1", "http", socket.AF_INET, socket.SOCK_STREAM, 0, ()),
    ("localhost", 80, socket.AF_INET, socket.SOCK_STREAM, 0, ()),
    ("127.0.0.1", 80, socket.AF_INET, socket.SOCK_RAW, 0, ()),
    ("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP, ()),
    (None, 80, socket.AF_INET, socket.SOCK_STREAM, 0, ()),
    ("127.1", 80, socket.AF_INET, socket.SOCK_STREAM, 0, ()),
]


@pytest.mark.parametrize("host, port, family, type_, proto, extra", _SHORTCUT_CASES)
def test_numeric_addrinfo_matches_asyncio(host, port, family, type_, proto, extra):
    from asyncio.base_events import _ipaddr_info

    from sansloop.compat.sockets import numeric_addrinfo

    expected = _ipaddr_info(host, port, family, type_, proto, *extra)
    assert numeric_addrinfo(host, port, family, type_, proto, *extra) == expected
