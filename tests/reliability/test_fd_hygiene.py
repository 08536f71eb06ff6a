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

Both run on each sansloop mode; stdlib asyncio is the reference cell.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable

import pytest

import sansloop
from sansloop.compat.loop import EventLoop

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
