"""Memory under a slow reader and a hostile peer.

- A writer that drains, against a reader pulling 16 KiB every 0.5 ms: the
  reader's process RSS grows by at most 8 MiB and the writer's transport
  never buffers more than its high-water mark (64 KiB) after a drain. CI
  pulls 4 MiB per loop kind; ``SANSLOOP_RELIABILITY=long`` pulls 64 MiB.
- A peer sends 1 MiB with no newline to ``readline()`` at ``limit=64 KiB``:
  ValueError, and the reader never buffers more than 2 x limit + 64 KiB
  (192 KiB): it pauses the transport past 2 x limit.

Stdlib asyncio (reference), sansloop loop mode (stdlib streams on our
transports) and full mode (our streams).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.compat.loop import EventLoop

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
PULLED = (64 if LONG else 4) << 20

KINDS: dict[str, tuple[Any, Callable[[], asyncio.AbstractEventLoop]]] = {
    "asyncio": (asyncio, asyncio.new_event_loop),
    "sansloop-loop": (asyncio, lambda: EventLoop(sansloop.get_backend("epoll"), mode="loop")),
    "sansloop-full": (
        sansloop.compat,
        lambda: EventLoop(sansloop.get_backend("epoll"), mode="full"),
    ),
}


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")  # pragma: no cover


def run(kind: str, main: Callable[[Any], Any]) -> Any:
    api, make = KINDS[kind]
    loop = make()
    try:
        return loop.run_until_complete(main(api))
    finally:
        loop.close()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_draining_writer_against_a_slow_reader_holds_its_memory(kind: str) -> None:
    async def main(api: Any) -> tuple[int, int, int]:
        peak_buffer = 0

        async def serve(reader: Any, writer: Any) -> None:
            nonlocal peak_buffer
            chunk = bytes(65536)
            for _ in range(PULLED // len(chunk)):
                writer.write(chunk)
                await writer.drain()
                peak_buffer = max(peak_buffer, writer.transport.get_write_buffer_size())
            writer.close()

        server = await api.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await api.open_connection("127.0.0.1", port)
        base = rss()
        growth = 0
        got = 0
        while data := await reader.read(16384):
            got += len(data)
            growth = max(growth, rss() - base)
            await api.sleep(0.0005)  # the slow reader's pace
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got, growth, peak_buffer

    got, growth, peak_buffer = run(kind, main)
    assert got == PULLED
    assert growth <= 8 << 20, growth
    assert peak_buffer <= 64 * 1024, peak_buffer


@pytest.mark.parametrize("kind", list(KINDS))
def test_readline_without_newline_stops_buffering_at_the_limit(kind: str) -> None:
    limit = 64 * 1024

    async def main(api: Any) -> tuple[str, int]:
        async def serve(reader: Any, writer: Any) -> None:
            writer.write(b"y" * (1 << 20))  # a hostile line: no newline, ever
            try:
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()

        server = await api.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await api.open_connection("127.0.0.1", port, limit=limit)
        protocol = writer.transport.get_protocol()
        received = protocol.data_received
        worst = 0

        def watched(data: bytes) -> None:
            nonlocal worst
            received(data)
            worst = max(worst, len(reader._buffer))

        protocol.data_received = watched
        try:
            await reader.readline()
        except ValueError as exc:
            error = str(exc)
        else:  # pragma: no cover - the assertion below reports it
            error = ""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return error, worst

    error, worst = run(kind, main)
    assert "Separator is not found" in error
    assert 0 < worst <= 2 * limit + 64 * 1024, worst
