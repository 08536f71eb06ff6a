"""Lock, Event, Condition, Semaphore and BoundedSemaphore as waiter machines.

Each primitive is asyncio's (same names, signatures, reprs, exceptions and
messages, 3.11-3.13 behaviour with the later fairness fixes) built on the two
pieces of ``sansloop.core.waiters``: a lazily bound loop that makes futures, and
a FIFO of parked futures. Nothing else of the loop is touched; nothing here
reads a clock or blocks.

State and inputs, per primitive:

* Lock: ``locked`` plus the FIFO. ``acquire`` takes a free lock at once only if
  nobody is queued (or all queued waiters are cancelled) -- strict FIFO, no
  barging. ``release`` frees the lock and resolves the head waiter; the head
  takes the lock when its task runs. A head that is cancelled after being woken
  passes the turn to the next waiter, so a release is never lost.
* Event: a flag plus the FIFO; ``set`` resolves every parked waiter.
* Condition: a lock (its own or a given one) plus the FIFO. ``wait`` releases
  the lock, parks, and always re-takes the lock before returning or raising,
  even when cancelled meanwhile (the latest CancelledError is re-raised once
  the lock is held). A waiter leaving with an exception hands its notification
  on to the next waiter (a possible spurious wake-up, which the protocol allows).
* Semaphore: a counter plus the FIFO. A waiter woken by ``release`` has its unit
  reserved (the counter is decremented at wake time), so late arrivals cannot
  overtake it; a woken waiter that is cancelled gives its unit back; whoever
  leaves ``acquire`` wakes as many waiters as there are free units.

Fast paths: an uncontended acquire/wait creates no future and does not bind the
primitive to a loop.

``statistics()`` returns an immutable snapshot for tests and monitoring.
"""

from __future__ import annotations

from asyncio.exceptions import CancelledError
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

from .waiters import LoopBound, WaiterQueue

__all__ = [
    "Lock",
    "Event",
    "Condition",
    "Semaphore",
    "BoundedSemaphore",
    "LockStatistics",
    "EventStatistics",
    "ConditionStatistics",
    "SemaphoreStatistics",
]

_T = TypeVar("_T")


def _describe(obj: object, extra: str) -> str:
    """asyncio's repr shape: ``<module.Class object at 0x... [extra]>``."""
    return f"<{object.__repr__(obj)[1:-1]} [{extra}]>"


def _with_waiters(extra: str, waiters: Any) -> str:
    count = len(waiters) if waiters else 0
    return f"{extra}, waiters:{count}" if count else extra


class _AsyncLockContext:
    """``async with primitive:`` acquires on entry (binding nothing) and releases on exit."""

    __slots__ = ()

    async def acquire(self) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> None:
        await self.acquire()
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


# ---------------------------------------------------------------------------
# Lock


class LockStatistics(NamedTuple):
    """Snapshot of a Lock: whether it is held and how many tasks are parked on it."""

    locked: bool
    waiters: int


class Lock(_AsyncLockContext, LoopBound):
    """A mutual-exclusion lock not owned by any task, granted in FIFO order.

    ``acquire()`` returns True once the lock is held; ``release()`` frees it and
    lets the longest-waiting task take it. Releasing an unlocked lock raises
    ``RuntimeError('Lock is not acquired.')``. Use it as ``async with lock:``.
    """

    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._loop = None
        self._locked = False
        self._waiters = WaiterQueue()

    def __repr__(self) -> str:
        extra = "locked" if self._locked else "unlocked"
        return _describe(self, _with_waiters(extra, self._waiters))

    def locked(self) -> bool:
        """Return True if the lock is held."""
        return self._locked

    async def acquire(self) -> Literal[True]:
        """Wait until the lock is free and it is this task's turn, then take it.

        Returns True. Cancelled while waiting: the lock is not taken, and if the
        lock had already been handed to this task the turn goes to the next one.
        """
        waiters = self._waiters
        if not self._locked and (not waiters or waiters.all_cancelled()):
            self._locked = True
            return True

        waiter = self._get_loop().create_future()
        waiters[waiter] = None
        try:
            try:
                await waiter
            finally:
                waiters.pop(waiter, None)
        except CancelledError:
            # Our hand-off (if any) is void: make sure the next task is told.
            if not self._locked:
                waiters.wake_first(True)
            raise
        self._locked = True
        return True

    def release(self) -> None:
        """Free the lock and wake the task at the head of the queue.

        RuntimeError('Lock is not acquired.') when the lock is not held.
        """
        if not self._locked:
            raise RuntimeError("Lock is not acquired.")
        self._locked = False
        waiters = self._waiters
        if waiters:
            waiters.wake_first(True)

    def statistics(self) -> LockStatistics:
        """Return ``LockStatistics(locked, waiters)``."""
        return LockStatistics(self._locked, len(self._waiters))


# ---------------------------------------------------------------------------
# Event


class EventStatistics(NamedTuple):
    """Snapshot of an Event: its flag and how many tasks wait for it."""

    is_set: bool
    waiters: int


class Event(LoopBound):
    """A flag tasks can wait for, like threading.Event.

    ``set()`` wakes every waiting task; ``wait()`` returns True at once while the
    flag is set; ``clear()`` lowers the flag again.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._loop = None
        self._value = False
        self._waiters = WaiterQueue()

    def __repr__(self) -> str:
        extra = "set" if self._value else "unset"
        return _describe(self, _with_waiters(extra, self._waiters))

    def is_set(self) -> bool:
        """Return True if the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag and wake every task waiting for it."""
        if not self._value:
            self._value = True
            waiters = self._waiters
            if waiters:
                waiters.wake_all(True)

    def clear(self) -> None:
        """Lower the flag; later ``wait()`` calls block until the next ``set()``."""
        self._value = False

    async def wait(self) -> Literal[True]:
        """Return True once the flag is set (immediately if it already is)."""
        if self._value:
            return True
        waiters = self._waiters
        waiter = self._get_loop().create_future()
        waiters[waiter] = None
        try:
            await waiter
        finally:
            waiters.pop(waiter, None)
        return True

    def statistics(self) -> EventStatistics:
        """Return ``EventStatistics(is_set, waiters)``."""
        return EventStatistics(self._value, len(self._waiters))


# ---------------------------------------------------------------------------
# Condition


class _LockLike(Protocol):
    def locked(self) -> bool: ...

    def acquire(self) -> Awaitable[Any]: ...

    def release(self) -> None: ...


class ConditionStatistics(NamedTuple):
    """Snapshot of a Condition: its lock's state and the tasks waiting to be notified."""

    locked: bool
    waiters: int


class Condition(_AsyncLockContext, LoopBound):
    """A condition variable over a lock, like threading.Condition.

    ``Condition()`` makes its own Lock; ``Condition(lock)`` shares one.
    ``locked()``, ``acquire()`` and ``release()`` are the lock's.
    """

    __slots__ = ("_lock", "_waiters")

    def __init__(self, lock: _LockLike | None = None) -> None:
        self._loop = None
        self._lock: _LockLike = Lock() if lock is None else lock
        self._waiters = WaiterQueue()

    def __repr__(self) -> str:
        extra = "locked" if self._lock.locked() else "unlocked"
        return _describe(self, _with_waiters(extra, self._waiters))

    def locked(self) -> bool:
        """Return True if the underlying lock is held."""
        return self._lock.locked()

    async def acquire(self) -> Any:
        """Acquire the underlying lock; return what its ``acquire()`` returns (True)."""
        return await self._lock.acquire()

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    async def __aenter__(self) -> None:
        await self._lock.acquire()  # one coroutine frame fewer than via acquire()
        return None

    async def wait(self) -> Literal[True]:
        """Release the lock, wait to be notified, re-take the lock; return True.

        RuntimeError('cannot wait on un-acquired lock') if the lock is not held.
        The lock is held again when this returns *or raises*. Wake-ups may be
        spurious: re-check the awaited state (``wait_for`` does).
        """
        if not self._lock.locked():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiters = self._waiters
        waiter = self._get_loop().create_future()
        self._lock.release()
        try:
            waiters[waiter] = None
            try:
                await waiter
            finally:
                waiters.pop(waiter, None)
                await self._take_back_lock()
        except BaseException:
            # We may have consumed a notification: pass it on.
            waiters.wake_many(1, False)
            raise
        return True

    async def _take_back_lock(self) -> None:
        """Re-acquire the lock whatever happens; re-raise the last cancellation after."""
        interrupted: CancelledError | None = None
        while True:
            try:
                await self._lock.acquire()
            except CancelledError as exc:
                interrupted = exc
            else:
                break
        if interrupted is not None:
            try:
                raise interrupted
            finally:
                interrupted = None

    async def wait_for(self, predicate: Callable[[], _T]) -> _T:
        """``wait()`` until ``predicate()`` is true; return its last value."""
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to *n* waiting tasks (they run once they re-take the lock).

        RuntimeError('cannot notify on un-acquired lock') if the lock is not held.
        """
        if not self._lock.locked():
            raise RuntimeError("cannot notify on un-acquired lock")
        self._waiters.wake_many(n, False)

    def notify_all(self) -> None:
        """Wake every waiting task; same rules as ``notify()``."""
        self.notify(len(self._waiters))

    def statistics(self) -> ConditionStatistics:
        """Return ``ConditionStatistics(locked, waiters)``."""
        return ConditionStatistics(self._lock.locked(), len(self._waiters))


# ---------------------------------------------------------------------------
# Semaphore


class SemaphoreStatistics(NamedTuple):
    """Snapshot of a Semaphore: free units, parked tasks, and the bound if any."""

    value: int
    waiters: int
    bound: int | None


class Semaphore(_AsyncLockContext, LoopBound):
    """A counter of free units; ``acquire()`` takes one, ``release()`` returns one.

    Units go to waiting tasks in FIFO order: while anybody is queued, a new
    ``acquire()`` queues too even if units are free. ``Semaphore(value)`` with a
    negative value raises ValueError.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        self._loop = None
        self._value = value
        self._waiters = WaiterQueue()

    def __repr__(self) -> str:
        extra = "locked" if self.locked() else f"unlocked, value:{self._value}"
        return _describe(self, _with_waiters(extra, self._waiters))

    def locked(self) -> bool:
        """Return True if ``acquire()`` would not succeed immediately."""
        if self._value == 0:
            return True
        waiters = self._waiters
        return bool(waiters) and not waiters.all_cancelled()

    async def acquire(self) -> Literal[True]:
        """Take a unit, waiting for one (in FIFO order) if none is free; return True."""
        waiters = self._waiters
        if self._value > 0 and (not waiters or waiters.all_cancelled()):
            self._value -= 1
            return True

        waiter = self._get_loop().create_future()
        waiters[waiter] = None
        try:
            try:
                await waiter
            finally:
                waiters.pop(waiter, None)
        except CancelledError:
            if waiter.done() and not waiter.cancelled():
                # A unit was reserved for us by _wake_next(); give it back.
                self._value += 1
            raise
        finally:
            # Units may be free while tasks queue behind us: hand them out.
            while self._value > 0 and self._wake_next():
                pass
        return True

    def release(self) -> None:
        """Return a unit and wake the next waiting task, if any."""
        self._value += 1
        if self._waiters:
            self._wake_next()

    def _wake_next(self) -> bool:
        """Reserve a unit for the oldest pending waiter and wake it."""
        if self._waiters.wake_next(True) is None:
            return False
        self._value -= 1
        return True

    def statistics(self) -> SemaphoreStatistics:
        """Return ``SemaphoreStatistics(value, waiters, bound)`` (bound None if unbounded)."""
        return SemaphoreStatistics(self._value, len(self._waiters), None)


class BoundedSemaphore(Semaphore):
    """A Semaphore whose ``release()`` refuses to go above the initial value.

    Over-releasing raises ValueError('BoundedSemaphore released too many times').
    """

    __slots__ = ("_bound_value",)

    def __init__(self, value: int = 1) -> None:
        self._bound_value = value
        super().__init__(value)

    def release(self) -> None:
        """Return a unit; ValueError if all units are already free."""
        if self._value >= self._bound_value:
            raise ValueError("BoundedSemaphore released too many times")
        super().release()

    def statistics(self) -> SemaphoreStatistics:
        """Return ``SemaphoreStatistics(value, waiters, bound)``."""
        return SemaphoreStatistics(self._value, len(self._waiters), self._bound_value)
