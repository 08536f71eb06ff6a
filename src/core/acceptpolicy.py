"""The accept policy of a server: when to accept, when to back off, when it is closed.

Contract
--------
One ``AcceptPolicy`` drives every listening socket of one server (asyncio's
``Server`` may listen on several: one per address). It decides; its driver
(``sansloop.compat.servers``) calls ``accept()``, watches fds, arms timers.

States
    ``IDLE``         sockets bound and listening, not watched (``start_serving=False``)
    ``SERVING``      listening fds watched; readiness starts a batch of accepts
    ``BACKING_OFF``  the process ran out of fds or memory: fds unwatched, a
                     timer armed; nothing is accepted until it expires
    ``CLOSING``      listeners closed; accepted connections still open
    ``CLOSED``       listeners closed and every connection gone: ``wait_closed``
                     returns

Inputs (``feed(input)``, or the method of the same name)
    ``START``            start_serving() (the driver has called ``listen()``)
    ``READABLE``         a listening fd is ready: a new batch begins
    ``ACCEPTED``         ``accept()`` gave a connection (its transport is made)
    ``WOULD_BLOCK``      ``accept()`` raised BlockingIOError/InterruptedError
    ``ABORTED``          ``accept()`` raised ConnectionAbortedError (the peer
                         gave up while queued: the next one may be waiting)
    ``OUT_OF_RESOURCES`` ``accept()`` failed with EMFILE/ENFILE/ENOBUFS/ENOMEM
    ``ERROR``            ``accept()`` failed otherwise
    ``BACKOFF_EXPIRED``  the backoff timer fired
    ``CLOSE``            close()
    ``ATTACH``           a transport of this server was made
    ``DETACH``           a transport of this server lost its connection

Outputs: each input returns a tuple of actions for the driver, in order:
    ``ACCEPT``        call ``accept()`` again on the socket of this batch
    ``WATCH``         watch every listening fd for reading
    ``UNWATCH``       stop watching them
    ``ARM_TIMER``     feed ``BACKOFF_EXPIRED`` after ``retry_delay`` seconds
    ``CANCEL_TIMER``  cancel that timer
    ``REPORT``        give the failure of ``accept()`` to the exception handler
    ``CLOSE_LISTENERS`` close the listening sockets
    ``RELEASE_WAITERS`` wake every ``wait_closed()``; emitted exactly once

Decisions and invariants
    - A batch accepts at most ``batch`` connections per readiness (asyncio
      accepts up to ``backlog``), then yields to the rest of the loop; the fd
      stays watched, so level-triggered readiness brings the rest next tick.
      The batch budget is a counter, not a state: a table entry that says
      ``CONTINUE`` means "ACCEPT if the budget is not spent".
    - Running out of fds is process-wide, so the backoff is server-wide: all
      listening fds are unwatched together (asyncio backs off one socket at a
      time, leaving the others to spin on the same EMFILE). The retry delay
      is ``ACCEPT_RETRY_DELAY`` (asyncio.constants.ACCEPT_RETRY_DELAY, 1 s).
    - Closing during a backoff cancels the timer (asyncio's timer re-watches
      the closed socket).
    - ``CLOSING`` with no connection left becomes ``CLOSED`` at once, with
      ``RELEASE_WAITERS``: that is 3.12.1+ ``wait_closed`` (closed *and* every
      connection gone, in either order).
    - ``active`` counts attached connections; it never goes negative.
    - Readiness in a state that does not watch the fds is stale and ignored.
      The result of an accept that began before ``close()`` is ignored once
      closed (the connection itself is accounted by ``ATTACH``/``DETACH``).
      Anything else outside the table is the caller's bug: ``AcceptPolicyError``.

What it does not know: sockets, fds, errno values beyond classifying them
(``classify_accept_error``), time, the loop, futures.
"""

from __future__ import annotations

import errno
from typing import Any, Final

__all__ = [
    "ACCEPT_RETRY_DELAY",
    "DEFAULT_BACKLOG",
    "AcceptPolicy",
    "AcceptPolicyError",
    "classify_accept_error",
    # states
    "IDLE",
    "SERVING",
    "BACKING_OFF",
    "CLOSING",
    "CLOSED",
    # inputs
    "START",
    "READABLE",
    "ACCEPTED",
    "WOULD_BLOCK",
    "ABORTED",
    "OUT_OF_RESOURCES",
    "ERROR",
    "BACKOFF_EXPIRED",
    "CLOSE",
    "ATTACH",
    "DETACH",
    # actions
    "ACCEPT",
    "WATCH",
    "UNWATCH",
    "ARM_TIMER",
    "CANCEL_TIMER",
    "REPORT",
    "CLOSE_LISTENERS",
    "RELEASE_WAITERS",
]

# -- limits ------------------------------------------------------------------

#: Seconds between running out of fds/memory and trying accept() again
#: (asyncio.constants.ACCEPT_RETRY_DELAY: long enough for connections to finish
#: and free fds, short enough that clients' connects do not time out).
ACCEPT_RETRY_DELAY: Final = 1.0

#: Listen backlog and accept batch size (asyncio's create_server default
#: backlog=100; asyncio accepts up to ``backlog`` connections per readiness).
DEFAULT_BACKLOG: Final = 100


class _Name:
    """A named sentinel: identity-hashed (fast dict keys) with a readable repr."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


IDLE: Final = _Name("IDLE")
SERVING: Final = _Name("SERVING")
BACKING_OFF: Final = _Name("BACKING_OFF")
CLOSING: Final = _Name("CLOSING")
CLOSED: Final = _Name("CLOSED")
STATES: Final = (IDLE, SERVING, BACKING_OFF, CLOSING, CLOSED)

START: Final = _Name("START")
READABLE: Final = _Name("READABLE")
ACCEPTED: Final = _Name("ACCEPTED")
WOULD_BLOCK: Final = _Name("WOULD_BLOCK")
ABORTED: Final = _Name("ABORTED")
OUT_OF_RESOURCES: Final = _Name("OUT_OF_RESOURCES")
ERROR: Final = _Name("ERROR")
BACKOFF_EXPIRED: Final = _Name("BACKOFF_EXPIRED")
CLOSE: Final = _Name("CLOSE")
ATTACH: Final = _Name("ATTACH")
DETACH: Final = _Name("DETACH")
INPUTS: Final = (
    START,
    READABLE,
    ACCEPTED,
    WOULD_BLOCK,
    ABORTED,
    OUT_OF_RESOURCES,
    ERROR,
    BACKOFF_EXPIRED,
    CLOSE,
    ATTACH,
    DETACH,
)

ACCEPT: Final = _Name("ACCEPT")
WATCH: Final = _Name("WATCH")
UNWATCH: Final = _Name("UNWATCH")
ARM_TIMER: Final = _Name("ARM_TIMER")
CANCEL_TIMER: Final = _Name("CANCEL_TIMER")
REPORT: Final = _Name("REPORT")
CLOSE_LISTENERS: Final = _Name("CLOSE_LISTENERS")
RELEASE_WAITERS: Final = _Name("RELEASE_WAITERS")
#: Table-only marker: "ACCEPT if the batch budget is not spent".
CONTINUE: Final = _Name("CONTINUE")

#: errno values that mean "the process or system is out of a resource":
#: retrying at once fails again (Linux keeps the listening fd readable), so
#: back off instead of spinning.
RESOURCE_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def classify_accept_error(exc: BaseException) -> _Name:
    """The input that a failure of ``accept()`` is: WOULD_BLOCK, ABORTED, OUT_OF_RESOURCES or ERROR."""
    if isinstance(exc, (BlockingIOError, InterruptedError)):
        return WOULD_BLOCK
    if isinstance(exc, ConnectionAbortedError):
        return ABORTED
    if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
        return OUT_OF_RESOURCES
    return ERROR


class AcceptPolicyError(RuntimeError):
    """An input the policy cannot take in its state: a bug of the caller (the driver)."""


_NOTHING: tuple[_Name, ...] = ()

#: (state, input) -> (next state, actions). A pair that is missing is a misuse.
_TABLE: dict[tuple[_Name, _Name], tuple[_Name, tuple[_Name, ...]]] = {
    # IDLE: listening, not watched.
    (IDLE, START): (SERVING, (WATCH,)),
    (IDLE, READABLE): (IDLE, _NOTHING),  # stale
    (IDLE, CLOSE): (CLOSING, (CLOSE_LISTENERS,)),
    (IDLE, ATTACH): (IDLE, _NOTHING),
    (IDLE, DETACH): (IDLE, _NOTHING),
    # SERVING: readiness starts a batch; each result says whether to go on.
    (SERVING, START): (SERVING, _NOTHING),
    (SERVING, READABLE): (SERVING, (ACCEPT,)),
    (SERVING, ACCEPTED): (SERVING, (CONTINUE,)),
    (SERVING, ABORTED): (SERVING, (CONTINUE,)),
    (SERVING, WOULD_BLOCK): (SERVING, _NOTHING),
    (SERVING, OUT_OF_RESOURCES): (BACKING_OFF, (UNWATCH, ARM_TIMER, REPORT)),
    (SERVING, ERROR): (SERVING, (REPORT,)),
    (SERVING, CLOSE): (CLOSING, (UNWATCH, CLOSE_LISTENERS)),
    (SERVING, ATTACH): (SERVING, _NOTHING),
    (SERVING, DETACH): (SERVING, _NOTHING),
    # BACKING_OFF: nothing watched until the timer fires.
    (BACKING_OFF, START): (BACKING_OFF, _NOTHING),
    (BACKING_OFF, READABLE): (BACKING_OFF, _NOTHING),  # stale
    (BACKING_OFF, BACKOFF_EXPIRED): (SERVING, (WATCH,)),
    (BACKING_OFF, CLOSE): (CLOSING, (CANCEL_TIMER, CLOSE_LISTENERS)),
    (BACKING_OFF, ATTACH): (BACKING_OFF, _NOTHING),
    (BACKING_OFF, DETACH): (BACKING_OFF, _NOTHING),
    # CLOSING: listeners gone, connections draining.
    (CLOSING, READABLE): (CLOSING, _NOTHING),  # stale
    (CLOSING, ACCEPTED): (CLOSING, _NOTHING),  # an accept begun before close()
    (CLOSING, CLOSE): (CLOSING, _NOTHING),
    (CLOSING, ATTACH): (CLOSING, _NOTHING),
    (CLOSING, DETACH): (CLOSING, _NOTHING),
    # CLOSED: final.
    (CLOSED, READABLE): (CLOSED, _NOTHING),  # stale
    (CLOSED, ACCEPTED): (CLOSED, _NOTHING),  # an accept begun before close()
    (CLOSED, CLOSE): (CLOSED, _NOTHING),
}

_WHY_NOT = {
    START: "the server is closed",
    ACCEPTED: "no accept batch is running",
    WOULD_BLOCK: "no accept batch is running",
    ABORTED: "no accept batch is running",
    OUT_OF_RESOURCES: "no accept batch is running",
    ERROR: "no accept batch is running",
    BACKOFF_EXPIRED: "no backoff timer is armed",
    ATTACH: "a closed server takes no connection",
    DETACH: "no connection is attached",
}


class AcceptPolicy:
    """The accept loop of one server as a state machine (see the module docstring)."""

    __slots__ = ("state", "active", "batch", "retry_delay", "_budget", "_stats")

    def __init__(
        self, batch: int = DEFAULT_BACKLOG, retry_delay: float = ACCEPT_RETRY_DELAY
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch!r}")
        if retry_delay < 0:
            raise ValueError(f"retry_delay must not be negative, got {retry_delay!r}")
        #: The current state (one of STATES).
        self.state: _Name = IDLE
        #: Connections attached and not yet detached.
        self.active = 0
        #: Most accepts per readiness event.
        self.batch = batch
        #: Seconds to wait after OUT_OF_RESOURCES (what ARM_TIMER asks for).
        self.retry_delay = retry_delay
        self._budget = 0
        self._stats = {"accepted": 0, "aborted": 0, "backoffs": 0, "errors": 0}

    def __repr__(self) -> str:
        return f"<AcceptPolicy {self.state!r} active={self.active}>"

    # -- the one lookup -----------------------------------------------------

    def feed(self, event: _Name) -> tuple[_Name, ...]:
        """Take one input; return the actions the driver must perform, in order."""
        state = self.state
        entry = _TABLE.get((state, event))
        if entry is None or (event is DETACH and self.active == 0):
            why = _WHY_NOT.get(event, "it is not an input of this machine")
            raise AcceptPolicyError(f"accept policy cannot take {event!r} in {state!r}: {why}")
        next_state, actions = entry
        self.state = next_state
        if event is ATTACH:
            self.active += 1
        elif event is DETACH:
            self.active -= 1
        elif event is READABLE:
            self._budget = self.batch
        elif event is ACCEPTED:
            self._stats["accepted"] += 1
        elif event is ABORTED:
            self._stats["aborted"] += 1
        elif event is OUT_OF_RESOURCES:
            self._stats["backoffs"] += 1
        elif event is ERROR:
            self._stats["errors"] += 1
        if actions and actions[0] is CONTINUE:
            self._budget -= 1
            actions = (ACCEPT,) if self._budget > 0 else _NOTHING
        if next_state is CLOSING and self.active == 0:
            # State-triggered: closed and no connection left, in either order.
            self.state = CLOSED
            actions = actions + (RELEASE_WAITERS,)
        return actions

    # -- named inputs ---------------------------------------------------------

    def start(self) -> tuple[_Name, ...]:
        """start_serving(): the listening sockets are ready to be watched."""
        return self.feed(START)

    def readable(self) -> tuple[_Name, ...]:
        """A listening fd is readable: begin a batch."""
        return self.feed(READABLE)

    def accepted(self) -> tuple[_Name, ...]:
        """``accept()`` returned a connection."""
        return self.feed(ACCEPTED)

    def accept_failed(self, exc: BaseException) -> tuple[_Name, ...]:
        """``accept()`` raised *exc*: WOULD_BLOCK, ABORTED, OUT_OF_RESOURCES or ERROR."""
        return self.feed(classify_accept_error(exc))

    def backoff_expired(self) -> tuple[_Name, ...]:
        """The timer armed by ARM_TIMER fired."""
        return self.feed(BACKOFF_EXPIRED)

    def close(self) -> tuple[_Name, ...]:
        """The server is closed."""
        return self.feed(CLOSE)

    def attach(self) -> tuple[_Name, ...]:
        """A transport of this server was made."""
        return self.feed(ATTACH)

    def detach(self) -> tuple[_Name, ...]:
        """A transport of this server lost its connection."""
        return self.feed(DETACH)

    # -- questions ------------------------------------------------------------

    @property
    def serving(self) -> bool:
        """True while accepting or backing off (asyncio's ``is_serving()``)."""
        return self.state is SERVING or self.state is BACKING_OFF

    @property
    def closed(self) -> bool:
        """True once ``close()`` was taken (CLOSING or CLOSED)."""
        return self.state is CLOSING or self.state is CLOSED

    def statistics(self) -> dict[str, Any]:
        """State, connections, and counts of accepts, aborts, backoffs and errors."""
        stats: dict[str, Any] = {"state": self.state.name, "active": self.active}
        stats.update(self._stats)
        return stats
