"""pytest-asyncio runs its tests, and its async fixtures, on a sansloop loop.

This directory's conftest answers pytest-asyncio's
``pytest_asyncio_loop_factories`` hook with ``sansloop.new_event_loop``, so
every ``mark.asyncio`` test here runs on a loop-mode sansloop loop: the tests
check the running loop's exact type and that async fixtures share it, and do
real work on it (a TCP echo server made by a fixture, streams, a timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

pytest_asyncio = pytest.importorskip("pytest_asyncio")

import sansloop  # noqa: E402


@pytest_asyncio.fixture
async def echo_server() -> AsyncIterator[tuple[asyncio.AbstractEventLoop, int]]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield asyncio.get_running_loop(), server.sockets[0].getsockname()[1]


@pytest.mark.asyncio
async def test_runs_on_a_sansloop_loop() -> None:
    loop = asyncio.get_running_loop()
    assert type(loop) is sansloop.EventLoop
    # loop mode: stdlib futures and tasks on sansloop's loop
    assert type(asyncio.current_task()) is asyncio.Task
    assert type(loop.create_future()) is asyncio.Future
    assert await asyncio.gather(*(asyncio.sleep(0, n) for n in range(5))) == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_async_fixture_shares_the_loop_and_serves(
    echo_server: tuple[asyncio.AbstractEventLoop, int],
) -> None:
    fixture_loop, port = echo_server
    loop = asyncio.get_running_loop()
    assert type(loop) is sansloop.EventLoop
    assert fixture_loop is loop
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = bytes(range(256)) * 1_000
    writer.write(payload)
    writer.write_eof()
    echoed = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert echoed == payload


@pytest.mark.asyncio
async def test_timeouts_fire_on_the_sansloop_clock() -> None:
    loop = asyncio.get_running_loop()
    assert type(loop) is sansloop.EventLoop
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await asyncio.Event().wait()
    assert 0.02 <= loop.time() - start < 5
