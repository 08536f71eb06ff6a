"""The trace of a simulated run: events with virtual timestamps, and their digest.

An event is a tuple ``(time, kind, *details)`` where every detail is an int,
a float, a str or a tuple of them -- values whose ``repr`` is the same in every
process, so the digest is too (nothing hash-ordered, no object ids).

``digest()`` is the sha256 of the events' reprs, one per line. Two runs with the
same seed (or the same choice values) and the same program give the same
digest; a run that takes another path gives another one. The events recorded
are the ones that decide an interleaving: which fds a poll reported ready and
in which order, every packet and segment sent (with its length and the crc32
of its bytes, so a run whose data changes changes the digest too), delivered,
dropped or held, every
connection opened, refused or reset, every executor job, every fault applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

__all__ = ["Trace"]


class Trace:
    """An append-only list of events with a sha256 digest."""

    __slots__ = ("events", "enabled", "limit", "dropped")

    def __init__(self, *, enabled: bool = True, limit: int | None = None) -> None:
        self.events: list[tuple[Any, ...]] = []
        #: False: record nothing (the digest is then of an empty trace)
        self.enabled = enabled
        #: keep at most this many events; the rest are only counted in
        #: ``dropped`` (so a limit that is reached changes the digest)
        self.limit = limit
        self.dropped = 0

    def add(self, now: float, kind: str, *details: Any) -> None:
        """Record one event at virtual time *now*."""
        if not self.enabled:
            return
        if self.limit is not None and len(self.events) >= self.limit:
            self.dropped += 1
            return
        self.events.append((now, kind, *details))

    def digest(self) -> str:
        """sha256 (hex) of the recorded events, in order."""
        h = hashlib.sha256()
        for event in self.events:
            h.update(repr(event).encode())
            h.update(b"\n")
        return h.hexdigest()

    def kinds(self, *kinds: str) -> list[tuple[Any, ...]]:
        """The events of the given kinds, in order."""
        wanted = set(kinds)
        return [e for e in self.events if e[1] in wanted]

    def format(self, last: int | None = None) -> str:
        """Human-readable lines ``t=... kind details`` (the last *last* only)."""
        events = self.events if last is None else self.events[-last:]
        return "\n".join(f"t={e[0]:.6f} {e[1]} {' '.join(map(str, e[2:]))}" for e in events)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)
