"""TransportLifecycle: a stream transport's lifecycle as a transition table.

Contract
--------
A stream transport (TCP, Unix socket, pipe pair) is driven by the socket's
readiness and results and by its user's calls. This machine holds the one
lifecycle state and, for each ``(state, input)`` pair, gives the next state and
the actions the transport must perform, in order. It performs none of them.

States (``State``):

- ``OPEN``: reading and writing.
- ``READ_PAUSED``: ``pause_reading()`` was called; writing goes on.
- ``READ_EOF``: the peer sent EOF and the protocol's ``eof_received()`` asked to
  keep the transport open: reading is over, writing goes on.
- ``WRITE_EOF``: ``write_eof()`` was called: the buffer drains, then the write
  side is shut down; reading goes on.
- ``WRITE_EOF_PAUSED``: both of the above that are about our side.
- ``BOTH_EOF``: EOF both ways, waiting for ``close()``.
- ``CLOSING``: ``close()`` was called: reading stopped, the buffer flushes, then
  the connection is lost (``connection_lost(None)``).
- ``CLOSED``: ``connection_lost`` is scheduled (or done) after a clean close.
- ``ABORTED``: ``connection_lost`` is scheduled (or done) after ``abort()`` or a
  fatal error; the buffer was discarded.
- ``CLOSING_AFTER_WRITE_EOF``, ``CLOSED_AFTER_WRITE_EOF``,
  ``ABORTED_AFTER_WRITE_EOF``: the same three, entered after ``write_eof()``,
  so that ``write()`` stays refused ("after write_eof()") as in asyncio. Their
  rows are derived from the three above, not written twice.

Inputs (``Input``):

- ``READABLE``: bytes arrived and were received.
- ``DRAINED``: the write buffer is empty (a send emptied it, or the caller
  answers ``CHECK_DRAINED``).
- ``SHORT_WRITE``: a send took part of the data; the rest is buffered.
- ``EAGAIN``: a send took nothing (would block); the data is buffered.
- ``EOF``: a receive returned no bytes: the peer shut down its write side.
- ``RESET``: a fatal error (ECONNRESET, EPIPE, a protocol callback raised).
- ``CLOSE``, ``ABORT``, ``WRITE_EOF``, ``PAUSE``, ``RESUME``: the user's
  ``close()``, ``abort()``, ``write_eof()``, ``pause_reading()``,
  ``resume_reading()``.

Actions (``Action``), performed by the caller in the order given:

- ``DELIVER``: hand the received bytes to the protocol.
- ``START_READING`` / ``STOP_READING``: watch / stop watching readability.
- ``WATCH_WRITABLE`` / ``STOP_WRITING``: watch / stop watching writability.
- ``SHUTDOWN_WRITE``: ``shutdown(SHUT_WR)``.
- ``EOF_RECEIVED``: call ``protocol.eof_received()``; if it returns a false
  value, feed ``CLOSE`` (then ``DRAINED`` if the buffer is empty).
- ``DISCARD``: drop the write buffer.
- ``CHECK_DRAINED``: if the write buffer is empty, feed ``DRAINED`` now (emitted
  by ``close()`` and ``write_eof()``: the machine does not count bytes).
- ``LOSE``: schedule ``protocol.connection_lost(exc)`` and the cleanup.

Invariants (enumerated in tests/core/test_transportstate.py, fuzzed against a
reference model in fuzz/test_transportstate_model.py):

- ``LOSE`` is emitted at most once per machine: only on entering ``CLOSED`` or
  ``ABORTED``, which have no way out.
- ``close()`` flushes: from a live state it goes to ``CLOSING``, and only
  ``DRAINED`` (or a fatal error) leaves ``CLOSING``; ``abort()`` discards.
- User calls never miss: pausing twice, closing twice, aborting after a close,
  ``write_eof()`` after ``close()`` are no-ops, as in asyncio 3.7+.
- I/O inputs that cannot happen in a state (bytes while reading is paused,
  a drained buffer after the connection was lost) are our own bug: a miss
  raises ``TransitionError`` naming the pair.

What it does not know: sockets, bytes, the buffer's size, time, the protocol.
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = [
    "Action",
    "Input",
    "State",
    "TRANSITIONS",
    "TransitionError",
    "TransportLifecycle",
]


class State(enum.Enum):
    """Lifecycle states of a stream transport."""

    # Identity hashing in C: Enum.__hash__ is Python code, and these are
    # looked up on every read and write of a transport.
    __hash__ = object.__hash__

    OPEN = "open"
    READ_PAUSED = "reading paused"
    READ_EOF = "EOF received"
    WRITE_EOF = "write-EOF sent"
    WRITE_EOF_PAUSED = "write-EOF sent, reading paused"
    BOTH_EOF = "EOF both ways"
    CLOSING = "closing"
    CLOSED = "closed"
    ABORTED = "aborted"
    # The same three after write_eof(): write() stays refused with asyncio's
    # "after write_eof()" error instead of being counted as a lost write.
    CLOSING_AFTER_WRITE_EOF = "closing after write-EOF"
    CLOSED_AFTER_WRITE_EOF = "closed after write-EOF"
    ABORTED_AFTER_WRITE_EOF = "aborted after write-EOF"


class Input(enum.Enum):
    """What happened: an I/O result or a user call."""

    __hash__ = object.__hash__

    READABLE = "readable"
    DRAINED = "drained"
    SHORT_WRITE = "short write"
    EAGAIN = "EAGAIN"
    EOF = "EOF"
    RESET = "reset"
    CLOSE = "close"
    ABORT = "abort"
    WRITE_EOF = "write_eof"
    PAUSE = "pause"
    RESUME = "resume"


class Action(enum.Enum):
    """What the transport must do."""

    __hash__ = object.__hash__

    DELIVER = "deliver"
    START_READING = "start reading"
    STOP_READING = "stop reading"
    WATCH_WRITABLE = "watch writable"
    STOP_WRITING = "stop writing"
    SHUTDOWN_WRITE = "shutdown write"
    EOF_RECEIVED = "eof_received"
    DISCARD = "discard"
    CHECK_DRAINED = "check drained"
    LOSE = "lose"


class TransitionError(RuntimeError):
    """A ``(state, input)`` pair with no transition: a bug in the caller (ours)."""


S, In, A = State, Input, Action
_Row = tuple[State, tuple[Action, ...]]

_NONE: Final[tuple[Action, ...]] = ()
_FORCE: Final = (A.STOP_READING, A.STOP_WRITING, A.DISCARD, A.LOSE)
_FORCE_NOT_READING: Final = (A.STOP_WRITING, A.DISCARD, A.LOSE)


def _build() -> dict[tuple[State, Input], _Row]:
    t: dict[tuple[State, Input], _Row] = {}

    def row(state: State, inp: Input, nxt: State, *actions: Action) -> None:
        assert (state, inp) not in t, (state, inp)
        t[(state, inp)] = (nxt, actions)

    reading = (S.OPEN, S.WRITE_EOF)
    live = (S.OPEN, S.READ_PAUSED, S.READ_EOF, S.WRITE_EOF, S.WRITE_EOF_PAUSED, S.BOTH_EOF)
    writing = (S.OPEN, S.READ_PAUSED, S.READ_EOF, S.CLOSING)
    lost = (S.CLOSED, S.ABORTED)

    # Bytes arrive only while reading is watched.
    for s in reading:
        row(s, In.READABLE, s, A.DELIVER)

    # The peer's EOF ends reading; the protocol decides whether to stay open.
    row(S.OPEN, In.EOF, S.READ_EOF, A.STOP_READING, A.EOF_RECEIVED)
    row(S.WRITE_EOF, In.EOF, S.BOTH_EOF, A.STOP_READING, A.EOF_RECEIVED)

    # The write side: a buffer left over is watched; a drained one is not.
    for s in writing:
        row(s, In.SHORT_WRITE, s, A.WATCH_WRITABLE)
        row(s, In.EAGAIN, s, A.WATCH_WRITABLE)
    for s in (S.OPEN, S.READ_PAUSED, S.READ_EOF):
        row(s, In.DRAINED, s, A.STOP_WRITING)
    # After write_eof() the buffer still flushes, then the write side shuts.
    for s in (S.WRITE_EOF, S.WRITE_EOF_PAUSED, S.BOTH_EOF):
        row(s, In.SHORT_WRITE, s, A.WATCH_WRITABLE)
        row(s, In.EAGAIN, s, A.WATCH_WRITABLE)
        row(s, In.DRAINED, s, A.STOP_WRITING, A.SHUTDOWN_WRITE)
    row(S.CLOSING, In.DRAINED, S.CLOSED, A.STOP_WRITING, A.LOSE)

    # write_eof(): once; a no-op when closing or already sent (asyncio).
    row(S.OPEN, In.WRITE_EOF, S.WRITE_EOF, A.CHECK_DRAINED)
    row(S.READ_PAUSED, In.WRITE_EOF, S.WRITE_EOF_PAUSED, A.CHECK_DRAINED)
    row(S.READ_EOF, In.WRITE_EOF, S.BOTH_EOF, A.CHECK_DRAINED)
    for s in (S.WRITE_EOF, S.WRITE_EOF_PAUSED, S.BOTH_EOF, S.CLOSING, *lost):
        row(s, In.WRITE_EOF, s)

    # pause_reading()/resume_reading(): idempotent, no-ops when not applicable.
    row(S.OPEN, In.PAUSE, S.READ_PAUSED, A.STOP_READING)
    row(S.WRITE_EOF, In.PAUSE, S.WRITE_EOF_PAUSED, A.STOP_READING)
    row(S.READ_PAUSED, In.RESUME, S.OPEN, A.START_READING)
    row(S.WRITE_EOF_PAUSED, In.RESUME, S.WRITE_EOF, A.START_READING)
    for s in (S.READ_PAUSED, S.WRITE_EOF_PAUSED, S.READ_EOF, S.BOTH_EOF, S.CLOSING, *lost):
        row(s, In.PAUSE, s)
    for s in (S.OPEN, S.WRITE_EOF, S.READ_EOF, S.BOTH_EOF, S.CLOSING, *lost):
        row(s, In.RESUME, s)

    # close(): stop reading, flush, then lose. Twice is a no-op.
    for s in live:
        stop = (A.STOP_READING,) if s in reading else ()
        row(s, In.CLOSE, S.CLOSING, *stop, A.CHECK_DRAINED)
    for s in (S.CLOSING, *lost):
        row(s, In.CLOSE, s)

    # abort() and fatal errors discard the buffer and lose the connection now.
    for s in live:
        force = _FORCE if s in reading else _FORCE_NOT_READING
        row(s, In.ABORT, S.ABORTED, *force)
        row(s, In.RESET, S.ABORTED, *force)
    row(S.CLOSING, In.ABORT, S.ABORTED, *_FORCE_NOT_READING)
    row(S.CLOSING, In.RESET, S.ABORTED, *_FORCE_NOT_READING)
    for s in lost:
        # connection_lost is already on its way: once is all it gets.
        row(s, In.ABORT, s)
        row(s, In.RESET, s)

    # After write_eof() the closing states are the same, under other names.
    after_eof = {
        S.CLOSING: S.CLOSING_AFTER_WRITE_EOF,
        S.CLOSED: S.CLOSED_AFTER_WRITE_EOF,
        S.ABORTED: S.ABORTED_AFTER_WRITE_EOF,
    }
    for (s, inp), (nxt, actions) in list(t.items()):
        if s in (S.WRITE_EOF, S.WRITE_EOF_PAUSED, S.BOTH_EOF) and nxt in after_eof:
            t[(s, inp)] = (after_eof[nxt], actions)
        elif s in after_eof:
            row(after_eof[s], inp, after_eof[nxt], *actions)
    return t


#: ``(state, input) -> (next state, actions)``; a pair absent here is a bug.
TRANSITIONS: Final[dict[tuple[State, Input], _Row]] = _build()

#: States in which reading is watched (``is_reading()``).
READING_STATES: Final = frozenset({S.OPEN, S.WRITE_EOF})
#: States after ``LOSE``.
LOST_STATES: Final = frozenset(
    {S.CLOSED, S.ABORTED, S.CLOSED_AFTER_WRITE_EOF, S.ABORTED_AFTER_WRITE_EOF}
)
#: States in which ``is_closing()`` is true.
CLOSING_STATES: Final = LOST_STATES | {S.CLOSING, S.CLOSING_AFTER_WRITE_EOF}
#: States in which ``write()`` is refused as "after write_eof()".
WRITE_EOF_STATES: Final = frozenset(
    {
        S.WRITE_EOF,
        S.WRITE_EOF_PAUSED,
        S.BOTH_EOF,
        S.CLOSING_AFTER_WRITE_EOF,
        S.CLOSED_AFTER_WRITE_EOF,
        S.ABORTED_AFTER_WRITE_EOF,
    }
)


class TransportLifecycle:
    """One stream transport's lifecycle state; ``feed(input)`` -> actions."""

    __slots__ = ("state",)

    def __init__(self, state: State = State.OPEN) -> None:
        self.state = state

    def feed(self, inp: Input) -> tuple[Action, ...]:
        """Apply *inp*; return the actions to perform, in order."""
        try:
            nxt, actions = TRANSITIONS[(self.state, inp)]
        except KeyError:
            raise TransitionError(
                f"no transition for input {inp.value!r} in state {self.state.value!r}"
            ) from None
        self.state = nxt
        return actions

    @property
    def is_reading(self) -> bool:
        """True while readability is watched."""
        return self.state in READING_STATES

    @property
    def is_closing(self) -> bool:
        """True once close() or abort() was called or the connection was lost."""
        return self.state in CLOSING_STATES

    @property
    def write_eof_called(self) -> bool:
        """True once write_eof() was called (closing or not)."""
        return self.state in WRITE_EOF_STATES

    @property
    def is_lost(self) -> bool:
        """True once connection_lost is scheduled."""
        return self.state in LOST_STATES

    def statistics(self) -> dict[str, Any]:
        """The state and the four questions asked of it, for tests and users."""
        return {
            "state": self.state.value,
            "reading": self.is_reading,
            "closing": self.is_closing,
            "write_eof": self.write_eof_called,
            "lost": self.is_lost,
        }

    def __repr__(self) -> str:
        return f"<TransportLifecycle {self.state.value}>"
