"""``asyncio.Runner`` and ``asyncio.run``, making full-mode sansloop loops by default.

Contract (asyncio 3.11-3.13 behaviour):
- ``Runner(debug=None, loop_factory=None)`` owns one loop, created lazily on
  first use: by *loop_factory* if given, else a full-mode sansloop loop
  (``sansloop.compat.SelectorEventLoop()``) -- or, when a non-default event
  loop policy is installed, that policy's ``new_event_loop()``, as asyncio's
  Runner does. A loop made without a factory is also set as the thread's
  current loop (``asyncio.set_event_loop``) for the Runner's lifetime.
- ``Runner.run(coro, *, context=None)`` runs *coro* as the main task to
  completion (ValueError for a non-coroutine, RuntimeError inside a running
  loop or after ``close()``). In the main thread, while the default SIGINT
  handler is installed, Ctrl-C cancels the main task once (a second one raises
  KeyboardInterrupt at once); a main task ended by that cancellation makes
  ``run`` raise KeyboardInterrupt. On a sansloop loop the handler is
  installed through the loop's signal channel (so its wakeup fd wakes a
  blocked poll), on any other loop with ``signal.signal``; either way it
  runs at once, as asyncio's does, and is restored afterwards unless
  someone replaced it meanwhile.
- ``Runner.close()`` cancels the tasks still alive and waits for them (an
  exception other than cancellation goes to the loop's exception handler),
  then shuts down async generators and the default executor, and closes the
  loop. Closing twice, or closing a Runner never used, is a no-op.
- ``run(main, *, debug=None, loop_factory=None)`` is ``with Runner(...) as r:
  return r.run(main)``, refused inside a running loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import inspect
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar

from .coroutines import iscoroutine
from .registry import pending_tasks
from .tasks import gather

__all__ = ["Runner", "run"]

T = TypeVar("T")

# How long close() lets the default executor's threads finish (asyncio's
# constants.THREAD_JOIN_TIMEOUT, used from 3.12 on): five minutes.
_EXECUTOR_JOIN_TIMEOUT = 300


def _default_loop() -> Any:
    """The loop a Runner makes when given no factory.

    A full-mode sansloop loop, unless the program installed an event loop
    policy of its own (a test harness, ``sansloop.install()``...): asyncio's
    Runner asks the policy, so we do too whenever the policy is not the
    stdlib's default one.
    """
    policy = asyncio.get_event_loop_policy()
    if type(policy) is not asyncio.DefaultEventLoopPolicy:
        return policy.new_event_loop()
    from .loopclasses import SelectorEventLoop

    return SelectorEventLoop()


class _State(enum.Enum):
    CREATED = "created"
    INITIALIZED = "initialized"
    CLOSED = "closed"


class Runner:
    """Context manager owning an event loop: run coroutines in it, then close it.

    ``run(main())`` is a shortcut for::

        with Runner() as runner:
            runner.run(main())

    ``run()`` may be called several times within one Runner.
    """

    def __init__(
        self,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], Any] | None = None,
    ) -> None:
        self._state = _State.CREATED
        self._debug = debug
        self._loop_factory = loop_factory
        self._loop: Any = None
        self._context: contextvars.Context | None = None
        self._interrupt_count = 0
        self._set_event_loop = False

    def __enter__(self) -> Runner:
        self._lazy_init()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Finish the leftover tasks, async generators and executor; close the loop."""
        if self._state is not _State.INITIALIZED:
            return
        loop = self._loop
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(_shutdown_default_executor(loop))
        finally:
            if self._set_event_loop:
                asyncio.set_event_loop(None)
            loop.close()
            self._loop = None
            self._state = _State.CLOSED

    def get_loop(self) -> Any:
        """The Runner's loop (created now if it does not exist yet)."""
        self._lazy_init()
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None) -> T:
        """Run *coro* to completion in the Runner's loop and return its result."""
        if not iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        self._lazy_init()
        if context is None:
            context = self._context
        task = self._loop.create_task(coro, context=context)

        sigint_handler = self._install_sigint_handler(task)
        self._interrupt_count = 0
        try:
            return self._loop.run_until_complete(task)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            if self._interrupt_count > 0:
                uncancel = getattr(task, "uncancel", None)
                if uncancel is not None and uncancel() == 0:
                    raise KeyboardInterrupt()  # noqa: B904 (asyncio keeps the context)
            raise
        finally:
            if sigint_handler is not None:
                self._restore_sigint_handler(sigint_handler)

    def _install_sigint_handler(self, main_task: Any) -> Any:
        """Route Ctrl-C to *main_task* if we are in charge of SIGINT; the handler or None.

        On a sansloop loop the handler goes through the loop's signal
        channel (``_set_interrupt_handler``: it runs at once, as asyncio's,
        and the channel's wakeup fd wakes a blocked poll); on another loop,
        with ``signal.signal`` as asyncio does.
        """
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None  # someone else handles Ctrl-C: leave it to them
        handler = functools.partial(self._on_sigint, main_task=main_task)
        install = getattr(self._loop, "_set_interrupt_handler", None)
        try:
            if install is not None:
                install(signal.SIGINT, handler)
            else:
                signal.signal(signal.SIGINT, handler)
        except (ValueError, RuntimeError):
            return None  # an interpreter whose main thread takes no signals
        return handler

    def _restore_sigint_handler(self, handler: Any) -> None:
        """Give SIGINT back its default handler, unless someone replaced ours meanwhile."""
        still_ours = signal.getsignal(signal.SIGINT) is handler
        remove = getattr(self._loop, "_remove_interrupt_handler", None)
        if remove is not None:
            remove(signal.SIGINT, handler, reset=still_ours)
        elif still_ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _lazy_init(self) -> None:
        state = self._state
        if state is _State.INITIALIZED:
            return
        if state is _State.CLOSED:
            raise RuntimeError("Runner is closed")
        loop = self._make_loop()
        if self._debug is not None:
            loop.set_debug(self._debug)
        self._loop = loop
        self._context = contextvars.copy_context()
        self._state = _State.INITIALIZED

    def _make_loop(self) -> Any:
        if self._loop_factory is not None:
            return self._loop_factory()
        # Our own default loop is also the thread's current loop while the
        # Runner lives, as asyncio does for its default loop.
        loop = _default_loop()
        asyncio.set_event_loop(loop)
        self._set_event_loop = True
        return loop

    def _on_sigint(self, signum: int, frame: FrameType | None, main_task: Any) -> None:
        self._interrupt_count += 1
        if self._interrupt_count > 1 or main_task.done():
            raise KeyboardInterrupt()
        main_task.cancel()
        # Wake the loop in case it is blocked in the backend's poll.
        self._loop.call_soon_threadsafe(_nothing)


def _nothing() -> None:
    """A callback whose only job is to wake the loop."""


def run(
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], Any] | None = None,
) -> T:
    """Run the coroutine *main* in a new loop, finalize everything, close the loop.

    Refused (RuntimeError) when a loop is already running in this thread.
    """
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    with Runner(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)


async def _shutdown_default_executor(loop: Any) -> None:
    """Shut the default executor down, with a join timeout where the loop takes one."""
    shutdown = loop.shutdown_default_executor
    if "timeout" in inspect.signature(shutdown).parameters:
        await shutdown(_EXECUTOR_JOIN_TIMEOUT)
    else:
        await shutdown()  # a stdlib 3.11 loop


def _cancel_leftover_tasks(loop: Any) -> None:
    """Cancel every unfinished task of *loop*, wait for them, report their errors."""
    leftovers = pending_tasks(loop)
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    loop.run_until_complete(gather(*leftovers, return_exceptions=True))
    for task in leftovers:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
