"""create_connection, create_unix_connection and connect_accepted_socket, side by side.

Every scenario runs on stdlib asyncio's own loop (the reference) and on
sansloop in loop mode and in full mode; the core paths (connect, exchange,
close, refuse, cancel) also run on each readiness backend. Servers are plain
listening sockets accepted with ``loop.sock_accept`` so that these tests
depend on no other part of the networking work. Loopback only.

A "black hole" address (a connect that neither succeeds nor fails) is a
listener with ``listen(0)`` whose one-slot accept queue is already full: the
kernel drops further SYNs, so a connect stays in progress.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pathlib
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
from sansloop.backends import Backend, get_backend
from sansloop.compat.loop import EventLoop

BACKENDS = ["epoll", "poll", "selectors"]


def _factory(kind: str, backend: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "asyncio":
        return asyncio.new_event_loop
    if kind == "sansloop-loop":
        return lambda: sansloop.new_event_loop(backend=backend)
    return lambda: EventLoop(get_backend(backend) if backend else None, mode="full")


FLAVOURS = {
    "asyncio": _factory("asyncio"),
    "sansloop-loop": _factory("sansloop-loop"),
    "sansloop-full": _factory("sansloop-full"),
}
EVERY_BACKEND = {"asyncio": _factory("asyncio")} | {
    f"{kind}-{backend}": _factory(kind, backend)
    for kind in ("sansloop-loop", "sansloop-full")
    for backend in BACKENDS
}


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


@pytest.fixture(params=sorted(FLAVOURS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FLAVOURS[request.param]()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture(params=sorted(EVERY_BACKEND))
def any_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = EVERY_BACKEND[request.param]()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture(params=["sansloop-loop", "sansloop-full"])
def our_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FLAVOURS[request.param]()
    yield the_loop
    _close_loop(the_loop)


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    """Sockets and transports closed at teardown."""
    things: list[Any] = []
    yield things
    for thing in things:
        thing.close()


def listener(closing: list[Any], backlog: int = 100) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    sock.setblocking(False)
    closing.append(sock)
    return sock


def black_hole(closing: list[Any]) -> tuple[str, int]:
    """An address whose connects hang (see the module docstring)."""
    sock = listener(closing, backlog=0)
    filler = socket.socket()
    closing.append(filler)
    filler.connect(sock.getsockname())
    return sock.getsockname()


def refused_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Recorder(asyncio.Protocol):
    """Records the calls it gets; ``lost`` resolves on connection_lost."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.data = bytearray()
        self.transport: Any = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.calls.append("made")
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.calls.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


async def _exchange(loop: Any, transport: Any, proto: Recorder, peer: socket.socket) -> None:
    """Bytes both ways, then a clean close seen by both sides."""
    transport.write(b"ping")
    got = b""
    while len(got) < 4:
        got += await loop.sock_recv(peer, 4 - len(got))
    assert got == b"ping"
    await loop.sock_sendall(peer, b"pong")
    for _ in range(1000):
        if proto.data == b"pong":
            break
        await asyncio.sleep(0)
    assert proto.data == b"pong"
    transport.close()
    assert await proto.lost is None
    assert await loop.sock_recv(peer, 10) == b""
    assert proto.calls == ["made", "lost"]


# -- the core paths, on every backend ---------------------------------------------


def test_connect_exchange_close(any_loop: Any, closing: list[Any]) -> None:
    server = listener(closing)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        accepting = loop.create_task(loop.sock_accept(server))
        transport, proto = await loop.create_connection(Recorder, *server.getsockname())
        assert proto.calls == ["made"] and proto.transport is transport
        assert isinstance(transport, asyncio.Transport)
        peer, peer_addr = await accepting
        closing.append(peer)
        assert transport.get_extra_info("peername") == server.getsockname()
        assert transport.get_extra_info("sockname") == peer_addr
        sock = transport.get_extra_info("socket")
        assert sock.gettimeout() == 0
        assert not os.get_inheritable(sock.fileno())  # close-on-exec
        await _exchange(loop, transport, proto, peer)

    any_loop.run_until_complete(main())


def test_connect_refused(any_loop: Any) -> None:
    port = refused_port()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ConnectionRefusedError, match=r"Connect call failed \('127.0.0.1', "):
            await loop.create_connection(Recorder, "127.0.0.1", port)

    before = open_fds()
    any_loop.run_until_complete(main())
    assert open_fds() == before


def test_cancel_while_connecting_closes_the_socket(any_loop: Any, closing: list[Any]) -> None:
    address = black_hole(closing)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        before = open_fds()
        task = loop.create_task(loop.create_connection(Recorder, *address))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert open_fds() == before

    any_loop.run_until_complete(main())


# -- create_connection ------------------------------------------------------------------


def test_connect_over_a_given_socket(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    sock = socket.create_connection(server.getsockname())

    async def main() -> None:
        peer, _ = await loop.sock_accept(server)
        closing.append(peer)
        transport, proto = await loop.create_connection(Recorder, sock=sock)
        assert transport.get_extra_info("peername") == server.getsockname()
        assert sock.gettimeout() == 0
        await _exchange(loop, transport, proto, peer)
        assert sock.fileno() == -1  # the transport owned it and closed it

    loop.run_until_complete(main())


def test_local_addr_is_bound(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    local = spare.getsockname()
    spare.close()

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(server))
        transport, proto = await loop.create_connection(
            Recorder, *server.getsockname(), local_addr=local
        )
        peer, peer_addr = await accepting
        closing.append(peer)
        assert transport.get_extra_info("sockname") == local == peer_addr
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_local_addr_already_in_use(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    taken = server.getsockname()

    async def main() -> None:
        with pytest.raises(OSError, match="error while attempting to bind on address") as info:
            await loop.create_connection(Recorder, *taken, local_addr=taken)
        assert "address already in use" in str(info.value)

    loop.run_until_complete(main())


def test_local_addr_of_another_family(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)

    async def main() -> None:
        with pytest.raises(OSError, match="no matching local address with family="):
            await loop.create_connection(Recorder, *server.getsockname(), local_addr=("::1", 0))

    loop.run_until_complete(main())


def _fake_resolver(loop: Any, answers: list[tuple[str, int]]) -> list[tuple[Any, ...]]:
    """Make *loop*.getaddrinfo answer every name with *answers* (IPv4)."""
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address) for address in answers
    ]
    asked: list[tuple[Any, ...]] = []

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append((host, port))
        return list(infos)

    loop.getaddrinfo = getaddrinfo
    return asked


def test_every_address_refused_lists_every_error(loop: Any) -> None:
    one, two = refused_port(), refused_port()
    asked = _fake_resolver(loop, [("127.0.0.1", one), ("127.0.0.1", two)])

    async def main() -> None:
        with pytest.raises(OSError) as info:
            await loop.create_connection(Recorder, "two.example", 80)
        assert type(info.value) is OSError
        assert str(info.value) == (
            f"Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', {one}), "
            f"[Errno 111] Connect call failed ('127.0.0.1', {two})"
        )

    loop.run_until_complete(main())
    assert asked == [("two.example", 80)]


def test_same_error_twice_is_raised_once(loop: Any) -> None:
    port = refused_port()
    _fake_resolver(loop, [("127.0.0.1", port), ("127.0.0.1", port)])

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, "twice.example", 80)

    loop.run_until_complete(main())


def test_all_errors_gives_an_exception_group(loop: Any) -> None:
    if isinstance(loop, asyncio.BaseEventLoop) and sys.version_info < (3, 12):
        pytest.skip("asyncio gained all_errors in 3.12 (sansloop offers it on 3.11)")
    one, two = refused_port(), refused_port()
    _fake_resolver(loop, [("127.0.0.1", one), ("127.0.0.1", two)])

    async def main() -> None:
        with pytest.raises(ExceptionGroup) as info:
            await loop.create_connection(Recorder, "two.example", 80, all_errors=True)
        group = info.value
        assert group.message == "create_connection failed"
        assert [type(e) for e in group.exceptions] == [ConnectionRefusedError] * 2

    loop.run_until_complete(main())


def test_empty_resolver_answer(loop: Any) -> None:
    _fake_resolver(loop, [])

    async def main() -> None:
        with pytest.raises(OSError, match=r"getaddrinfo\(\) returned empty list"):
            await loop.create_connection(Recorder, "nothing.example", 80)

    loop.run_until_complete(main())


def test_second_address_used_after_the_first_is_refused(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    _fake_resolver(loop, [("127.0.0.1", refused_port()), server.getsockname()])

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(server))
        transport, proto = await loop.create_connection(Recorder, "two.example", 80)
        peer, _ = await accepting
        closing.append(peer)
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_interleave_orders_the_attempts(loop: Any) -> None:
    v6a, v6b, v4 = refused_port(), refused_port(), refused_port()
    infos = [
        (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", v6a, 0, 0)),
        (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", v6b, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", v4)),
    ]

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return list(infos)

    loop.getaddrinfo = getaddrinfo

    async def attempts(**kwargs: Any) -> list[int]:
        with pytest.raises(OSError, match="^Multiple exceptions: ") as info:
            await loop.create_connection(Recorder, "mixed.example", 80, **kwargs)
        text = str(info.value)
        return sorted((v6a, v6b, v4), key=lambda port: text.index(f", {port}"))

    async def main() -> None:
        assert await attempts() == [v6a, v6b, v4]
        assert await attempts(interleave=1) == [v6a, v4, v6b]
        assert await attempts(interleave=2) == [v6a, v6b, v4]
        # happy_eyeballs_delay alone implies interleave=1
        assert await attempts(happy_eyeballs_delay=0.0) == [v6a, v4, v6b]

    loop.run_until_complete(main())


# -- Happy Eyeballs -------------------------------------------------------------


def test_happy_eyeballs_next_address_wins_after_the_delay(loop: Any, closing: list[Any]) -> None:
    hole = black_hole(closing)
    server = listener(closing)
    _fake_resolver(loop, [hole, server.getsockname()])

    async def main() -> None:
        before = open_fds()
        accepting = loop.create_task(loop.sock_accept(server))
        started = loop.time()
        transport, proto = await loop.create_connection(
            Recorder, "two.example", 80, happy_eyeballs_delay=0.05
        )
        assert loop.time() - started >= 0.04
        assert transport.get_extra_info("peername") == server.getsockname()
        peer, _ = await accepting
        closing.append(peer)
        # the losing attempt's socket is gone: only ours and the peer are new
        assert open_fds() == before + 2
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_happy_eyeballs_failure_starts_the_next_at_once(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    _fake_resolver(loop, [("127.0.0.1", refused_port()), server.getsockname()])

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(server))
        started = loop.time()
        transport, proto = await loop.create_connection(
            Recorder, "two.example", 80, happy_eyeballs_delay=30
        )
        assert loop.time() - started < 10
        peer, _ = await accepting
        closing.append(peer)
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_happy_eyeballs_every_address_fails(loop: Any) -> None:
    one, two = refused_port(), refused_port()
    _fake_resolver(loop, [("127.0.0.1", one), ("127.0.0.1", two)])

    async def main() -> None:
        with pytest.raises(OSError, match="^Multiple exceptions: "):
            await loop.create_connection(Recorder, "two.example", 80, happy_eyeballs_delay=0.01)

    before = open_fds()
    loop.run_until_complete(main())
    assert open_fds() == before


def test_happy_eyeballs_cancelled_mid_race(loop: Any, closing: list[Any]) -> None:
    hole = black_hole(closing)
    _fake_resolver(loop, [hole, hole, hole])

    async def main() -> None:
        before = open_fds()
        task = loop.create_task(
            loop.create_connection(Recorder, "holes.example", 80, happy_eyeballs_delay=0.001)
        )
        while open_fds() < before + 3:  # all three attempts are connecting
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if open_fds() == before:
                break
            await asyncio.sleep(0)
        assert open_fds() == before

    loop.run_until_complete(asyncio.wait_for(main(), 10))


# -- bad input ----------------------------------------------------------------------


def _bad_create_connection(closing: list[Any]) -> list[tuple[dict[str, Any], type, str]]:
    tcp = socket.socket()
    udp = socket.socket(type=socket.SOCK_DGRAM)
    closing += [tcp, udp]
    return [
        (dict(host=1, port=80), TypeError, "argument of type 'int' is not iterable"),
        (dict(host="127.0.0.1", port=[1]), OSError, "Int or String expected"),
        (dict(sock="x"), AttributeError, "'str' object has no attribute 'type'"),
        (dict(sock=udp), ValueError, f"A Stream Socket was expected, got {udp!r}"),
        (
            dict(host="127.0.0.1", port=1, sock=tcp),
            ValueError,
            "host/port and sock can not be specified at the same time",
        ),
        ({}, ValueError, "host and port was not specified and no sock specified"),
        (
            dict(host="127.0.0.1", port=1, server_hostname="x"),
            ValueError,
            "server_hostname is only meaningful with ssl",
        ),
        (
            dict(host="127.0.0.1", port=1, ssl_handshake_timeout=1),
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            dict(host="127.0.0.1", port=1, ssl_shutdown_timeout=1),
            ValueError,
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
    ]


def test_bad_input_to_create_connection(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    cases = _bad_create_connection(closing)

    async def main() -> None:
        for kwargs, error, message in cases:
            with pytest.raises(error) as info:
                await loop.create_connection(Recorder, **kwargs)
            assert str(info.value) == message, kwargs
        # the loop keeps running and still connects
        accepting = loop.create_task(loop.sock_accept(server))
        transport, proto = await loop.create_connection(Recorder, *server.getsockname())
        peer, _ = await accepting
        closing.append(peer)
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_bad_input_to_unix_and_accepted(loop: Any, closing: list[Any]) -> None:
    tcp = socket.socket()
    udp = socket.socket(type=socket.SOCK_DGRAM)
    unix = socket.socket(socket.AF_UNIX)
    closing += [tcp, udp, unix]
    unix_cases: list[tuple[dict[str, Any], type, str]] = [
        (dict(sock=tcp), ValueError, f"A UNIX Domain Stream Socket was expected, got {tcp!r}"),
        ({}, ValueError, "no path and sock were specified"),
        (
            dict(path="/nonexistent", sock=unix),
            ValueError,
            "path and sock can not be specified at the same time",
        ),
        (dict(path=1), TypeError, "expected str, bytes or os.PathLike object, not int"),
        (
            dict(path="/x", server_hostname="h"),
            ValueError,
            "server_hostname is only meaningful with ssl",
        ),
        (dict(sock="x"), AttributeError, "'str' object has no attribute 'family'"),
    ]
    accepted_cases: list[tuple[dict[str, Any], type, str]] = [
        (dict(sock=udp), ValueError, f"A Stream Socket was expected, got {udp!r}"),
        (dict(sock=None), AttributeError, "'NoneType' object has no attribute 'type'"),
        (
            dict(sock=tcp, ssl_handshake_timeout=1),
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
    ]

    async def main() -> None:
        for kwargs, error, message in unix_cases:
            with pytest.raises(error) as info:
                await loop.create_unix_connection(Recorder, **kwargs)
            assert str(info.value) == message, kwargs
        for kwargs, error, message in accepted_cases:
            with pytest.raises(error) as info:
                await loop.connect_accepted_socket(Recorder, **kwargs)
            assert str(info.value) == message, kwargs
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(Recorder, "/nonexistent/sansloop.sock")
        await asyncio.sleep(0)

    before = open_fds()
    loop.run_until_complete(main())
    assert open_fds() == before


def test_ssl_socket_is_refused(loop: Any, closing: list[Any]) -> None:
    context = ssl.create_default_context()
    wrapped = context.wrap_socket(socket.socket(), server_hostname="example.test")
    closing.append(wrapped)

    async def main() -> None:
        for call in (
            loop.create_connection(Recorder, sock=wrapped),
            loop.connect_accepted_socket(Recorder, wrapped),
        ):
            with pytest.raises(TypeError, match="^Socket cannot be of type SSLSocket$"):
                await call

    loop.run_until_complete(main())


def test_debug_mode_logs_the_connection(
    loop: Any, closing: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = listener(closing)
    loop.set_debug(True)

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(server))
        transport, proto = await loop.create_connection(Recorder, *server.getsockname())
        peer, _ = await accepting
        closing.append(peer)
        await _exchange(loop, transport, proto, peer)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.run_until_complete(main())
    host, port = server.getsockname()
    assert any(f"connected to {host}:{port!r}" in r.getMessage() for r in caplog.records)


def test_protocol_factory_error_closes_our_socket(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)

    def broken() -> asyncio.Protocol:
        raise ZeroDivisionError

    async def main() -> None:
        before = open_fds()
        with pytest.raises(ZeroDivisionError):
            await loop.create_connection(broken, *server.getsockname())
        gc.collect()  # asyncio leaves the socket to the garbage collector
        assert open_fds() == before

    if isinstance(loop, asyncio.BaseEventLoop):
        pytest.skip("asyncio leaks the socket to the GC (ResourceWarning) here")
    loop.run_until_complete(main())


# -- Unix sockets and accepted sockets ----------------------------------------------------


@pytest.fixture
def unix_listener(closing: list[Any]) -> Iterator[tuple[socket.socket, str]]:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.sock")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen(10)
        sock.setblocking(False)
        closing.append(sock)
        yield sock, path


@pytest.mark.parametrize("as_path", [False, True])
def test_unix_connection(loop: Any, closing: list[Any], unix_listener: Any, as_path: bool) -> None:
    server, path = unix_listener

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(server))
        where = pathlib.Path(path) if as_path else path
        transport, proto = await loop.create_unix_connection(Recorder, where)
        peer, _ = await accepting
        closing.append(peer)
        assert transport.get_extra_info("peername") == path
        assert not os.get_inheritable(transport.get_extra_info("socket").fileno())
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_unix_connection_over_a_given_socket(
    loop: Any, closing: list[Any], unix_listener: Any
) -> None:
    server, path = unix_listener
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)

    async def main() -> None:
        peer, _ = await loop.sock_accept(server)
        closing.append(peer)
        transport, proto = await loop.create_unix_connection(Recorder, sock=sock)
        await _exchange(loop, transport, proto, peer)

    loop.run_until_complete(main())


def test_connect_accepted_socket(loop: Any, closing: list[Any]) -> None:
    server = listener(closing)
    client = socket.socket()
    closing.append(client)
    client.setblocking(False)

    async def main() -> None:
        await loop.sock_connect(client, server.getsockname())
        accepted, _ = await loop.sock_accept(server)
        transport, proto = await loop.connect_accepted_socket(Recorder, accepted)
        assert transport.get_extra_info("peername") == client.getsockname()
        await _exchange(loop, transport, proto, client)

    loop.run_until_complete(main())


# -- fd hygiene ------------------------------------------------------------------------


async def _accept_and_close(loop: Any, server: socket.socket) -> None:
    while True:
        peer, _ = await loop.sock_accept(server)
        peer.close()


async def _settle_fds(target: int) -> int:
    """Let closes scheduled on the loop run (bounded); return the fd count."""
    for _ in range(200):
        if open_fds() == target:
            break
        await asyncio.sleep(0)
    return open_fds()


CYCLES = int(os.environ.get("SANSLOOP_CONNECT_CYCLES", "2000"))


def test_connect_close_cycles_return_to_baseline(loop: Any, closing: list[Any]) -> None:
    server = listener(closing, backlog=1000)

    async def main() -> None:
        acceptor = loop.create_task(_accept_and_close(loop, server))
        before = open_fds()
        for _ in range(CYCLES):
            transport, proto = await loop.create_connection(Recorder, *server.getsockname())
            transport.close()
            await proto.lost
        settled = await _settle_fds(before)
        acceptor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await acceptor
        assert settled == before

    loop.run_until_complete(main())


def _close_leaked_sockets(server_address: tuple[str, int]) -> None:
    """Close what asyncio leaked to *server_address* (else the GC warns in a later test)."""
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.fileno() != -1 and obj.family == socket.AF_INET:
            try:
                peer = obj.getpeername()
            except OSError:
                peer = None
            if peer == server_address or peer is None and obj.type == socket.SOCK_STREAM:
                obj.close()


CANCELS = int(os.environ.get("SANSLOOP_CANCEL_CYCLES", "2000"))
_ASYNCIO_LEAKS = pytest.mark.xfail(
    reason="asyncio 3.11-3.13 leaks the attempts' sockets when a Happy Eyeballs "
    "create_connection is cancelled (staggered_race)",
    strict=True,
)


@pytest.mark.parametrize(
    ("flavour", "delays"),
    [(name, delays) for name in sorted(FLAVOURS) for delays in ([None], [None, 0.0, 0.01])],
    ids=lambda value: (
        value if isinstance(value, str) else ("eyeballs" if len(value) > 1 else "plain")
    ),
)
def test_cancelled_at_a_random_step_leaks_nothing(
    flavour: str, delays: list[float | None], closing: list[Any], request: pytest.FixtureRequest
) -> None:
    if flavour == "asyncio" and len(delays) > 1:
        request.applymarker(_ASYNCIO_LEAKS)
    server = listener(closing, backlog=1000)
    rng = random.Random(1234)
    stepped = set()
    loop = FLAVOURS[flavour]()

    async def main() -> None:
        acceptor = loop.create_task(_accept_and_close(loop, server))
        gc.collect()
        before = open_fds()
        host, port = server.getsockname()
        for _ in range(CANCELS):
            name = rng.choice([host, "localhost"])
            task = loop.create_task(
                loop.create_connection(
                    Recorder, name, port, happy_eyeballs_delay=rng.choice(delays)
                )
            )
            steps = rng.randrange(8)
            for _ in range(steps):
                await asyncio.sleep(0)
            if task.done():
                transport, proto = task.result()
                transport.close()
                await proto.lost
                continue
            stepped.add(steps)
            task.cancel()
            try:
                transport, proto = await task
            except asyncio.CancelledError:
                pass
            else:  # it completed before the cancellation landed
                transport.close()
                await proto.lost
        settled = await _settle_fds(before)
        acceptor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await acceptor
        assert settled == before

    try:
        loop.run_until_complete(main())
    finally:
        _close_loop(loop)
        if flavour == "asyncio":
            _close_leaked_sockets(server.getsockname())
    assert len(stepped) >= 4  # cancellations did land at several different steps


# -- the backend owns names and sockets (sansloop only) ----------------------------------


class _OwnNetwork(Backend):
    """A real backend for readiness that owns name resolution and socket creation."""

    name = "own-network"

    def __init__(self, address: tuple[str, int]) -> None:
        self.inner = sansloop.default_backend()
        self.address = address
        self.queries: list[tuple[Any, ...]] = []
        self.made: list[socket.socket] = []

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

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0):
        sock = socket.socket(family, type, proto)
        self.made.append(sock)
        return sock

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        self.queries.append((host, port, family, type))
        if host != "db.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", self.address)]


@pytest.mark.parametrize("mode", ["loop", "full"])
def test_names_and_sockets_come_from_the_backend(mode: str, closing: list[Any]) -> None:
    server = listener(closing)
    backend = _OwnNetwork(server.getsockname())
    loop = EventLoop(backend, mode=mode)

    async def main() -> None:
        accepting = loop.create_task(loop.sock_accept(server))
        transport, proto = await loop.create_connection(Recorder, "db.test", 5432)
        peer, _ = await accepting
        closing.append(peer)
        assert transport.get_extra_info("socket").fileno() == backend.made[0].fileno()
        await _exchange(loop, transport, proto, peer)
        with pytest.raises(socket.gaierror):
            await loop.create_connection(Recorder, "elsewhere.test", 1)

    try:
        loop.run_until_complete(main())
    finally:
        _close_loop(loop)
    assert backend.queries == [
        ("db.test", 5432, 0, socket.SOCK_STREAM),
        ("elsewhere.test", 1, 0, socket.SOCK_STREAM),
    ]
    assert len(backend.made) == 1
