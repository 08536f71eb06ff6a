"""Rules shared by the readiness backends (epoll, poll, selectors).

The contract every readiness backend keeps (the conformance suite checks it):

- ``register(fd, events)``: *fd* is an ``int >= 0`` (else TypeError/ValueError);
  *events* a non-empty subset of ``EVENT_READ | EVENT_WRITE`` (else
  ValueError). Registering an fd that is already registered raises KeyError
  and leaves the first registration in force.
- ``modify`` and ``unregister`` of an fd that is not registered raise KeyError
  (as ``selectors`` does). Our own table of registrations decides what is
  registered, not the kernel: the kernel may still hold an fd we dropped
  (a dup survived its close) or have dropped one we hold (it was closed).
- Unregistering an fd whose owner already closed it is legitimate (a transport
  may close its socket before the loop forgets it) and succeeds. It is not
  hidden where the backend can tell: epoll counts it in
  ``statistics()['closed_unregisters']``; poll sees POLLNVAL for it while it
  stays registered.
- ``poll`` reports each fd at most once, with only the events it was
  registered for; an error or hang-up counts as every registered event.
- After ``close()``, every method but ``close``, ``wakeup`` (a no-op),
  ``time`` and ``statistics`` raises RuntimeError.
"""

from __future__ import annotations

from .base import EVENT_READ, EVENT_WRITE

__all__ = [
    "ALL_EVENTS",
    "MAX_TIMEOUT",
    "check_fd_events",
    "check_new",
    "check_known",
    "closed_error",
]

ALL_EVENTS = EVENT_READ | EVENT_WRITE

#: Longest single block, in seconds. epoll_wait and poll take an int of
#: milliseconds (at most ~24.8 days); asyncio caps at one day
#: (``MAXIMUM_SELECT_TIMEOUT``). Returning after a day with no events is
#: harmless: the loop asks again.
MAX_TIMEOUT = 24 * 3600.0


def check_fd_events(fd: int, events: int) -> None:
    """Raise TypeError/ValueError for a bad fd or event mask."""
    if not isinstance(fd, int):
        raise TypeError(f"fd must be an int, not {type(fd).__name__}")
    if fd < 0:
        raise ValueError(f"invalid file descriptor: {fd}")
    if not events or events & ~ALL_EVENTS:
        raise ValueError(f"invalid events: {events!r}")


def closed_error(backend: object) -> RuntimeError:
    return RuntimeError(f"{type(backend).__name__} is closed")


def check_new(
    backend: object, closed: bool, interest: dict[int, int], fd: int, events: int, reserved: int
) -> None:
    """The guards of ``register``: open backend, valid fd and mask, fd not taken.

    *reserved* is the backend's own wakeup fd, which no caller may register.
    """
    if closed:
        raise closed_error(backend)
    check_fd_events(fd, events)
    if fd in interest or fd == reserved:
        raise KeyError(f"fd {fd} is already registered")


def check_known(
    backend: object, closed: bool, interest: dict[int, int], fd: int, events: int | None = None
) -> int:
    """The guards of ``modify``/``unregister``; returns the fd's current events."""
    if closed:
        raise closed_error(backend)
    if events is not None:
        check_fd_events(fd, events)
    old = interest.get(fd)
    if old is None:
        raise KeyError(f"fd {fd} is not registered")
    return old
