"""The scheduler and handles, driven by hand with an explicit clock."""

from __future__ import annotations

import contextvars

import pytest

from sansloop.core.handles import Handle, TimerHandle
from sansloop.core.scheduler import COMPACT_MIN_TIMERS, Scheduler


class Owner:
    """The two duties a handle asks of its loop, recorded."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.errors: list[dict] = []

    def get_debug(self) -> bool:
        return False

    def call_exception_handler(self, context: dict) -> None:
        self.errors.append(context)

    def _timer_handle_cancelled(self, timer: TimerHandle) -> None:
        self.scheduler.timer_cancelled(timer)


@pytest.fixture
def sched() -> tuple[Scheduler, Owner]:
    scheduler = Scheduler()
    return scheduler, Owner(scheduler)


def test_ready_queue_is_fifo_and_one_tick_runs_only_what_was_ready(sched):
    scheduler, owner = sched
    ran = []

    def first():
        ran.append("first")
        scheduler.call(Handle(ran.append, ("scheduled by first",), owner))

    scheduler.call(Handle(first, (), owner))
    scheduler.call(Handle(ran.append, ("second",), owner))
    scheduler.run_ready()
    assert ran == ["first", "second"]
    assert len(scheduler.ready) == 1
    scheduler.run_ready()
    assert ran == ["first", "second", "scheduled by first"]


def test_cancelled_handle_is_skipped(sched):
    scheduler, owner = sched
    ran = []
    handle = Handle(ran.append, (1,), owner)
    scheduler.call(handle)
    handle.cancel()
    assert handle.cancelled()
    scheduler.run_ready()
    assert ran == []


def test_timeout_answers_how_long_the_backend_may_block(sched):
    scheduler, owner = sched
    assert scheduler.timeout(now=10.0) is None
    scheduler.add_timer(TimerHandle(12.5, print, (), owner))
    assert scheduler.timeout(now=10.0) == 2.5
    assert scheduler.timeout(now=20.0) == 0.0
    scheduler.call(Handle(print, (), owner))
    assert scheduler.timeout(now=10.0) == 0.0


def test_timers_release_in_deadline_order_ties_in_scheduling_order(sched):
    scheduler, owner = sched
    ran = []
    for name, when in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]:
        scheduler.add_timer(TimerHandle(when, ran.append, (name,), owner))
    scheduler.release_due(2.5)
    scheduler.run_ready()
    assert ran == ["a", "b1", "b2"]
    scheduler.release_due(100.0)
    scheduler.run_ready()
    assert ran == ["a", "b1", "b2", "c"]


def test_cancelled_timers_are_compacted_when_they_dominate(sched):
    scheduler, owner = sched
    timers = [TimerHandle(float(i), print, (), owner) for i in range(COMPACT_MIN_TIMERS * 4)]
    for timer in timers:
        scheduler.add_timer(timer)
    # Cancel from the far end, so popping heads alone would never shrink the heap.
    for timer in timers[len(timers) // 4 :]:
        timer.cancel()
    assert scheduler.statistics()["cancelled_timers"] == 300
    scheduler.timeout(now=0.0)
    assert scheduler.timer_count == 100
    assert scheduler.statistics()["cancelled_timers"] == 0
    assert all(not t._scheduled for t in timers[100:])


def test_cancelled_head_timer_does_not_shorten_the_timeout(sched):
    scheduler, owner = sched
    early = TimerHandle(1.0, print, (), owner)
    scheduler.add_timer(early)
    scheduler.add_timer(TimerHandle(5.0, print, (), owner))
    early.cancel()
    assert scheduler.timeout(now=0.0) == 5.0


def test_exception_in_callback_goes_to_the_exception_handler(sched):
    scheduler, owner = sched

    def boom():
        raise ZeroDivisionError("x")

    handle = Handle(boom, (), owner)
    scheduler.call(handle)
    scheduler.run_ready()
    [context] = owner.errors
    assert isinstance(context["exception"], ZeroDivisionError)
    assert context["handle"] is handle
    assert context["message"].startswith("Exception in callback ")


def test_handle_runs_in_its_context():
    var = contextvars.ContextVar("var", default="outer")
    context = contextvars.copy_context()
    context.run(var.set, "inner")
    seen = []
    Handle(lambda: seen.append(var.get()), (), None, context)._run()
    assert seen == ["inner"]


def test_reprs_match_asyncio_shapes(sched):
    _, owner = sched
    handle = Handle(print, ("hi",), owner)
    assert repr(handle) == "<Handle print('hi')>"
    timer = TimerHandle(3.0, print, (), owner)
    assert repr(timer) == "<TimerHandle when=3.0 print()>"
    timer.cancel()
    assert repr(timer) == "<TimerHandle cancelled when=3.0>"


def test_timer_ordering_and_equality(sched):
    _, owner = sched
    a = TimerHandle(1.0, print, (), owner)
    b = TimerHandle(2.0, print, (), owner)
    assert a < b and b > a and a <= b and b >= a
    assert a == TimerHandle(1.0, print, (), owner)
    assert a.when() == 1.0
