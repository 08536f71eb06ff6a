"""Callback handles: one scheduled call of ``callback(*args)`` in a context.

Contract
--------
A ``Handle`` is what ``call_soon`` returns; a ``TimerHandle`` is what
``call_later``/``call_at`` return. Both mirror ``asyncio.Handle`` /
``asyncio.TimerHandle``: ``cancel()``, ``cancelled()``, ``get_context()``,
``when()`` (timers only), ordering and equality of timers by deadline, and
asyncio's ``repr``.

States: pending -> (ran | cancelled). Running a cancelled handle is the
scheduler's job to skip; the handle itself never re-arms.

A handle knows its ``loop`` only as an opaque owner with two duties:
``call_exception_handler(context)`` (for an exception escaping the callback)
and, for timers, ``_timer_handle_cancelled(handle)`` (so the scheduler can
count lazily-cancelled timers and compact its heap). Nothing here reads a
clock or touches the OS.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from .formatting import format_callback_source

__all__ = ["Handle", "TimerHandle"]


class Handle:
    """A callback scheduled to run once on a loop."""

    __slots__ = (
        "_callback",
        "_args",
        "_cancelled",
        "_loop",
        "_source_traceback",
        "_repr",
        "__weakref__",
        "_context",
    )

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        if context is None:
            context = contextvars.copy_context()
        self._context = context
        self._loop = loop
        self._callback: Callable[..., object] | None = callback
        self._args: tuple[Any, ...] | None = args
        self._cancelled = False
        self._repr: str | None = None
        self._source_traceback: Any = None

    def _repr_info(self) -> list[str]:
        info = [type(self).__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(format_callback_source(self._callback, self._args or ()))
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))

    def get_context(self) -> contextvars.Context:
        """Return the contextvars.Context the callback runs in."""
        return self._context

    def cancel(self) -> None:
        """Cancel the call; a no-op if it already ran or was cancelled."""
        if not self._cancelled:
            self._cancelled = True
            if self._loop is not None and self._loop.get_debug():
                # Keep the description for debugging before dropping references.
                self._repr = repr(self)
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        """Return True if the call was cancelled."""
        return self._cancelled

    def _run(self) -> None:
        try:
            self._context.run(self._callback, *self._args)  # type: ignore[arg-type, misc]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            where = format_callback_source(self._callback, self._args or ())
            context: dict[str, Any] = {
                "message": f"Exception in callback {where}",
                "exception": exc,
                "handle": self,
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)
            # Break the cycle frame -> context -> exception -> traceback -> frame.
            context = None  # type: ignore[assignment]
        finally:
            # A coroutine that ended in an exception keeps this frame as its
            # f_back, and this frame would keep the handle, hence the task:
            # a task whose exception nobody retrieved would then be reported
            # at the next gc pass instead of at once (CPython gh-96704 tests).
            del self


class TimerHandle(Handle):
    """A callback scheduled to run at a loop-time deadline."""

    __slots__ = ("_scheduled", "_when")

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        # Written out rather than calling Handle.__init__: timers are a hot path.
        self._context = contextvars.copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        # True while the handle sits in a scheduler's heap.
        self._scheduled = False

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __hash__(self) -> int:
        return hash(self._when)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when < other._when
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when < other._when or self.__eq__(other)
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when > other._when
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when > other._when or self.__eq__(other)
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return (
                self._when == other._when
                and self._callback == other._callback
                and self._args == other._args
                and self._cancelled == other._cancelled
            )
        return NotImplemented

    def cancel(self) -> None:
        """Cancel the timer; the scheduler drops it lazily."""
        if self._cancelled:
            return
        self._cancelled = True
        loop = self._loop
        if loop is not None:
            loop._timer_handle_cancelled(self)
            if loop.get_debug():
                self._repr = repr(self)
        self._callback = None
        self._args = None

    def when(self) -> float:
        """Return the scheduled deadline, in the loop's time()."""
        return self._when
