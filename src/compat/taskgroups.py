"""``asyncio.TaskGroup`` on any asyncio-shaped loop and task.

Contract (asyncio 3.11-3.13; where those differ, the running interpreter's):
- ``async with TaskGroup() as tg`` binds the group to the running task (the
  *parent*); ``tg.create_task(coro, name=, context=)`` starts children on the
  parent's loop. Leaving the block waits for every child.
- The first child failing with an exception other than CancelledError aborts
  the group: the other children are cancelled, and the parent is cancelled
  once (so the body stops at its current await); that cancellation is ours,
  taken back with ``uncancel()`` on exit. When the body or a child fails, exit
  raises ``BaseExceptionGroup("unhandled errors in a TaskGroup", errors)``;
  SystemExit and KeyboardInterrupt are re-raised as they are.
- A cancellation coming from outside (the parent cancelled by someone else)
  cancels the children and propagates as CancelledError, unless errors take
  priority. On 3.13+, when errors win over an outside cancellation, the parent
  is uncancelled and re-cancelled, so its ``cancelling()`` count stays as the
  outside world set it; on 3.11/3.12 our own request is taken back before
  waiting for the children, as those versions do.
- ``create_task`` refuses (RuntimeError) before entry, after the group
  finished, and while it is shutting down; 3.13+ also closes the refused
  coroutine, 3.11/3.12 leave that to the caller.

The group holds only callbacks and a waiter future: no clock, no threads.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio.exceptions import CancelledError
from collections.abc import Coroutine
from contextvars import Context
from types import TracebackType
from typing import Any, TypeVar

from .registry import current_task

__all__ = ["TaskGroup"]

T = TypeVar("T")

# 3.13 keeps an outside cancel request counted when errors win (gh-116720).
_STABLE_OUTSIDE_CANCELS = sys.version_info >= (3, 13)
# 3.13 closes the coroutine create_task() refuses; before, the caller must.
_CLOSE_REFUSED_COROUTINES = sys.version_info >= (3, 13)


def _is_base_error(exc: BaseException) -> bool:
    """Errors that end the program's normal flow: re-raised bare, never grouped."""
    return isinstance(exc, (SystemExit, KeyboardInterrupt))


def _is_cancellation(exc_type: type[BaseException] | None) -> bool:
    """Whether the body ended with a cancellation, as this Python's asyncio decides it."""
    if exc_type is None:
        return False
    if _STABLE_OUTSIDE_CANCELS:
        return issubclass(exc_type, CancelledError)
    return exc_type is CancelledError


class TaskGroup:
    """Asynchronous context manager running a group of tasks to completion.

    Example::

        async with TaskGroup() as tg:
            tg.create_task(fetch(a))
            tg.create_task(fetch(b))
        # both are done here

    If a task fails, the rest are cancelled and the errors are raised together
    as an ExceptionGroup when the block exits.
    """

    def __init__(self) -> None:
        self._entered = False
        self._exiting = False
        self._aborting = False
        self._loop: Any = None
        self._parent_task: Any = None
        self._parent_cancel_requested = False
        self._tasks: dict[Any, None] = {}  # ordered set: cancel in creation order
        self._errors: list[BaseException] | None = []
        self._base_error: BaseException | None = None
        self._children_done: Any = None  # the future __aexit__ waits on

    def __repr__(self) -> str:
        if self._aborting:
            phase = "cancelling"
        else:
            phase = "entered" if self._entered else ""
        words = (
            f"tasks={len(self._tasks)}" if self._tasks else "",
            f"errors={len(self._errors)}" if self._errors else "",
            phase,
        )
        return "<TaskGroup" + "".join(f" {w}" for w in words if w) + ">"

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has already been entered")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        parent = current_task(self._loop)
        if parent is None:
            raise RuntimeError(f"TaskGroup {self!r} cannot determine the parent task")
        self._parent_task = parent
        self._entered = True
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exiting = True
        if exc is not None and _is_base_error(exc) and self._base_error is None:
            self._base_error = exc

        # The cancellation to re-raise at the end, if nothing more important.
        cancellation = exc if _is_cancellation(et) else None
        if not _STABLE_OUTSIDE_CANCELS and self._take_back_our_cancel():
            cancellation = None

        if et is not None and not self._aborting:
            # The body failed or the parent is being cancelled: stop the children.
            self._abort()

        outside_cancel = await self._wait_for_children()
        if outside_cancel is not None:
            cancellation = outside_cancel

        if self._base_error is not None:
            raise self._base_error
        if _STABLE_OUTSIDE_CANCELS and self._take_back_our_cancel():
            cancellation = None

        errors = self._errors
        assert errors is not None
        if cancellation is not None and not errors:
            raise cancellation
        if et is not None and not _is_cancellation(et):
            assert exc is not None
            errors.append(exc)
        if not errors:
            return
        if _STABLE_OUTSIDE_CANCELS and self._parent_task.cancelling():
            # Errors win over the outside cancellation, but the outside
            # request stays counted for the code above us.
            self._parent_task.uncancel()
            self._parent_task.cancel()
        self._errors = None  # do not keep the exceptions (and their frames) alive
        group = BaseExceptionGroup("unhandled errors in a TaskGroup", errors)
        del errors
        try:
            raise group from None
        finally:
            del group

    def _take_back_our_cancel(self) -> bool:
        """Undo the parent cancellation we asked for; True if it was the only one."""
        if not self._parent_cancel_requested:
            return False
        remaining: int = self._parent_task.uncancel()
        return remaining == 0

    async def _wait_for_children(self) -> BaseException | None:
        """Wait until every child is done; the CancelledError of an outside cancel, if any.

        The parent may be cancelled while we wait, even several times: each
        time the children are cancelled (once) and we wait again.
        """
        outside_cancel: BaseException | None = None
        while self._tasks:
            self._children_done = self._loop.create_future()
            try:
                await self._children_done
            except CancelledError as cancel:
                if not self._aborting:
                    outside_cancel = cancel
                    self._abort()
            finally:
                self._children_done = None
        return outside_cancel

    def _refusal(self) -> str | None:
        """Why create_task() must refuse now, or None."""
        if not self._entered:
            return "has not been entered"
        if self._exiting and not self._tasks:
            return "is finished"
        if self._aborting:
            return "is shutting down"
        return None

    def create_task(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> Any:
        """Start *coro* as a task of this group and return the task."""
        refusal = self._refusal()
        if refusal is not None:
            if _CLOSE_REFUSED_COROUTINES:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} {refusal}")
        options: dict[str, Any] = {"name": name}
        if context is not None:
            options["context"] = context
        task = self._loop.create_task(coro, **options)
        if not task.done():
            self._tasks[task] = None
            task.add_done_callback(self._on_task_done)
        else:
            self._on_task_done(task)  # it finished eagerly: no callback needed
        return task

    def _abort(self) -> None:
        """Cancel every unfinished child; from now on the group refuses new tasks."""
        self._aborting = True
        for task in self._tasks:
            if not task.done():
                task.cancel()

    def _on_task_done(self, task: Any) -> None:
        self._tasks.pop(task, None)
        waiter = self._children_done
        if not self._tasks and waiter is not None and not waiter.done():
            waiter.set_result(True)
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            self._child_failed(task, failure)

    def _child_failed(self, task: Any, failure: BaseException) -> None:
        assert self._errors is not None
        self._errors.append(failure)
        if _is_base_error(failure) and self._base_error is None:
            self._base_error = failure
        parent = self._parent_task
        if parent.done():
            self._loop.call_exception_handler(
                {
                    "message": f"Task {task!r} has errored out but its parent "
                    f"task {parent} is already completed",
                    "exception": failure,
                    "task": task,
                }
            )
            return
        if self._aborting or self._parent_cancel_requested:
            return
        # First failure: stop the siblings, and the body at its current
        # await; __aexit__ takes this cancellation back with uncancel().
        self._abort()
        self._parent_cancel_requested = True
        parent.cancel()
