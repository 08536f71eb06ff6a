"""The task API under random programs: stdlib asyncio and ``sansloop.compat`` agree.

Hypothesis writes a small concurrent program -- a few child coroutines, each a
list of steps (yield a turn, raise, cancel a sibling, run a sub-coroutine
under ``shield``, ``timeout(0)``, ``wait_for(..., 0)``, ``gather``, a nested
``TaskGroup`` with a failing member, catch a cancellation and go on) -- and a way to run the children (``TaskGroup``,
``gather`` with or without ``return_exceptions``, ``wait``). The program runs
once with ``import asyncio`` (stdlib, its own loop) and once with
``import sansloop.compat as asyncio`` (full mode: our loop, futures, tasks and
combinators). No clock is involved: every step is a turn of the loop, and
deadlines are already past (``timeout(0)``), so both runs are deterministic.

Compared: each child's own log of events and the program's outcome. Not the
global interleaving across children: stdlib TaskGroup cancels its children in
set (memory-address) order, sansloop in creation order (docs/compat.md).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import sansloop.compat

MAX_CHILDREN = 4
#: programs per run; TASKAPI_EXAMPLES=3000 for a long local search
EXAMPLES = int(os.environ.get("TASKAPI_EXAMPLES", "150"))

# ------------------------------------------------------------------ programs

small = st.integers(min_value=0, max_value=3)

leaf_step = st.one_of(
    st.tuples(st.just("yield")),
    st.tuples(st.just("raise"), st.sampled_from(["ValueError", "KeyError"])),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=MAX_CHILDREN - 1)),
)

step = st.one_of(
    leaf_step,
    leaf_step,
    st.tuples(st.just("shield"), small),
    st.tuples(st.just("timeout0"), small),
    st.tuples(st.just("wait_for0"), small),
    st.tuples(st.just("wait_for_none"), small),
    st.tuples(st.just("gather"), st.lists(small, min_size=1, max_size=3), st.booleans()),
    st.tuples(st.just("absorb"), small),
    st.tuples(
        st.just("subgroup"),
        st.lists(small, min_size=1, max_size=3),
        st.one_of(st.none(), st.integers(min_value=0, max_value=2)),
    ),
)

program = st.fixed_dictionaries(
    {
        "children": st.lists(st.lists(step, max_size=6), min_size=1, max_size=MAX_CHILDREN),
        "runner": st.sampled_from(["taskgroup", "gather", "gather_exc", "wait"]),
    }
)


def _describe(exc: BaseException) -> Any:
    """An exception as comparable data (group members sorted)."""
    if isinstance(exc, BaseExceptionGroup):
        return (type(exc).__name__, sorted(map(repr, map(_describe, exc.exceptions))))
    return type(exc).__name__


async def _interpret(aio: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Run *spec* with *aio* as the asyncio namespace; the logs and outcome."""
    logs: dict[int, list[Any]] = {i: [] for i in range(len(spec["children"]))}
    tasks: list[Any] = []

    async def turns(n: int) -> int:
        for _ in range(n):
            await aio.sleep(0)
        return n

    async def fail_after(n: int) -> None:
        await turns(n)
        raise LookupError(n)

    async def child(index: int, steps: list[tuple[Any, ...]]) -> str:
        log = logs[index].append
        for position, (kind, *args) in enumerate(steps):
            if kind == "yield":
                await aio.sleep(0)
            elif kind == "raise":
                log((position, "raise"))
                raise {"ValueError": ValueError, "KeyError": KeyError}[args[0]](index)
            elif kind == "cancel":
                target = args[0]
                if target < len(tasks) and target != index:
                    log((position, "cancel", target, tasks[target].cancel()))
            elif kind == "shield":
                log((position, "shield", await aio.shield(turns(args[0]))))
            elif kind == "timeout0":
                try:
                    async with aio.timeout(0) as cm:
                        await turns(args[0])
                    log((position, "timeout0 ok", cm.expired()))
                except TimeoutError:
                    log((position, "timeout0 expired", cm.expired()))
            elif kind in ("wait_for0", "wait_for_none"):
                limit = 0 if kind == "wait_for0" else None
                try:
                    log((position, kind, await aio.wait_for(turns(args[0]), limit)))
                except TimeoutError:
                    log((position, kind, "timeout"))
            elif kind == "gather":
                counts, return_exceptions = args
                got = await aio.gather(
                    *(turns(n) for n in counts), return_exceptions=return_exceptions
                )
                log((position, "gather", got))
            elif kind == "subgroup":
                counts, failing = args
                try:
                    async with aio.TaskGroup() as sub:
                        for k, n in enumerate(counts):
                            sub.create_task(fail_after(n) if k == failing else turns(n))
                    log((position, "subgroup ok"))
                except BaseExceptionGroup as eg:
                    log((position, "subgroup", _describe(eg)))
            elif kind == "absorb":
                try:
                    await turns(args[0] + 1)
                    log((position, "absorb quiet"))
                except aio.CancelledError:
                    log((position, "absorbed"))
                    aio.current_task().uncancel()
        log("done")
        return f"child {index}"

    def start(tg: Any = None) -> None:
        for index, steps in enumerate(spec["children"]):
            coro = child(index, steps)
            tasks.append(tg.create_task(coro) if tg is not None else aio.create_task(coro))

    outcome: Any
    runner = spec["runner"]
    try:
        if runner == "taskgroup":
            async with aio.TaskGroup() as tg:
                start(tg)
            outcome = ("results", [t.result() for t in tasks])
        elif runner in ("gather", "gather_exc"):
            start()
            got = await aio.gather(*tasks, return_exceptions=runner == "gather_exc")
            outcome = ("results", [g if isinstance(g, str) else _describe(g) for g in got])
        else:
            start()
            done, pending = await aio.wait(tasks)
            outcome = ("wait", len(done), len(pending))
    except BaseException as exc:  # noqa: BLE001 - the outcome is what we compare
        outcome = ("raised", _describe(exc))
    for task in tasks:  # let stragglers (gather's first-error case) finish
        if not task.done():
            task.cancel()
    if tasks:
        await aio.wait(tasks)
    states = []
    for task in tasks:
        if task.cancelled():
            states.append("cancelled")
        elif task.exception() is not None:
            states.append(_describe(task.exception()))
        else:
            states.append("ok")
    return {"logs": logs, "outcome": outcome, "states": states}


def _run(aio: Any, spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = aio.run(_interpret(aio, spec))
    return result


@settings(max_examples=EXAMPLES, deadline=None)
@given(program)
def test_task_api_agrees_with_asyncio(spec: dict[str, Any]) -> None:
    expected = _run(asyncio, spec)
    got = _run(sansloop.compat, spec)
    assert got == expected
