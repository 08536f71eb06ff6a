"""Parking tasks: the FIFO of waiter futures and the loop those futures come from.

Every synchronization primitive in core (Lock, Event, Condition, Semaphore,
Barrier, Queue) does the same two things when it cannot answer at once:

1. it asks the loop it is bound to for a fresh future (``loop.create_future()``
   is the *only* loop method core calls here), and
2. it parks that future in a FIFO and later resolves the oldest eligible one.

``LoopBound`` is (1): asyncio's lazy binding rule. A primitive is created with no
loop; the first operation that needs a future binds it to the running loop (found
through ``sansloop.core.binding``), and using it from another loop afterwards is
a RuntimeError ``"<Lock ...> is bound to a different event loop"``. Operations
that never park (an uncontended ``acquire()``, ``Event.set()``) never bind.

``WaiterQueue`` is (2): a FIFO with O(1) append, O(1) removal of any waiter (a
cancelled waiter leaves from the middle) and O(1) access to the head; empty, it
costs a small dict. It only
looks at a waiter through ``done()``, ``cancelled()`` and ``set_result()``, so
any asyncio-compatible future works (ours, the stdlib's, a test double). It
never schedules anything itself: resolving a future is what makes its task run.

The waking helpers name the fairness policies the primitives need:

* ``wake_first``: wake the head only, and only if it is not already resolved
  (Lock: one pending hand-off at a time).
* ``wake_next``: wake the oldest waiter that is still pending (Semaphore).
* ``wake_many``/``wake_all``: the oldest *n*/all pending waiters (Condition, Event).
* ``pop_next``: drop waiters from the head until one pending waiter has been
  woken and removed (Queue: a woken getter/putter is no longer parked).

Invariants: a waiter is parked at most once; iteration is in arrival order (never
hash order), so runs replay exactly. Nothing here reads a clock or touches a
thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from typing import Any, Protocol

from . import binding

__all__ = ["Waiter", "WaiterQueue", "LoopBound"]


class Waiter(Protocol):
    """What core needs from a parked future (asyncio.Future satisfies it).

    Waiters are also keys of a dict, so they must hash and compare by identity
    (the default for objects; asyncio's and sansloop's futures do).
    """

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def cancel(self, msg: Any | None = None) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def __await__(self) -> Generator[Any, None, Any]: ...


class WaiterQueue(OrderedDict[Waiter, None]):
    """A FIFO of parked waiters with O(1) append, removal and head access.

    It is an ``OrderedDict`` from waiter to None (arrival order is insertion
    order, removal from the middle is O(1)), so that ``len()``, truth and
    membership tests -- asked on every acquire and release -- run at C speed.
    The primitives' hot paths also park with ``queue[waiter] = None`` and
    unpark with ``queue.pop(waiter, None)``, the C-speed forms of ``append``
    (minus its double-park check) and ``discard``; otherwise use the methods.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<WaiterQueue parked={len(self)} pending={self.pending()}>"

    def append(self, waiter: Waiter) -> None:
        """Park *waiter* at the tail."""
        if waiter in self:
            raise ValueError("waiter is already parked")
        self[waiter] = None

    def remove(self, waiter: Waiter) -> None:
        """Unpark *waiter*; ValueError if it is not parked."""
        if not self.discard(waiter):
            raise ValueError("waiter is not parked")

    def discard(self, waiter: Waiter) -> bool:
        """Unpark *waiter* if it is parked; return whether it was."""
        if waiter in self:
            del self[waiter]
            return True
        return False

    def first(self) -> Waiter | None:
        """The head of the queue (resolved or not), or None when empty."""
        return next(iter(self), None)

    def popleft(self) -> Waiter:
        """Remove and return the head; IndexError when empty."""
        if not self:
            raise IndexError("pop from an empty WaiterQueue")
        return self.popitem(last=False)[0]

    # -- questions -----------------------------------------------------------

    def pending(self) -> int:
        """How many parked waiters are not resolved yet."""
        return sum(1 for waiter in self if not waiter.done())

    def all_cancelled(self) -> bool:
        """True when every parked waiter (possibly none) has been cancelled."""
        return all(waiter.cancelled() for waiter in self)

    def statistics(self) -> dict[str, int]:
        """``parked`` waiters, of which ``pending`` unresolved and ``cancelled``."""
        cancelled = sum(1 for waiter in self if waiter.cancelled())
        return {"parked": len(self), "pending": self.pending(), "cancelled": cancelled}

    # -- waking --------------------------------------------------------------

    def wake_first(self, result: Any) -> bool:
        """Resolve the head with *result* unless it is already resolved.

        Only the head is considered: a resolved head is a hand-off already in
        flight, and its owner will pass the turn on if it gives up.
        """
        head = next(iter(self), None)
        if head is None or head.done():
            return False
        head.set_result(result)
        return True

    def wake_next(self, result: Any) -> Waiter | None:
        """Resolve the oldest pending waiter with *result*; return it (or None)."""
        for waiter in self:
            if not waiter.done():
                waiter.set_result(result)
                return waiter
        return None

    def wake_many(self, n: int, result: Any) -> int:
        """Resolve up to *n* of the oldest pending waiters; return how many."""
        woken = 0
        if n <= 0:
            return woken
        for waiter in self:
            if not waiter.done():
                waiter.set_result(result)
                woken += 1
                if woken >= n:
                    break
        return woken

    def wake_all(self, result: Any) -> int:
        """Resolve every pending waiter with *result*; return how many."""
        woken = 0
        for waiter in self:
            if not waiter.done():
                waiter.set_result(result)
                woken += 1
        return woken

    def pop_next(self, result: Any) -> bool:
        """Unpark waiters from the head until a pending one is woken with *result*.

        Resolved waiters met on the way (cancelled ones) are dropped. Returns
        whether somebody was woken.
        """
        while self:
            waiter = self.popitem(last=False)[0]
            if not waiter.done():
                waiter.set_result(result)
                return True
        return False

    def pop_all(self, result: Any) -> int:
        """Unpark everybody, waking the pending ones with *result*; return how many woke."""
        woken = 0
        while self:
            waiter = self.popitem(last=False)[0]
            if not waiter.done():
                waiter.set_result(result)
                woken += 1
        return woken


class LoopBound:
    """asyncio's lazy loop binding for primitives that park futures.

    ``_loop`` is None until the first ``_get_loop()``; it is a plain attribute so
    that callers (and asyncio's own tests) may pre-bind an object. Instances are
    weak-referenceable, as asyncio's are (per-key lock caches rely on it).
    """

    __slots__ = ("_loop", "__weakref__")

    _loop: Any

    def _get_loop(self) -> Any:
        """The running loop, binding to it on first use."""
        loop = binding.get_running_loop()
        bound = self._loop
        if bound is None:
            self._loop = loop
        elif bound is not loop:
            raise RuntimeError(f"{self!r} is bound to a different event loop")
        return loop
