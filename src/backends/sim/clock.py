"""Virtual time: the one clock of a simulated world, and each host's skewed view.

The world's clock starts at 0.0 and only moves forward when the backend's
``poll`` finds nothing to do and jumps to the next scheduled event (or to the
end of the poll's timeout). Nothing here reads a real clock.

Hosts may have skewed clocks: ``offset`` seconds ahead (or behind) and a
``drift`` rate (0.001 = 1 ms per second fast). The loop's ``time()`` is the
world's clock (one loop drives every host); a host's skewed view is what
:meth:`HostClock.wall` gives, as seconds since the epoch starting at
``EPOCH`` -- the deterministic stand-in for ``time.time()`` on that host.
"""

from __future__ import annotations

__all__ = ["EPOCH", "HostClock", "VirtualClock"]

#: Wall-clock time of virtual instant 0 (2000-01-01T00:00:00Z), fixed so that
#: ``wall()`` is the same in every run.
EPOCH = 946684800.0


class VirtualClock:
    """The world's monotonic virtual time, in seconds."""

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def advance_to(self, when: float) -> None:
        """Move time forward to *when*; never backward."""
        if when > self.now:
            self.now = when

    def __repr__(self) -> str:
        return f"<VirtualClock now={self.now!r}>"


class HostClock:
    """A host's view of time: ``now * (1 + drift) + offset``."""

    __slots__ = ("offset", "drift")

    def __init__(self, offset: float = 0.0, drift: float = 0.0) -> None:
        self.offset = offset
        self.drift = drift

    def monotonic(self, now: float) -> float:
        """The host's monotonic reading at world time *now*."""
        return now * (1.0 + self.drift) + self.offset

    def wall(self, now: float) -> float:
        """The host's wall-clock reading (seconds since the epoch) at world time *now*."""
        return EPOCH + self.monotonic(now)
