"""EventLoop: asyncio's AbstractEventLoop on the sans-IO scheduler and a backend.

This module is glue. The decisions live in core (``Scheduler`` runs ticks and
orders timers, ``InterestTable`` tracks which fd wants what); the world lives in
the backend (``poll``, ``time``, ``wakeup``, sockets, executor). The loop
connects them and speaks asyncio: its names, signatures, exceptions, messages.

Two modes, chosen at construction:
- ``mode="loop"`` (the drop-in, like uvloop): ``create_future``/``create_task``
  make stdlib ``asyncio.Future``/``asyncio.Task``; frameworks see what they know.
- ``mode="full"``: they make ``sansloop.core`` Futures and Tasks, so every object
  of the program is ours (inspectable, deterministic under a simulated backend).

One tick (``_run_once``): ask the scheduler how long the backend may block,
poll, queue the handles of ready fds, release due timers, run exactly the
callbacks that were ready when the tick began.

Size: the run loop, scheduling, fd watching and the futures/tasks of the two
modes stay in this one module because they share the hot path; every other
facet of the loop (sockets, connections, servers, datagrams, pipes, sendfile,
signals, executors, async generators, errors) has its own module.

Deliberate differences from asyncio are listed in docs/compat.md (for example:
callbacks are type-checked in every mode, not only in debug mode, and a NaN
delay is refused with ValueError instead of being scheduled).
"""

from __future__ import annotations

import asyncio
import asyncio.events as _aio_events
import concurrent.futures
import contextvars
import inspect
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..backends import Backend, default_backend
from ..core.formatting import extract_stack
from ..core.handles import Handle, TimerHandle
from ..core.interest import MODIFY, READ, REGISTER, UNREGISTER, WRITE, InterestTable
from ..core.scheduler import Scheduler
from .asyncgens import AsyncGenOps
from .callbacks import _PLAIN_CALLABLE_TYPES, check_callback
from .connections import ConnectionOps
from .datagrams import DatagramOps
from .errors import ExceptionHandling, logger
from .executors import ExecutorOps
from .ledger import LedgerOps
from .pipes import PipeOps
from .sendfile import SendfileOps
from .servers import ServerOps
from .signals import SignalOps
from .starttls import StartTLSOps
from .subprocesstransport import SubprocessOps

try:
    from .sockets import SocketOps
except ImportError:  # pragma: no cover - while the module is being written

    class SocketOps:  # type: ignore[no-redef]
        pass


__all__ = ["EventLoop"]

_T = TypeVar("_T")

#: The backend never blocks longer than this (asyncio caps at one day too), so a
#: far-future timer cannot overflow a platform's timeout argument.
MAX_POLL_TIMEOUT = 24 * 3600.0


#: The public method named in a callback error, by interest slot.
_WATCH_METHODS = ("add_reader", "add_writer")


def _debug_from_environment() -> bool:
    # asyncio's own answer (PYTHONASYNCIODEBUG, -X dev), so that code and tests
    # that adjust it see our loops follow.
    is_debug_mode = getattr(asyncio.coroutines, "_is_debug_mode", None)
    if is_debug_mode is not None:
        return bool(is_debug_mode())
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _file_descriptor(fileobj: Any) -> int:
    """The fd of an int or of an object with fileno(); asyncio's errors."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _stop_when_done(future: Any) -> None:
    # SystemExit and KeyboardInterrupt already unwind run_forever() themselves.
    if not future.cancelled() and isinstance(future.exception(), (SystemExit, KeyboardInterrupt)):
        return
    future.get_loop().stop()


class EventLoop(
    ConnectionOps,
    ServerOps,
    DatagramOps,
    PipeOps,
    SendfileOps,
    SignalOps,
    SubprocessOps,
    SocketOps,
    StartTLSOps,
    ExecutorOps,
    AsyncGenOps,
    LedgerOps,
    ExceptionHandling,
    asyncio.AbstractEventLoop,
):
    """An asyncio event loop driven by a sansloop backend."""

    def __init__(self, backend: Backend | None = None, *, mode: str = "loop") -> None:
        if mode not in ("loop", "full"):
            raise ValueError(f"mode must be 'loop' or 'full', not {mode!r}")
        self._backend = backend if backend is not None else default_backend()
        self._mode = mode
        if mode == "loop":
            self._future_class: Any = asyncio.Future
            self._task_class: Any = asyncio.Task
        else:
            from ..core.futures import Future
            from ..core.tasks import Task

            self._future_class = Future
            self._task_class = Task
        self._scheduler = Scheduler()
        self._ready = self._scheduler.ready
        self._interest = InterestTable()
        self._clock = self._backend.time
        self._clock_resolution = self._backend.clock_resolution
        self._closed = False
        self._stopping = False
        self._thread_id: int | None = None
        self._debug = False
        self.set_debug(_debug_from_environment())
        self.slow_callback_duration = 0.1
        self._current_handle: Handle | None = None
        self._exception_handler: Callable[[Any, dict[str, Any]], object] | None = None
        self._task_factory: Any = None
        self._default_executor: concurrent.futures.Executor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        # fd -> the transport that owns it; add_reader() and friends refuse
        # such fds, as asyncio does (two owners of one fd lose data).
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._coroutine_origin_tracking = False
        self._coroutine_origin_depth_saved: int | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} closed={self._closed} "
            f"debug={self._debug} mode={self._mode} backend={self._backend.name}>"
        )

    # -- running and stopping ---------------------------------------------

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_not_running(self) -> None:
        if self._thread_id is not None:
            raise RuntimeError("This event loop is already running")
        if _aio_events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def run_forever(self) -> None:
        """Run until stop() is called."""
        self._check_closed()
        self._check_not_running()
        self._set_coroutine_origin_tracking(self._debug)
        saved_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
            )
            _aio_events._set_running_loop(self)
            run_once = self._run_once
            while True:
                run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            _aio_events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*saved_hooks)

    def run_until_complete(self, future: Awaitable[_T]) -> _T:
        """Run until *future* (a future, task, coroutine or awaitable) is done."""
        self._check_closed()
        self._check_not_running()
        made_here = not asyncio.isfuture(future)
        fut: Any = self._as_future(future)
        if made_here:
            # An exception in it is re-raised below; don't also report it as lost.
            fut._log_destroy_pending = False
        fut.add_done_callback(_stop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if made_here and fut.done() and not fut.cancelled():
                fut.exception()  # mark retrieved: it is what propagates
            raise
        finally:
            fut.remove_done_callback(_stop_when_done)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()  # type: ignore[no-any-return]

    def _as_future(self, obj: Any) -> Any:
        if asyncio.iscoroutine(obj):
            return self.create_task(obj)
        if asyncio.isfuture(obj):
            if obj.get_loop() is not self:
                raise ValueError(
                    "The future belongs to a different loop than the one specified as the loop argument"
                )
            return obj
        if inspect.isawaitable(obj):

            async def _await_it() -> Any:
                return await obj

            return self.create_task(_await_it())
        raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")

    def stop(self) -> None:
        """Stop after the callbacks of the current tick have run."""
        self._stopping = True

    def is_running(self) -> bool:
        """True while run_forever() or run_until_complete() runs."""
        return self._thread_id is not None

    def is_closed(self) -> bool:
        """True once close() has been called."""
        return self._closed

    def close(self) -> None:
        """Close the loop: drop pending callbacks, release the backend.

        The default executor is told to shut down but not waited for (that is
        ``shutdown_default_executor()``'s job). Closing twice is harmless.
        """
        if self._closed:
            return
        if self._thread_id is not None:
            raise RuntimeError("Cannot close a running event loop")
        self._closed = True
        if self._debug:
            logger.debug("Close %r", self)
        self._close_signal_handling()
        # Callbacks that will never run are cancelled, not dropped silently:
        # a call_soon_threadsafe() racing close() sees its handle cancelled
        # (or gets RuntimeError), never a handle that is neither run nor
        # cancelled. popleft() is atomic against the appending threads.
        ready = self._ready
        while ready:
            try:
                ready.popleft().cancel()
            except IndexError:  # pragma: no cover - emptied meanwhile
                break
        self._scheduler.clear()
        # Drop the watchers' handles too: a transport nobody closed must not
        # stay reachable from a closed loop (its ResourceWarning is due now).
        for handle in self._interest.clear():
            handle.cancel()
        self._abandon_default_executor()
        self._backend.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # getattr: __init__ may have failed before _closed existed.
        if getattr(self, "_closed", True):
            return
        _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
        if self._thread_id is None:
            self.close()

    # -- one tick ----------------------------------------------------------

    def _run_once(self) -> None:
        scheduler = self._scheduler
        if self._ready or self._stopping:
            timeout: float | None = 0.0
        else:
            timeout = scheduler.timeout(self._clock())
            if timeout is not None and timeout > MAX_POLL_TIMEOUT:
                timeout = MAX_POLL_TIMEOUT
        # With work ready and no fd watched, a zero-timeout poll could find
        # nothing to be fair to: skip the syscall.
        if timeout != 0.0 or self._interest._entries:
            events = self._backend.poll(timeout)
            if events:
                self._dispatch(events)
        if scheduler._timers:  # read each tick: compaction replaces the list
            scheduler.release_due(self._clock() + self._clock_resolution)
        if self._debug:
            self._run_ready_debug()
            return
        # Scheduler.run_ready(), inlined: this is the loop's innermost path.
        ready = self._ready
        popleft = ready.popleft
        for _ in range(len(ready)):
            handle = popleft()
            if not handle._cancelled:
                handle._run()

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        entries = self._interest._entries
        append = self._ready.append
        for fd, mask in events:
            entry = entries.get(fd)
            if entry is None:
                continue
            if mask & READ:
                reader = entry[0]
                if reader is not None:
                    if reader._cancelled:
                        self._remove_interest(fd, 0)
                    else:
                        append(reader)
            if mask & WRITE:
                writer = entry[1]
                if writer is not None:
                    if writer._cancelled:
                        self._remove_interest(fd, 1)
                    else:
                        append(writer)

    def _run_ready_debug(self) -> None:
        ready = self._ready
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            self._current_handle = handle
            started = self._clock()
            try:
                handle._run()
            finally:
                self._current_handle = None
            took = self._clock() - started
            if took >= self.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds", _describe_handle(handle), took)

    # -- scheduling callbacks -----------------------------------------------
    #
    # call_soon, call_later, call_at and call_soon_threadsafe repeat the same
    # few checks rather than share a helper: they are the loop's hottest entry
    # points and a shared Python frame costs ~60 ns per call, a sizeable part
    # of a call_later (~500 ns here).

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle:
        """Run ``callback(*args)`` on the next tick, in FIFO order."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if type(callback) not in _PLAIN_CALLABLE_TYPES:  # C callables: known good
            check_callback(callback, "call_soon")
        handle = Handle(callback, args, self, context)
        if self._debug:
            self._check_thread()
            handle._source_traceback = extract_stack(sys._getframe(1))
        self._ready.append(handle)
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        """Run ``callback(*args)`` after *delay* seconds of loop time."""
        if delay is None:
            raise TypeError("delay must not be None")
        if delay != delay:
            raise ValueError("Invalid delay: NaN (not a number)")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if type(callback) not in _PLAIN_CALLABLE_TYPES:  # C callables: known good
            check_callback(callback, "call_later")
        timer = TimerHandle(self._clock() + delay, callback, args, self, context)
        if self._debug:
            self._check_thread()
            timer._source_traceback = extract_stack(sys._getframe(1))
        self._scheduler.add_timer(timer)
        return timer

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        """Run ``callback(*args)`` when ``loop.time()`` reaches *when*."""
        if when is None:
            raise TypeError("when cannot be None")
        if when != when:
            raise ValueError("Invalid time: NaN (not a number)")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if type(callback) not in _PLAIN_CALLABLE_TYPES:  # C callables: known good
            check_callback(callback, "call_at")
        timer = TimerHandle(when, callback, args, self, context)
        if self._debug:
            self._check_thread()
            timer._source_traceback = extract_stack(sys._getframe(1))
        self._scheduler.add_timer(timer)
        return timer

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        self._scheduler.timer_cancelled(handle)

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle:
        """Like call_soon(), from any thread; wakes the loop."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if type(callback) not in _PLAIN_CALLABLE_TYPES:  # C callables: known good
            check_callback(callback, "call_soon_threadsafe")
        handle = Handle(callback, args, self, context)
        if self._debug:
            handle._source_traceback = extract_stack(sys._getframe(1))
        # deque.append is atomic; the wakeup is a flag, so a flood costs one write.
        self._ready.append(handle)
        self._backend.wakeup()
        if self._closed and not handle._cancelled and handle in self._ready:
            # close() ran between the check above and the append: the handle
            # will never run. It is cancelled, visibly, rather than left
            # neither run nor cancelled; not raised, because asyncio accepts
            # a call in this window and executor threads must not crash on it.
            handle.cancel()
        return handle

    def time(self) -> float:
        """The loop's clock (the backend's), in seconds."""
        return self._clock()

    def _check_thread(self) -> None:
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    # -- futures and tasks ------------------------------------------------

    def create_future(self) -> Any:
        """A new future attached to this loop."""
        return self._future_class(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> Any:
        """Wrap *coro* in a task scheduled on this loop."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        factory = self._task_factory
        if factory is not None:
            # Factories written for 3.7-3.10 take (loop, coro) only: pass
            # context= just when there is one, as asyncio 3.11-3.13 does.
            extra = {} if context is None else {"context": context}
            made = factory(self, coro, **extra)
            if name is not None:
                made.set_name(name)
            return made
        made = self._task_class(coro, loop=self, name=name, context=context)
        stack = made._source_traceback
        if stack:
            stack.pop()  # drop this frame: show the caller's line
        return made

    def set_task_factory(self, factory: Any) -> None:
        """Use *factory(loop, coro, **kwargs)* to make tasks (None: the default)."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        """The task factory, or None for the default."""
        return self._task_factory

    # -- watching file descriptors ----------------------------------------

    def _apply_interest(self, op: int, fd: int, mask: int) -> None:
        backend = self._backend
        if op == REGISTER:
            backend.register(fd, mask)
        elif op == MODIFY:
            backend.modify(fd, mask)
        elif op == UNREGISTER:
            backend.unregister(fd)

    def _add_interest(self, fd: int, slot: int, handle: Handle) -> None:
        table = self._interest
        op, mask, previous = (table.set_reader if slot == 0 else table.set_writer)(fd, handle)
        try:
            self._apply_interest(op, fd, mask)
        except BaseException:
            # Undo the table change so the table and the backend agree.
            if op == REGISTER:
                table.forget(fd)
            else:
                (table.remove_reader if slot == 0 else table.remove_writer)(fd)
            raise
        if previous is not None:
            previous.cancel()

    def _remove_interest(self, fd: int, slot: int) -> bool:
        table = self._interest
        op, mask, previous = (table.remove_reader if slot == 0 else table.remove_writer)(fd)
        if previous is None:
            return False
        try:
            self._apply_interest(op, fd, mask)
        except OSError:
            # The fd was closed before its interest was removed: the kernel has
            # already forgotten it; the table now agrees.
            pass
        previous.cancel()
        return True

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        """RuntimeError if a transport owns *fd* (it must not be watched twice)."""
        fileno = _file_descriptor(fd)
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    # The private _add_*/_remove_* forms skip the ownership check: transports
    # use them on their own fds. _add_* return the handle, so that an owner
    # can tell later whether the interest is still its own (a newer add
    # replaces it).

    def _watch(self, fd: Any, slot: int, callback: Callable[..., object], args: Any) -> Handle:
        fd = _file_descriptor(fd)
        self._check_closed()
        check_callback(callback, _WATCH_METHODS[slot])
        handle = Handle(callback, args, self, None)
        self._add_interest(fd, slot, handle)
        return handle

    def _unwatch(self, fd: Any, slot: int) -> bool:
        fd = _file_descriptor(fd)
        return False if self._closed else self._remove_interest(fd, slot)

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(*args)`` whenever *fd* is readable."""
        self._ensure_fd_no_transport(fd)
        self._watch(fd, 0, callback, args)

    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        return self._watch(fd, 0, callback, args)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching *fd* for reading; True if it was watched."""
        self._ensure_fd_no_transport(fd)
        return self._unwatch(fd, 0)

    def _remove_reader(self, fd: Any) -> bool:
        return self._unwatch(fd, 0)

    def add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(*args)`` whenever *fd* is writable."""
        self._ensure_fd_no_transport(fd)
        self._watch(fd, 1, callback, args)

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        return self._watch(fd, 1, callback, args)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching *fd* for writing; True if it was watched."""
        self._ensure_fd_no_transport(fd)
        return self._unwatch(fd, 1)

    def _remove_writer(self, fd: Any) -> bool:
        return self._unwatch(fd, 1)

    # -- debug ------------------------------------------------------------

    def get_debug(self) -> bool:
        """True if debug mode is on."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Turn debug mode on or off."""
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == self._coroutine_origin_tracking:
            return
        if enabled:
            self._coroutine_origin_depth_saved = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(10)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_depth_saved or 0)
        self._coroutine_origin_tracking = bool(enabled)

    # -- introspection ------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The backend this loop runs on."""
        return self._backend

    @property
    def mode(self) -> str:
        """'loop' (stdlib futures and tasks) or 'full' (sansloop's own)."""
        return self._mode


def _describe_handle(handle: Handle) -> str:
    # A task's step shows as the task, as asyncio shows it; any other
    # callback (a future's method included) as the handle.
    from ..core.tasks import Task

    owner = getattr(handle._callback, "__self__", None)
    if isinstance(owner, (asyncio.Task, Task)):
        return repr(owner)
    return str(handle)
