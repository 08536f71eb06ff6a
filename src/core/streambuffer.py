"""The stream receive buffer: asyncio's StreamReader decisions as a pure machine.

``StreamBuffer`` holds the bytes a transport delivered and not yet read, the
EOF flag, the exception set by the transport (if any), the line ``limit`` and
the "transport reading is paused" flag. It answers asyncio's read operations
with bytes, an exception, or ``NEED_DATA`` ("park the reader until the buffer
says WAKE"), and tells its driver when to pause and resume the transport's
reading. It holds no future, no loop, no transport, no clock: a driver (our
``sansloop.compat.streams.StreamReader``, or another framework's) owns the
waiting and does the pausing.

Inputs (transport side), each returning a bit set of actions:

* ``feed_data(data)``: append (empty data is ignored). After ``feed_eof()`` it is
  the caller's bug: ``AssertionError('feed_data after feed_eof')`` as asyncio.
* ``feed_eof()``; ``set_exception(exc)``: the next read operation raises *exc*.

Read operations (reader side), asyncio's semantics and messages exactly, each
returning ``bytes`` or ``NEED_DATA`` (never both waiting and consuming):

* ``read(n=-1)``: up to *n* bytes once at least one is buffered (``b''`` at EOF);
  ``n < 0`` is everything up to EOF (a driver may rather drain in chunks of
  ``limit``, as asyncio does; ours does).
* ``readuntil(separator=b'\\n')``: *separator* is a non-empty bytes-like object or
  (as Python 3.13, offered on every version) a tuple of them, where the shortest
  match wins. ``LimitOverrunError(msg, consumed)`` when no separator starts
  within ``limit`` bytes (data kept), ``IncompleteReadError(partial, None)`` at
  EOF without a separator (buffer emptied).
* ``readline()``: ``readuntil(b'\\n')`` where an overrun drops the overlong line
  (through its newline if one was found, else the whole buffer) and raises
  ``ValueError`` with the overrun's message; EOF returns the partial line.
* ``readexactly(n)``: ``IncompleteReadError(partial, n)`` at EOF short of *n*.
* ``at_eof()``.

The exception set by ``set_exception`` is raised by every read operation before
anything else, after its argument checks (asyncio's order).

Flow control (the pause/resume-reading decision). Actions are the bits
``WAKE`` (resolve the parked reader: it should retry), ``PAUSE`` and ``RESUME``
(call the transport's ``pause_reading()``/``resume_reading()``); the machine
assumes the driver performs each PAUSE/RESUME it is given, and the two strictly
alternate. ``controllable`` says whether there is a transport to pause (asyncio
pauses nothing before ``set_transport`` and forgets a transport whose
``pause_reading`` raises NotImplementedError).

* High-water mark ``2 * limit``: reading pauses once more than that is buffered.
* Low-water mark ``limit``: reading resumes once a read leaves at most that.
* A parked reader needs more bytes, so parking resumes reading -- the one
  exception is ours: a ``readexactly(n)`` that waits only releases reading while
  fewer than *n* bytes are buffered, and while it waits the high-water mark is
  ``max(2 * limit, n - 1)``, so reading pauses as soon as *n* bytes are in.
  asyncio pauses at ``2 * limit`` and its waiting reader resumes at once, which
  toggles the transport twice per received chunk until *n* is reached; here the
  transport is paused at most once per read, and the buffer never holds more
  than ``max(n, 2 * limit)`` plus one received chunk (docs/compat.md).
* A parked ``readexactly(n)`` is woken only when *n* bytes are in (or EOF or an
  exception): asyncio wakes it on every chunk, only for it to park again.

* Reading is never left paused under a parked reader that is still short of
  what it needs (it would wait forever): ``flow()`` resumes it, and does not
  pause it, while such a reader is parked.

Driver protocol: call a read operation; on ``NEED_DATA`` call ``flow()`` (and
perform what it says), park until a ``WAKE``, then call ``stop_waiting()`` --
also when the wait ends by cancellation -- and retry. After a read operation
returns or raises, call ``flow()``; a driver may skip that call while
``paused`` is False (the only decision it can then miss is a PAUSE, which the
next ``feed_data`` makes). ``feed_data``'s result already includes its flow
decision. Only one reader may be parked at a time: a read that would park
while another is parked raises asyncio's RuntimeError ("readexactly() called
while another coroutine is already waiting for incoming data"); one that can
be answered at once is answered.

Whose fault: ValueError/AssertionError are the caller's misuse;
LimitOverrunError/IncompleteReadError are the peer's data against the limit or
EOF; the exception from ``set_exception`` is the transport's.

Invariants: ``paused`` implies ``controllable``; the reads never return data
and NEED_DATA together; data is consumed only by a read that returns (or by the
documented buffer-dropping on overrun/EOF errors).
"""

from __future__ import annotations

from asyncio.exceptions import IncompleteReadError, LimitOverrunError
from typing import Any, Final, NamedTuple

__all__ = [
    "StreamBuffer",
    "StreamBufferStatistics",
    "NEED_DATA",
    "WAKE",
    "PAUSE",
    "RESUME",
    "DEFAULT_LIMIT",
]

#: asyncio.streams._DEFAULT_LIMIT: the line limit, and half the high-water mark.
DEFAULT_LIMIT: Final = 2**16

WAKE: Final = 1
PAUSE: Final = 2
RESUME: Final = 4

#: ``_demand`` of a parked read that wants any byte (read, readuntil, readline).
_ANY: Final = 0


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __reduce__(self) -> str:
        return "NEED_DATA"


#: Returned by a read operation that must wait for more data.
NEED_DATA: Final = _NeedData()

_NEWLINE: Final = (b"\n",)


class StreamBufferStatistics(NamedTuple):
    """A snapshot of a StreamBuffer, for tests and monitoring."""

    buffered: int
    limit: int
    eof: bool
    paused: bool
    controllable: bool
    waiting: bool
    demand: int | None
    exception: BaseException | None


def _separators(separator: Any) -> tuple[Any, ...]:
    """Normalize readuntil's argument to a tuple sorted by length (asyncio 3.13)."""
    if isinstance(separator, tuple):
        seps = tuple(sorted(separator, key=len))
        if not seps:
            raise ValueError("Separator should contain at least one element")
    else:
        seps = (separator,)
    if len(seps[0]) == 0:
        raise ValueError("Separator should be at least one-byte string")
    return seps


class StreamBuffer:
    """asyncio's stream receive buffer as a machine (see the module docstring)."""

    __slots__ = (
        "_buffer",
        "_limit",
        "_eof",
        "_exception",
        "paused",
        "_controllable",
        "_demand",
        "_high",
        "_scan_seps",
        "_scan_offset",
    )

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._buffer = bytearray()
        self._limit = limit
        self._eof = False
        self._exception: BaseException | None = None
        #: Read-only: whether the machine has told the driver to pause reading
        #: (and not to resume it yet). A plain attribute: drivers test it per read.
        self.paused = False
        self._controllable = False
        # None: no reader parked; _ANY: a parked read wanting any byte;
        # n > 0: a parked readexactly(n).
        self._demand: int | None = None
        self._high = 2 * limit  # the pause threshold in force
        # readuntil's scan resumes where the last scan with the same separators
        # stopped: no separator starts before _scan_offset (reset on consume).
        self._scan_seps: tuple[Any, ...] | None = None
        self._scan_offset = 0

    def __repr__(self) -> str:
        parts = [f"{len(self._buffer)} bytes", f"limit={self._limit}"]
        if self._eof:
            parts.append("eof")
        if self._exception is not None:
            parts.append(f"exception={self._exception!r}")
        if self.paused:
            parts.append("paused")
        if self._demand is not None:
            parts.append(f"waiting demand={self._demand}")
        return f"<StreamBuffer {' '.join(parts)}>"

    # -- state -------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The line limit (readuntil/readline) and half the high-water mark."""
        return self._limit

    @property
    def buffer(self) -> bytearray:
        """The buffered bytes themselves (asyncio's ``StreamReader._buffer``)."""
        return self._buffer

    @property
    def eof(self) -> bool:
        """Whether ``feed_eof()`` was called (bytes may still be buffered)."""
        return self._eof

    @property
    def exception(self) -> BaseException | None:
        """The exception given to ``set_exception``, or None."""
        return self._exception

    @property
    def waiting(self) -> bool:
        """Whether a reader is parked (between NEED_DATA and ``stop_waiting``)."""
        return self._demand is not None

    @property
    def controllable(self) -> bool:
        """Whether there is a transport whose reading can be paused."""
        return self._controllable

    @controllable.setter
    def controllable(self, value: bool) -> None:
        """Say whether PAUSE/RESUME can be performed; False also forgets a pause."""
        self._controllable = bool(value)
        if not value:
            self.paused = False

    def __len__(self) -> int:
        return len(self._buffer)

    def at_eof(self) -> bool:
        """True when EOF was fed and every buffered byte has been read."""
        return self._eof and not self._buffer

    def statistics(self) -> StreamBufferStatistics:
        """A snapshot: buffered bytes, limit, flags, the parked reader's demand."""
        return StreamBufferStatistics(
            len(self._buffer),
            self._limit,
            self._eof,
            self.paused,
            self._controllable,
            self._demand is not None,
            self._demand,
            self._exception,
        )

    # -- inputs from the transport -----------------------------------------

    def feed_data(self, data: Any) -> int:
        """Append *data*; return WAKE and/or PAUSE."""
        if self._eof:
            raise AssertionError("feed_data after feed_eof")
        if not data:
            return 0
        buffer = self._buffer
        buffer.extend(data)
        demand = self._demand
        actions = 0
        if demand is not None and (demand == _ANY or len(buffer) >= demand):
            actions = WAKE
        if self._controllable and not self.paused and len(buffer) > self._high:
            self.paused = True
            actions |= PAUSE
        return actions

    def feed_eof(self) -> int:
        """Record EOF; return WAKE if a reader is parked."""
        self._eof = True
        return WAKE if self._demand is not None else 0

    def set_exception(self, exc: BaseException) -> int:
        """Make every later read raise *exc*; return WAKE if a reader is parked."""
        self._exception = exc
        return WAKE if self._demand is not None else 0

    # -- flow control --------------------------------------------------------

    def flow(self) -> int:
        """The pause/resume decision now: PAUSE, RESUME or 0 (and record it as done).

        After EOF nothing more will arrive: neither pausing nor resuming helps.
        """
        if not self._controllable or self._eof:
            return 0
        size = len(self._buffer)
        demand = self._demand
        # A parked reader that is short of what it needs must be fed: never
        # leave reading paused under it (that would wait forever).
        starving = demand is not None and (demand == _ANY or size < demand)
        if self.paused:
            if starving or size <= self._limit:
                self.paused = False
                return RESUME
        elif size > self._high and not starving:
            self.paused = True
            return PAUSE
        return 0

    def stop_waiting(self) -> None:
        """The parked reader left (woken, cancelled or failed)."""
        self._demand = None
        self._high = 2 * self._limit

    def _park(self, demand: int, name: str) -> _NeedData:
        if self._demand is not None:
            raise RuntimeError(
                f"{name}() called while another coroutine is already waiting for incoming data"
            )
        self._demand = demand
        if demand > self._high:
            self._high = demand - 1
        return NEED_DATA

    def _consumed(self) -> None:
        self._scan_seps = None
        self._scan_offset = 0

    # -- read operations -----------------------------------------------------

    def read(self, n: int = -1) -> bytes | _NeedData:
        """Up to *n* bytes (*n* < 0: all until EOF); ``b''`` at EOF."""
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        buffer = self._buffer
        if n < 0:
            if not self._eof:
                return self._park(_ANY, "read")
        elif not buffer:
            if not self._eof:
                return self._park(_ANY, "read")
            return b""
        if n < 0 or n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        self._scan_seps = None
        self._scan_offset = 0
        return data

    def readexactly(self, n: int) -> bytes | _NeedData:
        """Exactly *n* bytes; IncompleteReadError(partial, n) at EOF short of them."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        buffer = self._buffer
        size = len(buffer)
        if size < n:
            if self._eof:
                partial = bytes(buffer)
                buffer.clear()
                self._consumed()
                raise IncompleteReadError(partial, n)
            return self._park(n, "readexactly")
        if size == n:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        self._scan_seps = None
        self._scan_offset = 0
        return data

    def readuntil(self, separator: Any = b"\n") -> bytes | _NeedData:
        """Bytes through the first (shortest) separator; see the module docstring."""
        seps = (
            _NEWLINE if separator is _NEWLINE[0] or separator == b"\n" else _separators(separator)
        )
        if self._exception is not None:
            raise self._exception
        buffer = self._buffer
        size = len(buffer)
        # The scan resumes where the last one with these separators stopped
        # (no separator starts before it); the answer is the same as a scan of
        # the whole buffer, which is what asyncio does on each call.
        offset = self._scan_offset if self._scan_seps == seps else 0
        if size >= len(seps[0]):
            start = -1
            end = -1
            if size - offset >= len(seps[0]):
                for sep in seps:
                    found = buffer.find(sep, offset)
                    if found != -1 and (end == -1 or found + len(sep) < end):
                        start = found
                        end = found + len(sep)
            if end != -1:
                if start > self._limit:
                    raise LimitOverrunError(
                        "Separator is found, but chunk is longer than limit", start
                    )
                data = bytes(memoryview(buffer)[:end])
                del buffer[:end]
                self._consumed()
                return data
            # No separator can start before this point: the longest one would
            # have to end beyond the buffer. Past the limit, the chunk is too long.
            offset = max(0, size + 1 - len(seps[-1]))
            self._scan_seps = seps
            self._scan_offset = offset
            if offset > self._limit:
                raise LimitOverrunError(
                    "Separator is not found, and chunk exceed the limit", offset
                )
        if self._eof:
            partial = bytes(buffer)
            buffer.clear()
            self._consumed()
            raise IncompleteReadError(partial, None)
        return self._park(_ANY, "readuntil")

    def readline(self) -> bytes | _NeedData:
        """A line through b'\\n'; the partial line at EOF; ValueError past the limit."""
        if self._exception is None:
            # Fast path: a whole line within the limit is buffered.
            buffer = self._buffer
            end = buffer.find(b"\n", self._scan_offset if self._scan_seps is _NEWLINE else 0)
            if 0 <= end <= self._limit:
                end += 1
                data = bytes(buffer[:end])
                del buffer[:end]
                self._scan_seps = None
                self._scan_offset = 0
                return data
        try:
            return self.readuntil(_NEWLINE[0])
        except IncompleteReadError as exc:
            return exc.partial
        except LimitOverrunError as exc:
            buffer = self._buffer
            if buffer.startswith(b"\n", exc.consumed):
                del buffer[: exc.consumed + 1]
            else:
                buffer.clear()
            self._consumed()
            raise ValueError(exc.args[0]) from exc
