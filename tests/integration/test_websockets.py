"""The websockets library (asyncio implementation) unchanged on sansloop.

A websockets server echoes every message; a websockets client sends 10,000
messages of seeded sizes from 1 B to 64 KiB (log-uniform, both ends always
included), text and binary, while it reads the echoes. Every echo must come
back byte-exact and in order, on asyncio and on sansloop alike.
"""

from __future__ import annotations

import asyncio
import math
import random

import pytest

pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402

MESSAGES = 10_000
MAX_SIZE = 64 * 1024


def make_messages() -> list[str | bytes]:
    rng = random.Random(20261125)
    messages: list[str | bytes] = []
    for i in range(MESSAGES):
        if i == 0:
            size = 1
        elif i == 1:
            size = MAX_SIZE
        else:
            size = int(math.exp(rng.uniform(0, math.log(MAX_SIZE)))) or 1
        if i % 5 == 4:
            messages.append(rng.randbytes(size).hex()[:size])
        else:
            messages.append(rng.randbytes(size))
    return messages


def test_ten_thousand_messages_byte_exact(run_on) -> None:
    messages = make_messages()

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def main() -> tuple[list[str | bytes], int]:
        echoed: list[str | bytes] = []
        async with serve(echo, "127.0.0.1", 0, max_size=2 * MAX_SIZE) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", max_size=2 * MAX_SIZE) as ws:

                async def sender() -> None:
                    for message in messages:
                        await ws.send(message)

                async with asyncio.TaskGroup() as tg:
                    tg.create_task(sender())
                    for _ in range(MESSAGES):
                        echoed.append(await ws.recv())
            close_code = ws.close_code
        return echoed, close_code

    echoed, close_code = run_on(main())
    assert close_code == 1000
    assert len(echoed) == MESSAGES
    assert sum(map(len, echoed)) == sum(map(len, messages))
    assert [type(m) for m in echoed] == [type(m) for m in messages]
    assert echoed == messages
