"""Queue, LifoQueue and PriorityQueue under random schedules.

Same method as test_locks_model: one script, two worlds (stdlib asyncio's queue
and sansloop.core's), identical logs required turn by turn; plus a reference
model -- a plain deque, stack or heap with an unfinished-task counter -- that
replays our log and must agree with every item that came out, every
QueueEmpty/QueueFull/QueueShutDown, every ValueError from task_done(), and, at
quiescence, with qsize() and the parked getters/putters/joiners (no item left
beside a waiting getter, no free slot beside a waiting putter, no joiner left
once every task is done). ``shutdown()`` is fuzzed against the stdlib where it
has it (3.13+) and against the model everywhere.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sync_worlds import MAX_TASKS, OURS, STDLIB, World

from sansloop.core import queues

HAS_STDLIB_SHUTDOWN = hasattr(asyncio.Queue, "shutdown")

FUZZ_SETTINGS = settings(max_examples=50, stateful_step_count=35, deadline=None)

pick = st.integers(min_value=0, max_value=MAX_TASKS - 1)
values = st.integers(min_value=0, max_value=9)


class _Model:
    """The queue as a plain container, replayed from the log."""

    def __init__(self, kind: str, maxsize: int) -> None:
        self.kind = kind
        self.maxsize = maxsize
        self.items: Any = deque() if kind == "Queue" else []
        self.unfinished = 0
        self.shut = False

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self.items)

    def put(self, item: int) -> None:
        assert not self.shut and not self.full(), "an item went into a full or shut queue"
        if self.kind == "PriorityQueue":
            heapq.heappush(self.items, item)
        else:
            self.items.append(item)
        self.unfinished += 1

    def take(self) -> int:
        assert self.items, "an item came out of an empty queue"
        if self.kind == "Queue":
            return int(self.items.popleft())
        if self.kind == "LifoQueue":
            return int(self.items.pop())
        return heapq.heappop(self.items)


class _QueueMachine(RuleBasedStateMachine):
    kind = "Queue"
    maxsize = 2
    fuzz_shutdown = False

    def __init__(self) -> None:
        super().__init__()
        compare = HAS_STDLIB_SHUTDOWN or not self.fuzz_shutdown
        self.worlds = [World(impl) for impl in ([STDLIB, OURS] if compare else [OURS])]
        self.ours = self.worlds[-1]
        for world in self.worlds:
            world.q = getattr(world.impl, self.kind)(self.maxsize)
            world.roles = []  # per task: "getter" / "putter" / "joiner"
        self.count = 0
        self.settled = True

    def teardown(self) -> None:
        for world in self.worlds:
            world.close()

    # -- tasks -----------------------------------------------------------------

    @staticmethod
    async def getter(world: World, i: int) -> None:
        try:
            item = await world.q.get()
        except asyncio.CancelledError:
            world.log.append(("cancelled", i))
            raise
        except Exception as exc:
            world.log.append(("get failed", i, type(exc).__name__))
            return
        world.log.append(("got", i, item))

    @staticmethod
    async def putter(world: World, i: int, item: int) -> None:
        try:
            await world.q.put(item)
        except asyncio.CancelledError:
            world.log.append(("cancelled", i))
            raise
        except Exception as exc:
            world.log.append(("put failed", i, type(exc).__name__))
            return
        world.log.append(("put", i, item))

    @staticmethod
    async def joiner(world: World, i: int) -> None:
        await world.q.join()
        world.log.append(("joined", i))

    def _spawn(self, role: str, make: Any) -> None:
        for world in self.worlds:
            world.roles.append(role)
            world.spawn(make(world))
        self.count += 1
        self.settled = False

    @initialize(getters=st.integers(0, 2), putters=st.lists(values, max_size=3))
    def crowd(self, getters: int, putters: list[int]) -> None:
        for _ in range(getters):
            self.spawn_getter()
        for item in putters:
            self.spawn_putter(item)

    @precondition(lambda self: self.count < MAX_TASKS)
    @rule()
    def spawn_getter(self) -> None:
        i = self.count
        self._spawn("getter", lambda world: self.getter(world, i))

    @precondition(lambda self: self.count < MAX_TASKS)
    @rule(item=values)
    def spawn_putter(self, item: int) -> None:
        i = self.count
        self._spawn("putter", lambda world: self.putter(world, i, item))

    @precondition(lambda self: self.count < MAX_TASKS)
    @rule()
    def spawn_joiner(self) -> None:
        i = self.count
        self._spawn("joiner", lambda world: self.joiner(world, i))

    @precondition(lambda self: self.count > 0)
    @rule(k=pick)
    def cancel(self, k: int) -> None:
        i = k % self.count
        for world in self.worlds:
            world.tasks[i].cancel()
        self.settled = False

    # -- synchronous calls -----------------------------------------------------

    @rule(item=values)
    def put_nowait(self, item: int) -> None:
        for world in self.worlds:
            try:
                world.q.put_nowait(item)
            except Exception as exc:
                world.log.append(("put_nowait failed", type(exc).__name__))
            else:
                world.log.append(("put_nowait", item))
        self.settled = False

    @rule()
    def get_nowait(self) -> None:
        for world in self.worlds:
            try:
                item = world.q.get_nowait()
            except Exception as exc:
                world.log.append(("get_nowait failed", type(exc).__name__))
            else:
                world.log.append(("get_nowait", item))
        self.settled = False

    @rule()
    def task_done(self) -> None:
        for world in self.worlds:
            try:
                world.q.task_done()
            except ValueError as exc:
                world.log.append(("task_done refused", str(exc)))
            else:
                world.log.append(("task_done",))
        self.settled = False

    @precondition(lambda self: self.fuzz_shutdown)
    @rule(immediate=st.booleans())
    def shutdown(self, immediate: bool) -> None:
        for world in self.worlds:
            world.q.shutdown(immediate)
            world.log.append(("shutdown", immediate))
        self.settled = False

    # -- the loop --------------------------------------------------------------

    @rule()
    def step(self) -> None:
        for world in self.worlds:
            world.step()
        self.settled = False

    @rule()
    def settle(self) -> None:
        for world in self.worlds:
            world.settle()
        self.settled = True
        self.check_quiescent()

    # -- checks ----------------------------------------------------------------

    @invariant()
    def worlds_agree(self) -> None:
        reference = self.worlds[0]
        for world in self.worlds[1:]:
            assert world.log == reference.log
            assert str(world.q) == str(reference.q)
            assert [t.done() for t in world.tasks] == [t.done() for t in reference.tasks]

    def replay(self) -> _Model:
        model = _Model(self.kind, self.maxsize)
        for event, *rest in self.ours.log:
            if event in ("put_nowait", "put"):
                model.put(rest[-1])
            elif event in ("get_nowait", "got"):
                assert model.take() == rest[-1], "items came out in the wrong order"
            elif event == "put_nowait failed":
                expected = "QueueShutDown" if model.shut else "QueueFull"
                assert rest[0] == expected and (model.shut or model.full())
            elif event == "get_nowait failed":
                assert not model.items
                assert rest[0] == ("QueueShutDown" if model.shut else "QueueEmpty")
            elif event in ("put failed", "get failed"):
                assert rest[-1] == "QueueShutDown" and model.shut
                if event == "get failed":
                    assert not model.items
            elif event == "task_done":
                assert model.unfinished > 0
                model.unfinished -= 1
            elif event == "task_done refused":
                assert model.unfinished == 0
                assert rest[0] == "task_done() called too many times"
            elif event == "shutdown":
                model.shut = True
                if rest[0]:
                    discarded = len(model.items)
                    model.items.clear()
                    model.unfinished = max(0, model.unfinished - discarded)
        return model

    @invariant()
    def model_agrees(self) -> None:
        model = self.replay()
        q = self.ours.q
        assert q.qsize() == len(model.items)
        assert q.statistics().unfinished_tasks == model.unfinished

    def check_quiescent(self) -> None:
        model = self.replay()
        world = self.ours
        live = {
            role: sum(
                1
                for r, t in zip(world.roles, world.tasks, strict=True)
                if r == role and not t.done()
            )
            for role in ("getter", "putter", "joiner")
        }
        stats = world.q.statistics()
        assert (stats.getters, stats.putters) == (live["getter"], live["putter"])
        if model.items or model.shut:
            assert not live["getter"], "a getter waits beside an item (or a shut queue)"
        if not model.full() or model.shut:
            assert not live["putter"], "a putter waits beside a free slot (or a shut queue)"
        if model.unfinished == 0:
            assert not live["joiner"], "join() still waits with every task done"


class FifoQueueMachine(_QueueMachine):
    kind, maxsize = "Queue", 2


class LifoQueueMachine(_QueueMachine):
    kind, maxsize = "LifoQueue", 1


class PriorityQueueMachine(_QueueMachine):
    kind, maxsize = "PriorityQueue", 0


class ShutdownQueueMachine(_QueueMachine):
    kind, maxsize, fuzz_shutdown = "Queue", 1, True


def _as_test(machine: type[RuleBasedStateMachine]) -> Any:
    case = machine.TestCase
    case.settings = FUZZ_SETTINGS
    return case


TestFifoQueue = _as_test(FifoQueueMachine)
TestLifoQueue = _as_test(LifoQueueMachine)
TestPriorityQueue = _as_test(PriorityQueueMachine)
TestShutdownQueue = _as_test(ShutdownQueueMachine)

assert queues.QueueEmpty is asyncio.QueueEmpty  # sync_worlds installed the stdlib's classes
