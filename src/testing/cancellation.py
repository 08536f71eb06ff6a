"""Cancellation-point fuzzing: cancel a coroutine at its k-th await point, for every k.

Contract
--------
An *await point* is a place where a coroutine really suspends: it hands a
future (or a bare ``yield``, as ``asyncio.sleep(0)`` does) to the task that
runs it. Awaiting something already done does not suspend and is not a point.
Asyncio delivers a cancellation only at such points, so a coroutine that keeps
its invariants when cancelled at each of them keeps them under any
cancellation.

- :func:`cancel_at` wraps a coroutine so that the task running it is cancelled
  at the coroutine's k-th await point (1-based): the cancellation request is
  made while the coroutine is suspending there, so the future it waits on is
  cancelled and ``CancelledError`` comes out of exactly that ``await``. With
  ``k=None`` nothing is cancelled and the points are only counted.
- :func:`cancellation_points` runs a *scenario* once to count the points of
  the coroutine it marks, then once more for every k, each time in a fresh
  loop, and returns a :class:`CancellationReport`. A failure (an exception or
  a failed assertion in the scenario) is re-raised with a note saying at which
  point, of how many, and where in the source the cancellation landed.

It works on any loop with asyncio's task semantics: stdlib asyncio, sansloop
in loop or full mode, and a simulated sansloop loop (pass ``run=`` that calls
``sansloop.sim.run``). It reads no clock and starts nothing itself: the loop
is whatever *run* makes.

What it does not do: choose the points by probability (every point is tried,
in order), or cancel anything but the task running the marked coroutine.
"""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "AwaitPoint",
    "CancellationReport",
    "CancelAt",
    "PointOutcome",
    "cancel_at",
    "cancellation_points",
]

_T = TypeVar("_T")

#: a scenario with more await points than this is refused (a runaway loop)
DEFAULT_MAX_POINTS = 10_000


@dataclass(frozen=True)
class AwaitPoint:
    """Where a coroutine suspended: the innermost frame of the program (not of
    asyncio or sansloop) in the chain of awaits."""

    index: int
    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"await point {self.index} ({self.filename}:{self.lineno} in {self.function})"


_LIBRARY_DIRS = tuple(
    os.path.dirname(path) + os.sep
    for path in (asyncio.__file__, os.path.dirname(__file__))  # asyncio, sansloop
)


def _where(coro: Any) -> tuple[str, int, str] | None:
    """Where an await chain is suspended: its innermost frame outside asyncio and sansloop.

    A coroutine suspended in ``asyncio.sleep`` is reported at the line of the
    program that called ``sleep``, which is what a reader wants to see.
    """
    innermost = None
    program = None
    for _ in range(1000):
        if coro is None:
            break
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            innermost = frame
            if not frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
                program = frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    frame = program or innermost
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name


class CancelAt:
    """An awaitable running *coro* and cancelling its task at await point *k*.

    After it finishes: ``points`` is how many await points the coroutine went
    through, ``delivered`` whether the cancellation was requested (point *k*
    was reached) and ``where`` the :class:`AwaitPoint` it was requested at.
    Await it once, from inside a task.
    """

    __slots__ = (
        "_coro",
        "k",
        "msg",
        "points",
        "delivered",
        "where",
        "locations",
        "outcome",
        "error",
    )

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        k: int | None,
        *,
        msg: Any = None,
        record: bool = False,
    ) -> None:
        if not isinstance(coro, types.CoroutineType) and not asyncio.iscoroutine(coro):
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ValueError(f"k must be a positive int or None, got {k!r}")
        self._coro = coro
        self.k = k
        self.msg = msg
        self.points = 0
        self.delivered = False
        self.where: AwaitPoint | None = None
        #: every point's location, when asked to record them
        self.locations: list[AwaitPoint] | None = [] if record else None
        #: "pending", then "returned", "cancelled" or "raised"
        self.outcome = "pending"
        #: the type name of what it raised (other than CancelledError)
        self.error: str | None = None

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        send_value: Any = None
        to_throw: BaseException | None = None
        while True:
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    yielded = coro.throw(exc)
                else:
                    yielded = coro.send(send_value)
            except StopIteration as stop:
                self.outcome = "returned"
                return stop.value
            except asyncio.CancelledError:
                self.outcome = "cancelled"
                raise
            except BaseException as exc:
                self.outcome = "raised"
                self.error = type(exc).__name__
                raise
            self.points += 1
            if self.locations is not None or self.points == self.k:
                where = AwaitPoint(self.points, *(_where(coro) or ("?", 0, "?")))
                if self.locations is not None:
                    self.locations.append(where)
                if self.points == self.k:
                    self.where = where
                    self.delivered = True
                    # The task is running (it is stepping this coroutine): the
                    # request is remembered and lands on what we now hand it.
                    task = asyncio.current_task()
                    if task is None:
                        raise RuntimeError("cancel_at() must be awaited from inside a task")
                    task.cancel(self.msg) if self.msg is not None else task.cancel()
            try:
                send_value = yield yielded
            except BaseException as exc:  # noqa: BLE001 - handed on to the coroutine
                to_throw = exc

    def close(self) -> None:
        """Close the wrapped coroutine if it was never awaited."""
        self._coro.close()


def cancel_at(
    coro: Coroutine[Any, Any, _T], k: int | None, *, msg: Any = None
) -> Coroutine[Any, Any, _T]:
    """A coroutine running *coro*, whose task is cancelled at *coro*'s k-th await point.

    ``k`` counts from 1; ``None`` cancels nothing. Use it where the coroutine
    would be awaited or made a task::

        task = asyncio.create_task(cancel_at(service.handle(request), 3))
    """
    marker = CancelAt(coro, k, msg=msg)

    async def run() -> _T:
        result: _T = await marker
        return result

    return run()


@dataclass
class PointOutcome:
    """What the scenario's marked coroutine did when cancelled at one point."""

    k: int
    where: AwaitPoint | None
    #: "cancelled" (CancelledError left the marked coroutine), "absorbed" (it
    #: returned anyway), "raised" (another exception), or "not reached" (the
    #: run had fewer points this time)
    outcome: str
    error: str | None = None


@dataclass
class CancellationReport:
    """The result of :func:`cancellation_points`."""

    #: await points of the marked coroutine in the run without cancellation
    points: int
    locations: list[AwaitPoint]
    outcomes: list[PointOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """How many points ended with *outcome*."""
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def __str__(self) -> str:
        kinds = ", ".join(
            f"{self.count(k)} {k}"
            for k in ("cancelled", "absorbed", "raised", "not reached")
            if self.count(k)
        )
        return f"{self.points} await points: {kinds or 'none tried'}"


def _default_run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    from sansloop.compat.runners import Runner

    with Runner() as runner:
        return runner.run(main())


Mark = Callable[[Coroutine[Any, Any, _T]], Awaitable[_T]]


def cancellation_points(
    scenario: Callable[[Mark[Any]], Coroutine[Any, Any, Any]],
    *,
    run: Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any] | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    msg: Any = None,
) -> CancellationReport:
    """Run *scenario* cancelling its marked coroutine at each of its await points.

    *scenario* is an async function taking ``mark``: it calls ``mark(coro)``
    on the one coroutine under test, once, and awaits the result (or makes a
    task of it), then checks its invariants, whatever the coroutine did::

        async def scenario(mark):
            pool = Pool(2)
            try:
                await mark(pool.fetch("k"))
            except asyncio.CancelledError:
                pass
            assert pool.in_use == 0       # nothing leaked, cancelled or not

        report = cancellation_points(scenario)

    The first run marks nothing and counts the points (N); then run k
    (1..N) cancels at point k. Each run gets a fresh loop from *run*, a
    callable taking a zero-argument coroutine function and running it to the
    end (default: a full-mode sansloop loop; for a simulated world,
    ``run=lambda main: sansloop.sim.run(main, seed=7)``). An exception from a
    run propagates, with a note naming the point. A CancelledError reaching
    *run* counts as the scenario's failure to contain it.
    """
    runner = run if run is not None else _default_run
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points!r}")

    def one_run(k: int | None) -> CancelAt:
        markers: list[CancelAt] = []

        def mark(coro: Coroutine[Any, Any, _T]) -> Coroutine[Any, Any, _T]:
            if markers:
                coro.close()
                raise RuntimeError("mark() may be called once per scenario run")
            marker = CancelAt(coro, k, msg=msg, record=k is None)
            markers.append(marker)

            async def marked() -> _T:
                result: _T = await marker
                return result

            return marked()

        async def main() -> Any:
            return await scenario(mark)

        try:
            runner(main)
        except BaseException as exc:
            if not markers:
                raise
            marker = markers[0]
            if k is None:
                exc.add_note("sansloop.testing: the scenario failed without any cancellation")
            else:
                exc.add_note(
                    f"sansloop.testing: cancelled at {marker.where or f'await point {k}'} "
                    f"of {marker.points} reached in this run"
                )
            raise
        if not markers:
            raise RuntimeError("the scenario never called mark(coro)")
        return markers[0]

    baseline = one_run(None)
    if baseline.points > max_points:
        raise RuntimeError(
            f"the marked coroutine went through {baseline.points} await points (> max_points={max_points})"
        )
    report = CancellationReport(baseline.points, list(baseline.locations or ()))
    for k in range(1, baseline.points + 1):
        marker = one_run(k)
        if not marker.delivered:
            report.outcomes.append(PointOutcome(k, None, "not reached"))
            continue
        outcome = {"returned": "absorbed"}.get(marker.outcome, marker.outcome)
        report.outcomes.append(PointOutcome(k, marker.where, outcome, marker.error))
    return report
