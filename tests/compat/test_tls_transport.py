"""TLS transports: asyncio's observable behaviour, on asyncio and on sansloop.

Every test runs on stdlib asyncio's own loop (the reference), on sansloop in
loop mode and in full mode. Certificates come from trustme; loopback only.
Both ends are the loop under test unless a test needs a peer that misbehaves,
which is then a plain socket driven with the loop's sock_* methods or an
``ssl.MemoryBIO`` pair.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

import sansloop
import sansloop.compat

FLAVOURS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "sansloop-loop": sansloop.new_event_loop,
    "sansloop-full": sansloop.compat.new_event_loop,
}


@pytest.fixture(params=sorted(FLAVOURS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FLAVOURS[request.param]()
    yield the_loop
    try:
        the_loop.run_until_complete(the_loop.shutdown_default_executor())
    finally:
        the_loop.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def run(loop: asyncio.AbstractEventLoop, coro: Any, timeout: float = 20.0) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Recorder(asyncio.Protocol):
    """Records the calls it gets; ``made``/``lost`` resolve when they happen."""

    def __init__(self, *, keep_open: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.calls: list[str] = []
        self.data = bytearray()
        self.transport: Any = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.got_eof = loop.create_future()
        self.keep_open = keep_open
        self.want = 0
        self.enough = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.calls.append("made")
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        if not self.calls or self.calls[-1] != "data":
            self.calls.append("data")
        self.data += data
        if self.want and len(self.data) >= self.want and not self.enough.done():
            self.enough.set_result(None)

    def eof_received(self) -> bool:
        self.calls.append("eof")
        self.got_eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc: BaseException | None) -> None:
        self.calls.append("lost")
        self.lost.set_result(exc)

    async def until(self, n: int) -> bytes:
        """Wait until *n* bytes in all have arrived; all of them."""
        if len(self.data) < n:
            self.want = n
            self.enough = asyncio.get_running_loop().create_future()
            await self.enough
        return bytes(self.data)


class Echo(asyncio.Protocol):
    """Echoes every byte; closes when the peer closes."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def tls_server(
    server_ctx: ssl.SSLContext, factory: Callable[[], Any] = Echo, **kwargs: Any
) -> tuple[Any, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx, **kwargs)
    return server, server.sockets[0].getsockname()


async def close_server(server: Any) -> None:
    server.close()
    await server.wait_closed()


# -- the happy path ------------------------------------------------------------------


def test_connect_exchange_and_close_cleanly(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        transport, proto = await loop.create_connection(
            Recorder, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        # connection_made ran before create_connection returned: after the handshake
        assert proto.calls == ["made"] and proto.transport is transport
        assert "ssl" in type(transport).__name__.lower()
        assert isinstance(transport, asyncio.Transport)
        peer = servers[0]
        await peer.made
        transport.write(b"ping")
        transport.writelines([b"-", bytearray(b"x"), memoryview(b"yz")])
        assert await peer.until(8) == b"ping-xyz"
        peer.transport.write(b"pong")
        assert await proto.until(4) == b"pong"
        assert transport.get_write_buffer_size() == 0
        # close(): close_notify; the server hears eof_received, then both are lost
        transport.close()
        assert transport.is_closing()
        assert await proto.lost is None
        assert await peer.lost is None
        # as asyncio: the peer's answering close_notify is an eof_received too
        assert proto.calls == ["made", "data", "eof", "lost"]
        assert peer.calls == ["made", "data", "eof", "lost"]
        await close_server(server)

    run(loop, main())


def test_extra_info(loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async def main() -> None:
        server, addr = await tls_server(server_ctx)
        transport, proto = await loop.create_connection(
            Recorder, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        assert transport.get_extra_info("sslcontext") is client_ctx
        obj = transport.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject) and obj.server_hostname == "localhost"
        cipher = transport.get_extra_info("cipher")
        assert cipher == obj.cipher() and cipher[1].startswith("TLS")
        assert transport.get_extra_info("compression") == obj.compression()
        peercert = transport.get_extra_info("peercert")
        assert ("DNS", "localhost") in peercert["subjectAltName"]
        assert transport.get_extra_info("peername") == addr
        sock = transport.get_extra_info("socket")
        assert transport.get_extra_info("sockname") == sock.getsockname()
        assert transport.get_extra_info("no such key", 42) == 42
        assert transport.get_protocol() is proto
        other = Recorder()
        transport.set_protocol(other)
        assert transport.get_protocol() is other
        transport.set_protocol(proto)
        assert not transport.can_write_eof()
        with pytest.raises(NotImplementedError):
            transport.write_eof()
        with pytest.raises(TypeError, match="data: expecting a bytes-like instance, got str"):
            transport.write("text")
        transport.close()
        await proto.lost
        await close_server(server)

    run(loop, main())


def test_ssl_true_uses_the_default_context(loop: Any, server_ctx: ssl.SSLContext) -> None:
    # The default context does not trust our CA: the handshake fails on verification.
    async def main() -> None:
        server, addr = await tls_server(server_ctx)
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(Recorder, *addr, ssl=True)
        await close_server(server)

    run(loop, main())


def test_buffered_protocol_receives_in_place(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    payload = os.urandom(300_000)

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)  # smaller than one record: several rounds
            self.got = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> memoryview:
            # (a bytearray here loses data under stdlib asyncio 3.11-3.13: its
            # sslproto reads into buf[offset:], a copy, once a buffer fills)
            return memoryview(self.buf)

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]
            if len(self.got) >= len(payload) and not self.done.done():
                self.done.set_result(None)

        def connection_lost(self, exc: BaseException | None) -> None:
            pass

    async def main() -> None:
        server, addr = await tls_server(server_ctx)
        transport, proto = await loop.create_connection(
            Buffered, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        transport.write(payload)
        await proto.done
        assert bytes(proto.got) == payload
        transport.close()
        await close_server(server)

    run(loop, main())


def test_unix_socket_and_accepted_socket(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "s.sock")
            server = await loop.create_unix_server(Echo, path, ssl=server_ctx)
            transport, proto = await loop.create_unix_connection(
                Recorder, path, ssl=client_ctx, server_hostname="localhost"
            )
            transport.write(b"over unix")
            assert await proto.until(9) == b"over unix"
            transport.close()
            await proto.lost
            await close_server(server)
        # connect_accepted_socket(ssl=...) is the server side of TLS
        left, right = socket.socketpair()
        accepted = loop.create_task(
            loop.connect_accepted_socket(Echo, left, ssl=server_ctx, ssl_handshake_timeout=5)
        )
        transport, proto = await loop.create_connection(
            Recorder, sock=right, ssl=client_ctx, server_hostname="localhost"
        )
        server_transport, _ = await accepted
        assert server_transport.get_extra_info("sslcontext") is server_ctx
        transport.write(b"accepted")
        assert await proto.until(8) == b"accepted"
        transport.close()
        await proto.lost

    run(loop, main())


# -- handshake failures ----------------------------------------------------------------


def test_handshake_errors_go_to_the_waiter_and_the_protocol_hears_nothing(
    loop: Any, ca: trustme.CA, server_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        stranger = ssl.create_default_context()
        trustme.CA().configure_trust(stranger)
        made: list[Recorder] = []

        def client() -> Recorder:
            made.append(Recorder())
            return made[-1]

        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await loop.create_connection(client, *addr, ssl=stranger, server_hostname="localhost")
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            await loop.create_connection(client, *addr, ssl=trusting, server_hostname="example.org")
        # server_hostname='' is asyncio's opt-out of the name check (chain still verified)
        transport, proto = await loop.create_connection(
            Recorder, *addr, ssl=trusting, server_hostname=""
        )
        transport.close()
        await proto.lost
        assert all(p.calls == [] for p in made)
        await close_server(server)
        # the server's protocols of the failed handshakes never heard a thing
        assert [p.calls for p in servers[:2]] == [[], []]

    with _quiet_asyncio():
        run(loop, main())


def test_handshake_timeout(loop: Any, client_ctx: ssl.SSLContext) -> None:
    async def main() -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        try:
            with pytest.raises(ConnectionAbortedError) as info:
                await loop.create_connection(
                    Recorder,
                    *listener.getsockname(),
                    ssl=client_ctx,
                    server_hostname="localhost",
                    ssl_handshake_timeout=0.2,
                )
            assert str(info.value) == (
                "SSL handshake is taking longer than 0.2 seconds: aborting the connection"
            )
        finally:
            listener.close()

    with _quiet_asyncio():
        run(loop, main())


def test_peer_hangs_up_during_the_handshake(loop: Any, client_ctx: ssl.SSLContext) -> None:
    async def main() -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.setblocking(False)

        async def hang_up() -> None:
            conn, _ = await loop.sock_accept(listener)
            await loop.sock_recv(conn, 1024)  # the ClientHello
            conn.close()

        task = loop.create_task(hang_up())
        try:
            with pytest.raises(ConnectionResetError):
                await loop.create_connection(
                    Recorder, *listener.getsockname(), ssl=client_ctx, server_hostname="localhost"
                )
            await task
        finally:
            listener.close()

    with _quiet_asyncio():
        run(loop, main())


# -- arguments -----------------------------------------------------------------------------


def test_argument_checks(loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async def main() -> None:
        for name in ("ssl_handshake_timeout", "ssl_shutdown_timeout"):
            for call in (
                loop.create_connection(Recorder, "127.0.0.1", 1, **{name: 1}),
                loop.create_server(Recorder, "127.0.0.1", 0, **{name: 1}),
                loop.create_unix_connection(Recorder, "/nonexistent", **{name: 1}),
                loop.create_unix_server(Recorder, "/nonexistent/x", **{name: 1}),
            ):
                with pytest.raises(ValueError, match=f"^{name} is only meaningful with ssl$"):
                    await call
        with pytest.raises(ValueError, match="^server_hostname is only meaningful with ssl$"):
            await loop.create_connection(Recorder, "127.0.0.1", 1, server_hostname="x")
        with socket.socket() as unconnected:
            with pytest.raises(ValueError, match="You must set server_hostname when using ssl"):
                await loop.create_connection(Recorder, sock=unconnected, ssl=client_ctx)
        with pytest.raises(TypeError, match="ssl argument must be an SSLContext or None"):
            await loop.create_server(Recorder, "127.0.0.1", 0, ssl=True)
        if isinstance(loop, asyncio.BaseEventLoop):
            return  # asyncio checks these once connected, and leaks that socket
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        try:
            for name in ("ssl_handshake_timeout", "ssl_shutdown_timeout"):
                for value in (0, -1):
                    with pytest.raises(
                        ValueError, match=f"^{name} should be a positive number, got {value}$"
                    ):
                        await loop.create_connection(
                            Recorder,
                            *listener.getsockname(),
                            ssl=client_ctx,
                            server_hostname="localhost",
                            **{name: value},
                        )
        finally:
            listener.close()

    with _quiet_asyncio():
        run(loop, main())


# -- reading, writing, flow control --------------------------------------------------------


def test_pause_and_resume_reading(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        transport, proto = await loop.create_connection(
            Recorder, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        peer = await servers[0].made
        assert transport.is_reading()
        transport.pause_reading()
        assert not transport.is_reading()
        peer.write(b"while paused")
        transport.write(b"x")  # a round trip proves the server wrote first
        await servers[0].until(1)
        peer.write(b"!")
        for _ in range(50):
            await asyncio.sleep(0)
        assert proto.data == b""
        transport.resume_reading()
        assert transport.is_reading()
        assert await proto.until(13) == b"while paused!"
        transport.close()
        await proto.lost
        await close_server(server)

    run(loop, main())


def test_write_flow_control_counts_the_tls_backlog(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    class Writer(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.paused = 0
            self.resumed = asyncio.get_running_loop().create_future()

        def pause_writing(self) -> None:
            self.paused += 1

        def resume_writing(self) -> None:
            if not self.resumed.done():
                self.resumed.set_result(None)

    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        transport, proto = await loop.create_connection(
            Writer, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        await servers[0].made
        servers[0].transport.pause_reading()  # the server stops reading: buffers fill
        low, high = transport.get_write_buffer_limits()
        assert high >= low >= 0
        transport.set_write_buffer_limits(high=64 * 1024)
        assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        chunk = b"z" * 65536
        sent = 0
        for _ in range(400):  # at most 25 MiB; the kernel buffers fill long before
            if proto.paused:
                break
            transport.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        assert proto.paused == 1
        assert transport.get_write_buffer_size() > 64 * 1024
        servers[0].transport.resume_reading()
        await proto.resumed
        got = await servers[0].until(sent)
        assert len(got) == sent and set(got) == {ord("z")}
        transport.close()
        await proto.lost
        await close_server(server)

    run(loop, main())


def test_abort_drops_at_once(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        transport, proto = await loop.create_connection(
            Recorder, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        await servers[0].made
        transport.abort()
        assert transport.is_closing()
        assert await proto.lost is None
        # the server sees the TCP close without close_notify: eof, then lost
        await servers[0].lost
        assert servers[0].calls[-1] == "lost"
        transport.write(b"after abort")  # dropped, counted, no error
        await close_server(server)

    with _quiet_asyncio():
        run(loop, main())


def test_peer_close_notify_is_eof_received(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        transport, proto = await loop.create_connection(
            Recorder, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        peer = await servers[0].made
        peer.write(b"last words")
        peer.close()
        assert await proto.lost is None
        assert proto.calls == ["made", "data", "eof", "lost"]
        assert proto.data == b"last words"
        assert await servers[0].lost is None
        await close_server(server)

    run(loop, main())


def test_truncation_is_eof_received(loop: Any, server_ctx: ssl.SSLContext) -> None:
    """A FIN without close_notify: asyncio calls eof_received (it cannot tell)."""

    async def main() -> None:
        server, addr = await tls_server(server_ctx)
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(addr)
        raw.setblocking(False)
        # a TLS client over memory BIOs on the loop's own sock_* calls
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client.wrap_bio(incoming, outgoing)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await loop.sock_sendall(raw, outgoing.read())
                incoming.write(await loop.sock_recv(raw, 65536))
        await loop.sock_sendall(raw, outgoing.read())
        obj.write(b"hello")
        await loop.sock_sendall(raw, outgoing.read())
        echoed = b""
        while len(echoed) < 5:
            try:
                echoed += obj.read(100)
            except ssl.SSLWantReadError:
                incoming.write(await loop.sock_recv(raw, 65536))
        assert echoed == b"hello"
        raw.shutdown(socket.SHUT_WR)  # no close_notify
        while await loop.sock_recv(raw, 65536):
            pass  # the server closes its side (no close_notify of ours to answer)
        raw.close()
        await close_server(server)

    with _quiet_asyncio():
        run(loop, main())


# -- start_tls -------------------------------------------------------------------------


def test_loop_start_tls_both_sides(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        upgraded = loop.create_future()

        class Upgrading(Recorder):
            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                if data == b"STARTTLS":
                    self.transport.write(b"OK")
                    task = loop.create_task(
                        loop.start_tls(self.transport, self, server_ctx, server_side=True)
                    )
                    task.add_done_callback(lambda t: upgraded.set_result(t.result()))

        servers: list[Upgrading] = []

        def factory() -> Upgrading:
            servers.append(Upgrading())
            return servers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        transport, proto = await loop.create_connection(Recorder, *addr)
        transport.write(b"STARTTLS")
        assert await proto.until(2) == b"OK"
        tls = await loop.start_tls(transport, proto, client_ctx, server_hostname="localhost")
        assert "ssl" in type(tls).__name__.lower()
        assert tls.get_extra_info("cipher") is not None
        server_tls = await upgraded
        assert server_tls.get_protocol() is servers[0]
        tls.write(b"secret")
        assert (await servers[0].until(14))[8:] == b"secret"
        server_tls.write(b"reply")
        assert (await proto.until(7))[2:] == b"reply"
        assert proto.calls == ["made", "data"]  # connection_made once, before TLS
        tls.close()
        assert await proto.lost is None
        await servers[0].lost
        await close_server(server)
        with pytest.raises(TypeError, match="sslcontext is expected to be an instance of"):
            await loop.start_tls(transport, proto, object())

    run(loop, main())


def test_stream_writer_start_tls(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("peercert") is not None
        writer.write(b"now secret\n")
        assert await reader.readline() == b"NOW SECRET\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await close_server(server)

    run(loop, main())


def test_streams_over_tls(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.readexactly(100_000)
            writer.write(data[::-1])
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(
            *addr, ssl=client_ctx, server_hostname="localhost"
        )
        payload = os.urandom(100_000)
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(100_000) == payload[::-1]
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await close_server(server)

    run(loop, main())


class _quiet_asyncio:
    """Silence the asyncio logger (debug-mode handshake reports) for a block."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("asyncio")
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


# -- failure paths of the app -----------------------------------------------------------


def test_cancelled_create_connection_leaves_nothing_behind(
    loop: Any, client_ctx: ssl.SSLContext
) -> None:
    """Cancelled at each early step: the socket is closed at once, no handshake lingers."""

    async def main() -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(20)
        listener.setblocking(False)
        before = len(os.listdir("/proc/self/fd"))
        accepted: list[socket.socket] = []
        try:
            for steps in range(8):
                task = loop.create_task(
                    loop.create_connection(
                        Recorder, *listener.getsockname(), ssl=client_ctx, server_hostname="x"
                    )
                )
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            for _ in range(10):
                await asyncio.sleep(0)
            while True:
                try:
                    accepted.append(listener.accept()[0])
                except BlockingIOError:
                    break
            assert accepted  # some attempts got as far as connecting
            for conn in accepted:
                conn.settimeout(5)
                # the client's socket is closed: EOF (after a ClientHello, maybe)
                while conn.recv(65536):
                    pass
        finally:
            listener.close()
            for conn in accepted:
                conn.close()
        assert len(os.listdir("/proc/self/fd")) == before - 1  # (the listener)

    run(loop, main())


def test_connection_made_raising_fails_create_connection(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    class Broken(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            raise ZeroDivisionError("made")

    async def main() -> None:
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda loop, context: reports.append(context))
        server, addr = await tls_server(server_ctx)
        with pytest.raises(ZeroDivisionError, match="made"):
            await loop.create_connection(Broken, *addr, ssl=client_ctx, server_hostname="localhost")
        assert any(isinstance(r.get("exception"), ZeroDivisionError) for r in reports)
        await close_server(server)

    run(loop, main())


def test_paused_in_buffer_updated_then_peer_closes_loses_no_data(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """Reading paused inside buffer_updated() while the rest and close_notify arrive."""
    payload = os.urandom(50_000)

    class Pausing(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(4096)
            self.got = bytearray()
            self.calls: list[str] = []
            self.lost = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> memoryview:
            return memoryview(self.buf)

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]
            self.transport.pause_reading()
            asyncio.get_running_loop().call_soon(self.transport.resume_reading)

        def eof_received(self) -> None:
            self.calls.append(f"eof after {len(self.got)}")

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def main() -> None:
        servers: list[Recorder] = []

        def factory() -> Recorder:
            servers.append(Recorder())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        transport, proto = await loop.create_connection(
            Pausing, *addr, ssl=client_ctx, server_hostname="localhost"
        )
        peer = await servers[0].made
        peer.write(payload)
        peer.close()
        assert await proto.lost is None
        assert bytes(proto.got) == payload
        assert proto.calls == [f"eof after {len(payload)}"]
        await close_server(server)

    run(loop, main())


def test_truncation_is_recorded(loop: Any, server_ctx: ssl.SSLContext) -> None:
    """FIN without close_notify: eof_received then connection_lost(None), as asyncio;
    sansloop also says so in get_extra_info("ssl_truncated")."""

    async def main() -> None:
        servers: list[Recorder] = []
        seen: list[Any] = []

        class Watching(Recorder):
            def eof_received(self) -> bool:
                seen.append(self.transport.get_extra_info("ssl_truncated"))
                return super().eof_received()

        def factory() -> Recorder:
            servers.append(Watching())
            return servers[-1]

        server, addr = await tls_server(server_ctx, factory)
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(addr)
        raw.setblocking(False)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client.wrap_bio(incoming, outgoing)
        with raw:
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await loop.sock_sendall(raw, outgoing.read())
                    incoming.write(await loop.sock_recv(raw, 65536))
            obj.write(b"half a message")
            await loop.sock_sendall(raw, outgoing.read())
            proto = servers[0]
            await proto.until(14)
            assert proto.transport.get_extra_info("ssl_truncated") in (False, None)
            raw.shutdown(socket.SHUT_WR)  # no close_notify
            assert await proto.lost is None
        assert proto.calls == ["made", "data", "eof", "lost"]
        if not isinstance(loop, asyncio.BaseEventLoop):
            assert seen == [True]
        await close_server(server)

    run(loop, main())


@pytest.mark.parametrize("backend", ["epoll", "poll", "selectors"])
@pytest.mark.parametrize("mode", ["loop", "full"])
def test_every_backend(
    backend: str, mode: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """The TLS transport only uses the socket transport: any backend carries it."""
    from sansloop.backends import get_backend
    from sansloop.compat.loop import EventLoop

    loop = EventLoop(get_backend(backend), mode=mode)
    try:
        test_streams_over_tls(loop, server_ctx, client_ctx)
    finally:
        loop.close()
