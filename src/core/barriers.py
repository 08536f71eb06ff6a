"""Barrier: asyncio's (3.11+) rendezvous of a fixed number of tasks.

``Barrier(parties)`` lets tasks gather in ``wait()`` until *parties* of them have
arrived; then all are released together, each returning a distinct index in
``range(parties)`` (arrival order). The barrier is reusable: the next cycle
starts once every released task has left.

States (``BarrierState``) and the inputs that move between them -- the whole
machine is the ``_NEXT_STATE`` table below, a missing pair is our own bug:

=========== ============ =============== ============== ============ ======
state       TRIP         EMPTIED         RESET_BUSY     RESET_IDLE   ABORT
=========== ============ =============== ============== ============ ======
filling     draining     filling         resetting      filling      broken
draining    --           filling         resetting      filling      broken
resetting   --           filling         resetting      filling      broken
broken      --           broken          resetting      filling      broken
=========== ============ =============== ============== ============ ======

* TRIP: the *parties*-th task arrives while filling.
* EMPTIED: the last task inside the barrier leaves.
* RESET_BUSY / RESET_IDLE: ``reset()`` with / without tasks inside.
* ABORT: ``abort()``.

Arrivals while draining or resetting wait for the barrier to refill; arrivals
while broken raise ``BrokenBarrierError("Barrier aborted")``; tasks waiting while
the barrier is reset or aborted raise ``BrokenBarrierError("Abort or reset of
barrier")``. Cancelling a waiting task lets it leave (``n_waiting`` drops).

The waiting is done on a core ``Condition``; the barrier itself never touches
the loop and never reads a clock.
"""

from __future__ import annotations

import enum
from asyncio.exceptions import BrokenBarrierError
from typing import Any, NamedTuple

from .locks import Condition
from .waiters import LoopBound

__all__ = ["Barrier", "BarrierState", "BarrierStatistics"]


#: Where a Barrier is in its cycle; the values are the words asyncio's repr shows.
BarrierState = enum.Enum(
    "BarrierState",
    {"FILLING": "filling", "DRAINING": "draining", "RESETTING": "resetting", "BROKEN": "broken"},
    module=__name__,
)


class _Input(enum.Enum):
    TRIP = "trip"
    EMPTIED = "emptied"
    RESET_BUSY = "reset while occupied"
    RESET_IDLE = "reset while empty"
    ABORT = "abort"


_F, _D, _R, _B = (
    BarrierState.FILLING,
    BarrierState.DRAINING,
    BarrierState.RESETTING,
    BarrierState.BROKEN,
)

_NEXT_STATE: dict[tuple[BarrierState, _Input], BarrierState] = {
    (_F, _Input.TRIP): _D,
    **{(state, _Input.EMPTIED): _F for state in (_F, _D, _R)},
    (_B, _Input.EMPTIED): _B,
    **{(state, _Input.RESET_BUSY): _R for state in BarrierState},
    **{(state, _Input.RESET_IDLE): _F for state in BarrierState},
    **{(state, _Input.ABORT): _B for state in BarrierState},
}


class BarrierStatistics(NamedTuple):
    """Snapshot of a Barrier."""

    parties: int
    n_waiting: int
    state: BarrierState
    broken: bool


class Barrier(LoopBound):
    """Block tasks in ``wait()`` until *parties* of them are waiting, then release all.

    ``Barrier(parties)`` with ``parties < 1`` raises ValueError('parties must be > 0').
    ``async with barrier as index:`` waits on entry.
    """

    __slots__ = ("_cond", "_parties", "_state", "_count")

    def __init__(self, parties: int) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        self._loop = None
        self._cond = Condition()
        self._parties = parties
        self._state = BarrierState.FILLING
        self._count = 0  # tasks inside wait() past the entry gate

    def __repr__(self) -> str:
        extra = self._state.value
        if not self.broken:
            extra += f", waiters:{self.n_waiting}/{self._parties}"
        return f"<{object.__repr__(self)[1:-1]} [{extra}]>"

    async def __aenter__(self) -> int:
        return await self.wait()

    async def __aexit__(self, *exc_info: Any) -> None:
        return None

    def _apply(self, event: _Input) -> None:
        try:
            self._state = _NEXT_STATE[self._state, event]
        except KeyError:  # pragma: no cover - a bug in this module, not misuse
            raise AssertionError(
                f"sansloop bug: Barrier has no transition for {event.value!r} "
                f"in state {self._state.value!r}"
            ) from None

    def _admits(self) -> bool:
        return self._state is not _D and self._state is not _R

    def _released(self) -> bool:
        return self._state is not _F

    async def wait(self) -> int:
        """Wait until *parties* tasks are waiting; return this task's index.

        BrokenBarrierError if the barrier is broken on entry, or is aborted or
        reset while this task waits.
        """
        cond = self._cond
        async with cond:
            # Entry gate: let the previous cycle drain (or a reset finish) first.
            await cond.wait_for(self._admits)
            if self._state is _B:
                raise BrokenBarrierError("Barrier aborted")
            index = self._count
            self._count = index + 1
            try:
                if self._count == self._parties:
                    self._apply(_Input.TRIP)
                    cond.notify_all()
                else:
                    await cond.wait_for(self._released)
                    if self._state is _B or self._state is _R:
                        raise BrokenBarrierError("Abort or reset of barrier")
                return index
            finally:
                self._count -= 1
                if self._count == 0:
                    self._apply(_Input.EMPTIED)
                    cond.notify_all()

    async def reset(self) -> None:
        """Return the barrier to its empty filling state.

        Tasks waiting in it get BrokenBarrierError; the barrier refills once
        they have left.
        """
        async with self._cond:
            self._apply(_Input.RESET_BUSY if self._count > 0 else _Input.RESET_IDLE)
            self._cond.notify_all()

    async def abort(self) -> None:
        """Break the barrier: current and future ``wait()`` calls raise BrokenBarrierError."""
        async with self._cond:
            self._apply(_Input.ABORT)
            self._cond.notify_all()

    @property
    def parties(self) -> int:
        """The number of tasks needed to trip the barrier."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """The number of tasks waiting for the barrier to trip (0 unless filling)."""
        return self._count if self._state is _F else 0

    @property
    def broken(self) -> bool:
        """True if the barrier is broken."""
        return self._state is _B

    def statistics(self) -> BarrierStatistics:
        """Return ``BarrierStatistics(parties, n_waiting, state, broken)``."""
        return BarrierStatistics(self._parties, self.n_waiting, self._state, self.broken)
