"""Timers: the heap stays bounded under mass cancellation; timers are never early.

- call_later() with 90% cancelled (seeded, in batches of 10,000, one loop
  tick after each, the tick busy with ready work): after every tick the heap
  holds at most 2 x live timers + 100 (asyncio's compaction rule), read from
  loop.statistics(). 100,000 timers per mode in CI (1,000,000 cost 10-25 s
  on the shared CI machine); ``SANSLOOP_RELIABILITY=long`` runs 1,000,000.
- 10,000 timers spread uniformly over 0-500 ms: none fires before its time
  (by more than the clock's resolution), every one fires. Lateness itself
  depends on how busy the host is (on the shared CI machine at load 8, p99
  was 60-350 ms for stdlib asyncio and 77-150 ms for sansloop, run after
  run), so the p99 <= 5 ms bound is a long-tier test, for an idle machine.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics

import pytest

import sansloop
from sansloop.compat.loop import EventLoop

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
BATCHES = 100 if LONG else 10


@pytest.mark.parametrize("mode", ["loop", "full"])
def test_a_million_timers_mostly_cancelled_keep_the_heap_bounded(mode: str) -> None:
    loop = EventLoop(sansloop.get_backend("epoll"), mode=mode)
    rng = random.Random(8)
    call_later = loop.call_later
    worst = 0.0
    live_total = 0
    try:
        for _ in range(BATCHES):
            batch = [call_later(1000 + rng.random() * 1000, print) for _ in range(10_000)]
            for handle in rng.sample(batch, 9_000):
                handle.cancel()
            live_total += 1_000
            loop.call_soon(loop.stop)
            loop.run_forever()  # one tick: the scheduler may compact now
            stats = loop.statistics()
            assert stats["live_timers"] == live_total
            assert stats["timers"] <= 2 * stats["live_timers"] + 100, stats
            worst = max(worst, stats["timers"] / stats["live_timers"])
    finally:
        loop.close()
    assert live_total == BATCHES * 1_000
    assert worst <= 2.001


def lateness(loop: asyncio.AbstractEventLoop, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    late: list[float] = []

    def fired(when: float) -> None:
        late.append(loop.time() - when)
        if len(late) == count:
            loop.stop()

    start = loop.time()
    for _ in range(count):
        when = start + rng.random() * 0.5
        loop.call_at(when, fired, when)
    loop.run_forever()
    return late


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def test_ten_thousand_timers_never_early_and_in_deadline_order() -> None:
    loop = EventLoop(sansloop.get_backend("epoll"))
    resolution = loop.backend.clock_resolution
    try:
        late = lateness(loop, 10_000, 1)
    finally:
        loop.close()
    assert len(late) == 10_000
    assert min(late) >= -resolution, min(late)


@pytest.mark.skipif(not LONG, reason="long tier: needs an idle machine (SANSLOOP_RELIABILITY=long)")
def test_timer_lateness_p99_within_5_ms_on_an_idle_machine() -> None:
    loop = EventLoop(sansloop.get_backend("epoll"))
    try:
        late = lateness(loop, 10_000, 2)
    finally:
        loop.close()
    assert p99(late) <= 0.005, (p99(late), max(late))


@pytest.mark.skipif(not LONG, reason="long tier: needs an idle machine (SANSLOOP_RELIABILITY=long)")
def test_timer_lateness_p99_within_20_ms_under_a_100_connection_echo_load() -> None:
    loop = EventLoop(sansloop.get_backend("epoll"))
    late: list[float] = []

    async def main() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()

        async def client() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while not stop.is_set():
                writer.write(bytes(4096))
                await writer.drain()
                await reader.readexactly(4096)
            writer.close()
            await writer.wait_closed()

        clients = [asyncio.ensure_future(client()) for _ in range(100)]
        await asyncio.sleep(0.1)  # the load is running
        rng = random.Random(3)
        start = loop.time()
        done = loop.create_future()

        def fired(when: float) -> None:
            late.append(loop.time() - when)
            if len(late) == 10_000 and not done.done():
                done.set_result(None)

        for _ in range(10_000):
            when = start + rng.random() * 0.5
            loop.call_at(when, fired, when)
        await done
        stop.set()
        await asyncio.gather(*clients)
        server.close()
        await server.wait_closed()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert min(late) >= -loop.backend.clock_resolution
    assert p99(late) <= 0.020, (p99(late), max(late))
