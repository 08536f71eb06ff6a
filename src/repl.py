"""An asyncio REPL on a sansloop loop: ``python -m sansloop repl``.

Contract:

- The loop runs in the main thread, for the whole session; the console (reading
  lines, compiling them) runs in a worker of the loop's default executor. Every statement runs *in the
  loop thread*, so ``asyncio.get_running_loop()`` works at top level, and a
  statement that uses ``await`` (compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT``)
  becomes a task on the loop; the console waits for it before reading on.
- Tasks started with ``asyncio.create_task`` keep running between prompts.
- Ctrl-C while a statement runs cancels that statement's task (or interrupts a
  plain statement) and the session goes on; Ctrl-D / end of input ends it;
  ``exit()`` / ``raise SystemExit(n)`` ends it with status *n*.
- On exit the loop's remaining tasks are cancelled, async generators and the
  default executor shut down, and the loop closed.
- Tracebacks show the user's code only (from ``<console>`` on).

``mode="loop"`` (the default) binds ``asyncio`` to the stdlib module (stdlib
futures and tasks on our loop); ``mode="full"`` binds it to
:mod:`sansloop.compat`, so every object is sansloop's own.
"""

from __future__ import annotations

import ast
import asyncio
import code
import concurrent.futures
import inspect
import sys
import threading
import traceback
import types
from typing import Any

__all__ = ["AsyncConsole", "run_repl"]

_FILENAME = "<console>"


class AsyncConsole(code.InteractiveConsole):
    """A console whose statements run on *loop*, top-level ``await`` allowed.

    :meth:`runcode` is called from the console thread; it hands the code to the
    loop thread and waits for its outcome.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, namespace: dict[str, Any]) -> None:
        super().__init__(namespace, filename=_FILENAME)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.loop = loop
        self.exit_status: int | str | None = None
        self._lock = threading.Lock()
        self._running: asyncio.Future[Any] | None = None  # the statement's task, if any

    def runcode(self, code: types.CodeType) -> None:
        """Run *code* in the loop thread; show its exception, if any."""
        outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._start, code, outcome)
        try:
            outcome.result()
        except SystemExit:
            raise
        except concurrent.futures.CancelledError:
            self.write("\nKeyboardInterrupt: the statement was cancelled\n")
        except BaseException as exc:  # noqa: BLE001 - the user's error, shown like Python does
            self._show(exc)

    def cancel_running(self) -> bool:
        """Cancel the statement's task (called on Ctrl-C in the loop thread)."""
        with self._lock:
            task = self._running
        if task is None or task.done():
            return False
        task.cancel()
        return True

    # -- in the loop thread --------------------------------------------------------

    def _start(self, code: types.CodeType, outcome: concurrent.futures.Future[Any]) -> None:
        try:
            result = eval(code, self.locals)  # noqa: S307 - this is a REPL
        except BaseException as exc:  # noqa: BLE001 - handed to the console thread
            outcome.set_exception(exc)
            return
        if not inspect.iscoroutine(result):
            outcome.set_result(result)
            return
        task = self.loop.create_task(result)
        with self._lock:
            self._running = task
        task.add_done_callback(lambda t: self._finish(t, outcome))

    def _finish(self, task: asyncio.Future[Any], outcome: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._running = None
        if task.cancelled():
            outcome.cancel()
        elif (exc := task.exception()) is not None:
            outcome.set_exception(exc)
        else:
            outcome.set_result(task.result())

    # -- in the console thread ----------------------------------------------------

    def _show(self, exc: BaseException) -> None:
        """Print *exc* with its traceback cut to the frames of the user's code."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != _FILENAME:
            tb = tb.tb_next
        lines = traceback.format_exception(type(exc), exc, tb if tb is not None else None)
        self.write("".join(lines))


def _namespace(mode: str) -> dict[str, Any]:
    import sansloop

    if mode == "full":
        import sansloop.compat as namespace_asyncio
    else:
        namespace_asyncio = asyncio  # type: ignore[assignment]
    return {
        "__name__": "__main__",
        "__package__": None,
        "__doc__": None,
        "__builtins__": __builtins__,
        "asyncio": namespace_asyncio,
        "sansloop": sansloop,
    }


def run_repl(backend: str | None = None, *, debug: bool = False, mode: str = "loop") -> int:
    """Run the REPL until end of input or ``exit()``; returns the exit status."""
    import sansloop
    from sansloop.compat.loop import EventLoop

    loop = EventLoop(sansloop.get_backend(backend) if backend else None, mode=mode)
    loop.set_debug(debug)
    asyncio.set_event_loop(loop)
    console = AsyncConsole(loop, _namespace(mode))
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401 - line editing and history, as python's REPL
        except ImportError:
            pass
    banner = (
        f"sansloop {sansloop.__version__} asyncio REPL ({mode} mode, "
        f"{type(loop).__name__} on the {loop.backend.name} backend), "
        f"Python {sys.version.split()[0]} on {sys.platform}\n"
        'Use "await" directly instead of "asyncio.run()".\n'
        'Type "help", "copyright", "credits" or "license" for more information.'
    )

    def interact() -> None:
        try:
            console.interact(banner=banner, exitmsg="exiting sansloop REPL...")
        except SystemExit as exit_:
            console.exit_status = exit_.code
        finally:
            loop.call_soon_threadsafe(loop.stop)

    # The console blocks in input(): it gets a worker of the loop's default
    # executor (the backend's thread pool) for the whole session.
    console_done = loop.run_in_executor(None, interact)
    try:
        while True:
            try:
                loop.run_forever()
            except KeyboardInterrupt:
                # Raised in a statement, it is that statement's outcome (shown by the
                # console); raised while the loop waited, it cancels the running one.
                console.cancel_running()
                continue
            break
        loop.run_until_complete(console_done)
    finally:
        _shutdown(loop, console.locals["asyncio"])
    status = console.exit_status
    if status is None:
        return 0
    if isinstance(status, int):
        return status
    print(status, file=sys.stderr)
    return 1


def _shutdown(loop: asyncio.AbstractEventLoop, aio: Any) -> None:
    """Cancel what is left (with *aio*, the session's ``asyncio``) and close *loop*."""
    try:
        pending = [t for t in aio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(aio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
