"""Which task runs on each loop, and which tasks exist: asyncio's task registry.

Contract
--------
Two tables, module-global as asyncio's are (a task may be looked up from any
code that knows its loop):

- *current task*: loop -> the task whose step is running on it. A task enters
  before each step and leaves after it (``_enter_task``/``_leave_task``, with
  asyncio's RuntimeError messages for a mismatch); an eager task swaps itself
  in and out (``_swap_current_task``) because it may start inside another
  task's step.
- *all tasks*: every scheduled task, held weakly (a pending task nobody
  references must still be collectable, so it can report "Task was destroyed
  but it is pending!"), plus the eager tasks whose first step is running,
  held strongly for that step only. ``all_tasks(loop)`` answers the
  not-yet-done ones bound to *loop* as asyncio does (a set);
  ``pending_tasks(loop)`` gives the same tasks as a list in registration
  order, for code that must not depend on hash order.

Weak references are kept in a dict keyed by ``weakref.ref`` (insertion
ordered, and cheaper than ``weakref.WeakSet``): a ref hashes and compares like
its task while the task lives, and the callback that fires when the task dies
removes the entry by that same ref.

This registry only knows sansloop's tasks. Code that also runs stdlib tasks
(the compat layer) asks both registries. ``loop=None`` asks ``binding`` for
the running loop.
"""

from __future__ import annotations

import weakref
from typing import Any

from . import binding
from .futures import get_future_loop

__all__ = [
    "current_task",
    "all_tasks",
    "pending_tasks",
    "_register_task",
    "_unregister_task",
    "_register_eager_task",
    "_unregister_eager_task",
    "_enter_task",
    "_leave_task",
    "_swap_current_task",
]

#: loop -> the task whose step runs on it now.
_current_tasks: dict[Any, Any] = {}
#: weakref.ref(task) -> None for every scheduled task (dead refs drop out).
_scheduled_tasks: dict[weakref.ref[Any], None] = {}
#: task -> None for eager tasks during their first, synchronous step.
_eager_tasks: dict[Any, None] = {}

_ref = weakref.ref


def _forget(ref: weakref.ref[Any]) -> None:
    # Runs when a registered task is collected.
    _scheduled_tasks.pop(ref, None)


def current_task(loop: Any = None) -> Any:
    """Return the task running on *loop* (the running loop if None), or None."""
    if loop is None:
        loop = binding.get_running_loop()
    return _current_tasks.get(loop)


def pending_tasks(loop: Any = None) -> list[Any]:
    """The not-yet-done tasks bound to *loop* (the running loop if None), as a list.

    In registration order (scheduled tasks, then eager tasks in their first
    step): code that must act on every task reproducibly (cancelling them all
    at shutdown, a simulation that replays) iterates this, not a set.
    """
    if loop is None:
        loop = binding.get_running_loop()
    # Snapshot first: a collection may drop entries while we look.
    candidates = [ref() for ref in list(_scheduled_tasks)]
    candidates.extend(list(_eager_tasks))
    return [
        task
        for task in candidates
        if task is not None and get_future_loop(task) is loop and not task.done()
    ]


def all_tasks(loop: Any = None) -> set[Any]:
    """Return the set of not-yet-done tasks bound to *loop* (the running loop if None)."""
    if loop is None:
        loop = binding.get_running_loop()
    return set(pending_tasks(loop))


def _register_task(task: Any) -> None:
    """Record a scheduled *task* (weakly)."""
    _scheduled_tasks[_ref(task, _forget)] = None


def _unregister_task(task: Any) -> None:
    """Forget *task*; a no-op if it was not registered."""
    _scheduled_tasks.pop(_ref(task), None)


def _register_eager_task(task: Any) -> None:
    """Record *task* while its eager first step runs."""
    _eager_tasks[task] = None


def _unregister_eager_task(task: Any) -> None:
    """Forget an eager *task* once its first step is over."""
    _eager_tasks.pop(task, None)


def _enter_task(loop: Any, task: Any) -> None:
    """Make *task* the current task of *loop*; RuntimeError if another one is."""
    current = _current_tasks.setdefault(loop, task)
    if current is not task:
        raise RuntimeError(
            f"Cannot enter into task {task!r} while another task {current!r} is being executed."
        )


def _leave_task(loop: Any, task: Any) -> None:
    """Clear the current task of *loop*; RuntimeError unless it is *task*."""
    current = _current_tasks.get(loop)
    if current is not task:
        raise RuntimeError(f"Leaving task {task!r} does not match the current task {current!r}.")
    del _current_tasks[loop]


def _swap_current_task(loop: Any, task: Any) -> Any:
    """Make *task* (None: no task) current on *loop*; return the previous one."""
    if task is None:
        return _current_tasks.pop(loop, None)
    previous = _current_tasks.get(loop)
    _current_tasks[loop] = task
    return previous
