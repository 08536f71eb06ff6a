"""``asyncio.timeout()``, ``timeout_at()`` and ``Timeout``, on any asyncio-shaped loop.

A Timeout is a small state machine around one task:

    created --enter--> active --deadline--> expiring --exit--> expired
                         \\--exit--> finished

- *enter* binds the running task and arms a timer at the deadline (a deadline
  already past fires on the next loop turn; ``None`` never fires).
- *deadline* cancels the task once (edge-triggered) and records that the
  cancellation is ours.
- *exit* from ``expiring`` calls ``task.uncancel()``; when that brings the
  task's cancel count back to what it was at entry, nobody else asked for a
  cancellation and the CancelledError becomes TimeoutError (``raise
  TimeoutError from CancelledError``). On 3.13+ an exception other than
  CancelledError escaping the block (an ExceptionGroup from a TaskGroup, say)
  gets a TimeoutError spliced into its context chain instead, as asyncio 3.13
  does; on 3.11/3.12 only CancelledError is converted.

``when()`` reads the deadline; ``reschedule(when)`` moves it while active
(RuntimeError in any other state, with asyncio's messages); ``expired()`` is
true once the deadline has fired. States, messages and repr are asyncio's.
The loop's clock is the only time source (``loop.time()``).
"""

from __future__ import annotations

import asyncio
import enum
import sys
from asyncio.exceptions import CancelledError
from types import TracebackType
from typing import Any, final

from .registry import current_task

__all__ = ["Timeout", "timeout", "timeout_at"]

# 3.13 also converts cancellation buried in the context of another exception.
_SPLICE_INTO_OTHER_ERRORS = sys.version_info >= (3, 13)


class _State(enum.Enum):
    """The states; each value is the word asyncio shows in reprs and messages."""

    CREATED = "created"
    ACTIVE = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    FINISHED = "finished"


_FIRED = frozenset({_State.EXPIRING, _State.EXPIRED})


def _arm(loop: Any, when: float, callback: Any) -> Any:
    """A timer handle running *callback* at *when*; a past deadline fires next turn."""
    if when > loop.time():
        return loop.call_at(when, callback)
    return loop.call_soon(callback)


@final
class Timeout:
    """Asynchronous context manager that cancels its block at a deadline.

    Make one with ``timeout()`` or ``timeout_at()``. ``when`` is a time on the
    loop's clock (``loop.time()``), or None for no deadline.
    """

    def __init__(self, when: float | None) -> None:
        self._state = _State.CREATED
        self._when = when
        self._timer: Any = None
        self._task: Any = None
        self._cancelling_at_entry = 0

    def when(self) -> float | None:
        """The current deadline, on the loop's clock (None: no deadline)."""
        return self._when

    def reschedule(self, when: float | None) -> None:
        """Move the deadline to *when* (None removes it); only while active."""
        state = self._state
        if state is _State.CREATED:
            raise RuntimeError("Timeout has not been entered")
        if state is not _State.ACTIVE:
            raise RuntimeError(f"Cannot change state of {state.value} Timeout")
        self._disarm()
        self._when = when
        if when is not None:
            self._timer = _arm(asyncio.get_running_loop(), when, self._on_deadline)

    def expired(self) -> bool:
        """True once the deadline has fired (the block was cancelled by us)."""
        return self._state in _FIRED

    def __repr__(self) -> str:
        label = self._state.value
        if self._state is not _State.ACTIVE:
            return f"<Timeout [{label}]>"
        deadline = self._when if self._when is None else round(self._when, 3)
        return f"<Timeout [{label}] when={deadline}>"

    async def __aenter__(self) -> Timeout:
        if self._state is not _State.CREATED:
            raise RuntimeError("Timeout has already been entered")
        task = current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._state = _State.ACTIVE
        self._task = task
        self._cancelling_at_entry = task.cancelling()
        self.reschedule(self._when)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        assert self._state in (_State.ACTIVE, _State.EXPIRING), self._state
        self._disarm()
        if self._state is _State.ACTIVE:
            self._state = _State.FINISHED
            return None
        self._state = _State.EXPIRED
        ours_only = self._task.uncancel() <= self._cancelling_at_entry
        if not ours_only or exc_type is None:
            return None
        if not _SPLICE_INTO_OTHER_ERRORS:
            # 3.11/3.12 convert exactly CancelledError, nothing else.
            if exc_type is CancelledError:
                raise TimeoutError from exc_val
            return None
        if issubclass(exc_type, CancelledError):
            raise TimeoutError from exc_val
        if exc_val is not None:
            _splice_timeout_error(exc_val)
            if isinstance(exc_val, BaseExceptionGroup):
                for inner in exc_val.exceptions:
                    _splice_timeout_error(inner)
        return None

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        assert self._state is _State.ACTIVE, self._state
        self._task.cancel()
        self._state = _State.EXPIRING
        self._timer = None


def _splice_timeout_error(exc: BaseException) -> None:
    """Put a TimeoutError between *exc*'s chain and the first CancelledError in it.

    Code that raised another exception while handling our cancellation then
    shows "TimeoutError" as the cause in its traceback, as on asyncio 3.13.
    """
    node = exc
    while node.__context__ is not None:
        context = node.__context__
        if isinstance(context, CancelledError):
            marker = TimeoutError()
            marker.__context__ = marker.__cause__ = context
            node.__context__ = marker
            return
        node = context


def timeout(delay: float | None) -> Timeout:
    """A Timeout expiring *delay* seconds from now (None: never)."""
    loop = asyncio.get_running_loop()
    return Timeout(None if delay is None else loop.time() + delay)


def timeout_at(when: float | None) -> Timeout:
    """A Timeout expiring at *when* on the loop's clock (None: never)."""
    return Timeout(when)
