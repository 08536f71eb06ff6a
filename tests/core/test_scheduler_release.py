"""Releasing due timers from big heaps: popping one by one and the bulk partition.

``Scheduler.release_due`` pops due timers one by one, and switches to one
partition of the whole heap when, after popping 1/``BULK_RELEASE_DIVISOR`` of
it, at least 1/``BULK_RELEASE_DUE_DIVISOR`` of the heap is due. Either way the
result must be the same: exactly the live timers due before the deadline, in
deadline order (ties in scheduling order), the others left for later, and the
cancelled-timer count right. These tests drive both paths across the threshold.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sansloop.core import scheduler as scheduler_module
from sansloop.core.handles import TimerHandle
from sansloop.core.scheduler import Scheduler


class _Loop:
    """The two things a TimerHandle asks of its loop."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def _timer_handle_cancelled(self, timer: TimerHandle) -> None:
        self.scheduler.timer_cancelled(timer)

    def get_debug(self) -> bool:
        return False


def _fill(sched: Scheduler, whens: list[float], cancel_every: int) -> list[TimerHandle]:
    loop: Any = _Loop(sched)
    timers = []
    for i, when in enumerate(whens):
        timer = TimerHandle(when, print, (i,), loop)
        sched.add_timer(timer)
        timers.append(timer)
    if cancel_every:
        for timer in timers[::cancel_every]:
            timer.cancel()
    return timers


def _expected(timers: list[TimerHandle], deadline: float) -> list[TimerHandle]:
    order = {id(t): i for i, t in enumerate(timers)}
    due = [t for t in timers if t.when() < deadline and not t.cancelled()]
    return sorted(due, key=lambda t: (t.when(), order[id(t)]))


@pytest.mark.parametrize("due_fraction", [0.0, 0.01, 0.1, 0.3, 0.49, 0.51, 0.9, 1.0])
@pytest.mark.parametrize("cancel_every", [0, 2, 7])
def test_release_is_exact_and_ordered_on_either_path(
    due_fraction: float, cancel_every: int
) -> None:
    rng = random.Random(f"{due_fraction}-{cancel_every}")
    n = 4000
    due = int(n * due_fraction)
    # Due timers at 0..10 with many ties; the rest far off.
    whens = [float(rng.randrange(10)) for _ in range(due)]
    whens += [1000.0 + rng.random() for _ in range(n - due)]
    rng.shuffle(whens)
    sched = Scheduler()
    timers = _fill(sched, whens, cancel_every)
    sched.release_due(100.0)
    released = list(sched.ready)
    assert released == _expected(timers, 100.0)
    assert all(not t._scheduled for t in released)
    # What is left is exactly the far-off timers (cancelled ones maybe still
    # counted), and releases in order later.
    left = sched.statistics()
    assert left["timers"] - left["cancelled_timers"] == len(_expected(timers, 1e9)) - len(released)
    sched.ready.clear()
    sched.release_due(1e9)
    assert list(sched.ready) == [t for t in _expected(timers, 1e9) if t.when() >= 100.0]
    assert sched.statistics()["timers"] == 0
    assert sched.statistics()["cancelled_timers"] == 0


def test_bulk_path_taken_only_when_most_of_the_heap_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = Scheduler._release_bulk

    def spy(self: Scheduler, deadline: float) -> None:
        calls.append(len(self._timers))
        original(self, deadline)

    monkeypatch.setattr(Scheduler, "_release_bulk", spy)
    for due, bulk in ((900, True), (300, False)):
        calls.clear()
        sched = Scheduler()
        _fill(sched, [1.0] * due + [1000.0] * (1000 - due), 0)
        sched.release_due(100.0)
        assert len(sched.ready) == due
        assert bool(calls) is bulk, (due, calls)


@pytest.mark.parametrize("seed", range(20))
def test_due_at_least_matches_a_count(seed: int) -> None:
    rng = random.Random(seed)
    import heapq

    heap = [(rng.random() * 100, i, None) for i in range(rng.randrange(1, 500))]
    heapq.heapify(heap)
    deadline = rng.random() * 100
    due = sum(1 for entry in heap if entry[0] < deadline)
    for count in (1, due, due + 1, len(heap)):
        if count < 1:
            continue
        got = scheduler_module._due_at_least(heap, deadline, count)  # type: ignore[arg-type]
        assert got is (due >= count), (count, due)
