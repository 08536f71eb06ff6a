"""A stand-in for ``select.kqueue`` on Linux: kqueue's rules, emulated over poll(2).

Linux has no kqueue, so ``sansloop.backends.kqueue`` is tested against this
module object (``KqueueBackend(select_module=fakekqueue.module())``). It is a
model of kqueue as the FreeBSD/macOS manual pages describe it, not kqueue
itself; what it models:

- knotes keyed by (ident, filter), EVFILT_READ and EVFILT_WRITE only;
  EV_ADD of an existing knote updates it; EV_DELETE of a missing one fails
  with ENOENT; a change on an fd that is not open fails with EBADF;
- a failing change raises OSError when ``max_events`` leaves no room, and
  stops there (later changes are not applied); with room, it becomes an
  EV_ERROR event (``data`` = errno) and the call returns without waiting;
- closing an fd deletes its knotes (kqueue watches fd numbers): each call
  first drops the knotes whose fd is closed or now names another file
  (compared by ``(st_dev, st_ino)``), so a reused number is not watched;
- level-triggered readiness from poll(2): EVFILT_READ fires on data or EOF
  (EV_EOF on POLLRDHUP/POLLHUP/POLLERR), EVFILT_WRITE on room or hang-up
  (EV_EOF on POLLHUP/POLLERR);
- ``control`` argument checks as CPython's: ValueError for a negative
  timeout or ``max_events``, TypeError for a timeout too large for its clock
  (``inf``, ``1e12``), ValueError on a closed kqueue; timeouts round up.

Tests can also look at what was asked (``changes``: every change applied,
as ``(ident, filter, flags)``) and inject raw events (``inject``) to check
the backend's translation of cases poll(2) cannot produce.
"""

from __future__ import annotations

import errno
import math
import os
import select
import types
from typing import Any

# FreeBSD's values (sys/event.h); the backend must read them from the module.
KQ_FILTER_READ = -1
KQ_FILTER_WRITE = -2
KQ_EV_ADD = 0x0001
KQ_EV_DELETE = 0x0002
KQ_EV_ENABLE = 0x0004
KQ_EV_DISABLE = 0x0008
KQ_EV_ONESHOT = 0x0010
KQ_EV_CLEAR = 0x0020
KQ_EV_ERROR = 0x4000
KQ_EV_EOF = 0x8000

_MAX_SECONDS = 9.2e9  # CPython's _PyTime_t (int64 ns) overflows past this

_POLL_IN = select.POLLIN | select.POLLPRI
_POLL_EOF_READ = select.POLLRDHUP | select.POLLHUP | select.POLLERR
_POLL_EOF_WRITE = select.POLLHUP | select.POLLERR


class kevent:  # noqa: N801 - the name select.kevent has
    """A kevent: ident, filter, flags, fflags, data, udata."""

    def __init__(
        self,
        ident: Any,
        filter: int = KQ_FILTER_READ,
        flags: int = KQ_EV_ADD,
        fflags: int = 0,
        data: int = 0,
        udata: int = 0,
    ) -> None:
        self.ident = ident if isinstance(ident, int) else ident.fileno()
        self.filter = filter
        self.flags = flags
        self.fflags = fflags
        self.data = data
        self.udata = udata

    def __repr__(self) -> str:
        return (
            f"<fake kevent ident={self.ident} filter={self.filter} flags={self.flags:#x} "
            f"fflags={self.fflags:#x} data={self.data}>"
        )


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class kqueue:  # noqa: N801
    """The emulated kernel queue."""

    def __init__(self) -> None:
        self.closed = False
        #: (ident, filter) -> identity of the file when the knote was added.
        self.knotes: dict[tuple[int, int], tuple[int, int]] = {}
        #: Every change applied, in order: (ident, filter, flags).
        self.changes: list[tuple[int, int, int]] = []
        self.calls = 0
        self.last_max_events: int | None = None
        self.last_timeout: float | None = None
        self._injected: list[kevent] = []

    def fileno(self) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed kqueue object")
        return -1

    def close(self) -> None:
        self.closed = True

    def inject(self, *events: kevent) -> None:
        """Have the next ``control`` that waits return these events too."""
        self._injected.extend(events)

    # -- the kernel's side ---------------------------------------------------

    def _prune_closed(self) -> None:
        for key, ident in list(self.knotes.items()):
            if _identity(key[0]) != ident:
                del self.knotes[key]  # the fd was closed: close deletes its knotes

    def _register(self, ev: kevent) -> int:
        """Apply one change; 0 or an errno."""
        if ev.filter not in (KQ_FILTER_READ, KQ_FILTER_WRITE):
            return errno.EINVAL
        ident = _identity(ev.ident)
        if ident is None:
            return errno.EBADF
        key = (ev.ident, ev.filter)
        if ev.flags & KQ_EV_DELETE:
            if key not in self.knotes:
                return errno.ENOENT
            del self.knotes[key]
        elif ev.flags & KQ_EV_ADD:
            self.knotes[key] = ident
        else:
            return errno.EINVAL  # enable/disable/oneshot/clear are not modelled
        self.changes.append((ev.ident, ev.filter, ev.flags))
        return 0

    def control(
        self, changelist: Any, max_events: int, timeout: float | None = None
    ) -> list[kevent]:
        if self.closed:
            raise ValueError("I/O operation on closed kqueue object")
        if max_events < 0:
            raise ValueError(f"Length of eventlist must be 0 or positive, got {max_events}")
        if timeout is not None:
            if not isinstance(timeout, int | float) or not (
                math.isfinite(timeout) and timeout < _MAX_SECONDS
            ):
                raise TypeError(
                    f"timeout argument must be a number or None, got {type(timeout).__name__}"
                )
            if math.ceil(timeout * 1e9) < 0:  # a timespec with tv_sec < 0
                raise ValueError("timeout must be positive or None")
        self.calls += 1
        self.last_max_events = max_events
        self.last_timeout = timeout
        self._prune_closed()
        errors: list[kevent] = []
        for ev in changelist or ():
            err = self._register(ev)
            if err:
                if len(errors) >= max_events:
                    raise OSError(err, os.strerror(err))
                errors.append(kevent(ev.ident, ev.filter, KQ_EV_ERROR, 0, err))
        if errors:
            return errors
        if max_events == 0:
            return []
        return self._scan(max_events, timeout)

    def _scan(self, max_events: int, timeout: float | None) -> list[kevent]:
        poller = select.poll()
        wanted: dict[int, int] = {}
        for fd, kfilter in self.knotes:
            bits = _POLL_IN if kfilter == KQ_FILTER_READ else select.POLLOUT
            wanted[fd] = wanted.get(fd, 0) | bits
        for fd, bits in wanted.items():
            poller.register(fd, bits | select.POLLRDHUP)
        injected, self._injected = self._injected, []
        if injected:
            ms = 0
        elif timeout is None:
            ms = -1
        else:
            ms = max(0, math.ceil(timeout * 1e3))  # round up, like CPython's ceiling
        out = list(injected)
        for fd, revents in sorted(poller.poll(ms)):
            if revents & select.POLLNVAL:
                continue
            if (fd, KQ_FILTER_READ) in self.knotes and revents & (_POLL_IN | _POLL_EOF_READ):
                flags = KQ_EV_EOF if revents & _POLL_EOF_READ else 0
                out.append(kevent(fd, KQ_FILTER_READ, flags))
            if (fd, KQ_FILTER_WRITE) in self.knotes and revents & (
                select.POLLOUT | _POLL_EOF_WRITE
            ):
                flags = KQ_EV_EOF if revents & _POLL_EOF_WRITE else 0
                out.append(kevent(fd, KQ_FILTER_WRITE, flags))
        return out[:max_events]


def module() -> types.SimpleNamespace:
    """A ``select``-like module object holding the fake kqueue."""
    return types.SimpleNamespace(
        kqueue=kqueue,
        kevent=kevent,
        **{name: value for name, value in globals().items() if name.startswith("KQ_")},
    )
