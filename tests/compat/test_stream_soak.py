"""Byte-exact soak: many concurrent stream connections echo seeded random data.

Each client sends its own seeded random bytes in random chunk sizes (1..65536),
draining after every write, then ``write_eof()``; the server echoes every chunk
back as it arrives (draining too) and half-closes on EOF; the client reads the
echo to EOF at the same time as it writes. The SHA-256 of what came back must
equal the SHA-256 of what was sent, on every connection.

Matrix: sansloop loop mode (stdlib asyncio's streams on our transports) and
full mode (our streams), on the epoll, poll and selectors backends, over TCP
loopback and Unix sockets; stdlib asyncio itself is the reference cell.

The default is the acceptance figure, 100 connections x 1 MiB per cell (the
twelve cells take about 7 s together on the CI machine: 0.4-0.8 s each).
``SANSLOOP_SOAK=quick`` runs 20 connections x 256 KiB for a fast local loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from typing import Any

import pytest

import sansloop
from sansloop import EventLoop
from sansloop.compat import streams as our_streams

QUICK = os.environ.get("SANSLOOP_SOAK", "") == "quick"
CONNECTIONS = 20 if QUICK else 100
SIZE = (256 * 1024) if QUICK else (1024 * 1024)
MAX_CHUNK = 65536

BACKENDS = [
    name for name in ("epoll", "poll", "selectors") if name in sansloop.available_backends()
]


def make_loop(mode: str, backend: str) -> asyncio.AbstractEventLoop:
    return EventLoop(sansloop.get_backend(backend), mode=mode)


def payload(seed: int) -> bytes:
    return random.Random(seed).randbytes(SIZE)


def chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed ^ 0x5EED)
    out = []
    at = 0
    while at < len(data):
        size = rng.randint(1, MAX_CHUNK)
        out.append(data[at : at + size])
        at += size
    return out


async def echo(reader: Any, writer: Any) -> None:
    """The server side: echo every chunk as it comes, half-close on EOF."""
    while True:
        data = await reader.read(MAX_CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.write_eof()
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(streams: Any, address: Any, seed: int, unix: bool) -> tuple[str, str]:
    if unix:
        reader, writer = await streams.open_unix_connection(address)
    else:
        reader, writer = await streams.open_connection(*address)
    data = payload(seed)

    async def send() -> None:
        for piece in chunks(data, seed):
            writer.write(piece)
            await writer.drain()
        writer.write_eof()

    async def receive() -> str:
        digest = hashlib.sha256()
        while True:
            block = await reader.read(MAX_CHUNK)
            if not block:
                return digest.hexdigest()
            digest.update(block)

    sender = asyncio.ensure_future(send())
    received = await receive()
    await sender
    writer.close()
    await writer.wait_closed()
    return hashlib.sha256(data).hexdigest(), received


async def soak(streams: Any, unix: bool, tmp_path: Any) -> list[tuple[str, str]]:
    if unix:
        address: Any = str(tmp_path / "soak.sock")
        server = await streams.start_unix_server(echo, address)
    else:
        server = await streams.start_server(echo, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()[:2]
    try:
        return await asyncio.gather(
            *(client(streams, address, seed, unix) for seed in range(CONNECTIONS))
        )
    finally:
        server.close()
        await server.wait_closed()


CELLS = [("asyncio", "-")] + [(mode, b) for mode in ("loop", "full") for b in BACKENDS]


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize(("mode", "backend"), CELLS)
def test_echo_soak_is_byte_exact(mode: str, backend: str, transport: str, tmp_path: Any) -> None:
    """mode: 'asyncio' (the reference), 'loop' (stdlib streams) or 'full' (ours)."""
    streams = our_streams if mode == "full" else asyncio
    loop = asyncio.new_event_loop() if mode == "asyncio" else make_loop(mode, backend)
    try:
        results = loop.run_until_complete(
            asyncio.wait_for(soak(streams, transport == "unix", tmp_path), 50)
        )
    finally:
        loop.close()
    assert len(results) == CONNECTIONS
    for seed, (sent, received) in enumerate(results):
        assert sent == received, f"connection {seed}: echo differs"


def test_chunking_is_seeded_and_bounded() -> None:
    data = payload(7)
    pieces = chunks(data, 7)
    assert b"".join(pieces) == data
    assert all(1 <= len(p) <= MAX_CHUNK for p in pieces)
    assert pieces == chunks(payload(7), 7)
