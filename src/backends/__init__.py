"""sansloop.backends: the only code that talks to the operating system.

Every backend implements :class:`sansloop.backends.base.Backend`;
:func:`default_backend` picks the best one for this platform.
"""

from __future__ import annotations

from .base import EVENT_READ, EVENT_WRITE, Backend

__all__ = [
    "Backend",
    "EVENT_READ",
    "EVENT_WRITE",
    "default_backend",
    "available_backends",
    "get_backend",
]


def available_backends() -> list[str]:
    """Names of the readiness backends this platform supports, best first."""
    import select

    names = []
    if hasattr(select, "epoll"):
        names.append("epoll")
    if hasattr(select, "kqueue"):
        names.append("kqueue")
    if hasattr(select, "poll"):
        names.append("poll")
    names.append("selectors")
    return names


def get_backend(name: str) -> Backend:
    """Make a new backend by name ('epoll', 'kqueue', 'poll', 'selectors')."""
    if name == "epoll":
        from .epoll import EpollBackend

        return EpollBackend()
    if name == "kqueue":
        from .kqueue import KqueueBackend  # ValueError where select has no kqueue

        return KqueueBackend()
    if name == "poll":
        from .poll import PollBackend

        return PollBackend()
    if name == "selectors":
        from .selectors import SelectorsBackend

        return SelectorsBackend()
    raise ValueError(f"unknown backend {name!r}; available: {', '.join(available_backends())}")


def default_backend() -> Backend:
    """A new instance of the best backend available here (epoll on Linux)."""
    for name in available_backends():
        try:
            return get_backend(name)
        except (ImportError, ValueError):
            continue
    raise RuntimeError("no I/O backend is available on this platform")
