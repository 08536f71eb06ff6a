"""Task: a coroutine driven step by step on a loop, with asyncio.Task's behaviour.

Contract
--------
A Task is a Future (futures.py) whose result is the coroutine's. Each *step*
sends None (or throws an exception) into the coroutine, inside the task's
``contextvars.Context``, with the task registered as its loop's current task.
What the coroutine yields decides what happens next:

- a future following the awaiting protocol (ours, stdlib asyncio's, a duck):
  the task adds a done callback and sleeps until it fires, then steps again
  with the future's result (or throws its exception). The future must belong
  to the same loop, and a task may not await itself;
- None (a bare ``yield``): step again on the next loop iteration (sleep(0));
- anything else: step again, throwing asyncio's RuntimeError about it.

Returning ends the task with the value; raising ends it with the exception;
CancelledError ends it cancelled.

Cancellation (3.11-3.13 semantics): ``cancel(msg)`` counts a request
(``cancelling()``) and cancels the future the task waits on, or, when there
is none or it refuses, marks ``_must_cancel`` so that the next step throws
CancelledError(msg) in (and cancels any future yielded before that).
``uncancel()`` takes one request back; from 3.13 reaching zero also drops a
``_must_cancel`` not yet delivered. The version rules follow the running
interpreter.

Eager start (3.12 semantics, offered on every version): with
``eager_start=True`` and a running loop, the first step runs synchronously
inside the constructor; a task that finishes there is never scheduled.

The loop is an opaque owner: ``call_soon(cb, *args, context=)``,
``get_debug()``, ``call_exception_handler(ctx)`` and ``is_running()`` (eager
start only). Nothing here reads a clock or touches the OS.
"""

from __future__ import annotations

import collections.abc
import contextvars
import itertools
import reprlib
import sys
from asyncio.exceptions import CancelledError, InvalidStateError
from collections.abc import Callable, Coroutine, Generator
from types import CoroutineType, FrameType, GeneratorType, GenericAlias
from typing import Any, TextIO, TypeVar

from . import binding, taskregistry
from .coroinfo import coroutine_stack, format_coroutine, print_coroutine_stack
from .formatting import extract_stack
from .futures import _FINISHED, _PENDING, Future, get_future_loop
from .taskregistry import (
    _current_tasks,
    _forget,
    _ref,
    _register_eager_task,
    _register_task,
    _scheduled_tasks,
    _swap_current_task,
    _unregister_eager_task,
)

__all__ = [
    "Task",
    "iscoroutine",
    "eager_task_factory",
    "create_eager_task_factory",
    "share_current_task_table",
]


def share_current_task_table(table: dict[Any, Any]) -> None:
    """Keep "which task runs on which loop" in *table* from now on.

    Whoever embeds core may hand over another implementation's table so that
    both agree on the current task: ``sansloop.compat`` passes stdlib
    asyncio's own (the dict its C tasks use on 3.11-3.13), so that
    ``asyncio.current_task()`` -- and with it ``asyncio.timeout()`` in a
    library -- sees our tasks, and our registry sees stdlib's. Only allowed
    while no task is running anywhere.
    """
    global _current_tasks
    if table is _current_tasks:
        return
    if _current_tasks:
        raise RuntimeError("cannot switch the current-task table while a task is running")
    _current_tasks = table
    taskregistry._current_tasks = table


_T = TypeVar("_T")

# 3.12 stopped accepting plain generators as coroutines.
if sys.version_info >= (3, 12):
    _COROUTINE_TYPES: tuple[type, ...] = (CoroutineType, collections.abc.Coroutine)
else:
    _COROUTINE_TYPES = (CoroutineType, GeneratorType, collections.abc.Coroutine)
# 3.13: uncancel() reaching zero also withdraws an undelivered _must_cancel.
_UNCANCEL_CLEARS_MUST_CANCEL = sys.version_info >= (3, 13)

_coroutine_types_seen: set[type] = {CoroutineType}
_next_task_number = itertools.count(1).__next__
_copy_context = contextvars.copy_context
_getframe = sys._getframe
_Future_cancel = Future.cancel
_Future_set_exception = Future.set_exception
_Future_del = Future.__del__


def iscoroutine(obj: object) -> bool:
    """True for what a Task accepts as a coroutine (asyncio's rule for this Python)."""
    cls = type(obj)
    if cls in _coroutine_types_seen:
        return True
    if isinstance(obj, _COROUTINE_TYPES):
        if len(_coroutine_types_seen) < 100:  # bounded, against adversarial types
            _coroutine_types_seen.add(cls)
        return True
    return False


class Task(Future[_T]):
    """A coroutine wrapped in a Future; ``asyncio.Task``'s API."""

    __slots__ = (
        "_coro",
        "_context",
        "_name",
        "_fut_waiter",
        "_must_cancel",
        "_num_cancels_requested",
        "_log_destroy_pending",
    )

    def __init__(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        loop: Any = None,
        name: object = None,
        context: contextvars.Context | None = None,
        eager_start: bool = False,
    ) -> None:
        """Wrap *coro* and schedule its first step on *loop* (or run it now if eager)."""
        if loop is None:
            loop = binding.get_event_loop()
        # The Future part, set inline (one call less on the hottest path).
        self._loop = loop
        # A task that never starts must not complain about being pending.
        self._log_destroy_pending = False
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._exception_tb = None
        self._cancel_message = None
        self._cancelled_exc = None
        self._asyncio_future_blocking = False
        self._cb0 = None
        self._ctx0 = None
        self._cbs = None
        self._log_tb = False
        if loop.get_debug():
            self._source_traceback = extract_stack(_getframe(1))
        else:
            self._source_traceback = None
        self._coro: Any = coro
        self._fut_waiter: Any = None
        self._must_cancel = False
        self._num_cancels_requested = 0
        # An int until someone asks: "Task-N" is formatted on demand.
        self._name: str | int = _next_task_number() if name is None else str(name)
        self._context = _copy_context() if context is None else context
        if type(coro) not in _coroutine_types_seen and not iscoroutine(coro):
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        self._log_destroy_pending = True
        if eager_start and loop.is_running():
            self.__eager_start()
        else:
            loop.call_soon(self.__step, context=self._context)
            _scheduled_tasks[_ref(self, _forget)] = None  # _register_task(self), inlined

    __class_getitem__ = classmethod(GenericAlias)  # type: ignore[var-annotated]

    # -- introspection ---------------------------------------------------

    def get_coro(self) -> Any:
        """Return the wrapped coroutine (None once an eager task finished at creation)."""
        return self._coro

    def get_context(self) -> contextvars.Context:
        """Return the context the coroutine runs in."""
        return self._context

    def get_name(self) -> str:
        """Return the task's name (``Task-N`` unless one was given)."""
        name = self._name
        if type(name) is int:
            name = self._name = f"Task-{name}"
        return name  # type: ignore[return-value]

    def set_name(self, value: object) -> None:
        """Rename the task (any value, turned into a str)."""
        self._name = str(value)

    def get_stack(self, *, limit: int | None = None) -> list[FrameType]:
        """Return the frames of the coroutine: its suspended stack, or the
        traceback of the exception that ended it; oldest first."""
        return coroutine_stack(self._coro, self._exception, limit)

    def print_stack(self, *, limit: int | None = None, file: TextIO | None = None) -> None:
        """Print ``get_stack(limit=limit)`` to *file* (stderr by default)."""
        frames = self.get_stack(limit=limit)
        print_coroutine_stack(self, frames, self._exception, file)

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        if self.cancelling() and not self.done():
            info[0] = "cancelling"
        info.insert(1, f"name={self.get_name()!r}")
        if self._fut_waiter is not None:
            info.insert(2, f"wait_for={self._fut_waiter!r}")
        if self._coro is not None:
            info.insert(2, f"coro=<{format_coroutine(self._coro)}>")
        return info

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {' '.join(self._repr_info())}>"

    # -- the Future API a task refuses -------------------------------------

    def set_result(self, result: Any) -> None:
        """Refused: a task's result is its coroutine's return value."""
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        """Refused: a task's exception is the one its coroutine raises."""
        raise RuntimeError("Task does not support set_exception operation")

    # -- cancellation ------------------------------------------------------

    def cancel(self, msg: Any = None) -> bool:
        """Request that the task be cancelled; False if it is already done.

        CancelledError(msg) is thrown into the coroutine at its next step (or
        the future it waits on is cancelled); the coroutine may catch it. Each
        call counts one request in ``cancelling()``.
        """
        self._log_tb = False
        if self._state is not _PENDING:
            return False
        self._num_cancels_requested += 1
        waiter = self._fut_waiter
        if waiter is not None and waiter.cancel(msg):
            # The waiter may be a task that ignores it: keep _fut_waiter so
            # that a later cancel() reaches it again.
            return True
        self._must_cancel = True
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        """Return the number of pending cancellation requests."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Take back one cancellation request; return how many remain."""
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if _UNCANCEL_CLEARS_MUST_CANCEL and self._num_cancels_requested == 0:
                self._must_cancel = False
        return self._num_cancels_requested

    # -- stepping ----------------------------------------------------------

    def __eager_start(self) -> None:
        loop = self._loop
        previous = _swap_current_task(loop, self)
        try:
            _register_eager_task(self)
            try:
                self._context.run(self.__run_step, None)
            finally:
                _unregister_eager_task(self)
        finally:
            try:
                current = _swap_current_task(loop, previous)
                if current is not self:
                    raise RuntimeError(f"Eager task {self!r} found {current!r} as the current task")
            finally:
                if self._state is not _PENDING:
                    self._coro = None
                else:
                    _register_task(self)
                self = current = None  # type: ignore[assignment]  # as in __step

    def __step(self, exc: BaseException | None = None) -> None:
        if self._state is not _PENDING:
            raise InvalidStateError(f"_step(): already done: {self!r}, {exc!r}")
        if self._must_cancel:
            if not isinstance(exc, CancelledError):
                exc = self._make_cancelled_error()
            self._must_cancel = False
        self._fut_waiter = None
        loop = self._loop
        current = _current_tasks.setdefault(loop, self)
        if current is not self:
            raise RuntimeError(
                f"Cannot enter into task {self!r} while another task {current!r} is being executed."
            )
        try:
            self.__run_step(exc)
        finally:
            current = _current_tasks.pop(loop, None)
            if current is not self:
                if current is not None:
                    _current_tasks[loop] = current
                raise RuntimeError(
                    f"Leaving task {self!r} does not match the current task {current!r}."
                )
            # A traceback holding this frame must not keep the task alive,
            # nor the exception thrown in (its traceback holds this frame).
            self = current = exc = None  # type: ignore[assignment]

    def __run_step(self, exc: BaseException | None) -> None:
        coro = self._coro
        try:
            if exc is None:
                result = coro.send(None)
            else:
                result = coro.throw(exc)
        except StopIteration as stop:
            if self._must_cancel:
                # Cancelled while finishing: the cancellation wins.
                self._must_cancel = False
                _Future_cancel(self, msg=self._cancel_message)
            else:
                self._result = stop.value
                self._state = _FINISHED
                fn = self._cb0
                if fn is not None and self._cbs is None:
                    # One callback (the usual awaiter): _schedule_callbacks inlined.
                    ctx = self._ctx0
                    self._cb0 = self._ctx0 = None
                    self._loop.call_soon(fn, self, context=ctx)
                elif fn is not None or self._cbs is not None:
                    self._schedule_callbacks()
        except CancelledError as cancelled:
            # Handed out by _make_cancelled_error(), so that result() shows
            # where the coroutine was interrupted.
            self._cancelled_exc = cancelled
            _Future_cancel(self)
        except (KeyboardInterrupt, SystemExit) as fatal:
            _Future_set_exception(self, fatal)
            raise
        except BaseException as error:
            _Future_set_exception(self, error)
        else:
            cls = type(result)
            if (
                (cls is Future or cls is Task)
                and result._asyncio_future_blocking
                and result._loop is self._loop
                and result is not self
            ):
                # The hot path: one of our own futures, awaited properly.
                result._asyncio_future_blocking = False
                if result._state is _PENDING and result._cb0 is None and result._cbs is None:
                    result._cb0 = self.__wakeup
                    result._ctx0 = self._context
                else:
                    result.add_done_callback(self.__wakeup, context=self._context)
                self._fut_waiter = result
                if self._must_cancel and result.cancel(self._cancel_message):
                    self._must_cancel = False
            elif result is None:
                # A bare yield: let the loop run one iteration.
                self._loop.call_soon(self.__step, context=self._context)
            else:
                self.__handle_yield(result)
        finally:
            # The exception's traceback holds this frame: break the cycle
            # through it, so an unreferenced task dies (and reports) at once.
            self = exc = None  # type: ignore[assignment]

    def __handle_yield(self, result: Any) -> None:
        # Foreign futures, and every misuse (the common cases are inlined above).
        loop = self._loop
        cls = type(result)
        if cls is Future or cls is Task:
            blocking = result._asyncio_future_blocking
            result_loop = result._loop
        else:
            blocking = getattr(result, "_asyncio_future_blocking", None)
            if blocking is None:
                if result is None:
                    # A bare yield: let the loop run one iteration.
                    loop.call_soon(self.__step, context=self._context)
                elif isinstance(result, GeneratorType):
                    self.__fail_step(
                        RuntimeError(
                            f"yield was used instead of yield from for generator "
                            f"in task {self!r} with {result!r}"
                        )
                    )
                else:
                    self.__fail_step(RuntimeError(f"Task got bad yield: {result!r}"))
                return
            result_loop = get_future_loop(result)
        if result_loop is not loop:
            self.__fail_step(
                RuntimeError(f"Task {self!r} got Future {result!r} attached to a different loop")
            )
        elif not blocking:
            self.__fail_step(
                RuntimeError(
                    f"yield was used instead of yield from in task {self!r} with {result!r}"
                )
            )
        elif result is self:
            self.__fail_step(RuntimeError(f"Task cannot await on itself: {self!r}"))
        else:
            result._asyncio_future_blocking = False
            result.add_done_callback(self.__wakeup, context=self._context)
            self._fut_waiter = result
            if self._must_cancel and result.cancel(self._cancel_message):
                self._must_cancel = False

    def __fail_step(self, exc: BaseException) -> None:
        # Misuse is reported by throwing into the coroutine on the next step.
        self._loop.call_soon(self.__step, exc, context=self._context)

    def __wakeup(self, future: Any) -> None:
        cls = type(future)
        error: BaseException | None
        if (cls is Future or cls is Task) and future._state is _FINISHED:
            # Our own future: read it without raising and catching.
            error = future._exception
            future._log_tb = False
            if error is not None:
                error = error.with_traceback(future._exception_tb)
        else:
            try:
                future.result()  # A cancelled future raises CancelledError here.
            except BaseException as caught:
                error = caught
            else:
                error = None
        self.__step(error)
        self = error = None  # type: ignore[assignment]  # as in __run_step

    # -- error reporting ---------------------------------------------------

    def __del__(self) -> None:
        try:
            state = self._state
        except AttributeError:  # __init__ failed before it began
            return
        if state is _PENDING:
            if self._log_destroy_pending:
                context: dict[str, Any] = {
                    "task": self,
                    "message": "Task was destroyed but it is pending!",
                }
                if self._source_traceback:
                    context["source_traceback"] = self._source_traceback
                self._loop.call_exception_handler(context)
        elif self._log_tb:
            _Future_del(self)  # "Task exception was never retrieved"


def create_eager_task_factory(
    custom_task_constructor: Callable[..., Any],
) -> Callable[..., Any]:
    """Return a task factory (for ``loop.set_task_factory``) that starts tasks eagerly.

    Tasks are built with ``custom_task_constructor(coro, loop=, name=,
    context=, eager_start=True)``.
    """

    def factory(loop: Any, coro: Any, *, name: object = None, context: Any = None) -> Any:
        return custom_task_constructor(
            coro, loop=loop, name=name, context=context, eager_start=True
        )

    return factory


#: A task factory running the first step of each new Task synchronously.
eager_task_factory = create_eager_task_factory(Task)
