"""Worlds for the sync-primitive fuzzers: one loop driven turn by turn, one log.

A ``World`` owns a stdlib event loop that is never left running: the fuzzer
spawns tasks, cancels them and resolves futures between turns, then advances
the loop one turn (``step``) or enough turns for every wake-up chain to finish
(``settle``). Tasks write what they observe into ``log``; running the same
script in two worlds (stdlib asyncio's primitives and sansloop.core's) must give
the same log, turn by turn.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine
from typing import Any

from sansloop.core import barriers, binding, locks, queues

binding.install(asyncio.get_running_loop, asyncio.get_event_loop)
queues.install_exceptions(
    asyncio.QueueEmpty, asyncio.QueueFull, getattr(asyncio, "QueueShutDown", None)
)

#: Upper bound on the tasks a fuzz run spawns; ``settle`` is sized from it.
MAX_TASKS = 8
#: Every wake-up chain among MAX_TASKS tasks ends well within this many turns
#: (a hand-off costs at most two turns per task).
SETTLE_TURNS = 6 * MAX_TASKS + 10

_NAMES = ("Lock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")
_QUEUE_NAMES = ("Queue", "LifoQueue", "PriorityQueue")

STDLIB = types.SimpleNamespace(
    kind="asyncio", **{n: getattr(asyncio, n) for n in _NAMES + _QUEUE_NAMES}
)
OURS = types.SimpleNamespace(
    kind="sansloop",
    **{n: getattr(locks, n) for n in _NAMES if hasattr(locks, n)},
    Barrier=barriers.Barrier,
    **{n: getattr(queues, n) for n in _QUEUE_NAMES},
)


def state_words(obj: object) -> str:
    """The ``[...]`` part of an asyncio-style repr: the state both worlds must share."""
    text = repr(obj)
    return text[text.rindex("[") :]


class World:
    """A loop, the namespace of primitives under test, spawned tasks and a log."""

    def __init__(self, impl: types.SimpleNamespace) -> None:
        self.impl = impl
        self.loop = asyncio.new_event_loop()
        self.log: list[tuple[Any, ...]] = []
        self.tasks: list[asyncio.Task[Any]] = []

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> int:
        self.tasks.append(self.loop.create_task(coro))
        return len(self.tasks) - 1

    def future(self) -> asyncio.Future[Any]:
        return self.loop.create_future()

    def step(self) -> None:
        """Run exactly one turn of the loop."""
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()

    def settle(self) -> None:
        """Run turns until nothing is ready (bounded by SETTLE_TURNS)."""
        # The stdlib loop keeps its ready callbacks in ``_ready``; peeking at
        # it only saves turns, a missed turn would still be run by the bound.
        for _ in range(SETTLE_TURNS):
            self.step()
            if not self.loop._ready:  # type: ignore[attr-defined]
                return
        raise AssertionError(f"the loop is still busy after {SETTLE_TURNS} turns")

    def live(self, index: int) -> bool:
        return not self.tasks[index].done()

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.settle()
        for task in self.tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "never retrieved" warning
        self.loop.close()
