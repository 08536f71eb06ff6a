"""The signal channel: how a Unix signal reaches the loop without being lost.

Facts
-----
- A Python-level signal handler (``signal.signal``) runs in the main thread
  between two bytecodes. A signal that lands while the main thread is blocked
  in ``epoll_wait``/``poll``/``select`` interrupts it (EINTR), Python runs the
  handler, then retries the call with the remaining timeout (PEP 475).
- But a signal that lands just *before* the syscall starts does not interrupt
  it: the handler waits until the poll returns, possibly forever. Only
  ``signal.set_wakeup_fd`` closes that window: the C-level handler writes a
  byte to an fd, which the poll watches, so the poll returns at once.
- ``set_wakeup_fd`` writes single bytes (so an eventfd will not do) and works
  only from the main thread; there is one such fd per process, so whoever
  sets it must restore the previous one.

The choice: the fd is a flag, never a message
---------------------------------------------
asyncio reads signal numbers back from its self-pipe, and the same pipe carries
``call_soon_threadsafe`` wakeups: a flood of those fills it, the C handler's
byte is dropped, and the signal is lost (stdlib 3.12/3.13). Here the fd only
wakes the poll (``warn_on_full_buffer=False``: a full buffer means a wakeup is
already pending) and is drained without looking at its bytes; *which* signal
arrived is recorded by the Python-level handler, which the loop owns. So no
number of wakeups can lose a signal.

This module owns the OS calls (socketpair, set_wakeup_fd, signal.signal); the
loop decides what a signal means.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SignalChannel", "default_disposition", "valid_signals"]


def valid_signals() -> set[int]:
    """The signal numbers this platform knows."""
    return {int(sig) for sig in signal.valid_signals()}


def default_disposition(signum: int) -> Any:
    """What a signal goes back to when its loop handler is removed."""
    # SIGINT keeps raising KeyboardInterrupt, as Python sets it up at start.
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL


class SignalChannel:
    """One process-wide wakeup fd for signals, plus handler installation."""

    def __init__(self) -> None:
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._previous_wakeup_fd: int | None = None  # None: not installed by us

    def fileno(self) -> int:
        """The fd the loop watches for reading."""
        return self._rsock.fileno()

    def drain(self) -> None:
        """Empty the fd (its bytes mean nothing; see the module header)."""
        try:
            while self._rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def install_wakeup_fd(self) -> None:
        """Point the C-level handler at our fd; RuntimeError off the main thread."""
        if self._previous_wakeup_fd is not None:
            return
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        try:
            previous = signal.set_wakeup_fd(self._wsock.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        self._previous_wakeup_fd = previous

    def restore_wakeup_fd(self) -> None:
        """Give the process back the wakeup fd it had before us."""
        previous = self._previous_wakeup_fd
        if previous is None:
            return
        self._previous_wakeup_fd = None
        try:
            signal.set_wakeup_fd(previous)
        except (ValueError, OSError):
            # Not on the main thread (closing from another thread): the fd we
            # set is about to close; Python tolerates a closed wakeup fd.
            pass

    def set_handler(self, signum: int, handler: Callable[[int, Any], None]) -> None:
        """Install *handler* for *signum*; OSError/ValueError as signal.signal."""
        signal.signal(signum, handler)
        # Restart interrupted syscalls in other code rather than fail with EINTR.
        signal.siginterrupt(signum, False)

    def reset_handler(self, signum: int) -> None:
        """Give *signum* back its default disposition."""
        signal.signal(signum, default_disposition(signum))

    def close(self) -> None:
        """Restore the previous wakeup fd and close ours; idempotent."""
        self.restore_wakeup_fd()
        self._rsock.close()
        self._wsock.close()
