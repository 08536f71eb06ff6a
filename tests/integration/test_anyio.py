"""anyio's high-level API, on its asyncio backend, unchanged on sansloop.

``anyio.run(main, backend="asyncio", backend_options={"loop_factory": ...})``
with sansloop's loop factory, against the same program on asyncio's own loop:
TCP streams (create_tcp_listener serving into a task group, connect_tcp
clients), task groups, to_thread.run_sync with a capacity limiter, and cancel
scopes with deadlines (move_on_after, fail_after) around real socket waits.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

anyio = pytest.importorskip("anyio")
from anyio.abc import SocketStream  # noqa: E402

import sansloop  # noqa: E402

CLIENTS = 10
PAYLOAD = 200_000


def run_anyio(run_on: Any, main: Callable[[], Any]) -> Any:
    result = anyio.run(
        main, backend="asyncio", backend_options={"loop_factory": run_on.loop_factory}
    )
    return result


def check_loop(run_on: Any) -> None:
    loop = asyncio.get_running_loop()
    assert (type(loop) is sansloop.EventLoop) == (run_on.name == "sansloop")


def test_tcp_streams_in_task_groups(run_on) -> None:
    rng = random.Random(3)
    payloads = [rng.randbytes(PAYLOAD + i) for i in range(CLIENTS)]

    async def handle(stream: SocketStream) -> None:
        async with stream:
            while True:
                try:
                    data = await stream.receive(65_536)
                except anyio.EndOfStream:
                    break
                await stream.send(data)
            await stream.send_eof()

    async def main() -> tuple[list[bytes], int]:
        check_loop(run_on)
        results: list[bytes] = [b""] * CLIENTS
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with anyio.create_task_group() as server_tg:
                server_tg.start_soon(listener.serve, handle, server_tg)

                async def client(i: int) -> None:
                    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                        async with anyio.create_task_group() as tg:

                            async def send() -> None:
                                view = memoryview(payloads[i])
                                for start in range(0, len(view), 7_000):
                                    await stream.send(view[start : start + 7_000])
                                await stream.send_eof()

                            tg.start_soon(send)
                            chunks = []
                            async for chunk in stream:
                                chunks.append(chunk)
                            results[i] = b"".join(chunks)

                async with anyio.create_task_group() as clients_tg:
                    for i in range(CLIENTS):
                        clients_tg.start_soon(client, i)
                server_tg.cancel_scope.cancel()
            cancelled = server_tg.cancel_scope.cancel_called
        return results, int(cancelled)

    results, cancelled = run_anyio(run_on, main)
    assert cancelled == 1
    assert [len(r) for r in results] == [PAYLOAD + i for i in range(CLIENTS)]
    assert results == payloads


def test_to_thread_run_sync(run_on) -> None:
    def work(n: int) -> tuple[int, int]:
        time.sleep(0.001)
        return n * n, threading.get_ident()

    async def main() -> tuple[list[int], int, int]:
        check_loop(run_on)
        limiter = anyio.CapacityLimiter(4)
        results: list[int] = [0] * 40
        idents: set[int] = set()

        async def one(n: int) -> None:
            value, ident = await anyio.to_thread.run_sync(work, n, limiter=limiter)
            results[n] = value
            idents.add(ident)

        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(one, n)
        return results, len(idents - {threading.get_ident()}), len(idents)

    results, worker_threads, all_threads = run_anyio(run_on, main)
    assert results == [n * n for n in range(40)]
    assert worker_threads == all_threads
    assert 1 <= all_threads <= 4


def test_cancel_scopes_with_deadlines(run_on) -> None:
    async def main() -> dict[str, Any]:
        check_loop(run_on)
        facts: dict[str, Any] = {}
        # move_on_after around a socket receive that never completes
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            accepted: list[SocketStream] = []

            async def accept_one(stream: SocketStream) -> None:
                async with stream:
                    accepted.append(stream)
                    await anyio.sleep_forever()

            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, accept_one, tg)
                async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                    start = anyio.current_time()
                    with anyio.move_on_after(0.05) as scope:
                        await stream.receive()
                        facts["received"] = True
                    facts["move_on_elapsed"] = anyio.current_time() - start
                    facts["move_on_caught"] = scope.cancelled_caught
                    facts["move_on_deadline_set"] = scope.deadline < float("inf")
                    try:
                        with anyio.fail_after(0.02):
                            await stream.receive()
                    except TimeoutError:
                        facts["fail_after"] = "TimeoutError"
                    # the stream still works after both deadlines fired
                    await accepted[0].send(b"still alive")
                    facts["after"] = await stream.receive()
                tg.cancel_scope.cancel()
        # nested scopes: the inner deadline fires first, the outer one is untouched
        with anyio.move_on_after(10) as outer:
            with anyio.move_on_after(0.01) as inner:
                await anyio.sleep(10)
        facts["nested"] = (inner.cancelled_caught, outer.cancelled_caught, outer.cancel_called)
        return facts

    facts = run_anyio(run_on, main)
    assert "received" not in facts
    assert facts["move_on_caught"] is True
    assert facts["move_on_deadline_set"] is True
    assert 0.05 <= facts["move_on_elapsed"] < 5
    assert facts["fail_after"] == "TimeoutError"
    assert facts["after"] == b"still alive"
    assert facts["nested"] == (True, False, False)
