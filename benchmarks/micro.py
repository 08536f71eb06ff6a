"""The microbenchmark bodies, each written once against an asyncio-like module.

Contract
--------
Every benchmark is an ``async def body(aio, n) -> int`` coroutine function. ``aio``
is the module the body must take *everything* from (``get_running_loop``,
``create_task``, ``gather``, ``Queue``, ``Lock``, ``sleep``): stdlib ``asyncio`` for
the stdlib, loop-mode and uvloop runs, ``sansloop.compat`` for full mode. So one
body runs unchanged in every mode, and a difference in the figures is a difference
in the implementations.

``n`` is the size; the body returns the number of operations it performed, which
is always ``ops(n)`` of its ``Benchmark`` entry when the implementation is correct
(the smoke test checks exactly that). A body checks its own result (ordering,
counts) and raises ``AssertionError`` on a wrong one, so a fast but wrong loop
cannot produce a figure.

Nothing here times anything: ``child.py`` does the timing, ``run.py`` the rounds.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["Benchmark", "BENCHMARKS"]

Body = Callable[[ModuleType, int], Awaitable[int]]


async def call_soon_chain(aio: Any, n: int) -> int:
    """One callback that reschedules itself with ``call_soon`` until it ran *n* times.

    One callback per loop iteration: this measures the cost of a tick (ready
    queue, handle, and the zero-timeout poll if the loop does one with no fd
    watched; see ``call_soon_fd``) as much as ``call_soon`` itself.
    """
    loop = aio.get_running_loop()
    done = loop.create_future()
    remaining = n

    def step() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining:
            loop.call_soon(step)
        else:
            done.set_result(None)

    loop.call_soon(step)
    await done
    if remaining != 0:
        raise AssertionError(f"call_soon chain stopped with {remaining} steps left")
    return n


@contextlib.contextmanager
def _idle_socket_watched(loop: Any) -> Iterator[None]:
    """Watch one idle socket with ``add_reader``, as any server's loop does."""
    watched, peer = socket.socketpair()
    try:
        loop.add_reader(watched.fileno(), _never_called)
        try:
            yield
        finally:
            loop.remove_reader(watched.fileno())
    finally:
        watched.close()
        peer.close()


async def call_soon_chain_with_fd(aio: Any, n: int) -> int:
    """The ``call_soon`` chain while one idle socket is watched by ``add_reader``.

    Any real program watches some fd, and then a loop must poll (with a zero
    timeout) on every tick; with nothing watched a loop may skip that syscall.
    This variant shows the tick cost a server sees.
    """
    with _idle_socket_watched(aio.get_running_loop()):
        return await call_soon_chain(aio, n)


def _never_called() -> None:
    raise AssertionError("the idle socket became readable")


async def timers(aio: Any, n: int) -> int:
    """Schedule *n* ``call_later`` timers (spread over 2 ms), cancel every other one.

    Returns *n* (timers scheduled) once the surviving half has fired; checks that
    exactly the uncancelled ones fired and that they fired in deadline order.
    """
    loop = aio.get_running_loop()
    done = loop.create_future()
    expected = n - n // 2
    fired: list[int] = []

    def fire(index: int) -> None:
        fired.append(index)
        if len(fired) == expected:
            done.set_result(None)

    call_later = loop.call_later
    handles = []
    for i in range(n):
        # A scattered but deterministic spread of delays so the heap does work.
        handles.append(call_later(((i * 7919) % 2000) * 1e-6, fire, i))
    for handle in handles[1::2]:
        handle.cancel()
    if expected:
        await done
    if len(fired) != expected or any(i % 2 for i in fired):
        raise AssertionError(f"{len(fired)} timers fired, expected the {expected} even ones")
    if hasattr(handles[0], "when"):  # uvloop's timer handles have no when()
        last = float("-inf")
        for i in fired:
            when = handles[i].when()
            if when < last:
                raise AssertionError("timers fired out of deadline order")
            last = when
    return n


LONG_TIMERS = 1000


async def timeout_churn(aio: Any, n: int) -> int:
    """A timeout armed and disarmed *n* times, with ``LONG_TIMERS`` others pending.

    The pattern of ``asyncio.timeout()`` / ``wait_for`` in a server: each step
    cancels the previous step's 60 s timer, arms a new one and reschedules
    itself with ``call_soon``; none of these timers ever fires. The heap holds
    ``LONG_TIMERS`` far-off timers throughout, so cancelled entries pile up on
    top of a real heap and the loop's lazy removal and compaction do the work.
    One idle socket is watched, as in a server, so every tick polls.
    """
    loop = aio.get_running_loop()
    with _idle_socket_watched(loop):
        return await _timeout_churn(loop, n)


async def _timeout_churn(loop: Any, n: int) -> int:
    pending = [loop.call_later(3600.0 + i, _never_called) for i in range(LONG_TIMERS)]
    done = loop.create_future()
    remaining = n
    armed = None

    def step() -> None:
        nonlocal remaining, armed
        if armed is not None:
            armed.cancel()
        remaining -= 1
        if remaining:
            armed = loop.call_later(60.0, _never_called)
            loop.call_soon(step)
        else:
            done.set_result(None)

    loop.call_soon(step)
    await done
    for handle in pending:
        handle.cancel()
    if remaining != 0:
        raise AssertionError(f"timeout churn stopped with {remaining} steps left")
    return n


async def _trivial(i: int) -> int:
    return i


async def task_gather(aio: Any, n: int) -> int:
    """Create *n* tasks of a trivial coroutine with ``create_task`` and ``gather`` them."""
    create_task = aio.create_task
    tasks = [create_task(_trivial(i)) for i in range(n)]
    results = await aio.gather(*tasks)
    if len(results) != n or results[-1] != n - 1 or sum(results) != n * (n - 1) // 2:
        raise AssertionError("gather returned wrong results")
    return n


async def queue_pingpong(aio: Any, n: int) -> int:
    """Two tasks bounce an item *n* times through two unbounded Queues.

    One op is a round trip: ping puts on ``q1``, pong gets it and puts it on
    ``q2``, ping gets it back.
    """
    q1 = aio.Queue()
    q2 = aio.Queue()

    async def ping() -> int:
        total = 0
        for i in range(n):
            await q1.put(i)
            total += await q2.get()
        return total

    async def pong() -> None:
        for _ in range(n):
            item = await q1.get()
            await q2.put(item)

    pinger = aio.create_task(ping())
    ponger = aio.create_task(pong())
    total = await pinger
    await ponger
    if total != n * (n - 1) // 2:
        raise AssertionError(f"ping-pong total {total}, expected {n * (n - 1) // 2}")
    return n


LOCK_TASKS = 10


async def lock_contention(aio: Any, n: int) -> int:
    """``LOCK_TASKS`` tasks each take one Lock ``n // LOCK_TASKS`` times.

    The holder yields (``sleep(0)``) inside the critical section, so the others
    are queued as waiters and every release hands the lock on: the contended
    path, not the uncontended fast path. One op is one acquire+release.
    """
    lock = aio.Lock()
    per_task = n // LOCK_TASKS
    inside = 0
    count = 0

    async def worker() -> None:
        nonlocal inside, count
        for _ in range(per_task):
            async with lock:
                inside += 1
                if inside != 1:
                    raise AssertionError("two tasks inside the lock")
                await aio.sleep(0)
                count += 1
                inside -= 1

    await aio.gather(*[aio.create_task(worker()) for _ in range(LOCK_TASKS)])
    if count != per_task * LOCK_TASKS:
        raise AssertionError(f"{count} acquisitions, expected {per_task * LOCK_TASKS}")
    return count


EXECUTOR_WINDOW = 16


def _blocking_work(i: int) -> int:
    return i


async def run_in_executor(aio: Any, n: int) -> int:
    """*n* calls of ``loop.run_in_executor(None, fn, i)``, ``EXECUTOR_WINDOW`` in flight.

    A trivial function on the default thread pool: the cost is the hand-off (a
    future bridged from ``concurrent.futures``, the worker thread's wake-up of the
    loop) and the result coming back, which is what ``to_thread`` and every
    blocking-call wrapper pay. Checks every result.
    """
    loop = aio.get_running_loop()
    total = 0
    for start in range(0, n, EXECUTOR_WINDOW):
        batch = [
            loop.run_in_executor(None, _blocking_work, i)
            for i in range(start, min(start + EXECUTOR_WINDOW, n))
        ]
        for fut in batch:
            total += await fut
    if total != n * (n - 1) // 2:
        raise AssertionError(f"executor results sum to {total}, expected {n * (n - 1) // 2}")
    return n


@dataclass(frozen=True)
class Benchmark:
    """A body with its sizes: ``size`` for a full run, ``quick`` for ``--quick``."""

    name: str
    body: Body
    size: int
    quick: int
    unit: str

    def ops(self, n: int) -> int:
        """The op count a correct run of size *n* returns."""
        if self.body is lock_contention:
            return (n // LOCK_TASKS) * LOCK_TASKS
        return n


#: Sizes are chosen so one timed run takes roughly 0.3-1 s on stdlib asyncio here.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("call_soon", call_soon_chain, 400_000, 2_000, "callback"),
        Benchmark("call_soon_fd", call_soon_chain_with_fd, 400_000, 2_000, "callback"),
        Benchmark("timers", timers, 150_000, 1_000, "timer"),
        Benchmark("timeout_churn", timeout_churn, 200_000, 2_000, "arm+disarm"),
        Benchmark("task_gather", task_gather, 100_000, 500, "task"),
        Benchmark("queue_pingpong", queue_pingpong, 100_000, 500, "round trip"),
        Benchmark("lock_contention", lock_contention, 100_000, 500, "acquire"),
        Benchmark("run_in_executor", run_in_executor, 40_000, 200, "call"),
    )
}
