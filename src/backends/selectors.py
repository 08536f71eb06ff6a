"""The selectors backend: the portable fallback over ``selectors.DefaultSelector``.

Facts about selectors
---------------------
- ``DefaultSelector`` is the best mechanism the stdlib finds: epoll (Linux),
  kqueue (BSD/macOS), devpoll (Solaris), poll, else select (Windows, sockets
  only). It is level-triggered on all of them, and it already keeps our
  contract: KeyError for a second register or an unknown fd, ValueError for a
  bad event mask, each fd reported once with only its registered events,
  error/hang-up reported as read and write, events of unknown fds dropped.
- It costs one ``SelectorKey`` namedtuple per registration and one
  ``(key, events)`` pair per ready fd, which the dedicated backends avoid.
- ``EpollSelector.unregister`` swallows every OSError of EPOLL_CTL_DEL, not
  just the "owner closed it first" EBADF/ENOENT that we accept on purpose;
  the epoll backend is the strict one.
- Timeouts: ``EpollSelector`` and ``PollSelector`` round up to the next
  millisecond themselves and treat ``<= 0`` as non-blocking; ``select()``
  takes microseconds. We only cap huge timeouts at ``MAX_TIMEOUT``.
- EINTR is retried inside CPython (PEP 475).
- The wakeup channel is the shared ``Wakeup`` (eventfd, self-pipe, or a
  socketpair on Windows, where ``select`` accepts nothing but sockets).
"""

from __future__ import annotations

import selectors
from collections.abc import Callable
from typing import Any

from ._readiness import MAX_TIMEOUT, check_fd_events, closed_error
from .base import Backend
from .children import ChildReaper
from .wakeup import Wakeup

__all__ = ["SelectorsBackend"]


class SelectorsBackend(Backend):
    """Any ``selectors.BaseSelector`` (default: ``DefaultSelector``) as a backend."""

    name = "selectors"

    def __init__(
        self,
        selector: selectors.BaseSelector | None = None,
        *,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._selector = selectors.DefaultSelector() if selector is None else selector
        if wakeup is None:
            kind = "socket" if isinstance(self._selector, selectors.SelectSelector) else None
            wakeup = Wakeup(kind)
        self._wakeup = wakeup
        self._wakeup_fd = wakeup.fileno()
        self._selector.register(self._wakeup_fd, selectors.EVENT_READ)
        self._closed = False
        self._polls = 0

    def register(self, fd: int, events: int) -> None:
        if self._closed:
            raise closed_error(self)
        check_fd_events(fd, events)
        self._selector.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        if self._closed:
            raise closed_error(self)
        check_fd_events(fd, events)
        if fd == self._wakeup_fd:
            raise KeyError(f"fd {fd} is not registered")
        self._selector.modify(fd, events)

    def unregister(self, fd: int) -> None:
        if self._closed:
            raise closed_error(self)
        if fd == self._wakeup_fd:
            raise KeyError(f"fd {fd} is not registered")
        self._selector.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self._closed:
            raise closed_error(self)
        if timeout is not None and timeout > MAX_TIMEOUT:
            timeout = MAX_TIMEOUT
        self._polls += 1
        wakeup_fd = self._wakeup_fd
        ready = []
        for key, events in self._selector.select(timeout):
            if key.fd == wakeup_fd:
                self._wakeup.drain()
            elif key.data is not None:  # one of our own fds (a child's pidfd)
                key.data()
            else:
                ready.append((key.fd, events))
        return ready

    # Child pidfds are the backend's own fds, like the wakeup fd: registered
    # with what to run as the key's data, read inside poll() and never
    # reported to the loop (see children.py).
    def _make_child_reaper(self) -> ChildReaper:
        return ChildReaper(self._add_own, self._selector.unregister)

    def _add_own(self, fd: int, on_ready: Callable[[], None]) -> None:
        self._selector.register(fd, selectors.EVENT_READ, on_ready)

    def wakeup(self) -> None:
        self._wakeup.wakeup()

    def close(self) -> None:
        if self._closed:
            return
        self._close_child_reaper()
        self._closed = True
        self._selector.close()
        self._wakeup.close()

    def statistics(self) -> dict[str, Any]:
        registered = 0
        if not self._closed:  # not the wakeup fd, not our own pidfds
            keys = self._selector.get_map().values()
            registered = sum(1 for key in keys if key.data is None) - 1
        return {
            "backend": self.name,
            "selector": type(self._selector).__name__,
            "registered_fds": registered,
            "wakeups": self._wakeup.writes,
            "polls": self._polls,
            **self._child_statistics(),
        }
