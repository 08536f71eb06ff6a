"""The resource ledger: loop.statistics() counts what the loop holds, by owner.

And the core machines' own statistics() (transport lifecycle, waiter queue,
scheduler's live timers), which the ledger and users read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import sansloop
from sansloop.compat.loop import EventLoop
from sansloop.core.handles import TimerHandle
from sansloop.core.scheduler import Scheduler
from sansloop.core.transportstate import Input, TransportLifecycle
from sansloop.core.waiters import WaiterQueue

EMPTY = {"ready": 0, "live_timers": 0, "fds": 0, "readers": 0, "writers": 0, "transports": 0}


def subset(stats: dict[str, Any]) -> dict[str, Any]:
    return {key: stats[key] for key in EMPTY}


@pytest.mark.parametrize("mode", ["loop", "full"])
def test_the_ledger_counts_by_owner_and_returns_to_zero(mode: str) -> None:
    loop = EventLoop(sansloop.get_backend("epoll"), mode=mode)
    seen: dict[str, Any] = {}

    async def main() -> None:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sleeper = asyncio.ensure_future(asyncio.sleep(3600))
        lock = asyncio.Lock()
        await lock.acquire()
        locked = asyncio.ensure_future(lock.acquire())
        timers = [loop.call_later(100, print) for _ in range(3)]
        timers[0].cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen["detail"] = loop.statistics(detail=True)
        seen["plain"] = loop.statistics()
        for timer in timers:
            timer.cancel()
        sleeper.cancel()
        locked.cancel()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        await asyncio.gather(sleeper, locked, return_exceptions=True)
        for _ in range(3):
            await asyncio.sleep(0)
        seen["after"] = loop.statistics(detail=True)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    detail = seen["detail"]
    assert "ledger" not in seen["plain"]  # not in debug mode: counts only
    ledger = detail["ledger"]
    # Two live connection ends; the server's listening socket is watched too.
    assert ledger["transports"] == {"SocketTransport": 2}
    assert detail["transports"] == 2
    assert list(ledger["fds"].values()).count("SocketTransport") == 2
    assert len(ledger["fds"]) == detail["fds"] == 3
    assert ledger["timers"]["print"] == 2  # the cancelled one is not live
    assert detail["live_timers"] >= 3  # and the sleeper's
    assert detail["tasks"] == 3  # main, the sleeper and the lock waiter
    waiters = ledger["waiters"]
    assert sum(waiters.values()) == 3
    assert any(name.startswith("sleep") for name in waiters), waiters
    assert any("acquire" in name for name in waiters), waiters
    after = seen["after"]
    assert subset(after) == EMPTY
    assert after["tasks"] == 1  # main itself
    assert after["ledger"]["fds"] == {} and after["ledger"]["timers"] == {}


def test_debug_mode_includes_the_ledger_by_default() -> None:
    loop = EventLoop(sansloop.get_backend("epoll"))
    try:
        loop.set_debug(True)
        loop.call_soon(print)
        stats = loop.statistics()
        assert stats["ledger"]["handles"] == {"print": 1}
        assert stats["ready"] == 1
    finally:
        loop.close()
    assert loop.statistics()["tasks"] == 0


def test_core_statistics_where_they_were_missing() -> None:
    life = TransportLifecycle()
    assert life.statistics() == {
        "state": life.state.value,
        "reading": True,
        "closing": False,
        "write_eof": False,
        "lost": False,
    }
    life.feed(Input.CLOSE)
    assert life.statistics()["closing"] is True

    loop = asyncio.new_event_loop()
    try:
        queue = WaiterQueue()
        futures = [loop.create_future() for _ in range(3)]
        for future in futures:
            queue.append(future)
        futures[0].cancel()
        futures[1].set_result(None)
        assert queue.statistics() == {"parked": 3, "pending": 1, "cancelled": 1}
    finally:
        loop.close()

    scheduler = Scheduler()
    timers = [TimerHandle(float(i), print, (), None) for i in range(4)]
    for timer in timers:
        scheduler.add_timer(timer)
    timers[2]._cancelled = True
    assert scheduler.live_timers() == [timers[0], timers[1], timers[3]]
