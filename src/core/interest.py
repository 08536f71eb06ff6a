"""The I/O interest table: which fd wants reading or writing, and who to call.

Contract
--------
State: for each fd, an optional reader handle and an optional writer handle.
Inputs: ``set_reader``/``set_writer`` (replace any previous one),
``remove_reader``/``remove_writer``, ``ready(fd, events)``.
Outputs: each change returns ``(op, mask, previous)``: the backend operation the
caller must perform (``REGISTER``, ``MODIFY``, ``UNREGISTER`` or ``NOTHING``)
with the new event mask, and the handle that was replaced or removed (which
the caller cancels). ``ready`` returns the handles an event wakes.

Invariants: an fd is in the table iff it has a reader or a writer; the mask the
backend holds for an fd always equals the table's mask once the caller has done
the returned operation. Cancelled handles are still returned by ``ready`` and
skipped by whoever runs them.

What it does not know: what an fd is (validity, ownership by a transport), the
backend, the clock.
"""

from __future__ import annotations

from typing import Any

from .handles import Handle

__all__ = ["InterestTable", "NOTHING", "REGISTER", "MODIFY", "UNREGISTER", "READ", "WRITE"]

#: Event bits (the same values as selectors.EVENT_READ / EVENT_WRITE).
READ = 1
WRITE = 2

NOTHING = 0
REGISTER = 1
MODIFY = 2
UNREGISTER = 3


class InterestTable:
    """fd -> [reader handle or None, writer handle or None]."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, list[Handle | None]] = {}

    def _set(self, fd: int, slot: int, handle: Handle) -> tuple[int, int, Handle | None]:
        entry = self._entries.get(fd)
        if entry is None:
            entry = [None, None]
            entry[slot] = handle
            self._entries[fd] = entry
            return REGISTER, READ if slot == 0 else WRITE, None
        previous = entry[slot]
        entry[slot] = handle
        if previous is not None:
            return NOTHING, self._mask(entry), previous
        return MODIFY, self._mask(entry), None

    def _remove(self, fd: int, slot: int) -> tuple[int, int, Handle | None]:
        entry = self._entries.get(fd)
        if entry is None or entry[slot] is None:
            return NOTHING, 0, None
        previous = entry[slot]
        entry[slot] = None
        if entry[1 - slot] is None:
            del self._entries[fd]
            return UNREGISTER, 0, previous
        return MODIFY, self._mask(entry), previous

    @staticmethod
    def _mask(entry: list[Handle | None]) -> int:
        return (READ if entry[0] is not None else 0) | (WRITE if entry[1] is not None else 0)

    def set_reader(self, fd: int, handle: Handle) -> tuple[int, int, Handle | None]:
        """Make *handle* the reader of *fd*."""
        return self._set(fd, 0, handle)

    def set_writer(self, fd: int, handle: Handle) -> tuple[int, int, Handle | None]:
        """Make *handle* the writer of *fd*."""
        return self._set(fd, 1, handle)

    def remove_reader(self, fd: int) -> tuple[int, int, Handle | None]:
        """Drop the reader of *fd*, if any."""
        return self._remove(fd, 0)

    def remove_writer(self, fd: int) -> tuple[int, int, Handle | None]:
        """Drop the writer of *fd*, if any."""
        return self._remove(fd, 1)

    def reader(self, fd: int) -> Handle | None:
        """The reader handle of *fd*, or None."""
        entry = self._entries.get(fd)
        return None if entry is None else entry[0]

    def writer(self, fd: int) -> Handle | None:
        """The writer handle of *fd*, or None."""
        entry = self._entries.get(fd)
        return None if entry is None else entry[1]

    def forget(self, fd: int) -> None:
        """Remove *fd* entirely without reporting (used to undo a failed register)."""
        self._entries.pop(fd, None)

    def clear(self) -> list[Handle]:
        """Forget every fd (the loop is closing); return the handles dropped."""
        dropped = [h for entry in self._entries.values() for h in entry if h is not None]
        self._entries.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, fd: object) -> bool:
        return fd in self._entries

    def fds(self) -> list[int]:
        """The registered fds, in registration order (stable, never hash order)."""
        return list(self._entries)

    def statistics(self) -> dict[str, Any]:
        """Counts of registered fds, readers and writers."""
        readers = sum(1 for e in self._entries.values() if e[0] is not None)
        writers = sum(1 for e in self._entries.values() if e[1] is not None)
        return {"fds": len(self._entries), "readers": readers, "writers": writers}
