"""``as_completed()``: iterate over awaitables in the order they finish.

Contract (asyncio 3.13's, on every version):
- ``for coro in as_completed(aws, timeout=None)`` yields coroutines; awaiting
  the n-th gives the result (or raises the exception) of the n-th awaitable to
  finish.
- ``async for fut in as_completed(aws)`` yields the finished futures
  themselves: the caller's own futures and tasks, or the tasks made for its
  coroutines.
- On *timeout* every remaining turn raises TimeoutError; the unfinished
  awaitables are left running.
- A single future or coroutine instead of an iterable is a TypeError. On 3.13+
  the work (making tasks, arming the timer) starts at the call; on 3.11/3.12
  at the first turn, as asyncio's generator did there.

Several consumers may wait at once (gather over the yielded coroutines): each
finished future is handed to exactly one of them, first come first served.
"""

from __future__ import annotations

import inspect
import sys
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any

from .coroutines import iscoroutine, isfuture
from .ensure import current_loop, ensure_future, ordered_unique, wake

__all__ = ["as_completed"]

# 3.13's as_completed() starts its work at the call; before, at the first turn.
_EAGER_AS_COMPLETED = sys.version_info >= (3, 13)


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
        loop = self._loop = current_loop()
        todo = [ensure_future(aw, loop=loop) for aw in ordered_unique(aws)]
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
            wake(waiter)

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
