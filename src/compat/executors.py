"""The loop's executor methods: run_in_executor and the default executor.

A mixin of ``EventLoop``. The default executor comes from the backend
(``Backend.default_executor()``), so that a simulated backend can run blocking
work deterministically; shutting it down without blocking the loop is also the
backend's job (``Backend.shutdown_executor``), because it needs a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .callbacks import check_callback

__all__ = ["ExecutorOps"]

_T = TypeVar("_T")


def _set_result_unless_done(future: Any, result: Any) -> None:
    if not future.done():
        future.set_result(result)


class ExecutorOps:
    """run_in_executor, set_default_executor, shutdown_default_executor."""

    _backend: Any
    _default_executor: concurrent.futures.Executor | None
    _executor_shutdown_called: bool
    _debug: bool
    _check_closed: Callable[[], None]
    _check_thread: Callable[[], None]
    create_future: Callable[[], Any]
    call_soon_threadsafe: Callable[..., Any]

    def run_in_executor(self, executor: Any, func: Callable[..., _T], *args: Any) -> Any:
        """Run ``func(*args)`` in *executor* (None: the default); return a future."""
        self._check_closed()
        if self._debug:
            self._check_thread()
        check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = self._backend.default_executor()
                self._default_executor = executor
        return self._wrap_concurrent(executor.submit(func, *args))

    def _wrap_concurrent(self, concurrent_future: concurrent.futures.Future[Any]) -> Any:
        return asyncio.wrap_future(concurrent_future, loop=self)

    def _abandon_default_executor(self) -> None:
        # On close(): no new jobs, and the executor winds down on its own time.
        self._executor_shutdown_called = True
        executor, self._default_executor = self._default_executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    def set_default_executor(self, executor: Any) -> None:
        """Use *executor* (a ThreadPoolExecutor) for run_in_executor(None, ...)."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down, waiting for its jobs (up to *timeout*)."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()
        self._backend.shutdown_executor(
            executor, lambda: self.call_soon_threadsafe(_set_result_unless_done, done, None)
        )
        try:
            if timeout is None:
                await done
            else:
                # Ours, not the stdlib's: from 3.12 on, asyncio.wait_for asks
                # asyncio.current_task(), which does not know full-mode tasks.
                from .tasks import shield, wait_for

                await wait_for(shield(done), timeout)
        except TimeoutError:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        finally:
            self._default_executor = None
