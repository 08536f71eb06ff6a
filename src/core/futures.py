"""Future: a result slot that resolves once, with asyncio.Future's behaviour.

Contract
--------
States: ``PENDING`` -> ``FINISHED`` (a result or an exception) or
``PENDING`` -> ``CANCELLED``. The transition happens once; after it,
``set_result``/``set_exception`` raise ``InvalidStateError`` and ``cancel()``
returns False.

Inputs: ``set_result``, ``set_exception``, ``cancel(msg)``,
``add_done_callback(fn, context=)`` and ``remove_done_callback(fn)``.

What it emits: at the transition, every done callback is queued on the loop
with ``loop.call_soon(fn, future, context=ctx)``, in the order they were
added; a callback added after the transition is queued at once. Nothing runs
synchronously inside ``set_result``.

The loop is an opaque owner with three duties, which every asyncio loop
(stdlib ones included) has: ``call_soon(fn, arg, context=)``, ``get_debug()``
(debug mode records the creation stack) and ``call_exception_handler(ctx)``
(for "exception was never retrieved"). ``loop=None`` asks ``binding``.

Awaiting protocol (shared with stdlib asyncio, so futures and tasks of both
kinds await each other): ``__await__`` sets ``_asyncio_future_blocking`` and
yields the future itself to the task driving the coroutine; the task clears
the flag, adds a done callback and resumes the coroutine when it runs.

Exceptions are the stdlib's own (``asyncio.exceptions``), messages are
asyncio's, and so is ``repr``. This module reads no clock and makes no
syscall.
"""

from __future__ import annotations

import contextvars
import reprlib
import sys
from asyncio.exceptions import CancelledError, InvalidStateError
from collections.abc import Callable, Generator
from types import GenericAlias
from typing import Any, Generic, TypeVar

from . import binding
from .formatting import extract_stack, format_callback_source

__all__ = ["Future", "isfuture", "get_future_loop", "future_repr_info"]

_T = TypeVar("_T")

# asyncio's state names: they show in reprs and in InvalidStateError messages.
_PENDING = "PENDING"
_CANCELLED = "CANCELLED"
_FINISHED = "FINISHED"

# 3.13 turned "StopIteration set on a future" from a TypeError into a
# RuntimeError chained to it; follow the running interpreter.
_STOPITERATION_TO_RUNTIMEERROR = sys.version_info >= (3, 13)

_copy_context = contextvars.copy_context
_getframe = sys._getframe


def isfuture(obj: object) -> bool:
    """True for objects following the awaiting protocol (asyncio's rule).

    The class must declare ``_asyncio_future_blocking`` and the instance must
    not have it set to None: stdlib futures, ours and duck-typed ones.
    """
    return (
        hasattr(obj.__class__, "_asyncio_future_blocking")
        and obj._asyncio_future_blocking is not None  # type: ignore[attr-defined]
    )


def get_future_loop(fut: Any) -> Any:
    """The loop *fut* is bound to: ``get_loop()`` if it has one, else ``_loop``."""
    cls = type(fut)
    if cls is Future:
        return fut._loop
    try:
        get_loop = fut.get_loop
    except AttributeError:
        return fut._loop
    return get_loop()


def _describe_callbacks(callbacks: list[tuple[Callable[..., object], contextvars.Context]]) -> str:
    names = [format_callback_source(fn, ()) for fn, _ in callbacks]
    if len(names) > 2:
        names = [names[0], f"<{len(names) - 2} more>", names[-1]]
    return "cb=[" + ", ".join(names) + "]"


def future_repr_info(fut: Any) -> list[str]:
    """The words of a future's repr after its class name, as asyncio writes them."""
    state = fut._state
    info = [state.lower()]
    if state == _FINISHED:
        if fut._exception is not None:
            info.append(f"exception={fut._exception!r}")
        else:
            # reprlib keeps a huge result from flooding a log line.
            info.append(f"result={reprlib.repr(fut._result)}")
    callbacks = fut._callbacks
    if callbacks:
        info.append(_describe_callbacks(callbacks))
    if fut._source_traceback:
        frame = fut._source_traceback[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    return info


class Future(Generic[_T]):
    """The result of an operation that completes later; ``asyncio.Future``'s API.

    Not thread-safe: resolve it from its loop's thread (or through
    ``loop.call_soon_threadsafe``).
    """

    __slots__ = (
        "_state",
        "_result",
        "_exception",
        "_exception_tb",
        "_loop",
        "_source_traceback",
        "_cancel_message",
        "_cancelled_exc",
        "_asyncio_future_blocking",
        # The first done callback and its context live in two slots, the
        # others in a list made on demand: most futures get exactly one.
        "_cb0",
        "_ctx0",
        "_cbs",
        # True while a set exception has not been looked at.
        "_log_tb",
        "__weakref__",
    )

    def __init__(self, *, loop: Any = None) -> None:
        """Make a pending future bound to *loop* (``binding.get_event_loop()`` if None)."""
        if loop is None:
            loop = binding.get_event_loop()
        self._loop = loop
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._exception_tb: Any = None
        self._cancel_message: Any = None
        self._cancelled_exc: CancelledError | None = None
        self._asyncio_future_blocking = False
        self._cb0: Callable[[Any], object] | None = None
        self._ctx0: contextvars.Context | None = None
        self._cbs: list[tuple[Callable[[Any], object], contextvars.Context]] | None = None
        self._log_tb = False
        if loop.get_debug():
            self._source_traceback: Any = extract_stack(_getframe(1))
        else:
            self._source_traceback = None

    __class_getitem__ = classmethod(GenericAlias)  # type: ignore[var-annotated]

    # -- the awaiting protocol -------------------------------------------

    def __await__(self) -> Generator[Any, None, _T]:
        """Suspend the awaiting task until the future is done; return its result."""
        if self._state is _PENDING:
            self._asyncio_future_blocking = True
            yield self  # The driving task sees this future and waits for it.
            if self._state is _PENDING:
                raise RuntimeError("await wasn't used with future")
        if self._exception is None and self._state is _FINISHED:
            return self._result  # type: ignore[no-any-return]  # result(), inlined
        return self.result()

    __iter__ = __await__  # ``yield from future`` in generator-based coroutines.

    # -- queries ---------------------------------------------------------

    def get_loop(self) -> Any:
        """Return the event loop the future is bound to."""
        try:
            loop = self._loop
        except AttributeError:
            loop = None
        if loop is None:
            raise RuntimeError("Future object is not initialized.")
        return loop

    def done(self) -> bool:
        """True once the future has a result, an exception, or was cancelled."""
        try:
            return self._state is not _PENDING
        except AttributeError:  # __init__ was skipped
            return False

    def cancelled(self) -> bool:
        """True if the future was cancelled."""
        try:
            return self._state is _CANCELLED
        except AttributeError:  # __init__ was skipped
            return False

    def result(self) -> _T:
        """Return the result, or raise the exception set or CancelledError.

        InvalidStateError while the future is pending.
        """
        try:
            state = self._state
        except AttributeError:  # __init__ was skipped
            state = _PENDING
        if state is _FINISHED:
            self._log_tb = False
            exc = self._exception
            if exc is not None:
                # The stored traceback, so that each raise starts afresh.
                raise exc.with_traceback(self._exception_tb)
            return self._result  # type: ignore[no-any-return]
        if state is _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Result is not ready.")

    def exception(self) -> BaseException | None:
        """Return the exception set (None after a result); CancelledError if cancelled.

        InvalidStateError while the future is pending.
        """
        try:
            state = self._state
        except AttributeError:  # __init__ was skipped
            state = _PENDING
        if state is _FINISHED:
            self._log_tb = False
            return self._exception
        if state is _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Exception is not set.")

    # -- transitions -----------------------------------------------------

    def set_result(self, result: _T) -> None:
        """Resolve the future with *result*; InvalidStateError if already done."""
        if self._state is not _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        self._result = result
        self._state = _FINISHED
        fn = self._cb0
        if fn is not None and self._cbs is None:
            # One callback (the usual awaiting task): _schedule_callbacks inlined.
            ctx = self._ctx0
            self._cb0 = self._ctx0 = None
            self._loop.call_soon(fn, self, context=ctx)
        elif fn is not None or self._cbs is not None:
            self._schedule_callbacks()

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """Resolve the future with *exception* (a class is instantiated).

        InvalidStateError if already done. StopIteration cannot travel through
        a future (it would end the awaiting generator): TypeError up to 3.12, a
        RuntimeError chained to it from 3.13, as asyncio does.
        """
        if self._state is not _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        if isinstance(exception, type) and issubclass(exception, BaseException):
            exception = exception()
        if not isinstance(exception, BaseException):
            raise TypeError("invalid exception object")
        if _STOPITERATION_TO_RUNTIMEERROR:
            if isinstance(exception, StopIteration):
                wrapped = RuntimeError(
                    "StopIteration interacts badly with generators "
                    "and cannot be raised into a Future"
                )
                wrapped.__cause__ = wrapped.__context__ = exception
                exception = wrapped
        elif type(exception) is StopIteration:
            raise TypeError(
                "StopIteration interacts badly with generators and cannot be raised into a Future"
            )
        self._exception = exception
        self._exception_tb = exception.__traceback__
        self._state = _FINISHED
        if self._cb0 is not None or self._cbs is not None:
            self._schedule_callbacks()
        self._log_tb = True

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the future and queue its callbacks; False if already done."""
        self._log_tb = False
        if self._state is not _PENDING:
            return False
        self._state = _CANCELLED
        self._cancel_message = msg
        if self._cb0 is not None or self._cbs is not None:
            self._schedule_callbacks()
        return True

    def _make_cancelled_error(self) -> CancelledError:
        """The CancelledError to raise for this cancelled future.

        The one a cancelled task caught is handed out once (so tracebacks
        show where the task was interrupted); after that, a fresh one
        carrying the cancel message.
        """
        exc = self._cancelled_exc
        if exc is not None:
            self._cancelled_exc = None
            return exc
        msg = self._cancel_message
        return CancelledError() if msg is None else CancelledError(msg)

    # -- done callbacks --------------------------------------------------

    def _schedule_callbacks(self) -> None:
        call_soon = self._loop.call_soon
        fn = self._cb0
        if fn is not None:
            ctx = self._ctx0
            self._cb0 = self._ctx0 = None
            call_soon(fn, self, context=ctx)
        callbacks = self._cbs
        if callbacks is not None:
            self._cbs = None
            for fn, ctx in callbacks:
                call_soon(fn, self, context=ctx)

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``fn(future)`` through the loop once the future is done.

        It runs in *context* (a copy of the current context by default).
        """
        if self._state is not _PENDING:
            self._loop.call_soon(fn, self, context=context)
            return
        if context is None:
            context = _copy_context()
        if self._cbs is not None:
            self._cbs.append((fn, context))
        elif self._cb0 is None:
            self._cb0 = fn
            self._ctx0 = context
        else:
            self._cbs = [(fn, context)]

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        """Remove every registration of *fn*; return how many were removed."""
        removed = 0
        first = self._cb0
        if first is not None and not (first != fn):
            self._cb0 = self._ctx0 = None
            removed = 1
        callbacks = self._cbs
        if callbacks is not None:
            # Comparisons may run user code that adds or removes callbacks:
            # iterate the list as it stands and replace it, never edit it.
            kept = [(f, ctx) for f, ctx in callbacks if f != fn]
            dropped = len(callbacks) - len(kept)
            if dropped:
                self._cbs = kept or None
                removed += dropped
        return removed

    @property
    def _callbacks(self) -> list[tuple[Callable[[Any], object], contextvars.Context]] | None:
        """The pending ``(callback, context)`` pairs in call order, or None."""
        callbacks = []
        if self._cb0 is not None:
            callbacks.append((self._cb0, self._ctx0))
        if self._cbs is not None:
            callbacks.extend(self._cbs)
        return callbacks or None  # type: ignore[return-value]

    # -- error reporting -------------------------------------------------

    @property
    def _log_traceback(self) -> bool:
        """True while an exception was set and nobody has looked at it yet."""
        return self._log_tb

    @_log_traceback.setter
    def _log_traceback(self, value: bool) -> None:
        if value:
            raise ValueError("_log_traceback can only be set to False")
        self._log_tb = False

    def __del__(self) -> None:
        try:
            if not self._log_tb:
                return
        except AttributeError:  # __init__ was skipped
            return
        context: dict[str, Any] = {
            "message": f"{self.__class__.__name__} exception was never retrieved",
            "exception": self._exception,
            "future": self,
        }
        if self._source_traceback:
            context["source_traceback"] = self._source_traceback
        self._loop.call_exception_handler(context)

    def _repr_info(self) -> list[str]:
        return future_repr_info(self)

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {' '.join(self._repr_info())}>"
