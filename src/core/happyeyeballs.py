"""Happy Eyeballs (RFC 8305) as pure logic: address interleaving and the staggered race.

Contract
--------
``interleave_addrinfos(infos, first_family_count=1)`` reorders resolver
answers the way asyncio's ``create_connection(interleave=...)`` does: the
answers are grouped by address family in the order the families first
appear; ``first_family_count - 1`` extra answers of the first family lead,
then the families alternate one answer at a time (a family that runs out is
skipped). A count below 1 behaves as 1. The order inside a family is kept.

``StaggeredRace(count, delay)`` decides a race between ``count`` connection
attempts numbered 0..count-1, started in that order:

* attempt 0 starts at ``begin(now)``;
* attempt i+1 starts ``delay`` seconds after attempt i started, or at once
  when attempt i fails, whichever comes first (the chain of RFC 8305 section
  5, and of asyncio's ``staggered_race``); ``delay=None`` means "only after
  a failure" (plain sequential attempts);
* the first attempt to succeed wins: every other running attempt is
  cancelled and no further attempt starts;
* an attempt that succeeds after the winner (it finished before it heard of
  its cancellation) lost: its result must be discarded (closed) by the caller.

States of one attempt, and the only legal transitions (``_TRANSITIONS``)::

    waiting    --start-->   running    --fail--> failed
                                       --succeed--> won
                                       --cancel-->  cancelling --fail--> cancelled
                                                               --succeed--> lost
    waiting    --cancel-->  skipped

Inputs (the caller's reports): ``begin(now)``, ``failed(i, error, now)``,
``succeeded(i, now)``, ``wake(now)`` (the wake-up time asked for has
come), ``abort(now)`` (the caller gives up: cancel everything). Every input
returns a ``Decision``: the attempts to start now, those to cancel, those
whose late success must be discarded, when to call ``wake`` next (or None),
and whether the race is over. A cancelled attempt must still be reported, by
``failed`` (its cancellation, or any error) or ``succeeded``: the race is over
only once nothing is running or cancelling, so the caller can release every
resource before it returns.

After the race: ``winner`` (an index, or None), ``errors`` (the errors of
attempts that failed on their own, in attempt order; cancellations are not
errors), ``started`` (how many attempts were started).

Misuse (a report for an attempt in a state where it cannot happen, e.g. a
failure of an attempt never started) raises ``RaceMisuseError``: the caller's
bug, not the network's.

What it does not know: sockets, addresses, clocks, tasks. ``now`` is whatever
monotonic number the caller uses; the machine only compares and adds ``delay``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

__all__ = [
    "Decision",
    "RaceMisuseError",
    "StaggeredRace",
    "interleave_addrinfos",
]

_T = TypeVar("_T", bound=Sequence[Any])


def interleave_addrinfos(infos: Iterable[_T], first_family_count: int = 1) -> list[_T]:
    """Reorder getaddrinfo answers to alternate address families (RFC 8305, 4).

    *infos* are ``(family, type, proto, canonname, sockaddr)`` tuples (only
    item 0, the family, is looked at). See the module contract for the order.
    """
    by_family: dict[Any, list[_T]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    if not queues:
        return []
    lead = max(first_family_count - 1, 0)
    ordered = queues[0][:lead]
    queues[0] = queues[0][lead:]
    depth = max(len(queue) for queue in queues)
    for row in range(depth):
        ordered.extend(queue[row] for queue in queues if row < len(queue))
    return ordered


WAITING = "waiting"
RUNNING = "running"
FAILED = "failed"
WON = "won"
CANCELLING = "cancelling"
CANCELLED = "cancelled"
LOST = "lost"
SKIPPED = "skipped"

START = "start"
FAIL = "fail"
SUCCEED = "succeed"
CANCEL = "cancel"

#: (state, input) -> next state; anything absent is a misuse by the caller.
_TRANSITIONS: dict[tuple[str, str], str] = {
    (WAITING, START): RUNNING,
    (WAITING, CANCEL): SKIPPED,
    (RUNNING, FAIL): FAILED,
    (RUNNING, SUCCEED): WON,
    (RUNNING, CANCEL): CANCELLING,
    (CANCELLING, FAIL): CANCELLED,
    (CANCELLING, SUCCEED): LOST,
}

_LIVE = (RUNNING, CANCELLING)


class RaceMisuseError(RuntimeError):
    """The caller reported something impossible for the attempt's state."""


class Decision:
    """What the caller must do after one input to a ``StaggeredRace``.

    ``start``: attempt indexes to start now (in order). ``cancel``: running
    attempts to cancel. ``discard``: attempts that succeeded too late; close
    what they produced. ``wake_at``: call ``wake`` at this time (None: no
    timer needed). ``done``: the race is over (``winner``/``errors`` final).
    """

    __slots__ = ("start", "cancel", "discard", "wake_at", "done")

    def __init__(
        self,
        start: tuple[int, ...],
        cancel: tuple[int, ...],
        discard: tuple[int, ...],
        wake_at: float | None,
        done: bool,
    ) -> None:
        self.start = start
        self.cancel = cancel
        self.discard = discard
        self.wake_at = wake_at
        self.done = done

    def __repr__(self) -> str:
        return (
            f"Decision(start={self.start}, cancel={self.cancel}, discard={self.discard},"
            f" wake_at={self.wake_at}, done={self.done})"
        )


class StaggeredRace:
    """The staggered connection race of RFC 8305 section 5, as a machine."""

    __slots__ = ("_count", "_delay", "_states", "_errors", "_next", "_due", "_winner", "_begun")

    def __init__(self, count: int, delay: float | None) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        self._count = count
        self._delay = None if delay is None else max(float(delay), 0.0)
        self._states = [WAITING] * count
        self._errors: dict[int, Any] = {}
        self._next = 0  # the next attempt to start
        self._due: float | None = None  # when it starts unless a failure comes first
        self._winner: int | None = None
        self._begun = False

    # -- results -----------------------------------------------------------

    @property
    def winner(self) -> int | None:
        """The index of the attempt that won, or None."""
        return self._winner

    @property
    def errors(self) -> list[Any]:
        """Errors of attempts that failed on their own, in attempt order."""
        return [self._errors[i] for i in sorted(self._errors)]

    @property
    def started(self) -> int:
        """How many attempts were started."""
        return self._next

    @property
    def done(self) -> bool:
        """True once no attempt will start and none is running or cancelling."""
        if not self._begun:
            return self._count == 0
        if any(state in _LIVE for state in self._states):
            return False
        return self._winner is not None or self._next >= self._count

    def state(self, index: int) -> str:
        """The state name of attempt *index* (for tests and statistics)."""
        return self._states[index]

    def statistics(self) -> dict[str, Any]:
        """Counts of attempts by state, the winner and the next wake-up."""
        counts: dict[str, int] = {}
        for state in self._states:
            counts[state] = counts.get(state, 0) + 1
        return {"states": counts, "winner": self._winner, "wake_at": self._due}

    # -- inputs ------------------------------------------------------------

    def begin(self, now: float) -> Decision:
        """Start the race: attempt 0 starts (and more at once if delay is 0)."""
        if self._begun:
            raise RaceMisuseError("the race has already begun")
        self._begun = True
        if self._count:
            self._due = now
        return self._decide(now, self._start_due(now), (), ())

    def wake(self, now: float) -> Decision:
        """The wake-up time asked for has come (calling early is harmless)."""
        self._check_begun()
        return self._decide(now, self._start_due(now), (), ())

    def failed(self, index: int, error: Any, now: float) -> Decision:
        """Attempt *index* failed with *error* (or finished being cancelled)."""
        self._check_begun()
        state = self._move(index, FAIL)
        start: list[int] = []
        if state == FAILED:
            self._errors[index] = error
            if index == self._next - 1 and self._winner is None:
                # the newest attempt failed: its successor need not wait
                self._due = now
            start = self._start_due(now)
        return self._decide(now, start, (), ())

    def succeeded(self, index: int, now: float) -> Decision:
        """Attempt *index* connected."""
        self._check_begun()
        state = self._move(index, SUCCEED)
        if state == LOST:
            return self._decide(now, [], (), (index,))
        self._winner = index
        self._due = None
        cancel = []
        for i, other in enumerate(self._states):
            if other == RUNNING:
                self._states[i] = _TRANSITIONS[(RUNNING, CANCEL)]
                cancel.append(i)
            elif other == WAITING:
                self._states[i] = _TRANSITIONS[(WAITING, CANCEL)]
        return self._decide(now, [], tuple(cancel), ())

    def abort(self, now: float) -> Decision:
        """The caller gives up: cancel every running attempt, start no more."""
        self._begun = True
        self._due = None
        cancel = []
        for i, state in enumerate(self._states):
            if state in (RUNNING, WAITING):
                self._states[i] = _TRANSITIONS[(state, CANCEL)]
                if state == RUNNING:
                    cancel.append(i)
        self._next = self._count  # nothing more will start
        return self._decide(now, [], tuple(cancel), ())

    # -- helpers -----------------------------------------------------------

    def _check_begun(self) -> None:
        if not self._begun:
            raise RaceMisuseError("the race has not begun: call begin(now) first")

    def _move(self, index: int, event: str) -> str:
        if not 0 <= index < self._count:
            raise RaceMisuseError(f"no attempt {index!r} in a race of {self._count}")
        state = self._states[index]
        try:
            new = _TRANSITIONS[(state, event)]
        except KeyError:
            raise RaceMisuseError(f"attempt {index} cannot {event!r} while {state!r}") from None
        self._states[index] = new
        return new

    def _start_due(self, now: float) -> list[int]:
        started = []
        while self._next < self._count and self._due is not None and self._due <= now:
            index = self._next
            self._states[index] = _TRANSITIONS[(self._states[index], START)]
            self._next += 1
            started.append(index)
            self._due = None if self._delay is None else now + self._delay
        if self._next >= self._count:
            self._due = None
        return started

    def _decide(
        self,
        now: float,
        start: list[int],
        cancel: tuple[int, ...],
        discard: tuple[int, ...],
    ) -> Decision:
        done = self.done
        wake_at = None if done or self._winner is not None else self._due
        return Decision(tuple(start), cancel, discard, wake_at, done)
