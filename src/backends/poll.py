"""The poll backend: POSIX ``poll(2)`` through ``select.poll``.

Facts about poll
----------------
- Level-triggered, like epoll, and with the same contract; but the fd set
  lives in user space and is handed to the kernel on every call, so a poll
  costs O(registered fds) instead of O(ready fds). Good up to some hundreds
  of fds, portable to every POSIX system (macOS's poll does not work on ttys).
- POLLERR, POLLHUP and POLLNVAL are always reported. ERR/HUP become every
  event the fd is registered for. POLLNVAL means "this fd number is not open":
  the owner closed it while registered. It is reported the same way, so the
  callback's ``recv``/``send`` raises EBADF and the bug is seen; it is also
  level-triggered, so unregister before close or the loop spins.
- Unlike epoll, ``poll`` watches fd *numbers*: closing an fd takes it out of
  the kernel's view at once (dups do not keep it alive), and unregistering a
  closed fd is a dict deletion that cannot fail. A number reused by a new file
  while still registered is watched as the new file.
- Timeouts are an int of milliseconds; we round *up* with ``math.ceil`` so
  that a timer never fires early and a sub-ms delay never spins on
  ``poll(0)``; negative means "forever" to poll(2), so we clamp to 0; huge
  timeouts are capped at ``MAX_TIMEOUT``.
- A reported fd may still answer EAGAIN; callbacks catch BlockingIOError.
- Wakeup: the shared ``Wakeup`` fd is registered for POLLIN, drained when
  reported, and never passed to the loop.
- EINTR: retried inside CPython with the remaining timeout (PEP 475); a
  signal handler that raises makes ``poll()`` raise.
- ``select.poll`` objects are not thread-safe; a concurrent ``poll()`` raises
  RuntimeError. Only the loop thread calls us, except ``wakeup()``, which
  touches only the wakeup channel.
"""

from __future__ import annotations

import math
import select
from collections.abc import Callable
from typing import Any

from ._readiness import MAX_TIMEOUT, check_known, check_new, closed_error
from .base import EVENT_READ, EVENT_WRITE, Backend
from .children import ChildReaper
from .wakeup import Wakeup

__all__ = ["PollBackend"]

_IN, _OUT = select.POLLIN, select.POLLOUT
_BAD = select.POLLERR | select.POLLHUP | select.POLLNVAL
_TO_POLL = (0, _IN, _OUT, _IN | _OUT)
# poll's low bits (IN, PRI, OUT, ERR, HUP, NVAL) -> our mask, before masking by interest.
_FROM_POLL = tuple(
    (EVENT_READ if bits & (_IN | _BAD) else 0) | (EVENT_WRITE if bits & (_OUT | _BAD) else 0)
    for bits in range(64)
)


class PollBackend(Backend):
    """Level-triggered ``select.poll`` with the shared wakeup channel."""

    name = "poll"

    def __init__(self, *, wakeup: Wakeup | None = None) -> None:
        self._poller = select.poll()
        self._interest: dict[int, int] = {}
        self._wakeup = Wakeup() if wakeup is None else wakeup
        self._wakeup_fd = self._wakeup.fileno()
        self._poller.register(self._wakeup_fd, _IN)
        self._closed = False
        self._polls = 0
        self._own: dict[int, Callable[[], None]] = {}  # our pidfds -> what to run

    def register(self, fd: int, events: int) -> None:
        check_new(self, self._closed, self._interest, fd, events, self._wakeup_fd)
        self._poller.register(fd, _TO_POLL[events])
        self._interest[fd] = events

    def modify(self, fd: int, events: int) -> None:
        if check_known(self, self._closed, self._interest, fd, events) != events:
            self._poller.modify(fd, _TO_POLL[events])
            self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        check_known(self, self._closed, self._interest, fd)
        self._poller.unregister(fd)
        del self._interest[fd]

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self._closed:
            raise closed_error(self)
        if timeout is None:
            ms = -1
        elif timeout <= 0.0:
            ms = 0
        else:
            ms = math.ceil(min(timeout, MAX_TIMEOUT) * 1e3)
        self._polls += 1
        interest = self._interest
        ready = []
        for fd, bits in self._poller.poll(ms):
            want = interest.get(fd)
            if want is not None:
                ready.append((fd, _FROM_POLL[bits & 63] & want))
            elif fd == self._wakeup_fd:
                self._wakeup.drain()
            elif fd in self._own:
                self._own[fd]()
        return ready

    # Child pidfds are the backend's own fds, like the wakeup fd: read inside
    # poll() and never reported to the loop (see children.py).
    def _make_child_reaper(self) -> ChildReaper:
        return ChildReaper(self._add_own, self._remove_own)

    def _add_own(self, fd: int, on_ready: Callable[[], None]) -> None:
        self._poller.register(fd, _IN)
        self._own[fd] = on_ready

    def _remove_own(self, fd: int) -> None:
        del self._own[fd]
        self._poller.unregister(fd)

    def wakeup(self) -> None:
        self._wakeup.wakeup()

    def close(self) -> None:
        if self._closed:
            return
        self._close_child_reaper()
        self._closed = True
        self._interest.clear()
        self._wakeup.close()

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "registered_fds": len(self._interest),
            "wakeups": self._wakeup.writes,
            "polls": self._polls,
            **self._child_statistics(),
        }
