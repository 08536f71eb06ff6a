"""fd hygiene: cancelled create_connection(sock=...) leaks nothing and harms no one.

- 1,000 create_connection(sock=s) calls, each cancelled after a seeded number
  of loop steps (0-3), then the caller's stale ``s.close()``: the process has
  the same number of fds afterwards.
- The fd-reuse victim case (uvloop #645): a create_connection(sock=s) is
  cancelled; a new "victim" connection is opened (and may get s's old fd
  number); the stale ``s.close()`` runs; a "spy" socket is opened (and would
  get the victim's fd number, had the stale close closed it). The victim then
  sends a secret: the victim's peer gets every byte, the spy gets none, and
  the victim's transport is intact. Repeated 200 times over seeded steps.

- Churn: connect/close cycles (open_connection, then close both ends),
  open_connection cancelled after a seeded number of steps, server
  start/stop cycles, and subprocess spawns (half of them of a missing
  program), and TLS handshakes that fail verification: fd delta 0 after
  each, no child left. CI runs 1,000 / 500 / 200 / 100 / 100;
  ``SANSLOOP_RELIABILITY=long`` runs the issue's 10,000 / 2,000 / 1,000 /
  1,000 / 1,000.

All run on each sansloop mode; stdlib asyncio is the reference cell.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.compat.loop import EventLoop

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
CONNECT_CLOSE = 10_000 if LONG else 1_000
CANCELLED_OPENS = 2_000 if LONG else 500
SERVER_CYCLES = 1_000 if LONG else 200
SPAWNS = 1_000 if LONG else 100
FAILED_HANDSHAKES = 1_000 if LONG else 100

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "sansloop-loop": lambda: EventLoop(sansloop.get_backend("epoll"), mode="loop"),
    "sansloop-full": lambda: EventLoop(sansloop.get_backend("epoll"), mode="full"),
}


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def connected_pair(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    return client, peer


@pytest.mark.parametrize("kind", list(LOOPS))
def test_a_thousand_cancelled_create_connection_sock_leak_no_fd(kind: str) -> None:
    rng = random.Random(645)
    before = fd_count()
    listener = socket.create_server(("127.0.0.1", 0), backlog=100)
    loop = LOOPS[kind]()
    outcomes = {"cancelled": 0, "completed": 0}

    async def main() -> None:
        for _ in range(1000):
            sock, peer = connected_pair(listener)
            task = asyncio.ensure_future(loop.create_connection(asyncio.Protocol, sock=sock))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                transport, _ = await task
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
            else:
                outcomes["completed"] += 1
                transport.close()
                await asyncio.sleep(0)
            sock.close()  # the caller's stale close: harmless whoever owns the fd
            peer.close()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        listener.close()
    assert fd_count() == before
    assert outcomes["cancelled"] > 0 and sum(outcomes.values()) == 1000


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.lost: list[BaseException | None] = []

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


@pytest.mark.parametrize("kind", list(LOOPS))
def test_fd_reuse_victim_gets_every_byte_and_the_spy_none(kind: str) -> None:
    rng = random.Random(646)
    before = fd_count()
    listener = socket.create_server(("127.0.0.1", 0), backlog=100)
    loop = LOOPS[kind]()
    reused = 0

    async def main() -> None:
        nonlocal reused
        for round_ in range(200):
            stale, stale_peer = connected_pair(listener)
            stale_fd = stale.fileno()
            task = asyncio.ensure_future(loop.create_connection(asyncio.Protocol, sock=stale))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                transport, _ = await task
            except asyncio.CancelledError:
                pass
            else:
                transport.close()
                await asyncio.sleep(0)
            victim_sock, victim_peer = connected_pair(listener)
            reused += victim_sock.fileno() == stale_fd
            victim_transport, victim = await loop.create_connection(Collect, sock=victim_sock)
            stale.close()  # the stale close must not touch the victim's fd
            spy, spy_peer = socket.socketpair()
            spy.setblocking(False)
            secret = f"secret {round_} ".encode() * 100
            victim_transport.write(secret)
            victim_peer.settimeout(5)
            got = b""
            while len(got) < len(secret):
                chunk = victim_peer.recv(65536)
                assert chunk, "the victim's peer saw EOF"
                got += chunk
            assert got == secret
            victim_peer.sendall(b"reply")
            while len(victim.data) < 5 and not victim.lost:
                await asyncio.sleep(0)
            assert bytes(victim.data) == b"reply" and victim.lost == []
            with pytest.raises(BlockingIOError):
                spy.recv(65536)  # not one byte reached the spy
            assert not victim_transport.is_closing()
            victim_transport.close()
            while not victim.lost:
                await asyncio.sleep(0)
            for s in (spy, spy_peer, victim_peer, stale_peer):
                s.close()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        listener.close()
    assert fd_count() == before
    # The fd number was really reused, so the stale close had a victim to hit.
    assert reused > 0


def run_counting_fds(kind: str, main: Callable[[], Any]) -> None:
    before = fd_count()
    loop = LOOPS[kind]()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert fd_count() == before


@pytest.mark.parametrize("kind", list(LOOPS))
def test_connect_close_churn_leaves_no_fd(kind: str) -> None:
    async def main() -> None:
        closed: list[int] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client closes
            writer.close()
            await writer.wait_closed()
            closed.append(1)

        server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=200)
        port = server.sockets[0].getsockname()[1]
        for _ in range(CONNECT_CLOSE // 100):
            pairs = await asyncio.gather(
                *(asyncio.open_connection("127.0.0.1", port) for _ in range(100))
            )
            for _, writer in pairs:
                writer.close()
            await asyncio.gather(*(writer.wait_closed() for _, writer in pairs))
        while len(closed) < CONNECT_CLOSE:
            await asyncio.sleep(0.001)
        server.close()
        await server.wait_closed()

    run_counting_fds(kind, main)


# Not strict: whether an accepted connection is caught mid-way depends on
# accept timing (it leaked one fd in every run on 3.11.7, 3.12.1 and 3.13.0).
ASYNCIO_LEAKS_ACCEPTED = pytest.mark.xfail(
    strict=False,
    reason="asyncio 3.11-3.13 leave an accepted connection whose client was cancelled "
    "mid-connect to the GC (an unclosed socket and transport after loop.close())",
)


@pytest.mark.parametrize("kind", list(LOOPS))
def test_cancelled_open_connection_churn_leaves_no_fd(
    kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "asyncio":
        request.applymarker(ASYNCIO_LEAKS_ACCEPTED)
    rng = random.Random(2000)

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: w.close(), "127.0.0.1", 0, backlog=CANCELLED_OPENS
        )
        port = server.sockets[0].getsockname()[1]
        for _ in range(CANCELLED_OPENS):
            task = asyncio.ensure_future(asyncio.open_connection("127.0.0.1", port))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                _, writer = await task
            except asyncio.CancelledError:
                continue
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        server.close()
        await server.wait_closed()

    run_counting_fds(kind, main)


@pytest.mark.parametrize("kind", list(LOOPS))
def test_server_start_stop_cycles_leave_no_fd(kind: str) -> None:
    async def main() -> None:
        for _ in range(SERVER_CYCLES):
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()

    run_counting_fds(kind, main)


@pytest.mark.parametrize("kind", list(LOOPS))
def test_subprocess_spawns_half_failing_leave_no_fd(kind: str) -> None:
    api = sansloop.compat if kind == "sansloop-full" else asyncio

    async def main() -> None:
        outcomes = {"ran": 0, "missing": 0}
        for i in range(SPAWNS):
            program = "true" if i % 2 else "/nonexistent/sansloop-no-such-program"
            try:
                proc = await api.create_subprocess_exec(
                    program, stdin=api.subprocess.PIPE, stdout=api.subprocess.PIPE
                )
            except FileNotFoundError:
                outcomes["missing"] += 1
                continue
            await proc.communicate()
            assert proc.returncode == 0
            outcomes["ran"] += 1
        assert outcomes == {"ran": SPAWNS // 2, "missing": SPAWNS // 2}

    run_counting_fds(kind, main)


@pytest.mark.parametrize("kind", list(LOOPS))
def test_failed_tls_handshakes_leave_no_fd(kind: str) -> None:
    import ssl

    if kind == "asyncio" and sys.version_info < (3, 12):
        # Its leaked objects reach the GC in later tests, so no xfail can hold them.
        pytest.skip(
            "asyncio 3.11 leaves the server side of a failed handshake to the GC "
            "(unclosed transport and socket, a pending task destroyed)"
        )

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    untrusting = ssl.create_default_context()  # does not know our CA

    async def main() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        for _ in range(FAILED_HANDSHAKES):
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=untrusting, server_hostname="localhost"
                )
        server.close()
        await server.wait_closed()

    run_counting_fds(kind, main)
