"""Queue, PriorityQueue, LifoQueue: behaviour against asyncio, plus what is ours.

``sync_impl`` tests run on stdlib asyncio and on sansloop.core. Shutdown tests
run on sansloop everywhere and on asyncio where it has ``Queue.shutdown`` (3.13+).
"""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from sansloop.core import queues

HAS_STDLIB_SHUTDOWN = hasattr(asyncio.Queue, "shutdown")


async def turn(n: int = 1) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.fixture(params=["asyncio", "sansloop"] if HAS_STDLIB_SHUTDOWN else ["sansloop"])
def shut_impl(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    if request.param == "asyncio":
        return types.SimpleNamespace(Queue=asyncio.Queue, QueueShutDown=asyncio.QueueShutDown)
    return types.SimpleNamespace(Queue=queues.Queue, QueueShutDown=queues.QueueShutDown)


# ---------------------------------------------------------------------------
# exceptions: the stdlib's own classes


def test_user_except_clauses_catch_our_queue_errors():
    q = queues.Queue(maxsize=1)
    try:
        q.get_nowait()
    except asyncio.QueueEmpty:
        pass
    else:  # pragma: no cover
        pytest.fail("QueueEmpty not raised")
    q.put_nowait(1)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(2)
    assert queues.QueueEmpty is asyncio.QueueEmpty
    assert queues.QueueFull is asyncio.QueueFull


def test_queue_shut_down_is_asyncio_s_where_it_exists():
    q = queues.Queue()
    q.shutdown()
    with pytest.raises(queues.QueueShutDown) as info:
        q.put_nowait(1)
    if sys.version_info >= (3, 13):
        assert type(info.value) is asyncio.QueueShutDown
    else:
        assert issubclass(info.type, Exception)
        assert info.type.__module__ == "sansloop.core.queues"


def test_install_exceptions_rejects_non_exceptions():
    with pytest.raises(TypeError, match="Exception subclass"):
        queues.install_exceptions(int, asyncio.QueueFull)  # type: ignore[arg-type]
    assert queues.QueueEmpty is asyncio.QueueEmpty


# ---------------------------------------------------------------------------
# basics


def test_order_of_each_queue_kind(sync_impl, run):
    async def main():
        items = [5, 1, 4, 2, 3]
        got = {}
        for kind in ("Queue", "LifoQueue", "PriorityQueue"):
            q = getattr(sync_impl, kind)()
            for item in items:
                await q.put(item)
            got[kind] = [q.get_nowait() for _ in items]
        assert got == {
            "Queue": [5, 1, 4, 2, 3],
            "LifoQueue": [3, 2, 4, 1, 5],
            "PriorityQueue": [1, 2, 3, 4, 5],
        }

    run(main())


def test_size_questions(sync_impl):
    q = sync_impl.Queue(maxsize=2)
    assert (q.maxsize, q.qsize(), q.empty(), q.full()) == (2, 0, True, False)
    q.put_nowait("a")
    q.put_nowait("b")
    assert (q.qsize(), q.empty(), q.full()) == (2, False, True)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait("c")
    assert q.get_nowait() == "a"
    unbounded = sync_impl.Queue(maxsize=0)
    for i in range(100):
        unbounded.put_nowait(i)
    assert not unbounded.full()
    assert not sync_impl.Queue(maxsize=-1).full()


def test_get_nowait_on_empty_raises_queue_empty(sync_impl):
    with pytest.raises(asyncio.QueueEmpty):
        sync_impl.Queue().get_nowait()


def test_repr_and_str(sync_impl, run):
    async def main():
        q = sync_impl.Queue(maxsize=1)
        assert str(q) == "<Queue maxsize=1>"
        assert repr(q) == f"<Queue at {id(q):#x} maxsize=1>"
        getter = asyncio.create_task(q.get())
        await turn()
        assert str(q) == "<Queue maxsize=1 _getters[1]>"
        q.put_nowait("x")
        assert str(q) == "<Queue maxsize=1 _queue=['x'] tasks=1>"
        assert await getter == "x"
        q.put_nowait("y")
        putter = asyncio.create_task(q.put("z"))
        await turn()
        assert str(q) == "<Queue maxsize=1 _queue=['y'] _putters[1] tasks=2>"
        q.get_nowait()
        await putter
        assert str(sync_impl.LifoQueue()) == "<LifoQueue maxsize=0>"

    run(main())


def test_generic_alias(sync_impl):
    alias = sync_impl.Queue[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__args__ == (int,)
    assert sync_impl.PriorityQueue[str].__origin__ is sync_impl.PriorityQueue


# ---------------------------------------------------------------------------
# blocking get/put


def test_get_waits_for_put(sync_impl, run):
    async def main():
        q = sync_impl.Queue()
        getters = [asyncio.create_task(q.get()) for _ in range(3)]
        await turn()
        for item in "abc":
            await q.put(item)
        assert await asyncio.gather(*getters) == ["a", "b", "c"]

    run(main())


def test_put_waits_for_room(sync_impl, run):
    async def main():
        q = sync_impl.Queue(maxsize=1)
        await q.put(0)
        putters = [asyncio.create_task(q.put(i)) for i in (1, 2)]
        await turn()
        assert not any(p.done() for p in putters)
        got = [await q.get() for _ in range(3)]
        await asyncio.gather(*putters)
        assert got == [0, 1, 2]
        assert q.empty()

    run(main())


def test_cancelled_getter_leaves_and_does_not_eat_an_item(sync_impl, run):
    async def main():
        q = sync_impl.Queue()
        doomed = asyncio.create_task(q.get())
        waiting = asyncio.create_task(q.get())
        await turn()
        q.put_nowait("item")  # wakes `doomed`
        doomed.cancel()  # which gives up before taking it
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert await waiting == "item"

    run(main())


def test_cancelled_putter_passes_its_slot_on(sync_impl, run):
    async def main():
        q = sync_impl.Queue(maxsize=1)
        q.put_nowait("full")
        doomed = asyncio.create_task(q.put("doomed"))
        waiting = asyncio.create_task(q.put("waiting"))
        await turn()
        assert q.get_nowait() == "full"  # wakes `doomed`
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await waiting
        assert q.get_nowait() == "waiting"

    run(main())


def test_get_with_timeout_leaves_no_getter_behind(sync_impl, run):
    async def main():
        q = sync_impl.Queue()
        loop = asyncio.get_running_loop()
        getter = asyncio.create_task(q.get())
        await turn()
        loop.call_soon(getter.cancel)
        with pytest.raises(asyncio.CancelledError):
            await getter
        assert str(q) == "<Queue maxsize=0>"

    run(main())


def test_getter_woken_but_beaten_to_the_item_waits_again(sync_impl, run):
    async def main():
        q = sync_impl.Queue()
        getter = asyncio.create_task(q.get())
        await turn()
        q.put_nowait("first")  # wakes `getter`...
        assert q.get_nowait() == "first"  # ...but we take it first
        await turn()
        assert not getter.done()
        q.put_nowait("second")
        assert await getter == "second"

    run(main())


def test_contended_in_two_loops_raises(sync_impl, run):
    q = sync_impl.Queue()

    async def park_once():
        getter = asyncio.create_task(q.get())
        await turn()
        q.put_nowait(1)
        await getter

    run(park_once())

    async def again():
        with pytest.raises(RuntimeError, match="is bound to a different event loop"):
            await q.get()

    run(again())


# ---------------------------------------------------------------------------
# task_done / join


def test_task_done_too_many_times(sync_impl):
    q = sync_impl.Queue()
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()


def test_join_waits_for_every_task_done(sync_impl, run):
    async def main():
        q = sync_impl.Queue()
        await q.join()  # nothing put: returns at once
        for i in range(3):
            q.put_nowait(i)
        joiner = asyncio.create_task(q.join())
        for _ in range(3):
            q.get_nowait()
        await turn()
        assert not joiner.done()
        q.task_done()
        q.task_done()
        await turn()
        assert not joiner.done()
        q.task_done()
        await joiner
        with pytest.raises(ValueError):
            q.task_done()

    run(main())


def test_workers_with_join(sync_impl, run):
    async def main():
        q = sync_impl.Queue(maxsize=3)
        total = []

        async def worker():
            while True:
                item = await q.get()
                total.append(item)
                q.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(3)]
        for i in range(50):
            await q.put(i)
        await q.join()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        assert sorted(total) == list(range(50))

    run(main())


# ---------------------------------------------------------------------------
# shutdown (3.13 API)


def test_shutdown_rejects_puts_and_drains_gets(shut_impl, run):
    async def main():
        q = shut_impl.Queue()
        q.put_nowait("left")
        q.shutdown()
        assert str(q) == "<Queue maxsize=0 _queue=['left'] tasks=1 shutdown>"
        with pytest.raises(shut_impl.QueueShutDown):
            q.put_nowait("x")
        with pytest.raises(shut_impl.QueueShutDown):
            await q.put("x")
        assert await q.get() == "left"
        with pytest.raises(shut_impl.QueueShutDown):
            q.get_nowait()
        with pytest.raises(shut_impl.QueueShutDown):
            await q.get()
        q.task_done()
        await q.join()

    run(main())


def test_shutdown_wakes_blocked_getters_and_putters(shut_impl, run):
    async def main():
        empty = shut_impl.Queue()
        full = shut_impl.Queue(maxsize=1)
        full.put_nowait(0)
        getters = [asyncio.create_task(empty.get()) for _ in range(2)]
        putters = [asyncio.create_task(full.put(i)) for i in range(2)]
        await turn()
        empty.shutdown()
        full.shutdown()
        results = await asyncio.gather(*getters, *putters, return_exceptions=True)
        assert [type(r) for r in results] == [shut_impl.QueueShutDown] * 4
        assert full.get_nowait() == 0

    run(main())


def test_shutdown_immediate_discards_items_and_releases_join(shut_impl, run):
    async def main():
        q = shut_impl.Queue()
        for i in range(3):
            q.put_nowait(i)
        q.get_nowait()  # one item out but not done yet
        joiner = asyncio.create_task(q.join())
        await turn()
        q.shutdown(immediate=True)
        assert q.empty()
        with pytest.raises(shut_impl.QueueShutDown):
            q.get_nowait()
        await turn()
        assert not joiner.done()  # the item taken out is still unfinished
        q.task_done()
        await joiner
        with pytest.raises(ValueError):
            q.task_done()

    run(main())


def test_shutdown_twice_is_harmless(shut_impl):
    q = shut_impl.Queue()
    q.shutdown()
    q.shutdown(immediate=True)
    assert q.empty()


# ---------------------------------------------------------------------------
# statistics and subclassing


def test_statistics(run):
    async def main():
        q = queues.Queue(maxsize=1)
        assert q.statistics() == queues.QueueStatistics(0, 1, 0, 0, 0, False)
        await q.put("a")
        putter = asyncio.create_task(q.put("b"))
        await turn()
        assert q.statistics() == queues.QueueStatistics(
            qsize=1, maxsize=1, getters=0, putters=1, unfinished_tasks=1, shutdown=False
        )
        q.get_nowait()
        await putter
        q.shutdown(immediate=True)
        assert q.statistics() == queues.QueueStatistics(0, 1, 0, 0, 1, True)

    run(main())


def test_subclass_overrides_the_storage_trio():
    class SetQueue(queues.Queue):
        def _init(self, maxsize):
            self._queue = []
            self.seen = set()

        def _put(self, item):
            if item not in self.seen:
                self.seen.add(item)
                self._queue.append(item)

        def _get(self):
            return self._queue.pop(0)

    q = SetQueue()
    for item in "abab":
        q.put_nowait(item)
    assert [q.get_nowait() for _ in range(q.qsize())] == ["a", "b"]
    assert q.seen == {"a", "b"}
