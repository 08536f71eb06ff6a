"""The asyncio task functions, gathered in one namespace.

This module defines ``sleep``, ``create_task``, ``wait``, ``wait_for`` and the
``return_when`` constants, and re-exports the rest of the task API from the
modules that hold it: ``gather``/``shield`` (gathering), ``as_completed``
(completion), ``ensure_future`` (ensure), ``current_task``/``all_tasks``
(registry), ``wrap_future``/``run_coroutine_threadsafe`` (futures_bridge), the
predicates (coroutines).

Every function works with any asyncio-compatible loop and future: it asks the
loop for futures (``loop.create_future()``) and tasks (``loop.create_task()``)
and only uses the public Future/Task methods. On a sansloop loop in full mode
the objects are sansloop's own; on a stdlib loop they are asyncio's.

Behaviour (names, signatures, exceptions and messages) is asyncio's:
- ``sleep``: ``sleep(0)`` (or a negative delay) is one bare yield to the loop;
  a NaN delay raises ValueError as on 3.13, on every version (docs/compat.md,
  difference #2: 3.11/3.12 schedule a NaN timer).
- ``wait``: the three ``return_when`` modes; coroutines are rejected
  (TypeError), an empty collection or iterator is a ValueError. The
  awaitables are taken in argument order (never a set's hash order), so a run
  under the simulated backend replays exactly.
- ``wait_for``: the 3.12 semantics on every version (docs/compat.md #4): a
  timeout of ``None`` waits forever, ``<= 0`` cancels at once, otherwise
  ``timeout()`` does the job and the awaitable runs in the caller's task.
- ``create_task(coro, *, name=None, context=None)`` on the running loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import types
from asyncio.exceptions import CancelledError
from collections.abc import Coroutine, Generator, Iterable
from contextvars import Context
from typing import Any, TypeVar

from . import timeouts
from .completion import as_completed
from .coroutines import iscoroutine, iscoroutinefunction, isfuture
from .ensure import ensure_future, ordered_unique, wake
from .futures_bridge import run_coroutine_threadsafe, wrap_future
from .gathering import gather, shield
from .registry import all_tasks, current_task

__all__ = [
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
    "sleep",
    "gather",
    "wait",
    "wait_for",
    "shield",
    "as_completed",
    "ensure_future",
    "create_task",
    "current_task",
    "all_tasks",
    "run_coroutine_threadsafe",
    "wrap_future",
    "isfuture",
    "iscoroutine",
    "iscoroutinefunction",
]

T = TypeVar("T")

FIRST_COMPLETED = concurrent.futures.FIRST_COMPLETED
FIRST_EXCEPTION = concurrent.futures.FIRST_EXCEPTION
ALL_COMPLETED = concurrent.futures.ALL_COMPLETED
_RETURN_WHEN = (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED)


# ---------------------------------------------------------------- sleep


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    """Give the loop one turn: a bare yield, which a task treats as "run me soon"."""
    yield


def _resolve_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


async def sleep(delay: float, result: T = None) -> T:  # type: ignore[assignment]
    """Coroutine that completes after *delay* seconds, returning *result*."""
    if math.isnan(delay):
        # On every version, as the loop refuses NaN timers (docs/compat.md #2).
        raise ValueError("Invalid delay: NaN (not a number)")
    if delay <= 0:
        await _yield_once()
        return result
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    timer = loop.call_later(delay, _resolve_unless_cancelled, fut, result)
    try:
        woken: T = await fut
    finally:
        timer.cancel()
    return woken


# ---------------------------------------------------------------- create_task


def create_task(
    coro: Coroutine[Any, Any, T], *, name: str | None = None, context: Context | None = None
) -> Any:
    """Schedule *coro* as a task on the running loop and return the task."""
    loop = asyncio.get_running_loop()
    if context is not None:
        return loop.create_task(coro, name=name, context=context)
    # Without a context, call as before 3.11, which every loop understands.
    return loop.create_task(coro, name=name)


# ---------------------------------------------------------------- wait / wait_for


async def wait(
    fs: Iterable[Any], *, timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> tuple[set[Any], set[Any]]:
    """Wait for the futures/tasks in *fs*; return the sets ``(done, pending)``.

    Never raises TimeoutError: what is unfinished at the timeout is pending.
    """
    if isfuture(fs) or iscoroutine(fs):
        raise TypeError(f"expect a list of futures, not {type(fs).__name__}")
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"Invalid return_when value: {return_when}")
    futs = ordered_unique(fs)
    if not futs:
        # An empty iterator passes the check above; waiting on nothing would
        # never end (asyncio trips an internal assert here).
        raise ValueError("Set of Tasks/Futures is empty.")
    if any(iscoroutine(f) for f in futs):
        raise TypeError("Passing coroutines is forbidden, use tasks explicitly.")
    loop = asyncio.get_running_loop()
    return await _wait(futs, timeout, return_when, loop)


async def _wait(
    futs: list[Any], timeout: float | None, return_when: str, loop: Any
) -> tuple[set[Any], set[Any]]:
    """wait() proper, for a non-empty list of distinct futures."""
    waiter = loop.create_future()
    timer = None if timeout is None else loop.call_later(timeout, wake, waiter)
    remaining = len(futs)

    def on_done(fut: Any) -> None:
        nonlocal remaining
        remaining -= 1
        if (
            remaining <= 0
            or return_when == FIRST_COMPLETED
            or (
                return_when == FIRST_EXCEPTION
                and not fut.cancelled()
                and fut.exception() is not None
            )
        ):
            wake(waiter)

    try:
        for fut in futs:
            fut.add_done_callback(on_done)
        await waiter
    finally:
        _stop_waiting(futs, on_done, timer)
    done: set[Any] = set()
    pending: set[Any] = set()
    for fut in futs:
        (done if fut.done() else pending).add(fut)
    return done, pending


def _stop_waiting(futs: list[Any], callback: Any, timer: Any) -> None:
    """Undo what _wait() set up: the timer and the done callbacks."""
    if timer is not None:
        timer.cancel()
    for fut in futs:
        fut.remove_done_callback(callback)


async def _cancel_and_wait(fut: Any) -> None:
    """Cancel *fut* and wait until it has finished, staying cancellable ourselves.

    We wait on a separate future rather than on *fut*: cancelling us must not
    be mistaken for (or get lost in) *fut*'s own cancellation.
    """
    waiter = asyncio.get_running_loop().create_future()

    def on_done(_: Any) -> None:
        wake(waiter)

    fut.add_done_callback(on_done)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(on_done)


async def wait_for(fut: Any, timeout: float | None) -> Any:
    """Wait for one awaitable with a timeout; cancel it and raise TimeoutError on expiry.

    If the wait itself is cancelled, the awaitable is cancelled too. If the
    awaitable suppresses the cancellation and returns a value, that value is
    returned.
    """
    if timeout is None or timeout > 0:
        async with timeouts.timeout(timeout):
            return await fut
    # The deadline has passed already: the awaitable does not get to run.
    task = ensure_future(fut)
    finished_before = task.done()
    if not finished_before:
        await _cancel_and_wait(task)
    try:
        return task.result()
    except CancelledError as exc:
        if finished_before:
            raise  # it was cancelled by someone else, not timed out
        raise TimeoutError from exc
