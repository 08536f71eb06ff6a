"""Byte-exact echo soak: every byte comes back, in order, on its own connection.

Each of N concurrent connections writes SIZE bytes (a 1 MiB random block
rotated by a per-connection offset, so a byte that reaches the wrong
connection or comes back out of order changes the digest) to a stream echo
server and reads the echo concurrently; the SHA-256 of what was sent and of
what came back must match, and so must the lengths.

- CI: 50 connections x 256 KiB per loop kind (stdlib asyncio, sansloop loop
  mode, sansloop full mode); bytes only, no timing.
- ``SANSLOOP_RELIABILITY=long``: 500 connections x 1 MiB per loop kind, all
  three in the same run; sansloop's **process CPU time**
  (``time.process_time()``, client and server both in this process) is at
  most 2x stdlib asyncio's. CPU time rather than wall time because the CI
  machine is shared and its wall clock measures the neighbours.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.compat.loop import EventLoop

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
CONNECTIONS = 500 if LONG else 50
SIZE = (1 << 20) if LONG else (256 << 10)
CHUNK = 64 << 10
BLOCK = random.Random(8).randbytes(1 << 20)
DOUBLED = memoryview(BLOCK + BLOCK)

KINDS: dict[str, tuple[Any, Callable[[], asyncio.AbstractEventLoop]]] = {
    "asyncio": (asyncio, asyncio.new_event_loop),
    "sansloop-loop": (asyncio, lambda: EventLoop(sansloop.get_backend("epoll"), mode="loop")),
    "sansloop-full": (
        sansloop.compat,
        lambda: EventLoop(sansloop.get_backend("epoll"), mode="full"),
    ),
}


def payload(index: int, start: int, length: int) -> memoryview:
    """Bytes ``start .. start+length`` of connection *index*'s stream."""
    offset = (index * 7919 + start) % len(BLOCK)
    return DOUBLED[offset : offset + length]


async def soak(api: Any) -> list[tuple[int, str, int, str]]:
    """Echo every connection's stream; (sent, sent digest, got, got digest) each."""

    async def echo(reader: Any, writer: Any) -> None:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def client(index: int, port: int) -> tuple[int, str, int, str]:
        reader, writer = await api.open_connection("127.0.0.1", port)
        sent = hashlib.sha256()

        async def send() -> int:
            done = 0
            while done < SIZE:
                chunk = payload(index, done, min(CHUNK, SIZE - done))
                sent.update(chunk)
                writer.write(bytes(chunk))
                await writer.drain()
                done += len(chunk)
            writer.write_eof()
            return done

        sender = api.ensure_future(send())
        got = hashlib.sha256()
        received = 0
        while data := await reader.read(CHUNK):
            got.update(data)
            received += len(data)
        total = await sender
        writer.close()
        await writer.wait_closed()
        return total, sent.hexdigest(), received, got.hexdigest()

    server = await api.start_server(echo, "127.0.0.1", 0, backlog=CONNECTIONS)
    port = server.sockets[0].getsockname()[1]
    try:
        return list(await api.gather(*(client(i, port) for i in range(CONNECTIONS))))
    finally:
        server.close()
        await server.wait_closed()


def run_soak(kind: str) -> tuple[list[tuple[int, str, int, str]], float, float]:
    """The soak on *kind*: results, process CPU seconds, wall seconds."""
    api, make = KINDS[kind]
    loop = make()
    try:
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        results = loop.run_until_complete(soak(api))
        return results, time.process_time() - cpu, time.perf_counter() - wall
    finally:
        loop.close()


def check_bytes(results: list[tuple[int, str, int, str]]) -> None:
    assert len(results) == CONNECTIONS
    for index, (sent, sent_digest, got, got_digest) in enumerate(results):
        expected = hashlib.sha256(bytes(payload(index, 0, SIZE))).hexdigest()
        assert (sent, sent_digest) == (SIZE, expected), index
        assert (got, got_digest) == (SIZE, expected), index


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_echoed_byte_comes_back_on_its_own_connection(kind: str) -> None:
    results, _, _ = run_soak(kind)
    check_bytes(results)


@pytest.mark.skipif(not LONG, reason="long tier: timing ratio (SANSLOOP_RELIABILITY=long)")
def test_the_long_soak_costs_at_most_twice_stdlibs_cpu_time() -> None:
    timings: dict[str, tuple[float, float]] = {}
    for kind in KINDS:
        results, cpu, wall = run_soak(kind)
        check_bytes(results)
        timings[kind] = (cpu, wall)
    print("soak 500 x 1 MiB (cpu s, wall s):", timings)
    reference = timings["asyncio"][0]
    for kind in ("sansloop-loop", "sansloop-full"):
        assert timings[kind][0] <= 2 * reference, (kind, timings)
