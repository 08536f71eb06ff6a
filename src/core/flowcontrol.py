"""WriteFlowControl: the write side of a transport's flow control, as a machine.

Contract
--------
A transport buffers what the socket would not take. The protocol must hear
``pause_writing()`` when the buffer grows past the *high* water mark and
``resume_writing()`` when it drains to the *low* water mark or below. This
machine keeps the byte count and the paused flag and answers, for each change,
which of the two the protocol must hear now (or ``None``). It calls nothing.

Inputs (methods) and what they return:

- ``grow(n)``: *n* bytes were added to the buffer -> ``PAUSE`` or ``None``.
- ``shrink(n)``: *n* bytes left the buffer (sent) -> ``RESUME`` or ``None``.
- ``clear()``: the buffer was discarded (abort, fatal error) -> ``None``; the
  protocol is not resumed (asyncio does not resume a protocol whose connection
  is being lost), but the machine forgets the bytes.
- ``set_limits(high=None, low=None)`` -> ``PAUSE`` or ``None``. Defaults are
  asyncio's: high = 64 KiB (or ``4 * low`` when only *low* is given), low =
  ``high // 4``. ``ValueError("high (%r) must be >= low (%r) must be >= 0")``
  otherwise. Like asyncio, new limits can pause at once but never resume on
  their own: a paused protocol resumes on the next drain.
- ``check()``: re-evaluate without a size change -> ``PAUSE``/``RESUME``/``None``
  (used after a sendfile or a protocol swap).

Invariants (checked by tests/core/test_flowcontrol.py):

- ``PAUSE`` and ``RESUME`` strictly alternate, starting with ``PAUSE``.
- ``PAUSE`` is only returned when ``size > high``; ``RESUME`` only when
  ``size <= low``.
- ``size`` is never negative (``shrink`` by more than the size is a caller bug:
  ``ValueError``).

What it does not know: the socket, the protocol, time. The caller (a stream
transport's write/writelines, a datagram transport's sendto, the sendfile
fallback) delivers the answer to the protocol; an exception raised by
``protocol.pause_writing()``/``resume_writing()`` goes to the loop's exception
handler with asyncio's message (``"protocol.pause_writing() failed"``), see
``sansloop.compat.transports``.

Every write path must go through ``grow``: ``writelines`` included (stdlib
3.12/3.13 writelines appended to the buffer without pausing, CVE-2024-12254).
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "DEFAULT_HIGH_WATER",
    "PAUSE",
    "RESUME",
    "Signal",
    "WriteFlowControl",
    "resolve_limits",
]

#: asyncio's default high water mark for stream transports (transports.py,
#: _FlowControlMixin): 64 KiB keeps a fast writer from queueing without bound.
DEFAULT_HIGH_WATER: Final = 64 * 1024

PAUSE: Final = "pause_writing"
RESUME: Final = "resume_writing"

#: What the protocol must hear: the name of the protocol method to call.
Signal = Literal["pause_writing", "resume_writing"]


def resolve_limits(high: int | None = None, low: int | None = None) -> tuple[int, int]:
    """asyncio's defaults for (high, low); ValueError for an impossible pair."""
    if high is None:
        high = DEFAULT_HIGH_WATER if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


class WriteFlowControl:
    """Buffer-size accounting and the pause/resume-writing decisions."""

    __slots__ = ("_high", "_low", "_size", "_paused", "_pauses")

    def __init__(self, high: int | None = None, low: int | None = None) -> None:
        self._high, self._low = resolve_limits(high, low)
        self._size = 0
        self._paused = False
        self._pauses = 0

    @property
    def size(self) -> int:
        """Bytes currently buffered."""
        return self._size

    @property
    def paused(self) -> bool:
        """True between a PAUSE and the next RESUME."""
        return self._paused

    @property
    def high(self) -> int:
        """The high water mark."""
        return self._high

    @property
    def low(self) -> int:
        """The low water mark."""
        return self._low

    def get_limits(self) -> tuple[int, int]:
        """``(low, high)``, the order of asyncio's get_write_buffer_limits()."""
        return (self._low, self._high)

    def set_limits(self, high: int | None = None, low: int | None = None) -> Signal | None:
        """Change the marks; PAUSE if the buffer is now above the new high mark."""
        self._high, self._low = resolve_limits(high, low)
        return self._maybe_pause()

    def grow(self, n: int) -> Signal | None:
        """*n* bytes were buffered."""
        self._size += n
        if self._size > self._high and not self._paused:
            self._paused = True
            self._pauses += 1
            return PAUSE
        return None

    def shrink(self, n: int) -> Signal | None:
        """*n* bytes were sent from the buffer."""
        if n > self._size:
            raise ValueError(f"cannot shrink a buffer of {self._size} bytes by {n}")
        self._size -= n
        if self._paused and self._size <= self._low:
            self._paused = False
            return RESUME
        return None

    def clear(self) -> None:
        """The buffer was discarded; no resume is owed to a lost connection."""
        self._size = 0

    def check(self) -> Signal | None:
        """Re-evaluate both marks without a size change."""
        if self._paused:
            if self._size <= self._low:
                self._paused = False
                return RESUME
            return None
        return self._maybe_pause()

    def _maybe_pause(self) -> Signal | None:
        if self._size > self._high and not self._paused:
            self._paused = True
            self._pauses += 1
            return PAUSE
        return None

    def statistics(self) -> dict[str, int | bool]:
        """Buffered bytes, marks, paused flag and how many pauses so far."""
        return {
            "size": self._size,
            "high": self._high,
            "low": self._low,
            "paused": self._paused,
            "pauses": self._pauses,
        }

    def __repr__(self) -> str:
        state = "paused" if self._paused else "flowing"
        return f"<WriteFlowControl {state} size={self._size} low={self._low} high={self._high}>"
