"""aiohttp (server and client) unchanged on sansloop, side by side with asyncio.

One aiohttp web application on loopback, driven by aiohttp's own client:
keep-alive requests from concurrent clients, chunked request and response
bodies up to 1 MiB compared byte for byte, and a websocket echo of mixed-size
text and binary messages. TLS (trustme) waits for sansloop's TLS support.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

aiohttp = pytest.importorskip("aiohttp")
web = pytest.importorskip("aiohttp.web")

REQUESTS = 2_000
CLIENTS = 20
BODY_SIZES = (0, 1, 1_000, 65_535, 65_536, 65_537, 300_001, 1_048_576)


class Stats:
    def __init__(self) -> None:
        self.hits = 0
        self.peers: set[tuple[str, int]] = set()
        self.chunked_requests = 0


def make_app(stats: Stats) -> web.Application:
    async def hit(request: web.Request) -> web.Response:
        stats.hits += 1
        assert request.transport is not None
        stats.peers.add(request.transport.get_extra_info("peername")[:2])
        return web.Response(text=f"hit {request.match_info['n']}")

    async def echo(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Transfer-Encoding") == "chunked":
            stats.chunked_requests += 1
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in request.content.iter_chunked(50_000):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application(client_max_size=2 * 1_048_576)
    app.router.add_get("/hit/{n}", hit)
    app.router.add_post("/echo", echo)
    app.router.add_get("/ws", ws_echo)
    return app


async def serve(stats: Stats) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(stats), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def test_keep_alive_requests_from_concurrent_clients(run_on) -> None:
    async def main() -> tuple[int, int, int, list[str]]:
        stats = Stats()
        runner, base = await serve(stats)
        bodies: list[str] = []
        try:
            connector = aiohttp.TCPConnector(limit=CLIENTS)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def client(first: int) -> None:
                    for n in range(first, REQUESTS, CLIENTS):
                        async with session.get(f"{base}/hit/{n}") as resp:
                            assert resp.status == 200
                            bodies.append(await resp.text())

                async with asyncio.TaskGroup() as tg:
                    for first in range(CLIENTS):
                        tg.create_task(client(first))
        finally:
            await runner.cleanup()
        return stats.hits, len(stats.peers), len(bodies), sorted(bodies)

    hits, connections, answered, bodies = run_on(main())
    assert hits == REQUESTS
    assert answered == REQUESTS
    assert bodies == sorted(f"hit {n}" for n in range(REQUESTS))
    # keep-alive: 2,000 requests went over at most CLIENTS connections
    assert 1 <= connections <= CLIENTS


def test_chunked_bodies_byte_exact(run_on) -> None:
    rng = random.Random(7)
    payloads = [rng.randbytes(size) for size in BODY_SIZES]

    async def main() -> tuple[list[bytes], list[str | None], int]:
        stats = Stats()
        runner, base = await serve(stats)
        received: list[bytes] = []
        encodings: list[str | None] = []
        try:
            async with aiohttp.ClientSession() as session:
                for payload in payloads:

                    async def body(data: bytes = payload) -> AsyncIterator[bytes]:
                        for start in range(0, len(data), 40_000):
                            yield data[start : start + 40_000]

                    async with session.post(f"{base}/echo", data=body()) as resp:
                        assert resp.status == 200
                        encodings.append(resp.headers.get("Transfer-Encoding"))
                        received.append(await resp.read())
        finally:
            await runner.cleanup()
        return received, encodings, stats.chunked_requests

    received, encodings, chunked_requests = run_on(main())
    assert [len(r) for r in received] == list(BODY_SIZES)
    assert received == payloads
    assert encodings == ["chunked"] * len(BODY_SIZES)
    assert chunked_requests == len(BODY_SIZES)


def test_websocket_echo_mixed_sizes(run_on) -> None:
    rng = random.Random(11)
    messages: list[str | bytes] = []
    for i in range(300):
        size = rng.choice((0, 1, 125, 126, 127, 65_535, 65_536, 200_000, rng.randrange(1, 5_000)))
        if i % 2:
            messages.append(rng.randbytes(size))
        else:
            messages.append("".join(rng.choice("aé€😀") for _ in range(size // 4)))

    async def main() -> list[str | bytes]:
        runner, base = await serve(Stats())
        echoed: list[str | bytes] = []
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{base}/ws", max_msg_size=0) as ws:

                    async def sender() -> None:
                        for message in messages:
                            if isinstance(message, bytes):
                                await ws.send_bytes(message)
                            else:
                                await ws.send_str(message)

                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(sender())
                        for _ in messages:
                            msg = await ws.receive()
                            assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
                            echoed.append(msg.data)
                    await ws.close()
                    assert ws.closed
        finally:
            await runner.cleanup()
        return echoed

    echoed = run_on(main())
    assert len(echoed) == len(messages)
    assert echoed == messages
