"""The simulated executor: blocking work run at a simulated time, no threads.

``submit(fn, *args)`` returns a ``concurrent.futures.Future`` at once and
schedules the job on the world's event queue after a duration drawn from
``NetConfig.executor_duration`` (label ``executor.duration``; 0 = the shortest).
When virtual time reaches it, ``fn(*args)`` runs in the loop's own thread,
inside the backend's ``poll``, and its result or exception completes the
future; asyncio's ``wrap_future`` then wakes the loop as it would from a
worker thread. Jobs therefore run one at a time, in (time, submission) order,
which is what makes ``run_in_executor``, ``to_thread`` and ``getaddrinfo``
deterministic. A job that itself blocks (``time.sleep``, a real socket) is
caught by the determinism guard.

It subclasses ``ThreadPoolExecutor`` only so that ``set_default_executor``
accepts it; no thread is ever started.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .choices import pick_range

if TYPE_CHECKING:
    from .world import World

__all__ = ["SimExecutor"]


class SimExecutor(concurrent.futures.ThreadPoolExecutor):
    """A deterministic executor over the simulated clock (no threads)."""

    def __init__(self, world: World) -> None:
        # ThreadPoolExecutor.__init__ is not called: it prepares a thread pool.
        self._world = world
        self._sim_shutdown = False
        self._jobs = 0
        self._submitted = 0
        self._on_idle: list[Callable[[], object]] = []

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        if self._sim_shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        world = self._world
        low, high = world.config.executor_duration
        duration = pick_range(world.choices, low, high, "executor.duration")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs += 1
        self._submitted += 1
        job = self._submitted
        name = getattr(fn, "__qualname__", type(fn).__name__)
        world.record("job.submit", job, name, duration)
        world.at(world.now + duration, self._run, job, future, fn, args, kwargs)
        return future

    def _run(
        self,
        job: int,
        future: concurrent.futures.Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._jobs -= 1
        if future.set_running_or_notify_cancel():
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # a job's failure belongs to its future
                self._world.record("job.error", job, type(exc).__name__)
                future.set_exception(exc)
            else:
                self._world.record("job.done", job)
                future.set_result(result)
        if not self._jobs:
            idle, self._on_idle = self._on_idle, []
            for callback in idle:
                callback()

    def when_idle(self, callback: Callable[[], object]) -> None:
        """Call *callback* once no job is pending (now if none is)."""
        if self._jobs:
            self._on_idle.append(callback)
        else:
            callback()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Jobs run inside poll(), so waiting here could never end: pending
        # jobs still run at their simulated time unless cancelled.
        self._sim_shutdown = True

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet run."""
        return self._jobs

    def __repr__(self) -> str:
        return f"<SimExecutor pending={self._jobs} submitted={self._submitted}>"
