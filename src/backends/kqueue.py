"""The kqueue backend: BSD and macOS readiness through ``select.kqueue``.

**Not run on a real BSD or macOS here.** sansloop is developed on Linux, which
has no kqueue. This backend's registration bookkeeping and event translation
are tested against a stand-in for ``select.kqueue`` (tests/backends/
fakekqueue.py: a kqueue emulated over ``poll(2)`` with kqueue's rules for
filters, EV_ADD/EV_DELETE errors, EV_EOF, EV_ERROR and fds closed while
registered), and the whole backend conformance suite passes against that
stand-in. The facts below are from the kqueue(2) manual pages of FreeBSD and
macOS and from CPython's selectmodule.c; the kernel's own behaviour has not
been observed by us. ``select_module=`` injects the stand-in.

Facts about kqueue
------------------
- Interest is a set of *knotes*, one per (ident, filter): reading and writing
  are two filters, EVFILT_READ and EVFILT_WRITE, added and deleted
  separately. An fd watched for both costs two changes and may produce two
  events in one ``kevent()`` call, which we merge into one ``(fd, events)``.
- Level-triggered unless EV_CLEAR or EV_ONESHOT is set (we set neither): a
  filter whose condition holds is reported by every call.
- EV_ADD of a filter that exists updates it (no error); EV_DELETE of one that
  does not exist fails with ENOENT; any change on an fd that is not open fails
  with EBADF. With no room for events in the call (``max_events=0``) the
  first failing change raises OSError and the rest are not applied, so we
  apply one change per call (as ``selectors.KqueueSelector`` does) and can
  undo a half-applied register or modify exactly.
- Closing an fd deletes its knotes from every kqueue (kqueue watches fd
  numbers, unlike epoll's open file descriptions; dups do not keep them
  alive). So EV_DELETE after the owner closed the fd fails with EBADF, or
  with ENOENT if the number was reused meanwhile. When our table has the fd
  both mean "closed before unregistered": accepted and counted
  (``closed_unregisters``), as in the epoll backend; other errors propagate.
- EV_EOF: on EVFILT_READ, the peer will send nothing more (a half-close, or
  a pipe whose writers are gone); buffered data may remain. On EVFILT_WRITE,
  nothing more can be sent (the peer is gone or reset, a pipe's reader
  closed). A socket error rides in ``fflags``. The filter fires on EOF even
  with no data or no room, so the owner's ``recv``/``send`` meets the EOF or
  the error. Translation:
    * EVFILT_READ -> EVENT_READ, with or without EV_EOF. A read EOF is *not*
      reported as writable: after a half-close the socket can still send,
      and a level-triggered writer with a full buffer would spin.
    * EVFILT_WRITE -> EVENT_WRITE; with EV_EOF it is a hang-up and becomes
      every event the fd is registered for (as EPOLLHUP does).
    * EV_ERROR (a change that failed, reported as an event) -> every
      registered event, so the owner's own syscall sees the error.
- Timeouts: ``kqueue.control`` takes seconds as a float and CPython converts
  it to a ``timespec`` rounding *up* (ceiling, nanoseconds), so a timer never
  fires early and a sub-ms delay is no busy spin. CPython raises ValueError
  for a negative timeout and TypeError for one too large for its clock type
  (``inf``, ``1e12``), so we clamp negatives to 0 and cap at ``MAX_TIMEOUT``.
- ``max_events`` bounds one call's result; we pass the number of registered
  filters + 1 (the wakeup fd), so one poll can report them all.
- Wakeup: no EVFILT_USER in CPython's select module, so the ``Wakeup``
  channel's fd sits in the set for EVFILT_READ: a self-pipe where there is
  no ``os.eventfd`` (macOS), an eventfd where CPython offers one (FreeBSD 13+
  has them and kqueue watches them). It is drained when reported and never
  passed to the loop.
- EINTR: CPython retries ``kevent()`` with the remaining timeout (PEP 475); a
  signal handler that raises makes ``poll()`` raise.
- fork: a kqueue is not inherited by a child (the child's copy of the fd is
  unusable), so a forked child makes its own loop and backend.
- The kqueue fd is close-on-exec (CPython makes it non-inheritable) and the
  wakeup fds are too; registered fds belong to their owners and are never
  closed here.
"""

from __future__ import annotations

import errno
import select
from typing import Any

from ._readiness import MAX_TIMEOUT, check_known, check_new, closed_error
from .base import EVENT_READ, EVENT_WRITE, Backend
from .wakeup import Wakeup

__all__ = ["KqueueBackend"]

_CLOSED_ERRNOS = (errno.EBADF, errno.ENOENT)
_ALL = EVENT_READ | EVENT_WRITE


class KqueueBackend(Backend):
    """Level-triggered ``select.kqueue`` with the shared wakeup channel (BSD, macOS).

    Untested on a real kqueue: see the module docstring. *select_module* is
    an object with ``kqueue``, ``kevent`` and the ``KQ_*`` constants, the
    ``select`` module by default; tests pass a stand-in.
    """

    name = "kqueue"

    def __init__(self, *, wakeup: Wakeup | None = None, select_module: Any = None) -> None:
        sel = select if select_module is None else select_module
        if not hasattr(sel, "kqueue"):
            raise ValueError("backend 'kqueue' is not available here: select.kqueue is missing")
        self._kevent = sel.kevent
        self._filter_read: int = sel.KQ_FILTER_READ
        self._filter_write: int = sel.KQ_FILTER_WRITE
        self._ev_add: int = sel.KQ_EV_ADD
        self._ev_delete: int = sel.KQ_EV_DELETE
        self._ev_eof: int = sel.KQ_EV_EOF
        self._ev_error: int = sel.KQ_EV_ERROR
        # (our event bit, kqueue filter), in the order changes are applied.
        self._filters = ((EVENT_READ, self._filter_read), (EVENT_WRITE, self._filter_write))
        self._kq = sel.kqueue()
        self._interest: dict[int, int] = {}
        self._nfilters = 0  # registered knotes, for max_events
        self._closed = False
        self._polls = 0
        self._stale_events = 0
        self._closed_unregisters = 0
        try:
            self._wakeup = Wakeup() if wakeup is None else wakeup
            self._wakeup_fd = self._wakeup.fileno()
            self._change(self._wakeup_fd, self._filter_read, self._ev_add)
        except BaseException:
            self._kq.close()
            raise

    # -- changes -------------------------------------------------------------

    def _change(self, fd: int, kfilter: int, flags: int) -> None:
        # One change per call: a failure raises OSError and applies nothing.
        self._kq.control([self._kevent(fd, kfilter, flags)], 0, 0)

    def _apply(self, fd: int, add: int, delete: int) -> None:
        """Add the filters in *add*, then delete those in *delete*; all or nothing."""
        done: list[tuple[int, int]] = []
        try:
            for bit, kfilter in self._filters:
                if add & bit:
                    self._change(fd, kfilter, self._ev_add)
                    done.append((kfilter, self._ev_delete))
            for bit, kfilter in self._filters:
                if delete & bit:
                    self._change(fd, kfilter, self._ev_delete)
                    done.append((kfilter, self._ev_add))
        except BaseException:
            for kfilter, undo in reversed(done):
                try:
                    self._change(fd, kfilter, undo)
                except OSError:
                    pass  # the fd went away meanwhile; the original error says why
            raise

    # -- the interface -------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        check_new(self, self._closed, self._interest, fd, events, self._wakeup_fd)
        self._apply(fd, events, 0)
        self._interest[fd] = events
        self._nfilters += _COUNT[events]

    def modify(self, fd: int, events: int) -> None:
        old = check_known(self, self._closed, self._interest, fd, events)
        if old != events:
            self._apply(fd, events & ~old, old & ~events)
            self._interest[fd] = events
            self._nfilters += _COUNT[events] - _COUNT[old]

    def unregister(self, fd: int) -> None:
        old = check_known(self, self._closed, self._interest, fd)
        left = old
        closed = False
        for bit, kfilter in self._filters:
            if not old & bit:
                continue
            try:
                self._change(fd, kfilter, self._ev_delete)
            except OSError as exc:
                if exc.errno not in _CLOSED_ERRNOS:
                    if left != old:  # half unregistered: the table says what is left
                        self._interest[fd] = left
                        self._nfilters -= _COUNT[old] - _COUNT[left]
                    raise
                closed = True  # the close already deleted the knote
            left &= ~bit
        if closed:
            self._closed_unregisters += 1
        del self._interest[fd]
        self._nfilters -= _COUNT[old]

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self._closed:
            raise closed_error(self)
        if timeout is not None:
            if timeout <= 0.0:
                timeout = 0.0
            elif timeout > MAX_TIMEOUT:
                timeout = MAX_TIMEOUT
        self._polls += 1
        interest = self._interest
        raw = self._kq.control(None, self._nfilters + 1, timeout)
        ready: dict[int, int] = {}
        filter_read, filter_write = self._filter_read, self._filter_write
        for kev in raw:
            fd = kev.ident
            want = interest.get(fd)
            if want is None:
                if fd == self._wakeup_fd:
                    self._wakeup.drain()
                else:
                    self._stale_events += 1
                continue
            flags = kev.flags
            kfilter = kev.filter
            if flags & self._ev_error:
                got = want
            elif kfilter == filter_read:
                got = EVENT_READ
            elif kfilter == filter_write:
                got = _ALL if flags & self._ev_eof else EVENT_WRITE
            else:
                got = 0
            got &= want
            if got:
                ready[fd] = ready.get(fd, 0) | got
            else:
                self._stale_events += 1
        return list(ready.items())

    def wakeup(self) -> None:
        self._wakeup.wakeup()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._interest.clear()
        self._nfilters = 0
        self._kq.close()
        self._wakeup.close()

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "registered_fds": len(self._interest),
            "filters": self._nfilters,
            "wakeups": self._wakeup.writes,
            "polls": self._polls,
            "stale_events": self._stale_events,
            "closed_unregisters": self._closed_unregisters,
        }


#: Number of kqueue filters behind each of our event masks.
_COUNT = (0, 1, 1, 2)
