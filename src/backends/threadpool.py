"""The default executor: where ``run_in_executor(None, ...)`` and
``getaddrinfo`` run their blocking work.

Facts
-----
- ``asyncio``'s ``loop.set_default_executor`` accepts only a
  ``concurrent.futures.ThreadPoolExecutor`` (a TypeError since 3.11), and code
  in the wild checks for that type, so ours is a thin subclass, not a new pool.
- Threads start lazily: a submit starts one only when no thread is idle and
  fewer than ``max_workers`` exist; they never shrink. An unused pool has none.
- Sizing: the work is I/O-bound (DNS, file I/O, blocking libraries), so more
  threads than cores pay off, but each costs a stack. We use asyncio's
  default, ``min(32, cpus + 4)``: at least 5 so a few slow DNS lookups don't
  starve everything, at most 32 so a big machine doesn't start hundreds.
  ``cpus`` is the CPUs this process may use (affinity), not the machine's.
- Threads are named ``sansloop_0``, ``sansloop_1``, ... so they are easy to
  find in a stack dump (stdlib: ``ThreadPoolExecutor-0_0``).
- Shutdown is the stdlib's: ``loop.shutdown_default_executor()`` calls
  ``shutdown(wait=True)`` from a helper thread so the loop keeps running.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any

__all__ = ["ThreadPoolExecutor", "default_max_workers"]


def default_max_workers() -> int:
    """``min(32, usable CPUs + 4)``, the asyncio/stdlib default."""
    cpus: int | None
    if hasattr(os, "process_cpu_count"):  # 3.13+
        cpus = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count()
    return min(32, (cpus or 1) + 4)


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` with sansloop's defaults and ``statistics()``."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "sansloop",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if max_workers is None:
            max_workers = default_max_workers()
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)

    def statistics(self) -> dict[str, Any]:
        """``max_workers``, ``threads`` started, ``queued`` work items not yet taken."""
        return {
            "max_workers": self._max_workers,
            "threads": len(self._threads),
            "queued": self._work_queue.qsize(),
        }

    def __repr__(self) -> str:
        stats = self.statistics()
        return (
            f"<{type(self).__name__} {self._thread_name_prefix!r}"
            f" threads={stats['threads']}/{stats['max_workers']} queued={stats['queued']}>"
        )
