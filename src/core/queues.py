"""Queue, PriorityQueue and LifoQueue: asyncio's queues as waiter machines.

State: the items (a deque, a heap or a stack, chosen by the overridable
``_init``/``_put``/``_get`` trio that asyncio subclasses rely on), a FIFO of
parked getters, a FIFO of parked putters, the count of unfinished tasks (items
put and not yet ``task_done()``), an Event for ``join()``, and the shut-down flag
(asyncio 3.13's ``shutdown(immediate=False)``, offered on every version).

Transitions, all synchronous except the parking in ``get``/``put``/``join``:

* ``put_nowait``: shut down -> QueueShutDown; full -> QueueFull; else store the
  item, count one unfinished task, and unpark the oldest pending getter.
* ``get_nowait``: empty -> QueueShutDown if shut down, else QueueEmpty; else
  take an item and unpark the oldest pending putter.
* ``put``/``get`` park while full/empty and retry when woken. A woken waiter
  that is cancelled before it runs passes its wake-up on, so no item or slot is
  stranded. Woken waiters re-check, so a wake-up is a hint, not a reservation
  (asyncio's behaviour: a late arrival may take the item first).
* ``task_done``: one fewer unfinished task (ValueError below zero); at zero,
  ``join()`` returns.
* ``shutdown(immediate)``: puts fail from now on; gets fail once the queue is
  empty -- at once with ``immediate=True``, which also discards the items and
  marks them done. Every parked getter and putter is woken to re-check.

Exceptions. A user's ``except asyncio.QueueEmpty`` must catch what our queues
raise, and ``except`` matches by class identity, so the classes raised must be
the stdlib's own. They live in ``asyncio.queues``, which core may not import
(core may use only ``asyncio.exceptions``). Decision: this module defines
stand-in classes for standalone use of core, and ``install_exceptions()`` is the
injection point through which whoever embeds core hands over the stdlib's
classes -- ``sansloop.compat`` does so at import, passing ``asyncio.QueueEmpty``,
``asyncio.QueueFull`` and (3.13+) ``asyncio.QueueShutDown``; on 3.11/3.12, where
asyncio has no QueueShutDown, ours stays. The names ``QueueEmpty``,
``QueueFull`` and ``QueueShutDown`` of this module always hold the classes in
force (read them as module attributes, not by ``from ... import`` before the
installation). The raise sites look them up at raise time.
"""

from __future__ import annotations

import heapq
from collections import deque
from types import GenericAlias
from typing import Any, Generic, NamedTuple, TypeVar

from .locks import Event
from .waiters import LoopBound, WaiterQueue

__all__ = [
    "Queue",
    "PriorityQueue",
    "LifoQueue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "QueueStatistics",
    "install_exceptions",
]

_T = TypeVar("_T")


class QueueEmpty(Exception):
    """Raised when Queue.get_nowait() is called on an empty Queue."""


class QueueFull(Exception):
    """Raised when the Queue.put_nowait() method is called on a full Queue."""


class QueueShutDown(Exception):
    """Raised when putting on to or getting from a shut-down Queue."""


def install_exceptions(
    empty: type[Exception],
    full: type[Exception],
    shut_down: type[Exception] | None = None,
) -> None:
    """Make the queues raise these classes (the embedding asyncio's own).

    *shut_down* None keeps the current QueueShutDown (for Pythons whose asyncio
    has none).
    """
    global QueueEmpty, QueueFull, QueueShutDown
    for cls in (empty, full, shut_down):
        if cls is not None and not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError(f"expected an Exception subclass, got {cls!r}")
    QueueEmpty = empty  # type: ignore[misc,assignment]
    QueueFull = full  # type: ignore[misc,assignment]
    if shut_down is not None:
        QueueShutDown = shut_down  # type: ignore[misc,assignment]


class QueueStatistics(NamedTuple):
    """Snapshot of a Queue."""

    qsize: int
    maxsize: int
    getters: int
    putters: int
    unfinished_tasks: int
    shutdown: bool


class Queue(LoopBound, Generic[_T]):
    """A FIFO queue for producer and consumer tasks.

    ``maxsize <= 0`` means unbounded; otherwise ``put()`` waits while the queue
    holds *maxsize* items. Subclasses change the order by overriding
    ``_init(maxsize)``, ``_put(item)`` and ``_get()`` (as with asyncio.Queue).
    """

    __slots__ = (
        "_maxsize",
        "_queue",
        "_getters",
        "_putters",
        "_unfinished_tasks",
        "_finished",
        "_is_shutdown",
        "_queue",
    )

    _queue: Any

    def __init__(self, maxsize: int = 0) -> None:
        self._loop = None
        self._maxsize = maxsize
        self._getters = WaiterQueue()
        self._putters = WaiterQueue()
        self._unfinished_tasks = 0
        self._finished = Event()
        self._finished.set()
        self._is_shutdown = False
        self._init(maxsize)

    # types.GenericAlias, as asyncio.Queue[int] gives (typing would make its own alias).
    __class_getitem__: Any = classmethod(GenericAlias)

    # -- storage: override these three to change the order -------------------

    def _init(self, maxsize: int) -> None:
        self._queue = deque()

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _get(self) -> _T:
        item: _T = self._queue.popleft()
        return item

    # -- description ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        # The words asyncio's Queue repr shows, each only when it has news.
        items = getattr(self, "_queue", None)
        getters, putters = len(self._getters), len(self._putters)
        words = [f"maxsize={self._maxsize!r}"]
        words += [f"_queue={list(items)!r}"] if items else []
        words += [f"_getters[{getters}]"] if getters else []
        words += [f"_putters[{putters}]"] if putters else []
        words += [f"tasks={self._unfinished_tasks}"] if self._unfinished_tasks else []
        words += ["shutdown"] if self._is_shutdown else []
        return " ".join(words)

    def statistics(self) -> QueueStatistics:
        """Return ``QueueStatistics(qsize, maxsize, getters, putters, unfinished_tasks, shutdown)``."""
        return QueueStatistics(
            self.qsize(),
            self._maxsize,
            len(self._getters),
            len(self._putters),
            self._unfinished_tasks,
            self._is_shutdown,
        )

    # -- size ----------------------------------------------------------------

    def qsize(self) -> int:
        """Number of items in the queue."""
        return len(self._queue)

    @property
    def maxsize(self) -> int:
        """Number of items allowed in the queue (0 or less: unbounded)."""
        return self._maxsize

    def empty(self) -> bool:
        """Return True if the queue holds no item."""
        return not self._queue

    def full(self) -> bool:
        """Return True if the queue holds *maxsize* items (never when unbounded)."""
        return 0 < self._maxsize <= self.qsize()

    # -- putting -------------------------------------------------------------

    async def put(self, item: _T) -> None:
        """Put *item*, waiting for a free slot while the queue is full.

        Raises QueueShutDown if the queue is (or gets) shut down.
        """
        putters = self._putters
        while self.full():
            if self._is_shutdown:
                raise QueueShutDown
            putter = self._get_loop().create_future()
            putters[putter] = None
            try:
                await putter
            except BaseException:
                putter.cancel()  # no-op if it was woken already
                putters.pop(putter, None)
                if not putter.cancelled() and not self.full():
                    # We were given a free slot we will not use: pass it on.
                    putters.pop_next(None)
                raise
        self.put_nowait(item)

    def put_nowait(self, item: _T) -> None:
        """Put *item* now; QueueFull if no slot is free, QueueShutDown if shut down."""
        if self._is_shutdown:
            raise QueueShutDown
        if self.full():
            raise QueueFull
        self._put(item)
        self._unfinished_tasks += 1
        self._finished.clear()
        getters = self._getters
        if getters:
            getters.pop_next(None)

    # -- getting -------------------------------------------------------------

    async def get(self) -> _T:
        """Remove and return an item, waiting while the queue is empty.

        Raises QueueShutDown if the queue is shut down and empty, or was shut
        down with ``immediate=True``.
        """
        getters = self._getters
        while self.empty():
            if self._is_shutdown:
                raise QueueShutDown
            getter = self._get_loop().create_future()
            getters[getter] = None
            try:
                await getter
            except BaseException:
                getter.cancel()  # no-op if it was woken already
                getters.pop(getter, None)
                if not getter.cancelled() and not self.empty():
                    # We were handed an item we will not take: pass it on.
                    getters.pop_next(None)
                raise
        return self.get_nowait()

    def get_nowait(self) -> _T:
        """Remove and return an item now; QueueEmpty if there is none.

        QueueShutDown instead of QueueEmpty once the queue is shut down.
        """
        if self.empty():
            if self._is_shutdown:
                raise QueueShutDown
            raise QueueEmpty
        item = self._get()
        putters = self._putters
        if putters:
            putters.pop_next(None)
        return item

    # -- completion ----------------------------------------------------------

    def task_done(self) -> None:
        """Mark one item fetched earlier as processed.

        ``join()`` returns once every item put has been marked done.
        ValueError('task_done() called too many times') if none is unfinished.
        """
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put in the queue has been marked done."""
        if self._unfinished_tasks > 0:
            await self._finished.wait()

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down: puts raise QueueShutDown, gets too once it is empty.

        With *immediate*, the remaining items are discarded and marked done
        (which may release ``join()``), and gets raise at once. Every task
        blocked in ``put()`` or ``get()`` is woken to see the new state.
        """
        self._is_shutdown = True
        if immediate:
            while not self.empty():
                self._get()
                if self._unfinished_tasks > 0:
                    self._unfinished_tasks -= 1
            if self._unfinished_tasks == 0:
                self._finished.set()
        self._getters.pop_all(None)
        self._putters.pop_all(None)


class PriorityQueue(Queue[_T]):
    """A Queue that returns the lowest item first (``heapq`` order).

    Items are typically ``(priority, data)`` tuples.
    """

    __slots__ = ()

    def _init(self, maxsize: int) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        heapq.heappush(self._queue, item)

    def _get(self) -> _T:
        item: _T = heapq.heappop(self._queue)
        return item


class LifoQueue(Queue[_T]):
    """A Queue that returns the most recently added item first."""

    __slots__ = ()

    def _init(self, maxsize: int) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _get(self) -> _T:
        item: _T = self._queue.pop()
        return item
