"""The same programs give the same results on stdlib asyncio, in loop mode and in
full mode.

Each program is written once, against a module object ``aio``, and returns a
plain value (lists, tuples, strings) that records what it saw, in order. It is
run three ways:

- ``asyncio``: the stdlib module on the stdlib loop (``asyncio.run``): the
  reference;
- ``sansloop-loop``: the stdlib module on sansloop's loop
  (``asyncio.Runner(loop_factory=sansloop.new_event_loop)``): stdlib futures and
  tasks, our scheduler, timers and backend;
- ``sansloop-full``: ``sansloop.compat`` as the module and ``sansloop.compat.run``:
  every future, task, lock, queue and combinator is sansloop's own.

A sansloop result that differs from the reference is a sansloop bug. Programs
order their steps with events and futures, never with real sleeps; timeouts
use short deadlines only where a deadline is the subject.

``Queue.shutdown`` is Python 3.13 API: on older Pythons stdlib asyncio lacks it,
so that program runs where the implementation provides it (full mode always)
and is compared with its expected output, which stdlib 3.13 also gives.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest

import sansloop
import sansloop.compat

Program = Callable[[Any], Coroutine[Any, Any, Any]]

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def exc(error: BaseException) -> Any:
    """A comparable picture of an exception (groups included)."""
    if isinstance(error, BaseExceptionGroup):
        return (type(error).__name__, error.message, [exc(e) for e in error.exceptions])
    return (type(error).__name__, error.args)


# -- the programs -----------------------------------------------------------------


async def gather_return_exceptions(aio: Any) -> Any:
    async def ok(value: int) -> int:
        await aio.sleep(0)
        return value

    async def fails(message: str) -> None:
        raise ValueError(message)

    results = await aio.gather(ok(1), fails("two"), ok(3), fails("four"), return_exceptions=True)
    return [exc(r) if isinstance(r, BaseException) else r for r in results]


async def gather_first_exception(aio: Any) -> Any:
    log: list[Any] = []
    release = aio.Event()

    async def slow() -> str:
        await release.wait()
        log.append("slow finished")
        return "slow result"

    async def fails() -> None:
        await aio.sleep(0)
        raise ValueError("bad")

    slow_task = aio.ensure_future(slow())
    gathered = aio.gather(slow_task, fails())
    try:
        await gathered
    except ValueError as error:
        log.append(("caught", exc(error)))
    # Without return_exceptions the other children are not cancelled.
    log.append(("slow", slow_task.done(), slow_task.cancelled(), gathered.done()))
    release.set()
    log.append(await slow_task)
    return log


async def gather_cancelled(aio: Any) -> Any:
    log: list[Any] = []
    started = aio.Semaphore(0)

    async def child(i: int) -> None:
        started.release()
        try:
            await aio.sleep(3600)
        except aio.CancelledError as error:
            log.append((f"child {i} cancelled", error.args))
            raise

    gathered = aio.gather(child(1), child(2))
    await started.acquire()
    await started.acquire()
    log.append(gathered.cancel("enough"))
    try:
        await gathered
    except aio.CancelledError:
        log.append("gather cancelled")
    log.append((gathered.cancelled(), gathered.done()))
    return log


async def taskgroup_child_fails(aio: Any) -> Any:
    log: list[Any] = []
    never = aio.Event()

    async def sibling() -> None:
        try:
            await never.wait()
        except aio.CancelledError:
            log.append("sibling cancelled")
            raise

    async def failing() -> None:
        await aio.sleep(0)
        raise ValueError("boom")

    try:
        async with aio.TaskGroup() as group:
            first = group.create_task(sibling())
            second = group.create_task(failing())
    except BaseExceptionGroup as error:
        log.append(exc(error))
    log.append((first.cancelled(), second.done(), exc(second.exception())))
    return log


async def taskgroup_cancelled_from_outside(aio: Any) -> Any:
    log: list[Any] = []
    running = aio.Semaphore(0)
    cancelled: list[str] = []

    async def child(i: int) -> None:
        running.release()
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            # stdlib's TaskGroup cancels its children in set order: compare
            # which were cancelled, not in what order.
            cancelled.append(f"child {i} cancelled")
            raise

    async def body() -> None:
        try:
            async with aio.TaskGroup() as group:
                group.create_task(child(1))
                group.create_task(child(2))
        finally:
            log.append("body unwound")

    task = aio.create_task(body())
    await running.acquire()
    await running.acquire()
    log.append(task.cancel())
    log.append(task.cancelling())
    try:
        await task
    except aio.CancelledError:
        log.append("task cancelled")
    log.append((task.cancelled(), task.cancelling()))
    log.append(sorted(cancelled))
    return log


async def cancellation(aio: Any) -> Any:
    log: list[Any] = []
    started = aio.Event()

    async def sleeper() -> None:
        started.set()
        try:
            await aio.sleep(3600)
        except aio.CancelledError as error:
            log.append(("inside", error.args))
            raise

    task = aio.create_task(sleeper())
    await started.wait()
    log.append(task.cancel("why"))
    log.append(task.cancel("again"))
    log.append(task.cancelling())
    try:
        await task
    except aio.CancelledError:
        log.append("awaited cancelled")
    log.append((task.done(), task.cancelled(), task.cancel()))

    # shield: cancelling the outer leaves the inner running.
    gate = aio.Event()

    async def guarded() -> str:
        await gate.wait()
        return "shielded result"

    inner = aio.create_task(guarded())
    outer = aio.shield(inner)
    outer.cancel()
    try:
        await outer
    except aio.CancelledError:
        log.append("outer cancelled")
    gate.set()
    log.append((await inner, inner.cancelled()))

    # A task that swallows one cancellation and uncancels goes on.
    swallowed = aio.Event()

    async def stubborn() -> str:
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            aio.current_task().uncancel()
            swallowed.set()
        return "carried on"

    task = aio.create_task(stubborn())
    await aio.sleep(0)
    task.cancel()
    log.append(await task)
    log.append(swallowed.is_set())
    return log


async def timeouts(aio: Any) -> Any:
    log: list[Any] = []
    try:
        async with aio.timeout(0.01) as cm:
            await aio.sleep(3600)
    except TimeoutError as error:
        log.append(("timeout", exc(error), cm.expired()))

    try:
        await aio.wait_for(aio.sleep(3600), 0.01)
    except TimeoutError as error:
        log.append(("wait_for", type(error).__name__))
    log.append(await aio.wait_for(aio.sleep(0, "in time"), 60))
    log.append(await aio.wait_for(aio.sleep(0, "no timeout"), None))

    async with aio.timeout(60) as outer:
        try:
            async with aio.timeout(0.01) as inner:
                await aio.sleep(3600)
        except TimeoutError:
            log.append(("inner", inner.expired()))
    log.append(("outer", outer.expired()))

    loop = aio.get_running_loop()
    try:
        async with aio.timeout(None) as cm:
            log.append(cm.when())
            cm.reschedule(loop.time() + 0.01)
            await aio.sleep(3600)
    except TimeoutError:
        log.append(("rescheduled", cm.expired()))

    try:
        async with aio.timeout_at(loop.time() - 1):
            await aio.sleep(0)
    except TimeoutError:
        log.append("deadline in the past")

    async with aio.timeout(60) as cm:
        pass
    log.append(("unexpired", cm.expired()))
    return log


async def queues(aio: Any) -> Any:
    log: list[Any] = []
    queue = aio.Queue(maxsize=2)

    async def producer() -> None:
        for i in range(5):
            await queue.put(i)
            log.append(("put", i))
        await queue.put(None)

    async def consumer() -> None:
        while (item := await queue.get()) is not None:
            log.append(("got", item))
            queue.task_done()
        queue.task_done()

    await aio.gather(producer(), consumer())
    await queue.join()

    priority = aio.PriorityQueue()
    for item in [(3, "c"), (1, "a"), (2, "b")]:
        priority.put_nowait(item)
    log.append([priority.get_nowait() for _ in range(3)])
    lifo = aio.LifoQueue()
    for item in "xyz":
        lifo.put_nowait(item)
    log.append([lifo.get_nowait() for _ in range(3)])

    try:
        queue.get_nowait()
    except aio.QueueEmpty:
        log.append("empty")
    small = aio.Queue(1)
    small.put_nowait("only")
    try:
        small.put_nowait("more")
    except aio.QueueFull:
        log.append("full")
    log.append((queue.qsize(), queue.empty(), small.full(), small.maxsize, small.qsize()))

    # Getters are served first come, first served.
    fair = aio.Queue()
    got: list[Any] = []

    async def getter(name: str) -> None:
        got.append((name, await fair.get()))

    getters = [aio.create_task(getter(name)) for name in "abc"]
    await aio.sleep(0)
    for value in (1, 2, 3):
        fair.put_nowait(value)
    await aio.gather(*getters)
    log.append(got)
    return log


async def queue_shutdown(aio: Any) -> Any:
    log: list[Any] = []
    queue = aio.Queue()
    queue.put_nowait(1)
    queue.put_nowait(2)
    queue.shutdown()
    try:
        queue.put_nowait(3)
    except aio.QueueShutDown:
        log.append("put refused")
    log.append(await queue.get())
    log.append(queue.get_nowait())
    try:
        await queue.get()
    except aio.QueueShutDown:
        log.append("get refused when drained")

    blocked = aio.Queue()
    waiting = aio.Event()

    async def waiter() -> str:
        waiting.set()
        try:
            await blocked.get()
        except aio.QueueShutDown:
            return "waiter released"
        return "waiter got an item"

    task = aio.create_task(waiter())
    await waiting.wait()
    blocked.shutdown()
    log.append(await task)

    immediate = aio.Queue()
    for item in "ab":
        immediate.put_nowait(item)
    immediate.shutdown(immediate=True)
    log.append(immediate.qsize())
    try:
        immediate.get_nowait()
    except aio.QueueShutDown:
        log.append("immediate: nothing left")
    await aio.wait_for(immediate.join(), 60)
    log.append("join returned")
    return log


async def to_thread(aio: Any) -> Any:
    VAR.set("from the task")

    def work(x: int) -> tuple[int, str, bool]:
        return x * 2, VAR.get(), threading.current_thread() is not threading.main_thread()

    results = await aio.gather(*(aio.to_thread(work, i) for i in range(4)))

    def boom() -> None:
        raise KeyError("k")

    try:
        await aio.to_thread(boom)
    except KeyError as error:
        return [list(results), exc(error)]
    return [list(results), "no error"]


THREADS, CALLS = 8, 10_000


async def threadsafe_flood(aio: Any) -> Any:
    loop = aio.get_running_loop()
    done = loop.create_future()
    received: list[list[int]] = [[] for _ in range(THREADS)]
    count = 0

    def on_call(thread: int, i: int) -> None:
        nonlocal count
        received[thread].append(i)
        count += 1
        if count == THREADS * CALLS:
            done.set_result(count)

    def flood(thread: int) -> None:
        for i in range(CALLS):
            loop.call_soon_threadsafe(on_call, thread, i)

    threads = [threading.Thread(target=flood, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        total = await aio.wait_for(done, 30)
    finally:
        for thread in threads:
            thread.join()
    in_order = all(calls == list(range(CALLS)) for calls in received)
    return [total, in_order]


async def locks_and_events(aio: Any) -> Any:
    log: list[Any] = []
    lock = aio.Lock()
    order: list[int] = []

    async def worker(i: int) -> None:
        async with lock:
            order.append(i)
            await aio.sleep(0)

    await aio.gather(*(worker(i) for i in range(5)))
    log.append(order)

    semaphore = aio.Semaphore(2)
    inside: list[int] = []
    peak = 0

    async def limited(i: int) -> None:
        nonlocal peak
        async with semaphore:
            inside.append(i)
            peak = max(peak, len(inside))
            await aio.sleep(0)
            inside.remove(i)

    await aio.gather(*(limited(i) for i in range(6)))
    log.append(("peak", peak))

    condition = aio.Condition()
    woken: list[int] = []

    async def wait_for_notice(i: int) -> None:
        async with condition:
            await condition.wait()
            woken.append(i)

    waiters = [aio.create_task(wait_for_notice(i)) for i in range(3)]
    await aio.sleep(0)
    async with condition:
        condition.notify(2)
    await aio.sleep(0)
    log.append(list(woken))
    async with condition:
        condition.notify_all()
    await aio.gather(*waiters)
    log.append(woken)

    event = aio.Event()
    seen: list[str] = []

    async def on_event(name: str) -> None:
        await event.wait()
        seen.append(name)

    listeners = [aio.create_task(on_event(name)) for name in "xyz"]
    await aio.sleep(0)
    event.set()
    await aio.gather(*listeners)
    log.append(seen)
    return log


async def wait_and_as_completed(aio: Any) -> Any:
    log: list[Any] = []
    gates = [aio.Event() for _ in range(3)]

    async def value(i: int) -> int:
        await gates[i].wait()
        return i

    tasks = [aio.create_task(value(i)) for i in range(3)]
    gates[2].set()
    done, pending = await aio.wait(tasks, return_when=aio.FIRST_COMPLETED)
    log.append((sorted(t.result() for t in done), len(pending)))
    done, pending = await aio.wait(tasks, timeout=0)
    log.append((len(done), len(pending)))
    gates[0].set()
    gates[1].set()
    done, pending = await aio.wait(tasks)
    log.append((sorted(t.result() for t in done), len(pending)))

    more = [aio.Event() for _ in range(3)]

    async def later(i: int) -> int:
        await more[i].wait()
        return i

    order = []
    releases = iter([1, 2, 0])
    more[next(releases)].set()
    for next_result in aio.as_completed([later(i) for i in range(3)]):
        order.append(await next_result)
        following = next(releases, None)
        if following is not None:
            more[following].set()
    log.append(order)
    return log


async def contexts(aio: Any) -> Any:
    log: list[Any] = []
    VAR.set("main")

    async def child(name: str) -> str:
        before = VAR.get()
        VAR.set(name)
        await aio.sleep(0)
        return f"{name}: saw {before}, now {VAR.get()}"

    log.extend(await aio.gather(child("a"), child("b")))
    log.append(VAR.get())
    context = contextvars.copy_context()
    context.run(VAR.set, "in the copy")
    got = aio.get_running_loop().create_future()
    aio.get_running_loop().call_soon(lambda: got.set_result(VAR.get()), context=context)
    log.append(await got)
    task = aio.create_task(child("c"), context=context)
    log.append(await task)
    log.append(context[VAR])
    return log


async def runner_cleanup(aio: Any) -> Any:
    """Left-over tasks are cancelled and async generators closed by run()."""
    log: list[Any] = []
    started = aio.Event()

    async def leftover() -> None:
        started.set()
        try:
            await aio.sleep(3600)
        finally:
            log.append("leftover task cancelled by run()")

    async def numbers() -> Any:
        try:
            yield 1
            yield 2
        finally:
            log.append("async generator closed by run()")

    background = aio.create_task(leftover())
    await started.wait()
    generator = numbers()
    log.append(await generator.__anext__())
    log.append(background.done())
    return log  # run() appends to it after this returns


async def timers(aio: Any) -> Any:
    loop = aio.get_running_loop()
    order: list[Any] = []
    done = loop.create_future()
    now = loop.time()
    for i, delay in enumerate([0.02, 0.01, 0.005, 0.0, 0.03]):
        loop.call_at(now + delay, order.append, i)
    cancelled = loop.call_later(0.015, order.append, "cancelled")
    cancelled.cancel()
    loop.call_soon(order.append, "soon")
    loop.call_at(now + 0.04, done.set_result, "done")
    result = await done
    late = loop.time() - now >= 0.039  # timers may run up to clock_resolution early
    return [order, cancelled.cancelled(), result, late]


async def task_outcomes(aio: Any) -> Any:
    log: list[Any] = []

    async def ok() -> str:
        return "value"

    async def bad() -> None:
        raise ValueError("e")

    good_task, bad_task = aio.create_task(ok()), aio.create_task(bad())
    await aio.wait([good_task, bad_task])
    log.append((good_task.result(), exc(bad_task.exception())))
    try:
        bad_task.result()
    except ValueError as error:
        log.append(("result raised", exc(error)))

    future = aio.get_running_loop().create_future()
    order: list[int] = []
    callbacks = [lambda _f, i=i: order.append(i) for i in range(4)]
    for callback in callbacks:
        future.add_done_callback(callback)
    log.append(future.remove_done_callback(callbacks[1]))
    future.set_result(None)
    log.append(list(order))  # callbacks are scheduled, not called
    await aio.sleep(0)
    log.append(order)
    log.append(aio.get_event_loop() is aio.get_running_loop())
    return log


async def wait_for_cancelled(aio: Any) -> Any:
    log: list[Any] = []
    started = aio.Event()

    async def inner() -> None:
        started.set()
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            log.append("inner cancelled")
            raise

    outer = aio.create_task(aio.wait_for(inner(), 60))
    await started.wait()
    outer.cancel()
    try:
        await outer
    except aio.CancelledError:
        log.append("outer cancelled")
    log.append(outer.cancelled())

    async def quick() -> str:
        return "quick"

    log.append(await aio.wait_for(quick(), 0.5))
    ready = aio.get_running_loop().create_future()
    ready.set_result("ready")
    log.append(await aio.wait_for(ready, 0))
    return log


async def barrier(aio: Any) -> Any:
    log: list[Any] = []
    gate = aio.Barrier(3)
    arrived: list[int] = []

    async def party(i: int) -> int:
        arrived.append(i)
        index = await gate.wait()
        return int(index)

    indices = await aio.gather(*(party(i) for i in range(3)))
    log.append((sorted(indices), arrived, gate.n_waiting, gate.broken))

    lonely = aio.Barrier(2)
    waiting = aio.Event()

    async def alone() -> str:
        waiting.set()
        try:
            await lonely.wait()
        except aio.BrokenBarrierError:
            return "broken"
        return "passed"

    task = aio.create_task(alone())
    await waiting.wait()
    await aio.sleep(0)
    await lonely.abort()
    log.append((await task, lonely.broken))
    return log


async def from_other_threads(aio: Any) -> Any:
    import concurrent.futures

    loop = aio.get_running_loop()

    async def add(x: int, y: int) -> int:
        await aio.sleep(0)
        return x + y

    async def fail() -> None:
        raise KeyError("from the loop")

    def submit_from_thread() -> Any:
        result = aio.run_coroutine_threadsafe(add(1, 2), loop).result(timeout=30)
        try:
            aio.run_coroutine_threadsafe(fail(), loop).result(timeout=30)
        except KeyError as error:
            return [result, exc(error)]
        return [result, "no error"]

    log = await aio.to_thread(submit_from_thread)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        log.append(await aio.wrap_future(pool.submit(str.upper, "from the pool")))
        log.append(await loop.run_in_executor(pool, sum, [1, 2, 3]))
    return log


async def socket_io(aio: Any) -> Any:
    import socket

    loop = aio.get_running_loop()
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    try:
        payload = bytes(range(256)) * 4096  # 1 MiB: more than one socket buffer

        async def receive_all() -> bytes:
            received = bytearray()
            while len(received) < len(payload):
                chunk = await loop.sock_recv(right, 65536)
                if not chunk:
                    break
                received += chunk
            return bytes(received)

        receiver = aio.ensure_future(receive_all())
        await loop.sock_sendall(left, payload)
        received = await receiver

        readable = loop.create_future()

        def on_readable() -> None:
            if not readable.done():
                readable.set_result(right.recv(16))

        loop.add_reader(right.fileno(), on_readable)
        left.send(b"ping")
        ping = await readable
        removed = loop.remove_reader(right.fileno())
        removed_again = loop.remove_reader(right.fileno())
        return [received == payload, len(received), ping, removed, removed_again]
    finally:
        left.close()
        right.close()


PROGRAMS: dict[str, Program] = {
    program.__name__: program
    for program in (
        gather_return_exceptions,
        gather_first_exception,
        gather_cancelled,
        taskgroup_child_fails,
        taskgroup_cancelled_from_outside,
        cancellation,
        timeouts,
        queues,
        to_thread,
        threadsafe_flood,
        locks_and_events,
        wait_and_as_completed,
        contexts,
        runner_cleanup,
        timers,
        task_outcomes,
        wait_for_cancelled,
        barrier,
        from_other_threads,
        socket_io,
    )
}

#: Programs whose outputs are pinned too (so that a change shared by all three
#: runs cannot pass unseen), and the one program stdlib 3.11 cannot run.
EXPECTED: dict[str, Any] = {
    "gather_return_exceptions": [1, ("ValueError", ("two",)), 3, ("ValueError", ("four",))],
    "threadsafe_flood": [THREADS * CALLS, True],
    "timers": [["soon", 3, 2, 1, 0, 4], True, "done", True],
    "socket_io": [True, 1 << 20, b"ping", True, False],
    "queue_shutdown": [
        "put refused",
        1,
        2,
        "get refused when drained",
        "waiter released",
        0,
        "immediate: nothing left",
        "join returned",
    ],
    "runner_cleanup": [
        1,
        False,
        "async generator closed by run()",
        "leftover task cancelled by run()",
    ],
}


# -- the three ways to run them ---------------------------------------------------------


def _kinds_of(aio: ModuleType) -> tuple[str, str]:
    loop = aio.get_running_loop()
    task = aio.current_task()
    return type(loop).__module__, type(task).__module__


def _capture(run: Callable[[], Any]) -> Any:
    try:
        return ("returned", run())
    except BaseException as error:  # the outcome is what is compared
        return ("raised", exc(error))


def run_stdlib(program: Program) -> Any:
    async def main() -> Any:
        assert _kinds_of(asyncio) == ("asyncio.unix_events", "_asyncio")
        return await program(asyncio)

    return _capture(lambda: asyncio.run(main()))


def run_loop_mode(program: Program) -> Any:
    async def main() -> Any:
        assert _kinds_of(asyncio) == ("sansloop.compat.loop", "_asyncio")
        return await program(asyncio)

    def run() -> Any:
        with asyncio.Runner(loop_factory=sansloop.new_event_loop) as runner:
            return runner.run(main())

    return _capture(run)


def run_full_mode(program: Program) -> Any:
    aio = sansloop.compat

    async def main() -> Any:
        assert _kinds_of(aio) == ("sansloop.compat.loopclasses", "sansloop.core.tasks")
        return await program(aio)

    return _capture(lambda: aio.run(main()))


RUNNERS = {"sansloop-loop": run_loop_mode, "sansloop-full": run_full_mode}

_reference: dict[str, Any] = {}


def reference(name: str) -> Any:
    """Stdlib asyncio's outcome of program *name* (computed once)."""
    if name not in _reference:
        _reference[name] = run_stdlib(PROGRAMS[name])
    return _reference[name]


@pytest.mark.parametrize("mode", list(RUNNERS))
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_same_result_as_asyncio(name: str, mode: str) -> None:
    expected = reference(name)
    assert expected[0] == "returned", f"the reference run failed: {expected}"
    assert RUNNERS[mode](PROGRAMS[name]) == expected


@pytest.mark.parametrize("name", sorted(set(EXPECTED) & set(PROGRAMS)))
def test_reference_gives_the_pinned_result(name: str) -> None:
    assert reference(name) == ("returned", EXPECTED[name])


def _queue_shutdown_runners() -> dict[str, Callable[[Program], Any]]:
    runners: dict[str, Callable[[Program], Any]] = {"sansloop-full": run_full_mode}
    if hasattr(asyncio.Queue, "shutdown"):  # Python 3.13+
        runners["asyncio"] = run_stdlib
        runners["sansloop-loop"] = run_loop_mode
    return runners


@pytest.mark.parametrize("mode", list(_queue_shutdown_runners()))
def test_queue_shutdown(mode: str) -> None:
    outcome = _queue_shutdown_runners()[mode](queue_shutdown)
    assert outcome == ("returned", EXPECTED["queue_shutdown"])


def test_programs_are_not_trivial() -> None:
    """Every program records several observations (a sanity check on the harness)."""
    for name in PROGRAMS:
        outcome = reference(name)
        assert outcome[0] == "returned" and len(outcome[1]) >= 2, (name, outcome)
