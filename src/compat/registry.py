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


def pending_tasks(loop: Any = None) -> list[Any]:
    """The not-yet-done tasks of *loop* as a list in a reproducible order.

    Ours come first, in creation order (from the core registry); stdlib tasks
    follow, ordered by their "Task-N" creation number where they have one.
    Shutdown code cancels in this order so a simulated run replays exactly.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    ours = _core.pending_tasks(loop)
    known = set(ours)
    theirs = [task for task in asyncio.all_tasks(loop) if task not in known]
    theirs.sort(key=_creation_number)
    return ours + theirs


def _creation_number(task: Any) -> tuple[int, str]:
    name = task.get_name()
    number = name[5:] if name.startswith("Task-") else ""
    return (int(number), name) if number.isdigit() else (-1, name)
