"""uvicorn serving an ASGI app, hit by httpx, unchanged on sansloop.

uvicorn is told not to choose a loop (``loop="none"``): ``Server.serve()`` runs
on whichever loop runs it, here asyncio's own and then sansloop's. httpx's
AsyncClient sends 1,000 requests over a bounded connection pool, with query
strings and request bodies the app must echo back exactly; then the server is
asked to exit (``should_exit``), ``serve()`` returns after the lifespan
shutdown, and no task is left behind.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

REQUESTS = 1_000
WORKERS = 10


class App:
    """A small ASGI 3 application that counts what it serves."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []
        self.served = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.lifespan.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.lifespan.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.served += 1
        payload = (
            b"%s %s %s "
            % (
                scope["method"].encode(),
                scope["path"].encode(),
                scope["query_string"],
            )
            + body
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200 if scope["path"] != "/missing" else 404,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def test_thousand_requests_then_graceful_shutdown(run_on) -> None:
    async def main() -> dict[str, Any]:
        app = App()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, loop="none", lifespan="on", log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))

        statuses: list[int] = []
        mismatches: list[int] = []
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

            async def worker(first: int) -> None:
                for n in range(first, REQUESTS, WORKERS):
                    if n % 3:
                        response = await client.get(f"/item/{n}", params={"q": n})
                        expected = b"GET /item/%d q=%d " % (n, n)
                    else:
                        data = bytes([n % 256]) * (n * 37)
                        response = await client.post("/echo", content=data)
                        expected = b"POST /echo  " + data
                    statuses.append(response.status_code)
                    if response.content != expected:
                        mismatches.append(n)

            async with asyncio.TaskGroup() as tg:
                for first in range(WORKERS):
                    tg.create_task(worker(first))
            missing = await client.get("/missing")

        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)
        sock.close()
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        return {
            "statuses": statuses,
            "mismatches": mismatches,
            "missing": missing.status_code,
            "served": app.served,
            "lifespan": app.lifespan,
            "serve_result": serving.result(),
            "leftover": leftover,
            "started": server.started,
        }

    facts = run_on(main())
    assert facts["statuses"] == [200] * REQUESTS
    assert facts["mismatches"] == []
    assert facts["missing"] == 404
    assert facts["served"] == REQUESTS + 1
    assert facts["started"] is True
    assert facts["lifespan"] == ["startup", "shutdown"]
    assert facts["serve_result"] is None
    assert facts["leftover"] == set()
