"""The loop's Unix signal handlers: add_signal_handler / remove_signal_handler.

A facet (mixin) of ``EventLoop``. The OS side (the wakeup fd, ``signal.signal``)
is the backend's :class:`~sansloop.backends.signals.SignalChannel`; this module
decides what a signal means to the loop.

When a signal arrives, Python runs ``_on_signal`` in the main thread (the loop's
thread: asyncio allows signal handlers only there); it queues the user's
handle directly on the ready queue. The channel's fd only wakes a blocked poll
and carries nothing, so a flood of ``call_soon_threadsafe`` wakeups cannot
crowd a signal out (stdlib asyncio 3.12/3.13 can lose one that way).

``_set_interrupt_handler`` (not asyncio API; ``Runner`` uses it for Ctrl-C)
installs a handler that runs at once instead of being queued, through the
same channel.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from typing import Any

from ..backends.signals import valid_signals
from ..core.handles import Handle
from .callbacks import check_callback

__all__ = ["SignalOps"]


def _check_signal(sig: object) -> int:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in valid_signals():
        raise ValueError(f"invalid signal number {sig}")
    return sig


class SignalOps:
    """add_signal_handler, remove_signal_handler and their cleanup on close."""

    _backend: Any
    _ready: deque[Handle]
    _check_closed: Callable[[], None]
    _add_reader: Callable[..., Handle]
    _remove_reader: Callable[[Any], bool]

    _signal_channel: Any = None
    _signal_handlers: dict[int, Handle]
    # signal -> a handler run at once in the main thread (_set_interrupt_handler)
    _interrupt_handlers: dict[int, Callable[[int, Any], object]]

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop whenever signal *sig* arrives.

        Main thread only. RuntimeError if the signal cannot be caught.
        """
        check_callback(callback, "add_signal_handler")
        sig = _check_signal(sig)
        self._check_closed()
        channel = self._watch_signals()
        self._signal_handlers[sig] = Handle(callback, args, self, None)
        try:
            channel.set_handler(sig, self._on_signal)
        except (OSError, ValueError, RuntimeError) as exc:
            del self._signal_handlers[sig]
            self._stop_watching_signals_if_idle()
            if isinstance(exc, OSError) and exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        self._interrupt_handlers.pop(sig, None)  # replaced by the loop's handler

    def _set_interrupt_handler(self, sig: int, handler: Callable[[int, Any], object]) -> None:
        """Run ``handler(signum, frame)`` at once, in the main thread, when *sig* arrives.

        Not asyncio API: how ``Runner`` takes Ctrl-C. Unlike the callbacks of
        add_signal_handler, which wait for their turn on the loop, *handler*
        runs between two bytecodes of whatever the main thread is doing, so
        it may raise there (KeyboardInterrupt out of a callback that hangs).
        It goes through the backend's signal channel, whose wakeup fd makes a
        blocked poll return even when the signal lands just before it.
        Main thread only: ValueError/RuntimeError elsewhere, as signal.signal.
        """
        sig = _check_signal(sig)
        self._check_closed()
        channel = self._watch_signals()
        try:
            channel.set_handler(sig, handler)
        except BaseException:
            self._stop_watching_signals_if_idle()
            raise
        loop_handle = self._signal_handlers.pop(sig, None)
        if loop_handle is not None:
            loop_handle.cancel()
        self._interrupt_handlers[sig] = handler

    def _remove_interrupt_handler(
        self, sig: int, handler: Callable[[int, Any], object], *, reset: bool = True
    ) -> bool:
        """Forget *handler* if it is still *sig*'s interrupt handler; True if it was.

        With *reset*, *sig* also gets its default disposition back (SIGINT:
        KeyboardInterrupt); without, whoever replaced the handler keeps it.
        """
        handlers = getattr(self, "_interrupt_handlers", None)
        if not handlers or handlers.get(sig) is not handler:
            return False
        del handlers[sig]
        try:
            if reset:
                self._signal_channel.reset_handler(sig)
        finally:
            self._stop_watching_signals_if_idle()
        return True

    def _watch_signals(self) -> Any:
        """The signal channel, made and watched (wakeup fd installed) if need be."""
        channel = self._signal_channel
        if channel is None:
            channel = self._backend.signal_channel()
            self._signal_channel = channel
            self._signal_handlers = {}
            self._interrupt_handlers = {}
        channel.install_wakeup_fd()
        if not self._signal_handlers and not self._interrupt_handlers:
            self._add_reader(channel.fileno(), channel.drain)
        return channel

    def _stop_watching_signals_if_idle(self) -> None:
        if not self._signal_handlers and not self._interrupt_handlers:
            self._stop_watching_signals()

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Runs in the main thread between bytecodes: only queue work here.
        handle = self._signal_handlers.get(signum)
        if handle is not None and not handle._cancelled:
            self._ready.append(handle)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for *sig*; True if there was one."""
        sig = _check_signal(sig)
        handlers = getattr(self, "_signal_handlers", None)
        if not handlers or sig not in handlers:
            return False
        handlers.pop(sig).cancel()
        try:
            self._signal_channel.reset_handler(sig)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        finally:
            self._stop_watching_signals_if_idle()
        return True

    def _stop_watching_signals(self) -> None:
        channel = self._signal_channel
        self._remove_reader(channel.fileno())
        channel.restore_wakeup_fd()

    def _close_signal_handling(self) -> None:
        """On loop close: every handler removed, the previous wakeup fd restored."""
        channel = self._signal_channel
        if channel is None:
            return
        for sig in list(self._signal_handlers):
            try:
                self.remove_signal_handler(sig)
            except (RuntimeError, ValueError, OSError):
                # Closing from another thread: signal.signal refuses there.
                self._signal_handlers.pop(sig).cancel()
        for sig, handler in list(self._interrupt_handlers.items()):
            try:
                self._remove_interrupt_handler(sig, handler)
            except (RuntimeError, ValueError, OSError):
                self._interrupt_handlers.pop(sig, None)
        self._signal_channel = None
        channel.close()
