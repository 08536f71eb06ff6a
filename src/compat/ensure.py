"""How an awaitable becomes a future, and the small helpers the combinators share.

Contract:
- ``ensure_future(obj, *, loop=None)``: a future (or task) is returned as is
  (ValueError if *loop* is given and is not its loop); a coroutine becomes a
  task of *loop* (default: the running loop, else the current loop as
  ``asyncio.get_event_loop()`` defines it); any other awaitable is wrapped in
  a coroutine first; anything else is a TypeError. If the loop refuses the
  task (closed), the coroutine is closed and the RuntimeError propagates.
- ``current_loop()``, ``wake()``, ``cancelled_error_of()``,
  ``ordered_unique()``: helpers of gather/wait/as_completed (see each).
"""

from __future__ import annotations

import asyncio
import inspect
from asyncio.exceptions import CancelledError
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from .coroutines import future_loop, iscoroutine, isfuture

__all__ = ["ensure_future"]

T = TypeVar("T")


def current_loop() -> Any:
    """The running loop, else the current loop as get_event_loop() defines it."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


def cancelled_error_of(fut: Any) -> CancelledError:
    """The CancelledError a cancelled *fut* raises (it carries the cancel message)."""
    try:
        fut.result()
    except CancelledError as exc:
        return exc
    raise AssertionError(f"{fut!r} is not cancelled")  # our bug if reached


def wake(waiter: Any, *_: Any) -> None:
    """Resolve *waiter* with None unless it is already done."""
    if not waiter.done():
        waiter.set_result(None)


def ordered_unique(items: Iterable[Any]) -> list[Any]:
    """The distinct items in first-seen order (a set, without hash order)."""
    return list(dict.fromkeys(items))


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
        loop = current_loop()
    try:
        return loop.create_task(coro)
    except RuntimeError:
        coro.close()
        raise
