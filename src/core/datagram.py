"""The datagram transport as a pure machine: a send queue, its accounting, its lifecycle.

Contract
--------
``DatagramMachine`` decides everything a datagram (UDP or AF_UNIX SOCK_DGRAM)
transport decides, and does none of it: the caller owns the socket, the fd
interest and the protocol, and carries out the actions the machine returns.

States (``state``): ``OPEN`` (sending and, unless paused, reading), ``CLOSING``
(``close()`` was asked while datagrams were queued: reading stopped, the queue
is flushed), ``LOST`` (``connection_lost`` is due or delivered: terminal). The
lifecycle is a transition table, ``TRANSITIONS``, from ``(state, input)`` to
``(next state, actions)``; inputs are ``CLOSE_IDLE``/``CLOSE_BUSY`` (close with an
empty / non-empty queue), ``ABORT`` and ``DRAINED`` (the queue became empty). A
pair missing from the table is our own bug and raises ``RuntimeError``.

Actions are bit flags (an ``int``; 0 means nothing to do):
``STOP_READING``, ``START_READING``, ``START_WRITING``, ``STOP_WRITING``,
``PAUSE_PROTOCOL`` / ``RESUME_PROTOCOL`` (call the protocol's
``pause_writing()`` / ``resume_writing()``), ``LOSE`` (schedule
``connection_lost``: returned exactly once in a machine's life), ``DROPPED``
(a datagram was dropped because the transport is lost; the caller may warn).

Sending: ``target(data, addr)`` validates a ``sendto`` (asyncio's TypeError for a
non-bytes-like ``data``; ValueError ``"Invalid address: must be None or
{remote}"`` when connected and *addr* names another peer) and returns where it
goes. If ``idle()`` (open or closing, nothing queued), the caller sends at
once; if that would block, or if not idle, it calls ``enqueue(data, addr)``.
Flushing: ``head()`` is the oldest queued ``(data, addr)``; after trying it the
caller calls ``pop()`` (sent, or failed and reported) — or leaves it queued if
the socket would block.

Accounting: every queued datagram counts ``len(data) + 8`` (its payload and a
UDP header's worth, as asyncio 3.13 counts on enqueue; 3.11/3.12 count the
payload only, and 3.13.0 forgets the 8 on dequeue so its count never returns
to 0: ours does). The count goes through the write flow-control machine, which
turns it into strictly alternating pause/resume decisions at the high/low
water marks (defaults 64 KiB / 16 KiB, as asyncio).

Empty datagrams: ``b""`` is a datagram like any other (sent and queued), on
every Python version, as asyncio 3.13 does; 3.11/3.12 silently drop it.

Reading: ``pause_reading()``/``resume_reading()`` return the fd interest change,
if any; ``is_reading()`` is true while open and not paused.

What it does not know: sockets, fds, the loop, the clock, the protocol object.
Errors from a send or receive are the caller's to route (asyncio's rule: an
``OSError`` goes to ``protocol.error_received``, anything else is fatal and
aborts through ``abort()``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .flowcontrol import WriteFlowControl

__all__ = [
    "DatagramMachine",
    "OPEN",
    "CLOSING",
    "LOST",
    "CLOSE_IDLE",
    "CLOSE_BUSY",
    "ABORT",
    "DRAINED",
    "TRANSITIONS",
    "STOP_READING",
    "START_READING",
    "START_WRITING",
    "STOP_WRITING",
    "PAUSE_PROTOCOL",
    "RESUME_PROTOCOL",
    "LOSE",
    "DROPPED",
    "HEADER_SIZE",
]

# -- states and inputs --------------------------------------------------------

OPEN = "open"
CLOSING = "closing"
LOST = "lost"

CLOSE_IDLE = "close (queue empty)"
CLOSE_BUSY = "close (queue not empty)"
ABORT = "abort"
DRAINED = "drained"

# -- actions (bit flags) ------------------------------------------------------

STOP_READING = 1
START_READING = 2
START_WRITING = 4
STOP_WRITING = 8
PAUSE_PROTOCOL = 16
RESUME_PROTOCOL = 32
LOSE = 64
DROPPED = 128

#: What each queued datagram costs beyond its payload (a UDP header).
HEADER_SIZE = 8

#: (state, input) -> (next state, actions). Two pairs cannot happen and are
#: absent (a miss is our bug): DRAINED in LOST (abort empties the queue without
#: draining it) and CLOSE_IDLE in CLOSING (CLOSING ends when the queue drains).
TRANSITIONS: dict[tuple[str, str], tuple[str, int]] = {
    (OPEN, CLOSE_IDLE): (LOST, STOP_READING | LOSE),
    (OPEN, CLOSE_BUSY): (CLOSING, STOP_READING),
    (OPEN, ABORT): (LOST, STOP_READING | STOP_WRITING | LOSE),
    (OPEN, DRAINED): (OPEN, STOP_WRITING),
    (CLOSING, CLOSE_BUSY): (CLOSING, 0),
    (CLOSING, ABORT): (LOST, STOP_WRITING | LOSE),
    (CLOSING, DRAINED): (LOST, STOP_WRITING | LOSE),
    (LOST, CLOSE_IDLE): (LOST, 0),
    (LOST, CLOSE_BUSY): (LOST, 0),
    (LOST, ABORT): (LOST, 0),
}

_BYTES_LIKE = (bytes, bytearray, memoryview)


class DatagramMachine:
    """Send queue, flow-control accounting and lifecycle of one datagram transport.

    *remote_address* is the connected peer (None for an unconnected endpoint);
    *flow* is the write flow-control machine (a new ``WriteFlowControl`` with
    asyncio's default limits if not given).
    """

    __slots__ = (
        "remote_address",
        "_queue",
        "_flow",
        "_state",
        "_paused_reading",
        "dropped",
        "reading",
        "direct",
    )

    def __init__(self, remote_address: Any = None, flow: WriteFlowControl | None = None) -> None:
        self.remote_address = remote_address
        self._queue: deque[tuple[bytes, Any]] = deque()
        self._flow = flow if flow is not None else WriteFlowControl()
        self._state = OPEN
        self._paused_reading = False
        #: Datagrams dropped because they were sent after the transport was lost.
        self.dropped = 0
        #: ``is_reading()`` and ``idle()`` as plain attributes, kept in step by
        #: every input, for the transport's per-datagram paths (read-only).
        self.reading = True
        self.direct = True

    # -- inspection ---------------------------------------------------------

    @property
    def state(self) -> str:
        """OPEN, CLOSING or LOST."""
        return self._state

    @property
    def flow(self) -> WriteFlowControl:
        """The write flow-control machine (limits, buffered size, paused flag)."""
        return self._flow

    def is_closing(self) -> bool:
        """True once close() or abort() was asked."""
        return self._state is not OPEN

    def is_reading(self) -> bool:
        """True while open and reading is not paused."""
        return self.reading

    def idle(self) -> bool:
        """True if a new datagram may be sent at once (not lost, nothing queued)."""
        return self.direct

    def buffer_size(self) -> int:
        """Bytes accounted for the queued datagrams (payload + header each)."""
        return self._flow.size

    def queued(self) -> int:
        """How many datagrams are queued."""
        return len(self._queue)

    def statistics(self) -> dict[str, Any]:
        """State, queue length, buffered bytes, limits and flags, for tests and users."""
        low, high = self._flow.get_limits()
        return {
            "state": self._state,
            "queued_datagrams": len(self._queue),
            "buffer_size": self._flow.size,
            "low_water": low,
            "high_water": high,
            "writing_paused": self._flow.paused,
            "reading_paused": self._paused_reading,
            "dropped": self.dropped,
        }

    # -- sending ------------------------------------------------------------

    def target(self, data: Any, addr: Any = None) -> Any:
        """Validate a sendto(); return the address the datagram goes to.

        Raises TypeError for data that is not bytes-like and ValueError for an
        address other than the connected peer's (the caller's misuse).
        """
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        remote = self.remote_address
        if remote:
            if addr is not None and addr != remote:
                raise ValueError(f"Invalid address: must be None or {remote}")
            return remote
        return addr

    def enqueue(self, data: Any, addr: Any) -> int:
        """Queue a datagram that could not go at once; return the actions.

        The data is copied (the caller's buffer may change after sendto
        returns). Once the transport is lost the datagram is dropped: DROPPED.
        """
        if self._state is LOST:
            self.dropped += 1
            return DROPPED
        queue = self._queue
        actions = 0 if queue else START_WRITING
        queue.append((bytes(data), addr))
        self.direct = False
        if self._flow.grow(len(data) + HEADER_SIZE):
            actions |= PAUSE_PROTOCOL
        return actions

    def head(self) -> tuple[bytes, Any]:
        """The oldest queued datagram and its address (IndexError if none)."""
        return self._queue[0]

    def pop(self) -> int:
        """Forget the oldest queued datagram (sent, or failed and reported).

        Returns the actions: RESUME_PROTOCOL when the count falls to the low
        water mark, and the lifecycle's answer to DRAINED when the queue
        empties (stop writing; LOSE if closing).
        """
        data, _ = self._queue.popleft()
        actions = RESUME_PROTOCOL if self._flow.shrink(len(data) + HEADER_SIZE) else 0
        if not self._queue:
            actions |= self._step(DRAINED)
            self.direct = self._state is not LOST
        return actions

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> int:
        """Change the water marks (asyncio's defaults and ValueError); return the actions."""
        return PAUSE_PROTOCOL if self._flow.set_limits(high, low) else 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """(low, high), as asyncio's transports answer."""
        return self._flow.get_limits()

    # -- lifecycle ----------------------------------------------------------

    def _step(self, event: str) -> int:
        try:
            self._state, actions = TRANSITIONS[(self._state, event)]
        except KeyError:
            raise RuntimeError(
                f"DatagramMachine bug: no transition for {event!r} in state {self._state!r}"
            ) from None
        return actions

    def close(self) -> int:
        """close(): stop reading, flush the queue, then LOSE."""
        actions = self._step(CLOSE_BUSY if self._queue else CLOSE_IDLE)
        self.reading = False
        self.direct = self.direct and self._state is not LOST
        return actions

    def abort(self) -> int:
        """abort() or a fatal error: discard the queue, stop everything, LOSE."""
        actions = self._step(ABORT)
        self.reading = self.direct = False
        if actions & LOSE and self._queue:
            self._queue.clear()
            self._flow.clear()
        return actions

    # -- reading ------------------------------------------------------------

    def pause_reading(self) -> int:
        """Stop reading (a no-op unless reading); return STOP_READING or 0."""
        if self._state is not OPEN or self._paused_reading:
            return 0
        self._paused_reading = True
        self.reading = False
        return STOP_READING

    def resume_reading(self) -> int:
        """Resume reading (a no-op unless paused and open); return START_READING or 0."""
        if self._state is not OPEN or not self._paused_reading:
            return 0
        self._paused_reading = False
        self.reading = True
        return START_READING
