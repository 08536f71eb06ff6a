"""The wakeup channel: how another thread interrupts a blocked ``poll``.

Facts
-----
- A thread blocked in ``epoll_wait``/``poll``/``select`` returns when one of
  its fds becomes ready. To wake it from another thread we make our own fd
  ready: an ``eventfd`` (Linux, ``os.eventfd`` since Python 3.10) or the read
  end of a non-blocking self-pipe (other POSIX) or of a socketpair (Windows,
  where ``select`` only accepts sockets).
- An eventfd is a 64-bit counter: a write adds, one read returns the sum and
  resets it, so one read drains any number of writes. A pipe holds 64 KiB on
  Linux (less elsewhere); a self-pipe written once per wakeup can fill up, and
  then a blocking write deadlocks or a non-blocking one drops the signal.
- All fds here are close-on-exec and non-blocking.

The choice: a flag, not a queue
-------------------------------
``wakeup()`` writes only when ``pending`` is false, and sets it first. The
poll thread clears it only after it has drained the fd. So a flood of wakeups
between two polls costs one write; the fd can never fill (a write that would
block means a wakeup is already pending, so it is dropped safely); draining
never carries data.

Why no wakeup is lost: a caller first queues its work, then calls
``wakeup()``. If it skips the write, ``pending`` was true, so the drain has not
yet finished clearing it, so the poll thread has not yet returned from the
poll in which it will look at the ready queue. A race in which two threads
both see ``pending`` false costs one extra write and at worst one early
return from a later poll; the loop treats that as a poll with no events.

Thread and signal safety: the fast path (already pending) takes no lock. The
write takes a re-entrant lock shared with ``close()``, so a write never lands
on an fd number that ``close()`` has released and the OS may have reused; a
signal handler that calls ``wakeup()`` inside ``close()`` on the same thread
re-enters instead of deadlocking. ``wakeup()`` after ``close()`` is a no-op:
threads race with the loop's shutdown, and the loop reports "closed" itself.

Signals: a Python signal handler runs in the main thread between bytecodes.
If the signal lands just before the poll's syscall starts, the syscall is not
interrupted and the handler waits until the poll returns. Only
``signal.set_wakeup_fd`` closes that window (the C-level handler writes the
signal number to an fd the poll watches). It writes single bytes, which an
eventfd rejects (writes must be 8 bytes), so the loop's signal support needs
its own non-blocking socketpair for it, registered like any reader; this
channel is not that fd.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

__all__ = ["Wakeup", "KINDS", "best_kind"]

#: The channel kinds, best first.
KINDS = ("eventfd", "pipe", "socket")


def best_kind() -> str:
    """The best channel this platform offers."""
    if hasattr(os, "eventfd"):
        return "eventfd"
    if os.name == "posix":
        return "pipe"
    return "socket"


class Wakeup:
    """A thread-safe, never-filling wakeup flag backed by one readable fd."""

    __slots__ = ("kind", "pending", "writes", "_rfd", "_wfd", "_socks", "_lock")

    def __init__(self, kind: str | None = None) -> None:
        kind = best_kind() if kind is None else kind
        if kind not in KINDS:
            raise ValueError(f"unknown wakeup kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        #: True from the first ``wakeup()`` until the poll thread has drained.
        self.pending = False
        #: Number of writes actually made (a flood of wakeups counts once).
        self.writes = 0
        self._socks: tuple[socket.socket, socket.socket] | None = None
        self._lock = threading.RLock()
        if kind == "eventfd":
            self._rfd = self._wfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        elif kind == "pipe":
            if hasattr(os, "pipe2"):
                self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            else:  # macOS: os.pipe() fds are already non-inheritable (PEP 446)
                self._rfd, self._wfd = os.pipe()
                os.set_blocking(self._rfd, False)
                os.set_blocking(self._wfd, False)
        else:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            self._socks = (rsock, wsock)
            self._rfd, self._wfd = rsock.fileno(), wsock.fileno()

    def fileno(self) -> int:
        """The fd to watch for reading (-1 once closed)."""
        return self._rfd

    def wakeup(self) -> None:
        """Make the watched fd readable unless a wakeup is already pending."""
        if self.pending:
            return
        self.pending = True
        with self._lock:
            if self._wfd < 0:
                return
            try:
                if self.kind == "eventfd":
                    os.eventfd_write(self._wfd, 1)
                elif self._socks is not None:
                    self._socks[1].send(b"\0")
                else:
                    os.write(self._wfd, b"\0")
            except BlockingIOError:
                return  # full: unread bytes already make the fd readable
            self.writes += 1

    def drain(self) -> None:
        """Empty the fd and clear the flag; called by the poll thread only."""
        try:
            if self.kind == "eventfd":
                os.eventfd_read(self._rfd)
            elif self._socks is not None:
                while self._socks[0].recv(4096):
                    pass
            else:
                while os.read(self._rfd, 4096):
                    pass
        except BlockingIOError:
            pass
        self.pending = False

    def close(self) -> None:
        """Close the channel's fds; idempotent."""
        with self._lock:
            if self._rfd < 0:
                return
            self.pending = True  # later wakeups take the lock-free no-op path
            rfd, wfd, socks = self._rfd, self._wfd, self._socks
            self._rfd = self._wfd = -1
            self._socks = None
            if socks is not None:
                socks[0].close()
                socks[1].close()
            else:
                os.close(rfd)
                if wfd != rfd:
                    os.close(wfd)

    @property
    def closed(self) -> bool:
        return self._rfd < 0

    def statistics(self) -> dict[str, Any]:
        return {"kind": self.kind, "pending": self.pending, "writes": self.writes}

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._rfd}"
        return f"<Wakeup {self.kind} {state} writes={self.writes}>"
