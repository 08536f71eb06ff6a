"""The scheduler against a reference model: a sorted list and a FIFO list.

Hypothesis drives arbitrary interleavings of call_soon, timers, cancellations
and clock advances; after every tick the callbacks that ran must be exactly the
ones the model says, in the model's order.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sansloop.core.handles import Handle, TimerHandle
from sansloop.core.scheduler import Scheduler


class _Owner:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def get_debug(self) -> bool:
        return False

    def call_exception_handler(self, context: dict) -> None:
        raise AssertionError(context)

    def _timer_handle_cancelled(self, timer: TimerHandle) -> None:
        self.scheduler.timer_cancelled(timer)


class SchedulerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.scheduler = Scheduler()
        self.owner = _Owner(self.scheduler)
        self.now = 0.0
        self.ran: list[int] = []
        self.next_id = 0
        # Model: ready ids in order; timers as (when, seq, id); cancelled ids.
        self.model_ready: list[int] = []
        self.model_timers: list[tuple[float, int, int]] = []
        self.cancelled: set[int] = set()
        self.handles: dict[int, Handle] = {}

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    @rule()
    def call_soon(self) -> None:
        ident = self._new_id()
        handle = Handle(self.ran.append, (ident,), self.owner)
        self.handles[ident] = handle
        self.scheduler.call(handle)
        self.model_ready.append(ident)

    @rule(delay=st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.5, 10.0, 1000.0]))
    def call_later(self, delay: float) -> None:
        ident = self._new_id()
        timer = TimerHandle(self.now + delay, self.ran.append, (ident,), self.owner)
        self.handles[ident] = timer
        self.scheduler.add_timer(timer)
        self.model_timers.append((self.now + delay, ident, ident))

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.handles)))
        self.handles[ident].cancel()
        self.cancelled.add(ident)

    @rule(step=st.sampled_from([0.0, 0.25, 1.0, 3.0, 2000.0]))
    def tick(self, step: float) -> None:
        self.now += step
        timeout = self.scheduler.timeout(self.now)
        live_timers = sorted(t for t in self.model_timers if t[2] not in self.cancelled)
        if self.model_ready:
            assert timeout == 0.0
        elif live_timers:
            assert timeout == max(0.0, live_timers[0][0] - self.now)
        else:
            assert timeout is None
        self.scheduler.release_due(self.now)
        due = [t for t in sorted(self.model_timers) if t[0] < self.now]
        self.model_timers = [t for t in self.model_timers if t[0] >= self.now]
        batch = self.model_ready + [t[2] for t in due]
        self.model_ready = []
        before = len(self.ran)
        self.scheduler.run_ready()
        expected = [i for i in batch if i not in self.cancelled]
        assert self.ran[before:] == expected
        for ident in batch:
            self.handles.pop(ident, None)

    @invariant()
    def heap_never_exceeds_what_was_scheduled(self) -> None:
        assert self.scheduler.timer_count <= len(self.model_timers) + len(self.cancelled)


TestSchedulerModel = SchedulerModel.TestCase
TestSchedulerModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
