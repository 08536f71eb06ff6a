"""Random programs of tasks, locks, queues, timeouts and cancellations: three runs agree.

Hypothesis writes a small concurrent program: up to five tasks sharing one of
each primitive (Lock, Semaphore, BoundedSemaphore, Event, Condition, Barrier,
and a Queue, LifoQueue or PriorityQueue, with ``shutdown`` where the running
Python has it). Each task is a list of steps: take a lock and hold it for some
turns, wait on an event, a condition or the barrier, put and get, notify,
release, cancel a sibling, push a sibling's deadline into the past, catch a
cancellation and go on. A blocking step may run under a deadline:
``timeout(0)``, ``timeout_at`` a moment already past, ``timeout`` an hour away
(a deadline that never comes), ``wait_for(..., 0)`` or ``wait_for`` an hour
away. No deadline depends on how fast the machine is: it is either already
due when the step starts, or it is never due within the run, or a sibling
makes it due with ``reschedule`` at a given turn. Time never decides.

The program runs three times:

* ``stdlib``: ``import asyncio`` on asyncio's own loop, the reference;
* ``loop``:  ``import asyncio`` on a sansloop loop (loop mode: stdlib tasks and
  primitives, our scheduler, timers and run loop);
* ``full``:  ``import sansloop.compat as asyncio`` (full mode: our loop, tasks,
  futures, locks, queues, timeouts).

Compared: the whole program's trace, in global order (every step each task
took, what it saw, which exception it met), the turn at which all tasks had
finished (or that they had not within the turn budget), the primitives' states
then, and every task's final state after the leftovers are cancelled. A
difference is a sansloop bug, unless docs/compat.md lists it: on Python 3.11
full mode's ``wait_for`` is 3.12's (register entry 4), so there programs with
``wait_for`` are compared in loop mode only.

``SANSLOOP_FUZZ_EXAMPLES`` sets the number of programs (docs/fuzzing.md).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sansloop
import sansloop.compat

#: programs per run of this file; the long tier raises it (docs/fuzzing.md)
EXAMPLES = int(os.environ.get("SANSLOOP_FUZZ_EXAMPLES", "520"))
MAX_TASKS = 5
#: turns the main task gives the program before it cancels what is left
BUDGET = 120
#: turns given to cancel what is left after the budget
CANCEL_ROUNDS = 200
#: a deadline that is never reached within a run (the run is over in milliseconds)
FAR = 3600.0

HAS_SHUTDOWN = hasattr(asyncio.Queue, "shutdown")
#: Python 3.11's wait_for wraps a coroutine in a task; sansloop's is 3.12's (docs/compat.md, 4)
WAIT_FOR_DIFFERS = sys.version_info < (3, 12)

# ------------------------------------------------------------------ programs

turns = st.integers(min_value=0, max_value=3)
target = st.integers(min_value=0, max_value=MAX_TASKS - 1)

#: steps that may block, and so may run under a deadline
blocking = st.one_of(
    st.tuples(st.just("lock"), turns),
    st.tuples(st.just("sem"), st.sampled_from(["sem", "bsem"]), turns),
    st.tuples(st.just("event_wait")),
    st.tuples(st.just("cond_wait")),
    st.tuples(st.just("cond_wait_for"), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("barrier")),
    st.tuples(st.just("put")),
    st.tuples(st.just("get")),
    st.tuples(st.just("join")),
    st.tuples(st.just("turns"), turns),
)

deadline = st.sampled_from(
    [None, None, None, "timeout0", "timeout_past", "timeout_far", "wait_for0", "wait_for_far"]
)

instant = st.one_of(
    st.tuples(st.just("release"), st.sampled_from(["sem", "bsem"])),
    st.tuples(st.just("event_set")),
    st.tuples(st.just("event_clear")),
    st.tuples(st.just("notify"), st.integers(min_value=0, max_value=2)),
    st.tuples(st.just("notify_all")),
    st.tuples(st.just("notify_unlocked")),
    st.tuples(st.just("bump")),
    st.tuples(st.just("barrier_abort")),
    st.tuples(st.just("barrier_reset")),
    st.tuples(st.just("put_nowait")),
    st.tuples(st.just("get_nowait")),
    st.tuples(st.just("task_done")),
    st.tuples(st.just("cancel"), target),
    st.tuples(st.just("expire"), target),
    *([st.tuples(st.just("shutdown"), st.booleans())] if HAS_SHUTDOWN else []),
)

blocking_step = st.tuples(st.just("block"), blocking, deadline, st.booleans())
#: Weighted towards blocking steps: contention is where the bugs are. (A plain
#: ``one_of`` would flatten ``instant``'s many branches and drown them.)
_STEP_KINDS = {"block": blocking_step, "instant": instant, "yield": st.tuples(st.just("yield"))}
step = st.sampled_from(["block", "block", "instant", "block", "instant", "yield"]).flatmap(
    _STEP_KINDS.__getitem__
)

program = st.fixed_dictionaries(
    {
        "tasks": st.lists(st.lists(step, max_size=6), min_size=2, max_size=MAX_TASKS),
        "sem": st.integers(min_value=0, max_value=2),
        "bsem": st.integers(min_value=1, max_value=2),
        "parties": st.integers(min_value=1, max_value=3),
        "queue": st.sampled_from(["Queue", "LifoQueue", "PriorityQueue"]),
        "maxsize": st.integers(min_value=0, max_value=2),
    }
)


#: sansloop's Semaphore, Condition and Barrier (built on a Condition) are
#: asyncio 3.13's on every version (docs/core-sync.md, docs/compat.md)
PRIMITIVES_DIFFER = sys.version_info < (3, 13)
_SEMAPHORE_OR_CONDITION = {
    "sem", "release", "cond_wait", "cond_wait_for", "notify", "notify_all", "notify_unlocked",
    "bump", "barrier", "barrier_abort", "barrier_reset",
}  # fmt: skip


def _kinds(spec: dict[str, Any]) -> set[str]:
    return {s[1][0] if s[0] == "block" else s[0] for steps in spec["tasks"] for s in steps}


def full_mode_comparable(spec: dict[str, Any]) -> bool:
    """Whether stdlib asyncio of this Python is the reference for full mode.

    Not when the program uses what sansloop deliberately does as a newer
    asyncio does: wait_for on 3.11, Semaphore/Condition/Barrier before 3.13.
    """
    if WAIT_FOR_DIFFERS and any(
        s[0] == "block" and s[2] in ("wait_for0", "wait_for_far")
        for steps in spec["tasks"]
        for s in steps
    ):
        return False
    return not (PRIMITIVES_DIFFER and _kinds(spec) & _SEMAPHORE_OR_CONDITION)


# ------------------------------------------------------------------ the interpreter


def _name(exc: BaseException) -> str:
    return type(exc).__name__


async def interpret(aio: Any, spec: dict[str, Any]) -> list[Any]:
    """Run *spec* with *aio* as the asyncio namespace; return its trace."""
    trace: list[Any] = []
    loop = aio.get_running_loop()
    lock = aio.Lock()
    sem = aio.Semaphore(spec["sem"])
    bsem = aio.BoundedSemaphore(spec["bsem"])
    sems = {"sem": sem, "bsem": bsem}
    event = aio.Event()
    cond = aio.Condition()
    barrier = aio.Barrier(spec["parties"])
    queue = getattr(aio, spec["queue"])(spec["maxsize"])
    counter = [0]
    tasks: list[Any] = []
    #: each task's innermost live timeout() context, for a sibling's "expire"
    deadlines: dict[int, Any] = {}

    async def spin(n: int) -> None:
        for _ in range(n):
            await aio.sleep(0)

    async def blocking_step(me: int, item: int, op: tuple[Any, ...]) -> Any:
        kind = op[0]
        if kind == "lock":
            async with lock:
                trace.append((me, "lock held"))
                await spin(op[1])
            return "released"
        if kind == "sem":
            async with sems[op[1]]:
                trace.append((me, op[1], "held"))
                await spin(op[2])
            return "released"
        if kind == "event_wait":
            return await event.wait()
        if kind == "cond_wait":
            async with cond:
                return await cond.wait()
        if kind == "cond_wait_for":
            async with cond:
                return await cond.wait_for(lambda: counter[0] >= op[1])
        if kind == "barrier":
            return await barrier.wait()
        if kind == "put":
            return await queue.put(item)
        if kind == "get":
            return await queue.get()
        if kind == "join":
            return await queue.join()
        await spin(op[1])
        return "spun"

    async def under_deadline(me: int, item: int, op: tuple[Any, ...], how: str | None) -> Any:
        if how is None:
            return await blocking_step(me, item, op)
        if how.startswith("wait_for"):
            limit = 0 if how == "wait_for0" else FAR
            return await aio.wait_for(blocking_step(me, item, op), limit)
        if how == "timeout0":
            cm = aio.timeout(0)
        elif how == "timeout_past":
            cm = aio.timeout_at(loop.time() - 1)
        else:
            cm = aio.timeout(FAR)
        outer = deadlines.get(me)
        async with cm:
            deadlines[me] = cm
            try:
                return await blocking_step(me, item, op)
            finally:
                if outer is None:
                    deadlines.pop(me, None)
                else:
                    deadlines[me] = outer

    def instant_step(me: int, item: int, op: tuple[Any, ...]) -> Any:
        kind = op[0]
        if kind == "release":
            sems[op[1]].release()
            return sems[op[1]].locked()
        if kind == "event_set":
            event.set()
        elif kind == "event_clear":
            event.clear()
        elif kind == "notify_unlocked":
            cond.notify()  # RuntimeError: the lock is not held
        elif kind == "put_nowait":
            queue.put_nowait(item)
        elif kind == "get_nowait":
            return queue.get_nowait()
        elif kind == "task_done":
            queue.task_done()
        elif kind == "cancel":
            if op[1] < len(tasks) and op[1] != me:
                return tasks[op[1]].cancel()
            return "no such sibling"
        elif kind == "expire":
            cm = deadlines.get(op[1])
            if cm is None:
                return "no deadline"
            if cm.expired():
                return "expired already"
            cm.reschedule(loop.time() - 1)
            return "rescheduled"
        elif kind == "shutdown":
            queue.shutdown(immediate=op[1])
        return None

    async def worker(me: int, steps: list[tuple[Any, ...]]) -> str:
        for position, op in enumerate(steps):
            item = 10 * position + me
            kind = op[0]
            try:
                if kind == "yield":
                    await aio.sleep(0)
                    continue
                if kind == "block":
                    _, inner, how, absorb = op
                    try:
                        got = await under_deadline(me, item, inner, how)
                    except aio.CancelledError:
                        if not absorb:
                            trace.append((me, position, inner[0], "cancelled"))
                            raise
                        trace.append(
                            (me, position, inner[0], "absorbed", aio.current_task().uncancel())
                        )
                        continue
                    trace.append((me, position, inner[0], "ok", got))
                elif kind in ("notify", "notify_all", "bump"):
                    async with cond:
                        if kind == "notify":
                            cond.notify(op[1])
                        elif kind == "notify_all":
                            cond.notify_all()
                        else:
                            counter[0] += 1
                            cond.notify_all()
                    trace.append((me, position, kind))
                elif kind in ("barrier_abort", "barrier_reset"):
                    await (barrier.abort() if kind == "barrier_abort" else barrier.reset())
                    trace.append((me, position, kind, barrier.n_waiting, barrier.broken))
                else:
                    trace.append((me, position, kind, "ok", instant_step(me, item, op)))
            except Exception as exc:  # noqa: BLE001 - what a step raised is the observation
                what = op[1][0] if kind == "block" else kind
                trace.append((me, position, what, "raised", _name(exc)))
        trace.append((me, "done"))
        return "done"

    def states() -> tuple[Any, ...]:
        return (
            lock.locked(),
            sem.locked(),
            bsem.locked(),
            event.is_set(),
            cond.locked(),
            barrier.n_waiting,
            barrier.broken,
            queue.qsize(),
            queue.empty(),
            queue.full(),
        )

    for me, steps in enumerate(spec["tasks"]):
        tasks.append(aio.create_task(worker(me, steps)))
    for turn in range(BUDGET):
        if all(t.done() for t in tasks):
            trace.append(("all done at turn", turn))
            break
        await aio.sleep(0)
    else:
        trace.append(("budget spent", [t.done() for t in tasks]))
    trace.append(("states", states()))
    # Cancel the leftovers until they end: a task that absorbs a cancellation
    # goes on to its next step, so one round may not be enough (each absorbs
    # at most one per step, so CANCEL_ROUNDS bounds it).
    for _ in range(CANCEL_ROUNDS):
        if all(t.done() for t in tasks):
            break
        for t in tasks:
            if not t.done():
                t.cancel()
        await aio.sleep(0)
    else:
        raise AssertionError(f"tasks still running after {CANCEL_ROUNDS} rounds of cancellation")
    final = []
    for t in tasks:
        if t.cancelled():
            final.append("cancelled")
        elif t.exception() is not None:
            final.append(_name(t.exception()))
        else:
            final.append(t.result())
    trace.append(("final", final, states()))
    return trace


# ------------------------------------------------------------------ the three runs


def run_stdlib(spec: dict[str, Any]) -> list[Any]:
    with asyncio.Runner() as runner:
        return runner.run(interpret(asyncio, spec))


def run_loop_mode(spec: dict[str, Any]) -> list[Any]:
    with asyncio.Runner(loop_factory=sansloop.new_event_loop) as runner:
        return runner.run(interpret(asyncio, spec))


def run_full_mode(spec: dict[str, Any]) -> list[Any]:
    with sansloop.compat.Runner() as runner:
        result: list[Any] = runner.run(interpret(sansloop.compat, spec))
        return result


def check(spec: dict[str, Any]) -> None:
    expected = run_stdlib(spec)
    runs: list[tuple[str, Callable[[dict[str, Any]], list[Any]]]] = [("loop", run_loop_mode)]
    if full_mode_comparable(spec):
        runs.append(("full", run_full_mode))
    for mode, run in runs:
        got = run(spec)
        assert got == expected, (
            f"{mode} mode diverges from stdlib asyncio: {_first_difference(expected, got)}"
        )


def _first_difference(expected: list[Any], got: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"entry {i}: stdlib {a!r}, sansloop {b!r}"
    return f"stdlib has {len(expected)} entries, sansloop {len(got)}"


@settings(max_examples=EXAMPLES, deadline=None)
@given(program)
def test_sync_programs_agree_with_asyncio(spec: dict[str, Any]) -> None:
    check(spec)


# ------------------------------------------------------------------ pinned programs

#: Programs that once exposed a difference, or that exercise a corner on purpose.
PINNED: list[dict[str, Any]] = [
    # a waiter woken by release() and cancelled before it resumes
    {
        "tasks": [
            [("block", ("lock", 2), None, False)],
            [("block", ("lock", 0), None, False)],
            [("yield",), ("cancel", 1)],
        ],
        "sem": 0,
        "bsem": 1,
        "parties": 2,
        "queue": "Queue",
        "maxsize": 1,
    },
    # a sibling pushes a deadline an hour away into the past while its owner waits
    {
        "tasks": [
            [
                ("block", ("event_wait",), "timeout_far", False),
                ("block", ("get",), "timeout0", True),
            ],
            [("yield",), ("expire", 0), ("event_set",), ("put_nowait",)],
        ],
        "sem": 0,
        "bsem": 1,
        "parties": 2,
        "queue": "PriorityQueue",
        "maxsize": 0,
    },
    # condition waiters, notify(1) then the barrier is aborted under a waiter
    {
        "tasks": [
            [("block", ("cond_wait",), None, False), ("block", ("barrier",), None, False)],
            [("block", ("cond_wait_for", 1), "timeout_far", True)],
            [("notify", 1), ("bump",), ("yield",), ("barrier_abort",)],
        ],
        "sem": 1,
        "bsem": 1,
        "parties": 3,
        "queue": "LifoQueue",
        "maxsize": 2,
    },
]


@pytest.mark.parametrize("spec", PINNED, ids=["woken-then-cancelled", "expire", "cond-barrier"])
def test_pinned_programs(spec: dict[str, Any]) -> None:
    check(spec)
    trace = run_stdlib(spec)
    assert trace[-1][0] == "final"  # the program ran to its end


# ------------------------------------------------------------------ a deliberate deviation

#: A waiter leaves Condition.wait() by a timeout while another waits: asyncio
#: 3.13 passes a notification on (a spurious wake-up for the other waiter,
#: which the Condition protocol allows); 3.11/3.12 do not, and the other
#: waiter waits until cancelled. sansloop does as 3.13 on every version
#: (docs/compat.md, "Locks, conditions, semaphores and barriers are 3.13's").
CONDITION_313 = {
    "tasks": [
        [("block", ("cond_wait",), None, False)],
        [("block", ("cond_wait",), "timeout0", False)],
    ],
    "sem": 0,
    "bsem": 1,
    "parties": 1,
    "queue": "Queue",
    "maxsize": 0,
}
_IDLE = (False, True, False, False, False, 0, False, 0, True, False)
CONDITION_313_TRACE = [
    (1, 0, "cond_wait", "raised", "TimeoutError"),
    (1, "done"),
    (0, 0, "cond_wait", "ok", True),
    (0, "done"),
    ("all done at turn", 4),
    ("states", _IDLE),
    ("final", ["done", "done"], _IDLE),
]


def test_full_mode_condition_is_313s_on_every_version() -> None:
    assert run_full_mode(CONDITION_313) == CONDITION_313_TRACE
    stdlib = run_stdlib(CONDITION_313)
    if PRIMITIVES_DIFFER:
        assert stdlib != CONDITION_313_TRACE
        assert (0, 0, "cond_wait", "cancelled") in stdlib
        assert not full_mode_comparable(CONDITION_313)
    else:
        assert stdlib == CONDITION_313_TRACE
