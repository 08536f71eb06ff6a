"""aiohttp (server and client) unchanged on sansloop, side by side with asyncio.

One aiohttp web application on loopback, driven by aiohttp's own client:
keep-alive requests from concurrent clients, chunked request and response
bodies up to 1 MiB compared byte for byte, a websocket echo of mixed-size
text and binary messages, and the same application over TLS (trustme
certificates: HTTPS keep-alive requests, a 1 MiB body, a wss:// echo; a
client that does not trust the CA is refused).
"""

from __future__ import annotations

import asyncio
import random
import ssl
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
        self.ciphers: set[tuple[str, str, int] | None] = set()


def make_app(stats: Stats) -> web.Application:
    async def hit(request: web.Request) -> web.Response:
        stats.hits += 1
        assert request.transport is not None
        stats.peers.add(request.transport.get_extra_info("peername")[:2])
        stats.ciphers.add(request.transport.get_extra_info("cipher"))
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


async def serve(
    stats: Stats, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(stats), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    scheme = "https" if ssl_context is not None else "http"
    return runner, f"{scheme}://{host}:{port}"


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


def test_https_and_wss_with_trustme_certificates(run_on) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    payload = random.Random(13).randbytes(1_048_576)
    messages: list[str | bytes] = [b"", "short", random.Random(17).randbytes(200_000), "x" * 70_000]

    async def main() -> tuple[list[str], bytes, list[str | bytes], Stats, str]:
        stats = Stats()
        runner, base = await serve(stats, server_ctx)
        try:
            connector = aiohttp.TCPConnector(ssl=client_ctx, limit=4)
            async with aiohttp.ClientSession(connector=connector) as session:
                bodies = []
                for n in range(50):
                    async with session.get(f"{base}/hit/{n}") as resp:
                        assert resp.status == 200
                        bodies.append(await resp.text())
                async with session.post(f"{base}/echo", data=payload) as resp:
                    echoed = await resp.read()
                ws_url = base.replace("https", "wss") + "/ws"
                async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                    got: list[str | bytes] = []
                    for message in messages:
                        if isinstance(message, bytes):
                            await ws.send_bytes(message)
                        else:
                            await ws.send_str(message)
                        got.append((await ws.receive()).data)
                    await ws.close()
            # a client that does not trust the CA is refused, with an ssl error
            refused = ""
            async with aiohttp.ClientSession() as stranger:
                try:
                    await stranger.get(f"{base}/hit/0")
                except aiohttp.ClientConnectorCertificateError as exc:
                    refused = type(exc.certificate_error).__name__
        finally:
            await runner.cleanup()
        return bodies, echoed, got, stats, refused

    bodies, echoed, got, stats, refused = run_on(main())
    assert bodies == [f"hit {n}" for n in range(50)]
    assert echoed == payload
    assert got == messages
    ((_, version, _),) = stats.ciphers  # the server's side saw TLS on every request
    assert version.startswith("TLS")
    assert len(stats.peers) == 1  # keep-alive over one TLS connection
    assert refused == "SSLCertVerificationError"
