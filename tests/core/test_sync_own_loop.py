"""The sync primitives driven by a framework of our own, with no asyncio loop.

DESIGN.md promises that core machines are a library API: another framework can
drive them with its own loop, which only has to make futures. Here a
twenty-line trampoline does it: its "loop" has ``create_future()`` and nothing
else (any other attribute access fails), and its futures are plain objects that
yield themselves until resolved. If a primitive reached for anything else of
the loop, these tests would fail.
"""

from __future__ import annotations

import asyncio
from asyncio.exceptions import CancelledError
from collections.abc import Coroutine, Generator, Iterator
from typing import Any

import pytest

from sansloop.core import barriers, binding, locks, queues


class MiniFuture:
    """Just enough future for core: done/cancelled/cancel/set_result/await."""

    __slots__ = ("state", "value")

    def __init__(self) -> None:
        self.state = "pending"
        self.value: Any = None

    def done(self) -> bool:
        return self.state != "pending"

    def cancelled(self) -> bool:
        return self.state == "cancelled"

    def cancel(self, msg: Any = None) -> bool:
        if self.state != "pending":
            return False
        self.state = "cancelled"
        return True

    def set_result(self, value: Any) -> None:
        assert self.state == "pending"
        self.state, self.value = "done", value

    def __await__(self) -> Generator[Any, None, Any]:
        if self.state == "pending":
            yield self
        if self.state == "cancelled":
            raise CancelledError
        return self.value


class MiniLoop:
    """A loop that can make futures and can do nothing else."""

    __slots__ = ("made",)

    def __init__(self) -> None:
        self.made = 0

    def create_future(self) -> MiniFuture:
        self.made += 1
        return MiniFuture()


class Trampoline:
    """Runs coroutines round-robin; one blocked on an unresolved future waits."""

    def __init__(self) -> None:
        self.loop = MiniLoop()
        self.tasks: dict[str, tuple[Coroutine[Any, Any, Any], MiniFuture | None]] = {}
        self.results: dict[str, Any] = {}
        self.cancel_requests: set[str] = set()

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks[name] = (coro, None)

    def cancel(self, name: str) -> None:
        coro, blocked_on = self.tasks[name]
        if blocked_on is not None and blocked_on.cancel():
            return
        self.cancel_requests.add(name)

    def run(self, max_rounds: int = 100) -> None:
        for _ in range(max_rounds):
            progressed = False
            for name, (coro, blocked_on) in list(self.tasks.items()):
                if blocked_on is not None and not blocked_on.done():
                    continue
                progressed = True
                try:
                    if name in self.cancel_requests:
                        self.cancel_requests.discard(name)
                        yielded = coro.throw(CancelledError())
                    else:
                        yielded = coro.send(None)
                except StopIteration as stop:
                    self.results[name] = stop.value
                    del self.tasks[name]
                except BaseException as exc:  # noqa: BLE001 - recorded for the test
                    self.results[name] = exc
                    del self.tasks[name]
                else:
                    self.tasks[name] = (coro, yielded)
            if not progressed:
                return
        raise AssertionError("the trampoline did not go idle")


@pytest.fixture
def tramp() -> Iterator[Trampoline]:
    trampoline = Trampoline()
    binding.install(lambda: trampoline.loop)
    try:
        yield trampoline
    finally:  # back to what tests/core/conftest.py installed
        binding.install(asyncio.get_running_loop, asyncio.get_event_loop)


def test_lock_fifo_and_cancellation_on_a_foreign_loop(tramp):
    lock = locks.Lock()
    order = []

    async def worker(name):
        async with lock:
            order.append(name)
            if name == "a":
                await tramp.loop.create_future()  # hold the lock until cancelled

    tramp.spawn("a", worker("a"))
    tramp.spawn("b", worker("b"))
    tramp.spawn("c", worker("c"))
    tramp.run()
    assert order == ["a"] and lock.statistics() == locks.LockStatistics(True, 2)
    tramp.cancel("b")
    tramp.cancel("a")  # the holder gives up: the lock goes to c
    tramp.run()
    assert order == ["a", "c"]
    assert isinstance(tramp.results["a"], CancelledError)
    assert isinstance(tramp.results["b"], CancelledError)
    assert tramp.results["c"] is None
    assert lock.statistics() == locks.LockStatistics(False, 0)
    assert lock._loop is tramp.loop


def test_semaphore_condition_event_barrier_queue_on_a_foreign_loop(tramp):
    sem = locks.Semaphore(1)
    cond = locks.Condition()
    event = locks.Event()
    barrier = barriers.Barrier(2)
    q = queues.Queue(maxsize=1)
    log = []

    async def producer():
        async with sem:
            await q.put("x")
            await q.put("y")  # waits for the consumer
            log.append("produced")
        event.set()

    async def consumer():
        log.append(await q.get())
        log.append(await q.get())
        await event.wait()
        async with cond:
            cond.notify_all()
        log.append(("consumer index", await barrier.wait()))

    async def watcher():
        async with cond:
            await cond.wait()
        log.append(("watcher index", await barrier.wait()))

    tramp.spawn("watcher", watcher())
    tramp.spawn("producer", producer())
    tramp.spawn("consumer", consumer())
    tramp.run()
    assert not tramp.tasks, tramp.tasks
    assert sorted(log[:3]) == ["produced", "x", "y"] and log.index("x") < log.index("y")
    assert sorted(entry[1] for entry in log[3:]) == [0, 1]
    assert tramp.loop.made > 0
    assert q.statistics().unfinished_tasks == 2 and sem.statistics().value == 1
