"""Cancellation storms: mass cancellation loses nothing and deadlocks nothing.

- Sleeping tasks cancelled at once: every one ends in CancelledError. CI runs
  10,000 per loop kind; ``SANSLOOP_RELIABILITY=long`` runs 100,000 and also
  asserts the time is at most 2x stdlib asyncio's in the same run.
- 1,000 waiters on each of Lock, Semaphore(10), Condition and
  Queue(maxsize=10) (getters, then putters), half of them cancelled at seeded
  points -- including right after a release/notify/put/get woke them, before
  they could resume: every survivor gets its turn, in FIFO order (arrival
  order), each exactly once; for queues, items put == items got + items
  left (none lost, none twice); all within the test's timeout (no deadlock).

Loop kinds: stdlib asyncio (reference), sansloop loop mode (stdlib
primitives on our loop), sansloop full mode (sansloop's own primitives).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

import sansloop.compat
from sansloop.compat.loop import EventLoop

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
SLEEPERS = 100_000 if LONG else 10_000
WAITERS = 1_000
SEEDS = range(20) if LONG else range(3)

KINDS: dict[str, tuple[Any, Callable[[], asyncio.AbstractEventLoop]]] = {
    "asyncio": (asyncio, asyncio.new_event_loop),
    "sansloop-loop": (asyncio, lambda: EventLoop(mode="loop")),
    "sansloop-full": (sansloop.compat, lambda: EventLoop(mode="full")),
}


def run(kind: str, main: Callable[[Any], Any]) -> Any:
    api, make = KINDS[kind]
    loop = make()
    try:
        # A deadlock fails the test at 30 s instead of hanging it.
        return loop.run_until_complete(asyncio.wait_for(main(api), 30))
    finally:
        loop.close()


def cancel_all_sleepers(kind: str, count: int) -> tuple[float, int]:
    async def main(api: Any) -> tuple[float, int]:
        tasks = [api.ensure_future(api.sleep(3600)) for _ in range(count)]
        await api.sleep(0)
        start = time.perf_counter()
        for task in tasks:
            task.cancel()
        results = await api.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - start
        return elapsed, sum(type(r) is asyncio.CancelledError for r in results)

    return run(kind, main)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", list(KINDS))
def test_sleeping_tasks_cancelled_at_once_all_raise_cancelled_error(kind: str) -> None:
    _, cancelled = cancel_all_sleepers(kind, SLEEPERS)
    assert cancelled == SLEEPERS


@pytest.mark.skipif(not LONG, reason="long tier: timing ratio (SANSLOOP_RELIABILITY=long)")
@pytest.mark.parametrize("kind", ["sansloop-loop", "sansloop-full"])
def test_cancelling_100k_sleepers_takes_at_most_twice_stdlib(kind: str) -> None:
    ours, _ = cancel_all_sleepers(kind, SLEEPERS)
    stdlib, _ = cancel_all_sleepers("asyncio", SLEEPERS)
    assert ours <= 2 * stdlib, (ours, stdlib)


class Storm:
    """Waiters 0..n-1 parked in order; a seeded half is doomed to be cancelled."""

    def __init__(self, api: Any, seed: int) -> None:
        self.api = api
        self.rng = random.Random(seed)
        self.doomed = set(self.rng.sample(range(WAITERS), WAITERS // 2))
        self.turns: list[int] = []  # who got the resource, in order
        self.tasks: list[Any] = []

    async def park(self, body: Callable[[int], Any]) -> None:
        for i in range(WAITERS):
            self.tasks.append(self.api.ensure_future(body(i)))
            await self.api.sleep(0)  # each parks before the next: arrival order is i

    def cancel_some(self) -> None:
        """One seeded cancellation step: the next waiter in line (which a release,
        notify, put or get may just have woken, before it could resume) with
        probability 1/2 if it is doomed, and one other doomed waiter with
        probability 1/4."""
        rng = self.rng
        head = next((i for i, t in enumerate(self.tasks) if not t.done()), None)
        if head in self.doomed and rng.random() < 0.5:
            self.tasks[head].cancel()
            self.doomed.discard(head)
        if self.doomed and rng.random() < 0.25:
            victim = rng.choice(sorted(self.doomed))
            self.tasks[victim].cancel()
            self.doomed.discard(victim)

    def done(self) -> bool:
        return all(t.done() for t in self.tasks)

    def check(self) -> None:
        for i, task in enumerate(self.tasks):
            assert task.done(), i
        survivors = [i for i, t in enumerate(self.tasks) if not t.cancelled()]
        # Every survivor had its turn once; turns follow arrival (FIFO).
        assert sorted(self.turns) == sorted(set(self.turns))
        assert set(survivors) <= set(self.turns)
        assert self.turns == sorted(self.turns)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_lock_storm(kind: str, seed: int) -> None:
    async def main(api: Any) -> None:
        storm = Storm(api, seed)
        lock = api.Lock()
        await lock.acquire()

        async def waiter(i: int) -> None:
            async with lock:
                storm.turns.append(i)

        await storm.park(waiter)
        lock.release()  # wakes the first; from then on each holder wakes the next
        while not storm.done():
            storm.cancel_some()  # ... maybe between its wake-up and resumption
            await api.sleep(0)
        storm.check()

    run(kind, main)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_semaphore_storm(kind: str, seed: int) -> None:
    async def main(api: Any) -> None:
        storm = Storm(api, seed)
        semaphore = api.Semaphore(10)
        for _ in range(10):
            await semaphore.acquire()
        holders = 0

        async def waiter(i: int) -> None:
            nonlocal holders
            async with semaphore:
                storm.turns.append(i)
                holders += 1
                assert holders <= 10
                await api.sleep(0)
                holders -= 1

        await storm.park(waiter)
        for _ in range(10):
            semaphore.release()
            storm.cancel_some()
        while not storm.done():
            storm.cancel_some()
            await api.sleep(0)
        storm.check()

    run(kind, main)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_condition_storm(kind: str, seed: int) -> None:
    async def main(api: Any) -> None:
        storm = Storm(api, seed)
        condition = api.Condition()

        async def waiter(i: int) -> None:
            async with condition:
                await condition.wait()
                storm.turns.append(i)

        await storm.park(waiter)
        steps = 0
        while not storm.done():
            async with condition:
                condition.notify(1)  # wakes the oldest waiter
                storm.cancel_some()  # ... maybe before it resumes
            await api.sleep(0)
            steps += 1
            assert steps < 20 * WAITERS, "no progress"
        storm.check()

    run(kind, main)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_queue_getters_storm(kind: str, seed: int) -> None:
    async def main(api: Any) -> None:
        storm = Storm(api, seed)
        queue = api.Queue(maxsize=10)
        got: dict[int, int] = {}

        async def getter(i: int) -> None:
            item = await queue.get()
            got[i] = item
            storm.turns.append(i)

        await storm.park(getter)
        put = 0
        while not storm.done():
            await queue.put(put)  # wakes the oldest getter
            put += 1
            storm.cancel_some()  # ... maybe before it resumes
            await api.sleep(0)
        storm.check()
        left = []
        while not queue.empty():
            left.append(queue.get_nowait())
        # Nothing lost, nothing twice; items went out in put order, FIFO.
        assert sorted(list(got.values()) + left) == list(range(put))
        assert [got[i] for i in storm.turns] == sorted(got.values())

    run(kind, main)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_queue_putters_storm(kind: str, seed: int) -> None:
    async def main(api: Any) -> None:
        storm = Storm(api, seed)
        queue = api.Queue(maxsize=10)
        for _ in range(10):
            queue.put_nowait(-1)  # full: every putter waits

        async def putter(i: int) -> None:
            await queue.put(i)
            storm.turns.append(i)

        await storm.park(putter)
        received: list[int] = []
        while not storm.done() or not queue.empty():
            if not queue.empty():
                received.append(await queue.get())  # frees a slot: wakes a putter
            storm.cancel_some()  # ... maybe before it resumes
            await api.sleep(0)
        storm.check()
        items = [x for x in received if x >= 0]
        # Exactly the putters that returned had their item queued, in FIFO order.
        assert items == storm.turns
        assert received.count(-1) == 10

    run(kind, main)
