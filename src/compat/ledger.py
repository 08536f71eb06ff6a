"""The loop's resource ledger: ``loop.statistics()``.

Contract
--------
``LedgerOps`` is mixed into ``EventLoop``; its one public method,
``statistics(detail=None)``, returns what the loop holds right now:

- ``ready``, ``timers``, ``cancelled_timers``, ``live_timers``: the
  scheduler's queue and heap (``live_timers`` excludes cancelled ones still
  in the heap, which are dropped lazily);
- ``fds``, ``readers``, ``writers``: fds the loop watches (interest table);
- ``transports``: live transports that own an fd of this loop;
- ``tasks``: tasks of this loop not yet done (stdlib and sansloop tasks);
- ``backend``: the backend's own ``statistics()``.

With ``detail=True`` (the default in debug mode) a ``ledger`` entry breaks
each count down by owner, so that a test or a user can see *who* holds what:

- ``fds``: fd -> the owner of its watchers (``"SocketTransport"``, a
  callback's qualified name) or of the transport registered for it;
- ``transports``: transport class -> count;
- ``handles`` and ``timers``: the callback's owner -> count, for ready
  handles and live timers;
- ``waiters``: where each pending task is suspended (the innermost
  coroutine it awaits, or the future type) -> count.

Nothing here is on a hot path: every number is computed when asked, from
the structures the loop keeps anyway, so asking costs O(size) and not asking
costs nothing. The figures are a snapshot; call it from the loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from ..core import taskregistry

__all__ = ["LedgerOps", "owner_name"]


def owner_name(callback: Any) -> str:
    """A short, stable name for who a callback belongs to.

    A bound method names its class and method (``SocketTransport._read_ready``);
    a function its qualified name; anything else its type.
    """
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__name__", None)
    if owner is not None and name is not None and not isinstance(owner, type(asyncio)):
        return f"{type(owner).__qualname__}.{name}"
    qualname = getattr(callback, "__qualname__", None)
    if isinstance(qualname, str):
        return qualname
    return type(callback).__qualname__


def suspended_at(task: Any) -> str:
    """Where a pending task waits: its innermost awaited coroutine, or a future type."""
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if get_coro is not None else None
    if coro is None:
        return "<no coroutine>"
    where = getattr(coro, "__qualname__", type(coro).__qualname__)
    for _ in range(100):  # bounded: an await chain deeper than this is named at 100
        inner = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if inner is None:
            break
        name = getattr(inner, "__qualname__", None)
        if isinstance(name, str) and name.endswith(".__await__"):
            # A pure-Python future's __await__ generator: name the future type.
            return f"{where} -> {name[: -len('.__await__')]}"
        if hasattr(inner, "cr_await") or hasattr(inner, "gi_yieldfrom"):
            coro = inner
            where = name if isinstance(name, str) else type(inner).__qualname__
            continue
        # A future (or another awaitable) at the bottom of the chain; the C
        # future's iterator is named for its future.
        kind = type(inner).__qualname__
        return f"{where} -> {'Future' if kind == 'FutureIter' else kind}"
    return where


class LedgerOps:
    """``statistics()``: the loop's resources, counted and (in detail) by owner."""

    def _loop_tasks(self) -> list[Any]:
        tasks: dict[int, Any] = {}
        for task in asyncio.all_tasks(self):  # type: ignore[arg-type]
            tasks[id(task)] = task
        for task in taskregistry.pending_tasks(self):
            tasks[id(task)] = task
        return [task for task in tasks.values() if not task.done()]

    def statistics(self, detail: bool | None = None) -> dict[str, Any]:
        """What the loop holds now; with *detail* (default: debug mode), by owner."""
        scheduler = self._scheduler  # type: ignore[attr-defined]
        interest = self._interest  # type: ignore[attr-defined]
        stats: dict[str, Any] = scheduler.statistics()
        stats["live_timers"] = stats["timers"] - stats["cancelled_timers"]
        stats.update(interest.statistics())
        transports = dict(self._transports)  # type: ignore[attr-defined]
        stats["transports"] = len(transports)
        tasks = self._loop_tasks() if not self.is_closed() else []  # type: ignore[attr-defined]
        stats["tasks"] = len(tasks)
        stats["backend"] = self._backend.statistics()  # type: ignore[attr-defined]
        if detail is None:
            detail = self.get_debug()  # type: ignore[attr-defined]
        if not detail:
            return stats
        fds: dict[int, str] = {}
        for fd, transport in sorted(transports.items()):
            fds[fd] = type(transport).__qualname__
        for fd in interest.fds():
            if fd in fds:
                continue
            handle = interest.reader(fd) or interest.writer(fd)
            fds[fd] = owner_name(handle._callback) if handle is not None else "?"
        stats["ledger"] = {
            "fds": dict(sorted(fds.items())),
            "transports": dict(Counter(type(t).__qualname__ for t in transports.values())),
            "handles": dict(Counter(owner_name(h._callback) for h in scheduler.ready)),
            "timers": dict(Counter(owner_name(t._callback) for t in scheduler.live_timers())),
            "waiters": dict(Counter(suspended_at(task) for task in tasks)),
        }
        return stats
