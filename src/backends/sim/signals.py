"""Simulated signals: ``add_signal_handler`` works, and signals come from the plan.

The loop asks the backend for a signal channel the first time
``add_signal_handler`` is used. This one installs nothing in the process: the
handlers are kept here, and ``SimBackend.send_signal(sig, at=...)`` delivers
*sig* at a virtual time by calling the handler the loop installed, exactly as
the real C-level handler would (the loop then schedules the callback). The
fd the loop watches is a simulated one that is never readable: a delivery
calls the handler directly and then wakes the poll, as the real wakeup fd
would, so there is nothing to drain.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .world import World

__all__ = ["SimSignalChannel"]


class _Quiet:
    """The fd behind the channel: registered by the loop, never ready."""

    _closed = False
    host = None

    def ready_mask(self) -> int:
        return 0


class SimSignalChannel:
    """The signal channel of a simulated backend (see the module docstring)."""

    def __init__(self, world: World, wake: Callable[[], None]) -> None:
        self._world = world
        self._wake = wake
        self._fd = world.new_fd(_Quiet())
        self.handlers: dict[int, Callable[[int, Any], None]] = {}
        self.closed = False

    def fileno(self) -> int:
        """A simulated fd, never readable."""
        return self._fd

    def drain(self) -> None:
        """Nothing to drain."""

    def install_wakeup_fd(self) -> None:
        """Nothing to install: no real signal reaches a simulated run."""

    def restore_wakeup_fd(self) -> None:
        """Nothing to restore."""

    def set_handler(self, signum: int, handler: Callable[[int, Any], None]) -> None:
        """Remember *handler* for *signum* (ValueError for a bad number)."""
        signal.Signals(signum)
        self.handlers[signum] = handler

    def reset_handler(self, signum: int) -> None:
        """Forget *signum*'s handler."""
        self.handlers.pop(signum, None)

    def deliver(self, signum: int) -> bool:
        """Call *signum*'s handler now; False when none is installed."""
        handler = self.handlers.get(signum)
        self._world.record("signal", int(signum), handler is not None)
        if handler is None:
            return False
        handler(signum, None)
        self._wake()  # what the real wakeup fd does: the poll returns
        return True

    def close(self) -> None:
        """Drop the handlers and the fd."""
        self.closed = True
        self.handlers.clear()
        self._world.fds.pop(self._fd, None)
