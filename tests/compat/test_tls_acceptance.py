"""TLS acceptance (issue #4): bulk echo, rejected certificates, silent clients,
a peer that never answers close_notify, garbage records.

Each scenario runs on sansloop in loop mode and in full mode, and on stdlib
asyncio as the reference. Certificates come from trustme; loopback only.
Figures are the issue's; ``SANSLOOP_TLS_SCALE`` (a float, default 1) scales
the counts for a quick local run, never in CI.

Misbehaving peers are plain non-blocking sockets driven with the loop's
``sock_*`` calls, speaking TLS (when they speak it at all) through an
``ssl.MemoryBIO`` pair, so that they do exactly what the test says and no more.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

import sansloop
import sansloop.compat

SCALE = float(os.environ.get("SANSLOOP_TLS_SCALE", "1"))

FLAVOURS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "sansloop-loop": sansloop.new_event_loop,
    "sansloop-full": sansloop.compat.new_event_loop,
}


def scaled(n: int) -> int:
    return max(1, int(n * SCALE))


@pytest.fixture(params=sorted(FLAVOURS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FLAVOURS[request.param]()
    the_loop.set_exception_handler(lambda loop, context: None)  # failures are asserted
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
    ca.issue_cert("localhost").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run(loop: asyncio.AbstractEventLoop, coro: Any, timeout: float = 50.0) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Watched(asyncio.Protocol):
    """A server-side protocol that records how its connection ended."""

    instances: list[Watched]

    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()
        self.made = False

    def connection_made(self, transport: Any) -> None:
        self.made = True
        self.transport = transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


class RawTLS:
    """A TLS client over memory BIOs on a plain socket: it does only what it is told."""

    def __init__(self, loop: Any, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.loop = loop
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    async def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush()
                data = await self.loop.sock_recv(self.sock, 65536)
                assert data, "the server hung up during the handshake"
                self.incoming.write(data)
        await self.flush()

    async def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)


async def raw_connect(loop: Any, addr: Any) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    return sock


# -- 200 connections x 256 KiB, byte-exact --------------------------------------------


def test_bulk_echo_byte_exact(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    connections, size = scaled(200), 256 * 1024

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def client(seed: int, addr: Any) -> tuple[str, str]:
        payload = random.Random(seed).randbytes(size)
        reader, writer = await asyncio.open_connection(
            *addr, ssl=client_ctx, server_hostname="localhost"
        )
        got = hashlib.sha256()
        received = 0

        async def read_all() -> None:
            nonlocal received
            while received < size:
                data = await reader.read(65536)
                assert data, "the echo ended early"
                got.update(data)
                received += len(data)

        reading = asyncio.ensure_future(read_all())
        for offset in range(0, size, 32768):
            writer.write(payload[offset : offset + 32768])
            await writer.drain()
        await reading
        writer.close()
        await writer.wait_closed()
        return hashlib.sha256(payload).hexdigest(), got.hexdigest()

    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx, backlog=256)
        addr = server.sockets[0].getsockname()
        before = open_fds()
        results = await asyncio.gather(*(client(seed, addr) for seed in range(connections)))
        assert len(results) == connections
        assert all(sent == echoed for sent, echoed in results)
        server.close()
        await server.wait_closed()
        assert open_fds() <= before

    run(loop, main())


# -- wrong CA, wrong name, expired: every attempt rejected ------------------------------


@pytest.mark.parametrize("problem", ["unknown CA", "wrong hostname", "expired"])
def test_bad_certificates_are_always_rejected(
    loop: Any, ca: trustme.CA, client_ctx: ssl.SSLContext, problem: str
) -> None:
    attempts = scaled(20)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    hostname = "localhost"
    if problem == "unknown CA":
        trustme.CA().issue_cert("localhost").configure_cert(server_side)
        reason = "unable to get local issuer certificate"
    elif problem == "wrong hostname":
        ca.issue_cert("localhost").configure_cert(server_side)
        hostname = "example.org"
        reason = "Hostname mismatch"
    else:
        past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        ca.issue_cert(
            "localhost", not_before=past, not_after=past + datetime.timedelta(days=1)
        ).configure_cert(server_side)
        reason = "certificate has expired"

    async def main() -> None:
        made: list[Watched] = []

        def factory() -> Watched:
            made.append(Watched())
            return made[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_side)
        addr = server.sockets[0].getsockname()
        before = open_fds()
        rejected = 0
        for _ in range(attempts):
            try:
                transport, _ = await loop.create_connection(
                    asyncio.Protocol, *addr, ssl=client_ctx, server_hostname=hostname
                )
            except ssl.SSLCertVerificationError as exc:
                assert reason in exc.verify_message
                rejected += 1
            else:
                transport.close()
        assert rejected == attempts
        assert not any(p.made for p in made)  # no server protocol was connected
        server.close()
        await server.wait_closed()
        assert open_fds() <= before

    run(loop, main())


# -- 1,000 clients that never send a ClientHello ---------------------------------------


def test_silent_clients_are_closed_after_the_handshake_timeout(
    loop: Any, server_ctx: ssl.SSLContext
) -> None:
    clients, timeout = scaled(1000), 1.0

    async def main() -> None:
        before = open_fds()
        server = await loop.create_server(
            Watched, "127.0.0.1", 0, ssl=server_ctx, ssl_handshake_timeout=timeout, backlog=1024
        )
        addr = server.sockets[0].getsockname()
        socks: list[socket.socket] = []
        lifetimes: list[float] = []

        async def silent_client() -> None:
            sock = await raw_connect(loop, addr)
            socks.append(sock)
            connected = loop.time()
            data = await loop.sock_recv(sock, 1)  # EOF once the server gives up
            assert data == b""
            lifetimes.append(loop.time() - connected)

        try:
            await asyncio.gather(*(silent_client() for _ in range(clients)))
        finally:
            for sock in socks:
                sock.close()
            server.close()
            await server.wait_closed()
        # every one was closed by the server within timeout + 1 s of connecting
        assert len(lifetimes) == clients
        assert max(lifetimes) < timeout + 1.0, max(lifetimes)
        assert open_fds() == before

    run(loop, main())


# -- a peer that never answers our close_notify ------------------------------------------


def test_close_does_not_wait_past_the_shutdown_timeout(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    shutdown_timeout = 0.5

    async def main() -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.setblocking(False)
        before = open_fds()

        async def mute_server() -> socket.socket:
            conn, _ = await loop.sock_accept(listener)
            conn.setblocking(False)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = server_ctx.wrap_bio(incoming, outgoing, server_side=True)
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if outgoing.pending:
                        await loop.sock_sendall(conn, outgoing.read())
                    incoming.write(await loop.sock_recv(conn, 65536))
            await loop.sock_sendall(conn, outgoing.read())
            return conn  # then it reads nothing and answers nothing

        serving = asyncio.ensure_future(mute_server())
        transport, proto = await loop.create_connection(
            Watched,
            *listener.getsockname(),
            ssl=client_ctx,
            server_hostname="localhost",
            ssl_shutdown_timeout=shutdown_timeout,
        )
        conn = await serving
        try:
            started = time.monotonic()
            transport.close()
            exc = await proto.lost
            elapsed = time.monotonic() - started
            assert isinstance(exc, TimeoutError) and str(exc) == "SSL shutdown timed out"
            assert shutdown_timeout - 0.05 <= elapsed < shutdown_timeout + 1.0, elapsed
        finally:
            conn.close()
            listener.close()
        assert open_fds() == before - 1  # (the listener)

    run(loop, main())


# -- 10,000 seeded garbage records after the handshake -----------------------------------


def _garbage_records(rng: random.Random, count: int) -> bytes:
    """TLS-looking records: plausible or odd headers, random bodies, some oversized."""
    out = bytearray()
    for _ in range(count):
        kind = rng.choice([20, 21, 22, 23, 23, 23, 24, rng.randrange(256)])
        version = rng.choice([0x0303, 0x0303, 0x0301, rng.randrange(65536)])
        length = rng.choice([0, 1, 17, 100, 16401, rng.randrange(1, 1200)])
        out += bytes([kind]) + version.to_bytes(2, "big") + length.to_bytes(2, "big")
        out += rng.randbytes(min(length, 1200))
    return bytes(out)


def test_garbage_records_end_in_an_ssl_error(
    loop: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    connections, records_each = scaled(100), 100  # 10,000 records

    async def main() -> None:
        made: list[Watched] = []

        def factory() -> Watched:
            made.append(Watched())
            return made[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
        addr = server.sockets[0].getsockname()
        before = open_fds()
        cpu_before = time.process_time()

        async def one(seed: int) -> None:
            sock = await raw_connect(loop, addr)
            try:
                peer = RawTLS(loop, sock, client_ctx)
                await peer.handshake()
                garbage = _garbage_records(random.Random(seed), records_each)
                try:
                    await loop.sock_sendall(sock, garbage)
                    while await loop.sock_recv(sock, 65536):
                        pass  # until the server drops us
                except (ConnectionResetError, BrokenPipeError):
                    pass
            finally:
                sock.close()

        await asyncio.gather(*(one(seed) for seed in range(connections)))
        errors = await asyncio.gather(*(p.lost for p in made))
        assert len(errors) == connections
        assert all(isinstance(exc, ssl.SSLError) for exc in errors), errors
        # no busy loop: once every connection failed, an idle second costs no CPU
        spent = time.process_time() - cpu_before
        idle_before = time.process_time()
        await asyncio.sleep(0.3)
        assert time.process_time() - idle_before < 0.1
        assert spent < 30
        server.close()
        await server.wait_closed()
        assert open_fds() <= before

    run(loop, main())
