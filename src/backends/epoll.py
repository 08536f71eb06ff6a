"""The epoll backend: Linux readiness through ``select.epoll`` directly.

Facts about epoll
-----------------
- Level-triggered by default (we never set EPOLLET): an fd that stays
  readable is reported by every ``epoll_wait``. So a callback that reads only
  part of a buffer is called again, and nothing is lost if it returns early.
- EPOLLERR and EPOLLHUP are always reported, asked for or not. We report them
  as every event the fd is registered for, so the callback's own
  ``recv``/``send`` meets the error or the EOF.
- epoll registers the *open file description*, not the fd number. Closing an
  fd removes it from the epoll set only when the last dup of that description
  is closed. A closed-but-duplicated fd keeps being reported under its old
  number, and nothing can remove it any more (EPOLL_CTL_DEL needs an open fd).
  Hence: **unregister before close**. We drop events for fds not in our table
  (counted as ``stale_events``), but a level-triggered stale fd keeps
  ``epoll_wait`` returning at once: a busy loop that only the rule prevents.
- EPOLL_CTL_DEL of an fd number already closed fails with EBADF; of a number
  that was closed and reused by an unregistered file, with ENOENT. Both mean
  "the owner closed it before unregistering", which a transport may do. When
  our table says the fd is registered, we accept both, forget the fd, and
  count it (``closed_unregisters``). Every other error propagates, and an fd
  our table does not know raises KeyError: bugs are not swallowed.
- Timeouts: ``epoll_wait`` takes an int of milliseconds. CPython's
  ``epoll.poll(seconds)`` rounds *up* to the next millisecond (since 3.5), so
  a 0.1 ms timeout blocks 1 ms: a timer never fires early and a sub-ms delay
  never becomes a busy ``epoll_wait(0)`` spin (the bug asyncio once had). A
  negative timeout means "forever" to epoll, so we clamp to 0; huge ones are
  capped at ``MAX_TIMEOUT`` (the int would overflow).
- Readiness is a hint, not a promise: a reported fd may still answer EAGAIN
  (another reader got there first, a UDP datagram failed its checksum), so
  callbacks catch BlockingIOError and wait for the next report.
- Wakeup: the ``Wakeup`` eventfd (see wakeup.py) sits in the epoll set for
  EPOLLIN; when it is reported we drain it and never pass it to the loop.
- EINTR: since PEP 475, ``epoll.poll`` retries by itself with the remaining
  timeout after running Python signal handlers; if a handler raises, the
  exception leaves ``poll()``. A handler that wants the loop to notice calls
  ``wakeup()``, whose fd is in the set, so the retried wait returns.
- ``maxevents`` defaults to FD_SETSIZE-1 in CPython; we pass the number of
  registered fds (+1 for the wakeup fd) so one poll can report them all.
  Level triggering means any fd left out is reported by the next poll.
- fork: the child inherits the epoll fd and the eventfd, which still refer
  to the parent's epoll set and counter; registering in the child changes the
  parent's set and a wakeup in the child wakes the parent. A forked child
  makes a new loop and backend and leaves the inherited one alone (asyncio
  has the same rule).
- The epoll fd and the wakeup eventfd are CLOEXEC and belong to us; the
  registered fds belong to their owners and are never closed here.
"""

from __future__ import annotations

import errno
import select
from collections.abc import Callable
from typing import Any

from ._readiness import MAX_TIMEOUT, check_known, check_new, closed_error
from .base import EVENT_READ, EVENT_WRITE, Backend
from .children import ChildReaper
from .wakeup import Wakeup

__all__ = ["EpollBackend"]

_IN, _OUT, _ERR, _HUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP
# Our mask -> epoll's, indexed by EVENT_READ | EVENT_WRITE.
_TO_EPOLL = (0, _IN, _OUT, _IN | _OUT)
# epoll's low bits (IN, PRI, OUT, ERR, HUP) -> our mask, before masking by interest.
_FROM_EPOLL = tuple(
    (EVENT_READ if bits & (_IN | _ERR | _HUP) else 0)
    | (EVENT_WRITE if bits & (_OUT | _ERR | _HUP) else 0)
    for bits in range(32)
)
_CLOSED_ERRNOS = (errno.EBADF, errno.ENOENT)


class EpollBackend(Backend):
    """Level-triggered ``select.epoll`` with an eventfd wakeup (Linux)."""

    name = "epoll"

    def __init__(self, *, wakeup: Wakeup | None = None) -> None:
        self._epoll = select.epoll()  # EPOLL_CLOEXEC is CPython's default
        self._interest: dict[int, int] = {}
        self._wakeup = Wakeup() if wakeup is None else wakeup
        self._wakeup_fd = self._wakeup.fileno()
        self._epoll.register(self._wakeup_fd, _IN)
        self._closed = False
        self._polls = 0
        self._stale_events = 0
        self._closed_unregisters = 0
        self._own: dict[int, Callable[[], None]] = {}  # our pidfds -> what to run

    def register(self, fd: int, events: int) -> None:
        check_new(self, self._closed, self._interest, fd, events, self._wakeup_fd)
        self._epoll.register(fd, _TO_EPOLL[events])
        self._interest[fd] = events

    def modify(self, fd: int, events: int) -> None:
        if check_known(self, self._closed, self._interest, fd, events) != events:
            self._epoll.modify(fd, _TO_EPOLL[events])
            self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        check_known(self, self._closed, self._interest, fd)
        try:
            self._epoll.unregister(fd)
        except OSError as exc:
            if exc.errno not in _CLOSED_ERRNOS:
                raise
            self._closed_unregisters += 1
        del self._interest[fd]

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self._closed:
            raise closed_error(self)
        if timeout is None:
            timeout = -1.0
        elif timeout <= 0.0:
            timeout = 0.0
        elif timeout > MAX_TIMEOUT:
            timeout = MAX_TIMEOUT
        self._polls += 1
        interest = self._interest
        raw = self._epoll.poll(timeout, len(interest) + 1)
        if not raw:
            return raw  # a fresh empty list: the caller may keep it
        ready = []
        append = ready.append
        get = interest.get
        from_epoll = _FROM_EPOLL
        for fd, bits in raw:
            want = get(fd)
            if want is not None:
                append((fd, from_epoll[bits & 31] & want))
            elif fd == self._wakeup_fd:
                self._wakeup.drain()
            elif fd in self._own:
                self._own[fd]()
            else:
                self._stale_events += 1
        return ready

    # Child pidfds are the backend's own fds, like the wakeup fd: read inside
    # poll() and never reported to the loop (see children.py).
    def _make_child_reaper(self) -> ChildReaper:
        return ChildReaper(self._add_own, self._remove_own)

    def _add_own(self, fd: int, on_ready: Callable[[], None]) -> None:
        self._epoll.register(fd, _IN)
        self._own[fd] = on_ready

    def _remove_own(self, fd: int) -> None:
        del self._own[fd]
        self._epoll.unregister(fd)

    def wakeup(self) -> None:
        self._wakeup.wakeup()

    def close(self) -> None:
        if self._closed:
            return
        self._close_child_reaper()
        self._closed = True
        self._interest.clear()
        self._epoll.close()
        self._wakeup.close()

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "registered_fds": len(self._interest),
            "wakeups": self._wakeup.writes,
            "polls": self._polls,
            **self._child_statistics(),
            "stale_events": self._stale_events,
            "closed_unregisters": self._closed_unregisters,
        }
