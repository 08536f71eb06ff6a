"""Which task is running, and which tasks are alive: one answer for both worlds.

A sansloop loop in full mode runs sansloop's core Tasks, which register in the
core registry (``sansloop.core.taskregistry``); stdlib ``asyncio.Task`` objects (loop
mode, or a stdlib loop) register with asyncio. The compat functions answer for
both:

- ``current_task(loop=None)``: the core registry's current task for *loop*,
  else asyncio's; None when neither knows one. With ``loop=None`` the running
  loop is used (RuntimeError "no running event loop" if there is none).
- ``all_tasks(loop=None)``: the union of both registries' unfinished tasks of
  *loop*, as a set.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..core import taskregistry as _core

__all__ = ["current_task", "all_tasks"]


def current_task(loop: Any = None) -> Any:
    """Return the task currently running on *loop* (default: the running loop)."""
    if loop is None:
        loop = asyncio.get_running_loop()
    task = _core.current_task(loop)
    if task is not None:
        return task
    return asyncio.current_task(loop)


def all_tasks(loop: Any = None) -> set[Any]:
    """Return the set of not-yet-done tasks of *loop* (default: the running loop)."""
    if loop is None:
        loop = asyncio.get_running_loop()
    found = set(asyncio.all_tasks(loop))
    found.update(_core.all_tasks(loop))
    return found
