"""Lock, Event, Condition, Semaphore, BoundedSemaphore: behaviour against asyncio.

Tests taking ``sync_impl`` run on stdlib asyncio (the reference) and on
sansloop.core; ``sync_impl_313`` ones pin asyncio 3.13's corner-case fixes. ``run`` repeats
each on a stdlib loop and on sansloop's loop in both modes.
``await asyncio.sleep(0)`` is one deterministic turn of the loop, never a wait
for time to pass.
"""

from __future__ import annotations

import asyncio
import re
import weakref

import pytest

from sansloop.core import locks
from sansloop.core.waiters import WaiterQueue

REPR = re.compile(r"^<(?P<cls>[\w.]+) object at 0x[0-9a-f]+ \[(?P<extra>[^\]]*)\]>$")


def extra(obj: object) -> str:
    match = REPR.match(repr(obj))
    assert match, repr(obj)
    return match["extra"]


async def turn(n: int = 1) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------
# Lock


def test_lock_repr_follows_state(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        assert extra(lock) == "unlocked"
        await lock.acquire()
        assert extra(lock) == "locked"
        waiter = asyncio.create_task(lock.acquire())
        await turn()
        assert extra(lock) == "locked, waiters:1"
        lock.release()
        await waiter
        assert extra(lock) == "locked"

    run(main())


def test_lock_acquire_returns_true_and_release_of_free_lock_raises(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        assert await lock.acquire() is True
        assert lock.locked()
        lock.release()
        assert not lock.locked()
        with pytest.raises(RuntimeError, match=r"^Lock is not acquired\.$"):
            lock.release()

    run(main())


def test_lock_is_granted_in_arrival_order(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        order = []

        async def worker(name):
            async with lock:
                order.append(name)
                await turn()

        await lock.acquire()
        tasks = [asyncio.create_task(worker(i)) for i in range(6)]
        await turn()
        lock.release()
        await asyncio.gather(*tasks)
        assert order == list(range(6))
        assert not lock.locked()

    run(main())


def test_lock_does_not_let_a_newcomer_barge_past_a_woken_waiter(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        got = []

        async def take(name):
            await lock.acquire()
            got.append(name)

        await lock.acquire()
        first = asyncio.create_task(take("queued"))
        await turn()
        lock.release()  # "queued" is woken but has not run yet
        assert not lock.locked()
        late = asyncio.create_task(take("late"))
        await turn()
        assert got == ["queued"]
        assert lock.locked()
        lock.release()
        await asyncio.gather(first, late)
        assert got == ["queued", "late"]

    run(main())


def test_lock_cancelled_waiter_leaves_the_queue(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        await lock.acquire()
        task = asyncio.create_task(lock.acquire())
        await turn()
        assert "waiters:1" in repr(lock)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert extra(lock) == "locked"
        lock.release()
        assert not lock.locked()

    run(main())


def test_lock_woken_waiter_cancelled_before_running_passes_the_turn_on(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        await lock.acquire()
        first = asyncio.create_task(lock.acquire())
        second = asyncio.create_task(lock.acquire())
        await turn()
        lock.release()  # hands the lock to `first`...
        first.cancel()  # ...which is cancelled before it can take it
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second is True
        assert lock.locked()

    run(main())


def test_lock_release_racing_with_cancel_of_the_head_does_not_strand_the_rest(sync_impl, run):
    # A holder releases while the head waiter is being cancelled in the same
    # turn; the next waiter must still get the lock.
    async def main():
        lock = sync_impl.Lock()
        gate = asyncio.get_running_loop().create_future()
        log = []

        async def holder():
            async with lock:
                await gate
            log.append("holder out")

        async def waiter(name):
            async with lock:
                log.append(name)

        h = asyncio.create_task(holder())
        await turn()
        b = asyncio.create_task(waiter("b"))
        c = asyncio.create_task(waiter("c"))
        await turn()
        gate.set_result(None)
        b.cancel()
        await asyncio.gather(h, c)
        with pytest.raises(asyncio.CancelledError):
            await b
        assert log == ["holder out", "c"]
        assert not lock.locked()

    run(main())


def test_lock_free_with_only_cancelled_waiters_is_taken_at_once(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        await lock.acquire()
        waiter = asyncio.create_task(lock.acquire())
        await turn()
        waiter.cancel()
        lock.release()
        # `waiter` has not run its cancellation yet, so it is still queued,
        # but cancelled: an acquire now must not queue behind it.
        assert await lock.acquire() is True
        with pytest.raises(asyncio.CancelledError):
            await waiter

    run(main())


def test_lock_async_with_releases_on_error(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        with pytest.raises(KeyError):
            async with lock as bound:
                assert bound is None
                assert lock.locked()
                raise KeyError("boom")
        assert not lock.locked()

    run(main())


def test_lock_uncontended_use_does_not_bind_a_loop(sync_impl, run):
    lock = sync_impl.Lock()

    async def use():
        async with lock:
            pass

    run(use())
    run(use())  # another loop: fine, nothing was bound


def test_lock_contended_in_two_loops_raises(sync_impl, run):
    lock = sync_impl.Lock()

    async def contend():
        await lock.acquire()
        task = asyncio.create_task(lock.acquire())
        await turn()
        lock.release()
        await task
        lock.release()

    run(contend())  # binds to the first loop

    async def again():
        await lock.acquire()
        with pytest.raises(RuntimeError, match=r"^<.*Lock.* is bound to a different event loop$"):
            await lock.acquire()
        lock.release()

    run(again())


def test_lock_takes_no_loop_argument(sync_impl):
    with pytest.raises(TypeError):
        sync_impl.Lock(loop=None)


def test_lock_statistics(run):
    async def main():
        lock = locks.Lock()
        assert lock.statistics() == locks.LockStatistics(locked=False, waiters=0)
        await lock.acquire()
        tasks = [asyncio.create_task(lock.acquire()) for _ in range(3)]
        await turn()
        assert lock.statistics() == locks.LockStatistics(locked=True, waiters=3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert lock.statistics() == locks.LockStatistics(locked=True, waiters=0)

    run(main())


def test_lock_fast_path_never_asks_for_a_loop(monkeypatch, run):
    # Futures only come from the bound loop; an uncontended lock never binds.
    def no_loop():
        raise AssertionError("the uncontended path must not look for a loop")

    async def main():
        lock = locks.Lock()
        monkeypatch.setattr("sansloop.core.binding.get_running_loop", no_loop)
        for _ in range(3):
            async with lock:
                pass
        monkeypatch.undo()
        assert lock._loop is None

    run(main())


# ---------------------------------------------------------------------------
# Event


def test_event_set_wakes_every_waiter(sync_impl, run):
    async def main():
        event = sync_impl.Event()
        assert extra(event) == "unset"
        tasks = [asyncio.create_task(event.wait()) for _ in range(3)]
        await turn()
        assert extra(event) == "unset, waiters:3"
        event.set()
        event.set()  # idempotent
        assert extra(event) == "set, waiters:3"  # they have not run yet
        assert await asyncio.gather(*tasks) == [True, True, True]
        assert extra(event) == "set"
        assert await event.wait() is True

    run(main())


def test_event_set_then_clear_still_releases_the_woken(sync_impl, run):
    async def main():
        event = sync_impl.Event()
        task = asyncio.create_task(event.wait())
        await turn()
        event.set()
        event.clear()
        assert not event.is_set()
        assert await task is True

    run(main())


def test_event_cancelled_wait_leaves(sync_impl, run):
    async def main():
        event = sync_impl.Event()
        task = asyncio.create_task(event.wait())
        await turn()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert extra(event) == "unset"

    run(main())


def test_event_statistics(run):
    async def main():
        event = locks.Event()
        task = asyncio.create_task(event.wait())
        await turn()
        assert event.statistics() == locks.EventStatistics(is_set=False, waiters=1)
        event.set()
        await task
        assert event.statistics() == locks.EventStatistics(is_set=True, waiters=0)

    run(main())


# ---------------------------------------------------------------------------
# Condition


def test_condition_requires_the_lock(sync_impl, run):
    async def main():
        cond = sync_impl.Condition()
        with pytest.raises(RuntimeError, match=r"^cannot wait on un-acquired lock$"):
            await cond.wait()
        with pytest.raises(RuntimeError, match=r"^cannot notify on un-acquired lock$"):
            cond.notify()
        with pytest.raises(RuntimeError, match=r"^cannot notify on un-acquired lock$"):
            cond.notify_all()

    run(main())


def test_condition_notify_wakes_n_in_order_each_holding_the_lock(sync_impl, run):
    async def main():
        cond = sync_impl.Condition()
        woke = []

        async def waiter(i):
            async with cond:
                assert await cond.wait() is True
                assert cond.locked()
                woke.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
        await turn()
        assert extra(cond) == "unlocked, waiters:5"
        async with cond:
            cond.notify(2)
            assert extra(cond) == "locked, waiters:5"
        await turn(3)
        assert woke == [0, 1]
        async with cond:
            cond.notify_all()
        await asyncio.gather(*tasks)
        assert woke == [0, 1, 2, 3, 4]

    run(main())


def test_condition_wait_for_returns_the_predicate_value(sync_impl, run):
    async def main():
        cond = sync_impl.Condition()
        box = []

        async def consumer():
            async with cond:
                return await cond.wait_for(lambda: box and box[-1])

        task = asyncio.create_task(consumer())
        await turn()
        for value in (0, "", "ready"):
            async with cond:
                box.append(value)
                cond.notify()
            await turn(2)
        assert await task == "ready"

    run(main())


def test_condition_cancelled_wait_reacquires_before_raising(sync_impl, run):
    async def main():
        cond = sync_impl.Condition()
        held_on_exit = []

        async def waiter():
            async with cond:
                try:
                    await cond.wait()
                finally:
                    held_on_exit.append(cond.locked())

        task = asyncio.create_task(waiter())
        await turn()
        await cond.acquire()  # the waiter will have to queue for the lock
        task.cancel()
        await turn(2)
        assert not task.done()  # cancelled, but waiting for the lock back
        cond.release()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert held_on_exit == [True]
        assert extra(cond) == "unlocked"

    run(main())


def test_condition_cancelled_while_reacquiring_still_reacquires(sync_impl, run):
    async def main():
        cond = sync_impl.Condition()
        held = []

        async def waiter():
            async with cond:
                try:
                    await cond.wait()
                finally:
                    held.append(cond.locked())

        task = asyncio.create_task(waiter())
        await turn()
        async with cond:
            cond.notify()
            await turn(2)  # the waiter is now queued on the lock
            task.cancel()
            await turn(2)
            assert not task.done()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert held == [True]
        assert not cond.locked()

    run(main())


def test_condition_cancelled_notified_waiter_hands_the_notification_on(sync_impl_313, run):
    async def main():
        cond = sync_impl_313.Condition()
        woke = []

        async def waiter(i):
            async with cond:
                await cond.wait()
                woke.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(2)]
        await turn()
        async with cond:
            cond.notify(1)  # for task 0 ...
            tasks[0].cancel()  # ... which gives up
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        await tasks[1]  # woken by the hand-off, with no second notify
        assert woke == [1]

    run(main())


def test_condition_shares_a_given_lock(sync_impl, run):
    async def main():
        lock = sync_impl.Lock()
        cond = sync_impl.Condition(lock)
        async with lock:
            assert cond.locked()
        async with cond:
            assert lock.locked()
        assert not lock.locked()

    run(main())


def test_condition_over_a_stdlib_lock(run):
    async def main():
        lock = asyncio.Lock()
        cond = locks.Condition(lock)
        done = []

        async def waiter():
            async with cond:
                await cond.wait()
                done.append(lock.locked())

        task = asyncio.create_task(waiter())
        await turn()
        async with cond:
            cond.notify()
        await task
        assert done == [True]

    run(main())


def test_condition_statistics(run):
    async def main():
        cond = locks.Condition()

        async def waiter():
            async with cond:
                await cond.wait()

        task = asyncio.create_task(waiter())
        await turn()
        assert cond.statistics() == locks.ConditionStatistics(locked=False, waiters=1)
        async with cond:
            cond.notify()
            assert cond.statistics().locked
        await task
        assert cond.statistics() == locks.ConditionStatistics(locked=False, waiters=0)

    run(main())


# ---------------------------------------------------------------------------
# Semaphore / BoundedSemaphore


def test_semaphore_rejects_negative_value(sync_impl):
    with pytest.raises(ValueError, match=r"^Semaphore initial value must be >= 0$"):
        sync_impl.Semaphore(-1)
    with pytest.raises(ValueError, match=r"^Semaphore initial value must be >= 0$"):
        sync_impl.BoundedSemaphore(-1)


def test_semaphore_counts_units_and_reprs(sync_impl, run):
    async def main():
        sem = sync_impl.Semaphore(2)
        assert extra(sem) == "unlocked, value:2"
        await sem.acquire()
        assert extra(sem) == "unlocked, value:1"
        await sem.acquire()
        assert sem.locked()
        assert extra(sem) == "locked"
        task = asyncio.create_task(sem.acquire())
        await turn()
        assert extra(sem) == "locked, waiters:1"
        sem.release()
        assert await task is True
        sem.release()
        sem.release()
        assert extra(sem) == "unlocked, value:2"

    run(main())


def test_semaphore_grants_in_arrival_order(sync_impl, run):
    async def main():
        sem = sync_impl.Semaphore(0)
        order = []

        async def worker(i):
            await sem.acquire()
            order.append(i)

        tasks = [asyncio.create_task(worker(i)) for i in range(5)]
        await turn()
        for _ in range(5):
            sem.release()
        await asyncio.gather(*tasks)
        assert order == list(range(5))

    run(main())


def test_semaphore_newcomer_queues_behind_waiters_even_with_free_units(sync_impl, run):
    async def main():
        sem = sync_impl.Semaphore(0)
        order = []

        async def worker(name):
            await sem.acquire()
            order.append(name)

        early = asyncio.create_task(worker("early"))
        await turn()
        sem.release()
        assert sem.locked()  # the unit is promised to `early`
        late = asyncio.create_task(worker("late"))
        await turn()
        assert order == ["early"]
        sem.release()
        await asyncio.gather(early, late)
        assert order == ["early", "late"]

    run(main())


def test_semaphore_woken_then_cancelled_gives_its_unit_to_the_next(sync_impl, run):
    async def main():
        sem = sync_impl.Semaphore(0)
        first = asyncio.create_task(sem.acquire())
        second = asyncio.create_task(sem.acquire())
        await turn()
        sem.release()  # reserved for `first`
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second is True
        assert sem.locked()

    run(main())


def test_semaphore_several_releases_wake_that_many(sync_impl, run):
    async def main():
        sem = sync_impl.Semaphore(0)
        tasks = [asyncio.create_task(sem.acquire()) for _ in range(4)]
        await turn()
        sem.release()
        sem.release()
        sem.release()
        tasks[0].cancel()  # woken, then gives up: its unit goes to tasks[3]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert results[1:] == [True, True, True]
        assert extra(sem) == "locked"

    run(main())


def test_semaphore_units_freed_while_others_queued_wake_them_together(sync_impl_313, run):
    # `b` releases three units while `a`, already woken, has not run: `b` and
    # `c` must queue (FIFO), and when `a` leaves acquire() both are woken at
    # once rather than one per turn.
    async def main():
        sem = sync_impl_313.Semaphore(0)

        async def b_body():
            sem.release()
            sem.release()
            sem.release()
            assert sem.locked()  # a unit is promised to `a`
            return await sem.acquire()

        a = asyncio.create_task(sem.acquire())
        await turn()
        b = asyncio.create_task(b_body())
        c = asyncio.create_task(sem.acquire())
        for _ in range(5):
            if a.done():
                break
            await turn()
        assert a.done()
        await turn()
        assert b.done() and c.done()
        assert await asyncio.gather(a, b, c) == [True, True, True]
        assert extra(sem) == "locked"

    run(main())


def test_semaphore_cancelled_waiters_do_not_lock_it(sync_impl, run):
    async def main():
        sem = sync_impl.Semaphore(1)
        await sem.acquire()
        task = asyncio.create_task(sem.acquire())
        await turn()
        task.cancel()
        sem.release()
        assert not sem.locked()
        assert await sem.acquire() is True
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_bounded_semaphore_refuses_extra_release(sync_impl, run):
    async def main():
        sem = sync_impl.BoundedSemaphore(2)
        with pytest.raises(ValueError, match=r"^BoundedSemaphore released too many times$"):
            sem.release()
        async with sem:
            async with sem:
                assert sem.locked()
        with pytest.raises(ValueError, match="released too many times"):
            sem.release()
        assert extra(sem) == "unlocked, value:2"

    run(main())


def test_semaphore_is_not_awaitable(sync_impl, run):
    async def main():
        with pytest.raises(TypeError, match="Semaphore"):
            await sync_impl.Semaphore()

    run(main())


def test_semaphore_statistics(run):
    async def main():
        sem = locks.BoundedSemaphore(1)
        await sem.acquire()
        task = asyncio.create_task(sem.acquire())
        await turn()
        assert sem.statistics() == locks.SemaphoreStatistics(value=0, waiters=1, bound=1)
        sem.release()
        await task
        assert locks.Semaphore(3).statistics() == locks.SemaphoreStatistics(3, 0, None)

    run(main())


# ---------------------------------------------------------------------------
# common


def test_primitives_are_weak_referenceable_and_subclassable(sync_impl):
    cache = weakref.WeakValueDictionary()
    for name in ("Lock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier", "Queue"):
        cls = getattr(sync_impl, name)
        made = cls(2) if name == "Barrier" else cls()
        cache[name] = made
        assert cache[name] is made

        class Custom(cls):
            pass

        custom = Custom(2) if name == "Barrier" else Custom()
        custom.note = "subclasses may add attributes"
        assert custom.note


# ---------------------------------------------------------------------------
# WaiterQueue, the shared FIFO


class FakeWaiter:
    def __init__(self, state="pending"):
        self.state = state
        self.result = None

    def done(self):
        return self.state != "pending"

    def cancelled(self):
        return self.state == "cancelled"

    def cancel(self, msg=None):
        if self.state != "pending":
            return False
        self.state = "cancelled"
        return True

    def set_result(self, result):
        assert self.state == "pending", "resolved twice"
        self.state = "result"
        self.result = result

    def __await__(self):  # pragma: no cover - never awaited here
        yield self


def test_waiter_queue_fifo_and_removal_from_the_middle():
    queue = WaiterQueue()
    assert not queue and len(queue) == 0 and queue.first() is None
    waiters = [FakeWaiter() for _ in range(4)]
    for waiter in waiters:
        queue.append(waiter)
    with pytest.raises(ValueError):
        queue.append(waiters[0])
    queue.remove(waiters[1])
    with pytest.raises(ValueError):
        queue.remove(waiters[1])
    assert not queue.discard(waiters[1])
    assert list(queue) == [waiters[0], waiters[2], waiters[3]]
    assert queue.first() is waiters[0]
    assert queue.popleft() is waiters[0]
    assert waiters[0] not in queue and waiters[2] in queue
    queue.clear()
    with pytest.raises(IndexError):
        queue.popleft()


def test_waiter_queue_waking_policies():
    queue = WaiterQueue()
    a, b, c, d = (FakeWaiter() for _ in range(4))
    for waiter in (a, b, c, d):
        queue.append(waiter)
    b.cancel()
    assert queue.pending() == 3 and not queue.all_cancelled()
    assert queue.wake_first("x") and a.result == "x"
    assert not queue.wake_first("y")  # head already resolved: hand-off in flight
    assert queue.wake_next("z") is c  # skips resolved a and cancelled b
    assert queue.wake_many(5, "w") == 1 and d.result == "w"
    assert queue.wake_all("v") == 0
    assert len(queue) == 4  # waking does not unpark


def test_waiter_queue_pop_next_and_pop_all_unpark():
    queue = WaiterQueue()
    a, b, c = FakeWaiter("cancelled"), FakeWaiter(), FakeWaiter()
    for waiter in (a, b, c):
        queue.append(waiter)
    assert queue.pop_next(None)
    assert list(queue) == [c] and b.done()
    assert queue.pop_all(1) == 1 and c.result == 1
    assert not queue.pop_next(None)
    assert queue.wake_many(0, None) == 0
