"""asyncio's task functions, written against the asyncio-shaped interfaces.

Every function here works with any asyncio-compatible loop and future: it asks
the loop for futures (``loop.create_future()``) and tasks
(``loop.create_task()``), and only uses the public Future/Task methods
(``add_done_callback``, ``cancel(msg)``, ``result()``...). On a sansloop loop in
full mode the objects are sansloop's own; on a stdlib loop they are asyncio's.

Behaviour (names, signatures, exceptions and messages) is asyncio's:
- ``sleep``: ``sleep(0)`` (or a negative delay) is one bare yield to the loop;
  a NaN delay raises ValueError as on 3.13, on every version (docs/compat.md,
  difference #2: 3.11/3.12 schedule a NaN timer).
- ``gather``: results in argument order; ``return_exceptions``; cancelling the
  returned future cancels the children and the future ends with
  CancelledError once they have finished (asyncio's ``_GatheringFuture``).
- ``wait``: the three ``return_when`` modes; coroutines are rejected
  (TypeError), an empty collection is a ValueError.
- ``wait_for``: the 3.12 semantics on every version: a timeout of ``None``
  waits forever, ``<= 0`` cancels at once, otherwise ``timeout()`` does the job
  and the awaitable runs in the caller's task.
- ``shield``, ``ensure_future``, ``create_task``, ``as_completed`` (3.13 form
  on every version: plain iterator of coroutines and async iterator of the
  original futures; it starts at the call on 3.13+, at the first turn on
  3.11/3.12 as asyncio's generator did).

Iteration over the caller's awaitables keeps their order (never a set's hash
order), so a run under the simulated backend replays exactly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import sys
import types
from asyncio.exceptions import CancelledError
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator, Iterable
from contextvars import Context
from typing import Any, TypeVar

from . import timeouts
from .coroutines import (
    future_loop,
    iscoroutine,
    iscoroutinefunction,
    isfuture,
)
from .futures_bridge import run_coroutine_threadsafe, wrap_future
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

# 3.13's as_completed() starts its work at the call; before, at the first turn.
_EAGER_AS_COMPLETED = sys.version_info >= (3, 13)


def _current_loop() -> Any:
    """The running loop, else the current loop as get_event_loop() defines it."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


def _cancelled_error_of(fut: Any) -> CancelledError:
    """The CancelledError a cancelled *fut* raises (it carries the cancel message)."""
    try:
        fut.result()
    except CancelledError as exc:
        return exc
    raise AssertionError(f"{fut!r} is not cancelled")  # our bug if reached


def _wake(waiter: Any, *_: Any) -> None:
    """Resolve *waiter* with None unless it is already done."""
    if not waiter.done():
        waiter.set_result(None)


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


# ---------------------------------------------------------------- ensure_future / create_task


async def _await_awaitable(awaitable: Awaitable[T]) -> T:
    """A coroutine around a non-coroutine awaitable, so a task can run it."""
    return await awaitable


def ensure_future(coro_or_future: Any, *, loop: Any = None) -> Any:
    """Wrap a coroutine or an awaitable in a task; a future is returned as is.

    ValueError if a future is given with a *loop* it does not belong to;
    TypeError for anything that cannot be awaited.
    """
    if isfuture(coro_or_future):
        if loop is not None and loop is not future_loop(coro_or_future):
            raise ValueError(
                "The future belongs to a different loop than the one specified as the loop argument"
            )
        return coro_or_future
    if iscoroutine(coro_or_future):
        coro = coro_or_future
    elif inspect.isawaitable(coro_or_future):
        coro = _await_awaitable(coro_or_future)
    else:
        raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")
    if loop is None:
        loop = _current_loop()
    try:
        return loop.create_task(coro)
    except RuntimeError:
        coro.close()
        raise


def create_task(
    coro: Coroutine[Any, Any, T], *, name: str | None = None, context: Context | None = None
) -> Any:
    """Schedule *coro* as a task on the running loop and return the task."""
    loop = asyncio.get_running_loop()
    if context is not None:
        return loop.create_task(coro, name=name, context=context)
    # Without a context, call as before 3.11, which every loop understands.
    return loop.create_task(coro, name=name)


# ---------------------------------------------------------------- gather


_gathering_classes: dict[type, type] = {}


def _gathering_future_class(base: type) -> type:
    """A subclass of the loop's future class whose cancel() acts like a task's.

    ``gather()`` returns a future of the loop's own kind (a stdlib Future on a
    stdlib loop, ours on ours); cancelling it must cancel the children and let
    the future end only once they have, which is this override.
    """
    cls = _gathering_classes.get(base)
    if cls is None:

        def cancel(self: Any, msg: Any = None) -> bool:
            if self.done():
                return False
            # Every child gets the request: no short-circuit.
            accepted = [child.cancel(msg=msg) for child in self._gather_children]
            if not any(accepted):
                return False
            # The outcome becomes CancelledError even with return_exceptions.
            self._gather_cancel_requested = True
            return True

        cls = type(
            "_GatheringFuture",
            (base,),
            {
                "__doc__": "The future gather() returns; cancel() cancels the children.",
                "__module__": __name__,
                "cancel": cancel,
            },
        )
        _gathering_classes[base] = cls
    return cls


def _child_outcome(child: Any) -> Any:
    """What a finished child contributes to a return_exceptions result list."""
    if child.cancelled():
        args = _cancelled_error_of(child).args
        return CancelledError(args[0] if args else "")
    exc = child.exception()
    return exc if exc is not None else child.result()


class _Gathering:
    """The bookkeeping of one gather() call: the children and the outer future."""

    __slots__ = ("children", "outer", "return_exceptions", "pending")

    def __init__(self, return_exceptions: bool) -> None:
        self.children: list[Any] = []
        self.outer: Any = None
        self.return_exceptions = return_exceptions
        self.pending = 0

    def on_child_done(self, child: Any) -> None:
        self.pending -= 1
        outer = self.outer
        if outer is None or outer.done():
            if not child.cancelled():
                child.exception()  # mark it retrieved: nobody else will look
            return
        if not self.return_exceptions:
            if child.cancelled():
                outer.set_exception(_cancelled_error_of(child))
                return
            exc = child.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
        if self.pending:
            return
        if outer._gather_cancel_requested:
            # gather() was cancelled: that wins even with return_exceptions.
            last = self.children[-1]
            err = _cancelled_error_of(last) if last.cancelled() else CancelledError()
            outer.set_exception(err)
        elif self.return_exceptions:
            outer.set_result([_child_outcome(c) for c in self.children])
        else:
            # Otherwise we would have ended at the first failure: all succeeded.
            outer.set_result([c.result() for c in self.children])


def gather(*coros_or_futures: Any, return_exceptions: bool = False) -> Any:
    """Run the awaitables concurrently; the returned future gives their results.

    Results come in argument order. Without *return_exceptions* the first
    exception (or a child's cancellation, as CancelledError) becomes the
    outcome at once and the other children keep running; with it, exceptions
    are results. All futures must belong to the same loop (ValueError).
    """
    if not coros_or_futures:
        loop = _current_loop()
        outer = loop.create_future()
        outer.set_result([])
        return outer

    state = _Gathering(return_exceptions)
    children = state.children
    on_child_done = state.on_child_done
    seen: dict[Any, Any] = {}
    already_done: list[Any] = []
    loop = None
    for arg in coros_or_futures:
        fut = seen.get(arg)
        if fut is None:
            fut = ensure_future(arg, loop=loop)
            if loop is None:
                loop = future_loop(fut)
            if fut is not arg:
                # A task we made for the caller: its owner is the gather.
                try:
                    fut._log_destroy_pending = False
                except AttributeError:
                    pass  # a future type without that debug flag
            seen[arg] = fut
            if fut.done():
                already_done.append(fut)
            else:
                fut.add_done_callback(on_child_done)
        children.append(fut)
    state.pending = len(seen)

    base = type(loop.create_future())
    outer = _gathering_future_class(base)(loop=loop)
    outer._gather_children = state.children
    outer._gather_cancel_requested = False
    state.outer = outer
    # Children that finished before we could listen (eager tasks, done
    # futures) are accounted now that the outer future exists.
    for fut in already_done:
        state.on_child_done(fut)
    return outer


# ---------------------------------------------------------------- shield


def shield(arg: Any) -> Any:
    """Wait for *arg*, protecting it from the cancellation of the awaiting task.

    Cancelling the returned future does not cancel the inner one; if the inner
    one is cancelled by other means, the returned one is cancelled too.
    """
    inner = ensure_future(arg)
    if inner.done():
        return inner
    outer = future_loop(inner).create_future()

    def inner_done(inner: Any) -> None:
        if outer.cancelled():
            if not inner.cancelled():
                inner.exception()  # mark it retrieved
            return
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def outer_done(outer: Any) -> None:
        if not inner.done():
            inner.remove_done_callback(inner_done)

    inner.add_done_callback(inner_done)
    outer.add_done_callback(outer_done)
    return outer


# ---------------------------------------------------------------- wait / wait_for


def _ordered_unique(items: Iterable[Any]) -> list[Any]:
    """The distinct items in first-seen order (a set, without hash order)."""
    return list(dict.fromkeys(items))


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
    futs = _ordered_unique(fs)
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
    timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
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
            _wake(waiter)

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
        _wake(waiter)

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


# ---------------------------------------------------------------- as_completed


class _AsCompleted:
    """The iterator as_completed() returns: futures in the order they finish.

    Used with ``async for`` it yields the futures themselves (the caller's own
    futures/tasks, or the tasks made for its coroutines). Used with ``for`` it
    yields coroutines that return (or raise) the outcome of the next future to
    finish. On timeout every remaining turn raises TimeoutError.
    """

    def __init__(self, aws: Iterable[Any], timeout: float | None) -> None:
        self._pending_args: tuple[Iterable[Any], float | None] | None = (aws, timeout)
        self._loop: Any = None
        self._finished: deque[Any] = deque()  # finished futures; None = timed out
        self._waiters: list[Any] = []
        self._timer: Any = None
        self._todo: dict[Any, None] = {}  # ordered set of unfinished futures
        self._turns_left = 0

    def _start(self) -> None:
        """Make the futures and listen to them (once; at the call on 3.13+,
        at the first turn of the iteration before, like asyncio's generator)."""
        if self._pending_args is None:
            return
        aws, timeout = self._pending_args
        self._pending_args = None
        if not _EAGER_AS_COMPLETED and (isfuture(aws) or iscoroutine(aws)):
            raise TypeError(f"expect an iterable of futures, not {type(aws).__name__}")
        loop = self._loop = _current_loop()
        todo = [ensure_future(aw, loop=loop) for aw in _ordered_unique(aws)]
        self._todo = dict.fromkeys(todo)
        self._turns_left = len(todo)
        for fut in todo:
            fut.add_done_callback(self._on_done)
        if todo and timeout is not None:
            self._timer = loop.call_later(timeout, self._on_timeout)

    def __iter__(self) -> _AsCompleted:
        return self

    def __aiter__(self) -> _AsCompleted:
        return self

    def __next__(self) -> Coroutine[Any, Any, Any]:
        self._start()
        if not self._turns_left:
            raise StopIteration
        self._turns_left -= 1
        return self._next_result()

    async def __anext__(self) -> Any:
        self._start()
        if not self._turns_left:
            raise StopAsyncIteration
        self._turns_left -= 1
        return await self._next_finished()

    def _on_done(self, fut: Any) -> None:
        if fut not in self._todo:
            return  # the timeout came first
        del self._todo[fut]
        self._push(fut)
        if not self._todo and self._timer is not None:
            self._timer.cancel()

    def _on_timeout(self) -> None:
        for fut in self._todo:
            fut.remove_done_callback(self._on_done)
            self._push(None)
        self._todo.clear()

    def _push(self, item: Any) -> None:
        self._finished.append(item)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _wake(waiter)

    async def _next_finished(self) -> Any:
        while not self._finished:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        fut = self._finished.popleft()
        if fut is None:
            raise TimeoutError
        return fut

    async def _next_result(self) -> Any:
        fut = await self._next_finished()
        return fut.result()


def as_completed(fs: Iterable[Any], *, timeout: float | None = None) -> _AsCompleted:
    """Run the awaitables concurrently and iterate over them as they finish.

    ``async for fut in as_completed(aws)`` yields the finished futures (the
    originals where they were futures); ``for coro in as_completed(aws)``
    yields coroutines to await for the next outcome. TimeoutError is raised
    by the iteration (async form) or the coroutines (plain form) if *timeout*
    expires first.
    """
    iterator = _AsCompleted(fs, timeout)
    if _EAGER_AS_COMPLETED:
        if inspect.isawaitable(fs):
            raise TypeError(f"expects an iterable of awaitables, not {type(fs).__name__}")
        iterator._start()
    return iterator
