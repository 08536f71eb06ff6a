"""The scheduler: a FIFO ready queue and a heap of timers.

Contract
--------
Inputs:  ``call(handle)`` (ready now), ``add_timer(timer)``, ``timer_cancelled(timer)``,
         ``now`` given by the caller to ``timeout(now)`` and ``release_due(deadline)``.
Outputs: ``timeout(now)`` answers "how long may the backend block": 0 when work
         is ready, the time to the earliest live timer, or None (block until I/O).
         ``run_ready()`` runs exactly the callbacks that were ready when it began
         (callbacks they schedule wait for the next tick, as asyncio does).

Invariants:
- ``ready`` is FIFO; cancelled handles stay in it and are skipped when reached.
- Timers leave the heap in deadline order, ties in scheduling order (a sequence
  number breaks ties, so equal deadlines never compare handles).
- Cancelled timers are dropped lazily: from the top of the heap at once, and all
  together (one O(n) rebuild) once they are more than half of a heap of more
  than ``COMPACT_MIN_TIMERS`` entries, so cancel-heavy code does not grow the heap.

What it does not know: the clock (``now`` is always passed in), the OS, threads.
``ready`` is a ``collections.deque`` so that another thread may ``append`` to it
(``call_soon_threadsafe``) while the loop thread pops from the other end.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from .handles import Handle, TimerHandle

__all__ = ["Scheduler", "COMPACT_MIN_TIMERS", "COMPACT_CANCELLED_FRACTION"]

#: Heaps smaller than this are never rebuilt (popping cancelled heads is enough).
COMPACT_MIN_TIMERS = 100
#: release_due() pops at least this many timers one by one before it considers
#: partitioning the heap instead ...
BULK_RELEASE_MIN = 32
#: ... which it does once it has popped 1/BULK_RELEASE_DIVISOR of the heap.
BULK_RELEASE_DIVISOR = 16
#: ... and only if at least 1/BULK_RELEASE_DUE_DIVISOR of the heap is due: the
#: partition costs two passes over the whole heap, popping ~log2(n) per timer.
BULK_RELEASE_DUE_DIVISOR = 2
#: Rebuild the heap when more than this fraction of it is cancelled timers.
COMPACT_CANCELLED_FRACTION = 0.5


def _due_at_least(
    timers: list[tuple[float, int, TimerHandle]], deadline: float, count: int
) -> bool:
    """Whether at least *count* heap entries are due before *deadline*.

    The due entries of a heap form a subtree at its root (a parent is never
    later than its children), so a walk of that subtree finds them, and stops
    after *count*: the cost is O(min(due, count)), never a pass over the heap.
    """
    size = len(timers)
    stack = [0]
    found = 0
    while stack:
        i = stack.pop()
        if timers[i][0] < deadline:
            found += 1
            if found >= count:
                return True
            child = 2 * i + 1
            if child < size:
                stack.append(child)
                if child + 1 < size:
                    stack.append(child + 1)
    return False


class Scheduler:
    """Ready queue plus timer heap; the pure heart of an event loop."""

    __slots__ = ("ready", "_timers", "_cancelled_timers", "_sequence")

    def __init__(self) -> None:
        #: Handles to run on the next tick, oldest first.
        self.ready: deque[Handle] = deque()
        # Heap entries: (deadline, sequence number, handle).
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._cancelled_timers = 0
        self._sequence = 0

    # -- inputs ---------------------------------------------------------

    def call(self, handle: Handle) -> None:
        """Queue *handle* to run on the next tick."""
        self.ready.append(handle)

    def add_timer(self, timer: TimerHandle) -> None:
        """Queue *timer* to become ready at ``timer.when()``."""
        self._sequence += 1
        timer._scheduled = True
        heapq.heappush(self._timers, (timer._when, self._sequence, timer))

    def timer_cancelled(self, timer: TimerHandle) -> None:
        """Note that a timer in the heap was cancelled (it is removed lazily)."""
        if timer._scheduled:
            self._cancelled_timers += 1

    # -- decisions ------------------------------------------------------

    def timeout(self, now: float) -> float | None:
        """Seconds the backend may block: 0 if work is ready, None if forever."""
        if self.ready:
            return 0.0
        self._drop_cancelled()
        if not self._timers:
            return None
        delay = self._timers[0][0] - now
        return delay if delay > 0.0 else 0.0

    def release_due(self, deadline: float) -> None:
        """Move every live timer due before *deadline* to the ready queue.

        Cancelled timers are dropped first (compacting the heap when they
        dominate it), busy or not, as asyncio does at the start of every
        iteration: a loop that always has ready work never asks ``timeout()``,
        and a cancel-heavy workload must not grow its heap without bound.
        """
        if self._cancelled_timers:
            self._drop_cancelled()
        timers = self._timers
        ready = self.ready
        popped = 0
        # Consider a bulk release once, after popping 1/BULK_RELEASE_DIVISOR of the heap.
        check_at = max(BULK_RELEASE_MIN, -(-len(timers) // BULK_RELEASE_DIVISOR))
        while timers and timers[0][0] < deadline:
            if popped == check_at:
                if _due_at_least(timers, deadline, len(timers) // BULK_RELEASE_DUE_DIVISOR):
                    # Much of the heap is due at once (a burst of equal timeouts,
                    # or a loop that was busy): one partition and one sort beat
                    # popping. With few due among many pending, popping is cheaper
                    # than two passes over the whole heap.
                    self._release_bulk(deadline)
                    return
            timer = heapq.heappop(timers)[2]
            popped += 1
            timer._scheduled = False
            if timer._cancelled:
                self._cancelled_timers -= 1
            else:
                ready.append(timer)

    def _release_bulk(self, deadline: float) -> None:
        # Cost: one pass over the heap plus sorting the due part, which is at
        # most twice what popping them one by one has already cost at this point.
        timers = self._timers
        due = [entry for entry in timers if entry[0] < deadline]
        remaining = [entry for entry in timers if entry[0] >= deadline]
        heapq.heapify(remaining)
        self._timers = remaining
        # Drop the cancelled ones before sorting: cancel-heavy code would
        # otherwise pay the sort for timers that never run.
        live = []
        for entry in due:
            timer = entry[2]
            timer._scheduled = False
            if timer._cancelled:
                self._cancelled_timers -= 1
            else:
                live.append(entry)
        live.sort()
        self.ready.extend([entry[2] for entry in live])

    def run_ready(self) -> None:
        """Run the callbacks that are ready now; later arrivals wait a tick."""
        ready = self.ready
        popleft = ready.popleft
        for _ in range(len(ready)):
            handle = popleft()
            if not handle._cancelled:
                handle._run()

    def next_deadline(self) -> float | None:
        """The deadline of the earliest live timer, or None."""
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    # -- housekeeping ---------------------------------------------------

    def _drop_cancelled(self) -> None:
        timers = self._timers
        if len(
            timers
        ) > COMPACT_MIN_TIMERS and self._cancelled_timers > COMPACT_CANCELLED_FRACTION * len(
            timers
        ):
            live = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    live.append(entry)
            heapq.heapify(live)
            self._timers = live
            self._cancelled_timers = 0
            return
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1

    def clear(self) -> None:
        """Forget every queued callback and timer (used when a loop closes)."""
        self.ready.clear()
        for entry in self._timers:
            entry[2]._scheduled = False
        self._timers.clear()
        self._cancelled_timers = 0

    @property
    def timer_count(self) -> int:
        """Timers in the heap, cancelled ones included."""
        return len(self._timers)

    def live_timers(self) -> list[TimerHandle]:
        """The timers in the heap that are not cancelled, in heap order (O(n))."""
        return [timer for _, _, timer in self._timers if not timer._cancelled]

    def statistics(self) -> dict[str, Any]:
        """Counts that tests and users ask about."""
        return {
            "ready": len(self.ready),
            "timers": len(self._timers),
            "cancelled_timers": self._cancelled_timers,
        }
