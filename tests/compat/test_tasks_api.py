"""Behaviour of the task functions (sleep, gather, wait, wait_for, shield,
as_completed, ensure_future, create_task, current_task, all_tasks, the thread
bridges and the predicates), each scenario run on every flavour (conftest).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import math
import sys
import threading
import types

import pytest

PY313 = sys.version_info >= (3, 13)
PY312 = sys.version_info >= (3, 12)


def needs_313_on_asyncio(flavour) -> None:
    if flavour.name == "asyncio" and not PY313:
        pytest.skip("stdlib asyncio gained this in 3.13; sansloop has it on every version")


# ---------------------------------------------------------------- sleep


def test_sleep_returns_result(flavour):
    aio = flavour.api

    async def main():
        return [await aio.sleep(0, "zero"), await aio.sleep(-1, "neg"), await aio.sleep(0.001, 7)]

    assert flavour.run(main()) == ["zero", "neg", 7]


def test_sleep_zero_is_one_turn_of_the_loop(flavour):
    aio = flavour.api
    log = []

    async def worker(tag):
        for i in range(3):
            log.append(f"{tag}{i}")
            await aio.sleep(0)

    async def main():
        await aio.gather(worker("a"), worker("b"))

    flavour.run(main())
    assert log == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_sleep_nan(flavour):
    aio = flavour.api

    async def main():
        try:
            return await aio.sleep(math.nan, "done")
        except ValueError as exc:
            return str(exc)

    # sansloop refuses NaN on every version (docs/compat.md #2); asyncio from 3.13.
    refuses = PY313 or flavour.name != "asyncio"
    expected = "Invalid delay: NaN (not a number)" if refuses else "done"
    assert flavour.run(main()) == expected


def test_sleep_is_cancellable(flavour):
    aio = flavour.api

    async def main():
        task = aio.create_task(aio.sleep(3600))
        await aio.sleep(0)
        task.cancel("stop")
        try:
            await task
        except aio.CancelledError as exc:
            return exc.args, task.cancelled()

    assert flavour.run(main()) == (("stop",), True)


# ---------------------------------------------------------------- gather


def test_gather_results_in_argument_order(flavour):
    aio = flavour.api

    async def value(v, delay):
        await aio.sleep(delay)
        return v

    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "f")
        return await aio.gather(value(1, 0.02), value(2, 0), fut, fut)

    assert flavour.run(main()) == [1, 2, "f", "f"]


def test_gather_empty(flavour):
    aio = flavour.api

    async def main():
        return await aio.gather()

    assert flavour.run(main()) == []


def test_gather_first_exception_wins_and_others_keep_running(flavour):
    aio = flavour.api

    async def fail():
        raise KeyError("boom")

    async def main():
        loop = aio.get_running_loop()
        slow = loop.create_future()
        other = aio.create_task(aio.sleep(0, "other"))
        try:
            await aio.gather(fail(), slow, other)
        except KeyError as exc:
            caught = exc.args
        # the survivors were not cancelled
        slow.set_result(1)
        return caught, await other, slow.cancelled()

    assert flavour.run(main()) == (("boom",), "other", False)


def test_gather_return_exceptions(flavour):
    aio = flavour.api

    async def fail():
        raise ValueError("v")

    async def main():
        loop = aio.get_running_loop()
        cancelled = loop.create_future()
        cancelled.cancel("why")
        plain = loop.create_future()
        plain.cancel()
        results = await aio.gather(
            fail(), aio.sleep(0, 3), cancelled, plain, return_exceptions=True
        )
        return [(type(r).__name__, r.args if isinstance(r, BaseException) else r) for r in results]

    assert flavour.run(main()) == [
        ("ValueError", ("v",)),
        ("int", 3),
        ("CancelledError", ("why",)),
        ("CancelledError", ("",)),
    ]


def test_gather_child_cancelled_raises_cancelled_error(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        child = loop.create_future()
        gathering = aio.gather(child)
        child.cancel("child-msg")
        try:
            await gathering
        except aio.CancelledError as exc:
            return exc.args, gathering.cancelled()

    assert flavour.run(main()) == (("child-msg",), False)


@pytest.mark.parametrize("return_exceptions", [False, True])
def test_cancelling_gather_cancels_children(flavour, return_exceptions):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        a, b = loop.create_future(), loop.create_future()
        gathering = aio.gather(a, b, return_exceptions=return_exceptions)
        first = gathering.cancel("bye")
        done_right_after = gathering.done()
        try:
            await gathering
        except aio.CancelledError as exc:
            outcome = exc.args
        return first, done_right_after, outcome, a.cancelled(), b.cancelled(), gathering.cancel()

    assert flavour.run(main()) == (True, False, ("bye",), True, True, False)


def test_cancelling_the_awaiting_task_cancels_gathered_children(flavour):
    aio = flavour.api

    async def main():
        child = aio.create_task(aio.sleep(3600))

        async def gather_it():
            return await aio.gather(child)

        waiter = aio.create_task(gather_it())
        await aio.sleep(0)
        waiter.cancel()
        try:
            await waiter
        except aio.CancelledError:
            pass
        return waiter.cancelled(), child.cancelled()

    assert flavour.run(main()) == (True, True)


def test_gather_futures_of_different_loops(flavour):
    aio = flavour.api
    other_loop = flavour.new_loop()
    try:

        async def main():
            loop = aio.get_running_loop()
            mine = loop.create_future()
            theirs = other_loop.create_future()
            with pytest.raises(ValueError, match="different loop"):
                aio.gather(mine, theirs)
            mine.cancel()
            return True

        assert flavour.run(main())
    finally:
        other_loop.close()


def test_gather_refuses_non_awaitables(flavour):
    aio = flavour.api

    async def main():
        with pytest.raises(TypeError, match="An asyncio.Future, a coroutine or an awaitable"):
            aio.gather(42)
        return True

    assert flavour.run(main())


# ---------------------------------------------------------------- wait


def test_wait_bad_input(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(ValueError, match="Set of Tasks/Futures is empty."):
            await aio.wait(set())
        if flavour.name != "asyncio":  # asyncio trips an internal assert instead
            with pytest.raises(ValueError, match="Set of Tasks/Futures is empty."):
                await aio.wait(iter([]))
        fut = loop.create_future()
        with pytest.raises(TypeError, match="expect a list of futures, not"):
            await aio.wait(fut)
        with pytest.raises(ValueError, match="Invalid return_when value: nope"):
            await aio.wait([fut], return_when="nope")
        coro = aio.sleep(0)
        with pytest.raises(TypeError, match="Passing coroutines is forbidden"):
            await aio.wait([coro])
        coro.close()
        return True

    assert flavour.run(main())


def test_wait_all_completed(flavour):
    aio = flavour.api

    async def main():
        a = aio.create_task(aio.sleep(0, "a"))
        b = aio.create_task(aio.sleep(0.01, "b"))
        done, pending = await aio.wait([a, b, a])
        return done == {a, b}, pending

    assert flavour.run(main()) == (True, set())


def test_wait_first_completed(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        slow = loop.create_future()
        fast = aio.create_task(aio.sleep(0, "fast"))
        done, pending = await aio.wait({slow, fast}, return_when=aio.FIRST_COMPLETED)
        slow.cancel()
        return done == {fast}, pending == {slow}

    assert flavour.run(main()) == (True, True)


def test_wait_first_exception(flavour):
    aio = flavour.api

    async def fail():
        await aio.sleep(0)
        raise OSError("x")

    async def main():
        loop = aio.get_running_loop()
        never = loop.create_future()
        ok = aio.create_task(aio.sleep(0))
        bad = aio.create_task(fail())
        done, pending = await aio.wait([never, ok, bad], return_when=aio.FIRST_EXCEPTION)
        never.cancel()
        return done == {ok, bad}, pending == {never}

    assert flavour.run(main()) == (True, True)


def test_wait_first_exception_without_exception_waits_for_all(flavour):
    aio = flavour.api

    async def main():
        a = aio.create_task(aio.sleep(0))
        b = aio.create_task(aio.sleep(0.005))
        done, pending = await aio.wait([a, b], return_when=aio.FIRST_EXCEPTION)
        return len(done), len(pending)

    assert flavour.run(main()) == (2, 0)


def test_wait_timeout_leaves_pending_and_does_not_raise(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        never = loop.create_future()
        done, pending = await aio.wait([never], timeout=0.01)
        result = (done, pending == {never}, never.cancelled())
        never.cancel()
        return result

    assert flavour.run(main()) == (set(), True, False)


# ---------------------------------------------------------------- wait_for


def test_wait_for_result(flavour):
    aio = flavour.api

    async def main():
        return [
            await aio.wait_for(aio.sleep(0, 1), timeout=10),
            await aio.wait_for(aio.sleep(0, 2), timeout=None),
        ]

    assert flavour.run(main()) == [1, 2]


def test_wait_for_timeout_cancels_the_awaitable(flavour):
    aio = flavour.api

    async def main():
        task = aio.create_task(aio.sleep(3600))
        try:
            await aio.wait_for(task, timeout=0.01)
        except TimeoutError as exc:
            return type(exc.__cause__).__name__, task.cancelled()

    assert flavour.run(main()) == ("CancelledError", True)


def test_wait_for_zero_timeout(flavour):
    aio = flavour.api
    started = []

    async def body():
        started.append(True)
        return "ran"

    async def main():
        loop = aio.get_running_loop()
        done = loop.create_future()
        done.set_result("ready")
        first = await aio.wait_for(done, 0)
        try:
            await aio.wait_for(body(), 0)
        except TimeoutError:
            second = "timeout"
        return first, second, started

    assert flavour.run(main()) == ("ready", "timeout", [])


def test_wait_for_returns_the_value_of_an_awaitable_that_refuses_to_be_cancelled(flavour):
    aio = flavour.api

    async def stubborn():
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            return "kept going"

    async def main():
        return await aio.wait_for(stubborn(), 0.01)

    assert flavour.run(main()) == "kept going"


def test_wait_for_cancelled_from_outside_cancels_inner(flavour):
    aio = flavour.api

    async def main():
        inner = aio.create_task(aio.sleep(3600))
        outer = aio.create_task(aio.wait_for(inner, 3600))
        await aio.sleep(0)
        outer.cancel()
        try:
            await outer
        except aio.CancelledError:
            pass
        return outer.cancelled(), inner.cancelled()

    assert flavour.run(main()) == (True, True)


def test_wait_for_runs_a_coroutine_in_the_callers_task(flavour):
    aio = flavour.api

    async def who():
        return aio.current_task()

    async def main():
        return await aio.wait_for(who(), 10) is aio.current_task()

    # 3.12 semantics everywhere in sansloop; stdlib 3.11 wraps it in a task.
    expected = PY312 or flavour.name != "asyncio"
    assert flavour.run(main()) is expected


# ---------------------------------------------------------------- shield


def test_shield_protects_inner_from_outer_cancellation(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        gate = loop.create_future()

        async def job():
            await gate
            return "finished"

        inner = aio.create_task(job())

        async def shielded():
            return await aio.shield(inner)

        outer = aio.create_task(shielded())
        await aio.sleep(0)
        outer.cancel()
        try:
            await outer
        except aio.CancelledError:
            pass
        gate.set_result(None)
        return outer.cancelled(), await inner

    assert flavour.run(main()) == (True, "finished")


def test_shield_passes_result_exception_and_inner_cancellation(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        a, b, c = loop.create_future(), loop.create_future(), loop.create_future()
        sa, sb, sc = aio.shield(a), aio.shield(b), aio.shield(c)
        a.set_result(1)
        b.set_exception(KeyError("k"))
        c.cancel()
        results = await aio.gather(sa, sb, sc, return_exceptions=True)
        done = loop.create_future()
        done.set_result(0)
        return [type(r).__name__ for r in results], sc.cancelled(), aio.shield(done) is done

    assert flavour.run(main()) == (["int", "KeyError", "CancelledError"], True, True)


# ---------------------------------------------------------------- as_completed


def test_as_completed_plain_iteration_in_completion_order(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        futs = [loop.create_future() for _ in range(3)]
        loop.call_soon(futs[2].set_result, "c")
        loop.call_soon(futs[0].set_result, "a")
        loop.call_soon(futs[1].set_exception, KeyError("b"))
        out = []
        for next_one in aio.as_completed(futs):
            try:
                out.append(await next_one)
            except KeyError as exc:
                out.append(exc.args)
        return out

    assert flavour.run(main()) == ["c", "a", ("b",)]


def test_as_completed_timeout(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        quick = loop.create_future()
        quick.set_result("q")
        never = loop.create_future()
        out = []
        for next_one in aio.as_completed([never, quick], timeout=0.01):
            try:
                out.append(await next_one)
            except TimeoutError:
                out.append("timeout")
        never.cancel()
        return out

    assert flavour.run(main()) == ["q", "timeout"]


def test_as_completed_refuses_a_single_future(flavour):
    aio = flavour.api

    async def main():
        fut = aio.get_running_loop().create_future()
        with pytest.raises(TypeError, match="iterable of"):
            list(aio.as_completed(fut))  # stdlib 3.11 checks on first next()
        return True

    assert flavour.run(main())


def test_as_completed_async_iteration_yields_originals(flavour):
    needs_313_on_asyncio(flavour)
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        loop.call_soon(second.set_result, 2)
        loop.call_soon(first.set_result, 1)
        seen = []
        async for fut in aio.as_completed([first, second, aio.sleep(0.01, 3)]):
            seen.append((fut is first, fut is second, fut.result()))
        return seen

    assert flavour.run(main()) == [(False, True, 2), (True, False, 1), (False, False, 3)]


def test_as_completed_async_iteration_timeout(flavour):
    needs_313_on_asyncio(flavour)
    aio = flavour.api

    async def main():
        never = aio.get_running_loop().create_future()
        try:
            async for _ in aio.as_completed([never], timeout=0.01):
                pass
        except TimeoutError:
            never.cancel()
            return "timeout"

    assert flavour.run(main()) == "timeout"


# ---------------------------------------------------------------- ensure_future / create_task


class _Awaitable:
    def __await__(self):
        yield from ()
        return "awaited"


def test_ensure_future(flavour):
    aio = flavour.api

    async def coro():
        return "c"

    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        same = aio.ensure_future(fut) is fut
        same_with_loop = aio.ensure_future(fut, loop=loop) is fut
        task = aio.ensure_future(coro())
        wrapped = aio.ensure_future(_Awaitable())
        with pytest.raises(TypeError, match="An asyncio.Future, a coroutine or an awaitable"):
            aio.ensure_future(1)
        fut.set_result(None)
        return same, same_with_loop, await task, await wrapped, aio.isfuture(task)

    assert flavour.run(main()) == (True, True, "c", "awaited", True)


def test_ensure_future_with_another_loop(flavour):
    aio = flavour.api
    other_loop = flavour.new_loop()
    try:

        async def main():
            fut = aio.get_running_loop().create_future()
            with pytest.raises(ValueError, match="different loop"):
                aio.ensure_future(fut, loop=other_loop)
            fut.cancel()
            return True

        assert flavour.run(main())
    finally:
        other_loop.close()


def test_create_task_name_and_context(flavour):
    aio = flavour.api
    var = contextvars.ContextVar("var", default="unset")

    async def read():
        return var.get()

    async def main():
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in-ctx")
        named = aio.create_task(read(), name="reader")
        in_ctx = aio.create_task(read(), context=ctx)
        return named.get_name(), await named, await in_ctx

    assert flavour.run(main()) == ("reader", "unset", "in-ctx")


def test_create_task_outside_a_loop(flavour):
    aio = flavour.api

    async def nothing():
        pass

    coro = nothing()
    with pytest.raises(RuntimeError, match="no running event loop"):
        aio.create_task(coro)
    coro.close()


# ---------------------------------------------------------------- current_task / all_tasks


def test_current_task_and_all_tasks(flavour):
    aio = flavour.api

    async def main():
        me = aio.current_task()
        loop = aio.get_running_loop()
        sleeper = aio.create_task(aio.sleep(3600))
        finished = aio.create_task(aio.sleep(0))
        await finished
        tasks = aio.all_tasks()
        result = (
            me is not None,
            aio.current_task(loop) is me,
            me in tasks,
            sleeper in tasks,
            finished in tasks,
            aio.all_tasks(loop) == tasks,
        )
        sleeper.cancel()
        return result

    assert flavour.run(main()) == (True, True, True, True, False, True)


def test_current_task_without_a_loop(flavour):
    aio = flavour.api
    with pytest.raises(RuntimeError, match="no running event loop"):
        aio.current_task()
    with pytest.raises(RuntimeError, match="no running event loop"):
        aio.all_tasks()
    loop = flavour.new_loop()
    try:
        assert aio.current_task(loop) is None
    finally:
        loop.close()


def test_current_task_in_a_callback_is_none(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        loop.call_soon(lambda: fut.set_result(aio.current_task()))
        return await fut

    assert flavour.run(main()) is None


# ---------------------------------------------------------------- threads


def test_run_coroutine_threadsafe(flavour):
    aio = flavour.api

    async def double(x):
        await aio.sleep(0)
        return x * 2

    async def fail():
        raise LookupError("l")

    async def main():
        loop = aio.get_running_loop()

        def from_thread():
            ok = aio.run_coroutine_threadsafe(double(21), loop).result(timeout=30)
            try:
                aio.run_coroutine_threadsafe(fail(), loop).result(timeout=30)
            except LookupError as exc:
                err = exc.args
            return ok, err

        return await aio.to_thread(from_thread)

    assert flavour.run(main()) == (42, ("l",))


def test_run_coroutine_threadsafe_cancel_from_the_thread(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        started = loop.create_future()

        async def forever():
            started.set_result(aio.current_task())
            await aio.sleep(3600)

        submitted = []

        def submit():
            cf = aio.run_coroutine_threadsafe(forever(), loop)
            submitted.append(cf)

        await aio.to_thread(submit)
        task = await started
        submitted[0].cancel()
        try:
            await task
        except aio.CancelledError:
            pass
        return task.cancelled(), submitted[0].cancelled()

    assert flavour.run(main()) == (True, True)


def test_run_coroutine_threadsafe_needs_a_coroutine(flavour):
    aio = flavour.api
    loop = flavour.new_loop()
    try:
        with pytest.raises(TypeError, match="A coroutine object is required"):
            aio.run_coroutine_threadsafe(lambda: None, loop)
    finally:
        loop.close()


def test_wrap_future_result_and_exception_from_a_thread(flavour):
    aio = flavour.api

    async def main():
        ok: concurrent.futures.Future = concurrent.futures.Future()
        bad: concurrent.futures.Future = concurrent.futures.Future()
        wrapped_ok, wrapped_bad = aio.wrap_future(ok), aio.wrap_future(bad)

        def complete():
            ok.set_result("ok")
            bad.set_exception(ZeroDivisionError("z"))

        thread = threading.Thread(target=complete)
        thread.start()
        results = await aio.gather(wrapped_ok, wrapped_bad, return_exceptions=True)
        thread.join()
        return results[0], type(results[1]).__name__, aio.wrap_future(wrapped_ok) is wrapped_ok

    assert flavour.run(main()) == ("ok", "ZeroDivisionError", True)


def test_wrap_future_cancellation_both_ways(flavour):
    aio = flavour.api

    async def main():
        source: concurrent.futures.Future = concurrent.futures.Future()
        mirror = aio.wrap_future(source)
        mirror.cancel()
        await aio.sleep(0)
        other: concurrent.futures.Future = concurrent.futures.Future()
        other_mirror = aio.wrap_future(other)
        other.cancel()
        try:
            await other_mirror
        except aio.CancelledError:
            pass
        return source.cancelled(), other_mirror.cancelled()

    assert flavour.run(main()) == (True, True)


def test_wrap_future_converts_concurrent_cancelled_error(flavour):
    aio = flavour.api

    async def main():
        source: concurrent.futures.Future = concurrent.futures.Future()
        mirror = aio.wrap_future(source)
        source.set_exception(concurrent.futures.CancelledError("c"))
        try:
            await mirror
        except aio.CancelledError as exc:
            return type(exc) is aio.CancelledError, mirror.cancelled()

    assert flavour.run(main()) == (True, False)


# ---------------------------------------------------------------- predicates


def test_predicates(flavour):
    aio = flavour.api

    async def native():
        pass

    def plain():
        pass

    def gen():
        yield

    async def main():
        coro = native()
        g = gen()
        fut = aio.get_running_loop().create_future()
        fut.cancel()
        task = aio.current_task()
        answers = (
            aio.iscoroutine(coro),
            aio.iscoroutine(g),
            aio.iscoroutine(fut),
            aio.isfuture(fut),
            aio.isfuture(task),
            aio.isfuture(coro),
            aio.isfuture(type(fut)),
            aio.iscoroutinefunction(native),
            aio.iscoroutinefunction(plain),
        )
        coro.close()
        return answers

    # generators stopped counting as coroutines in 3.12
    expected = (True, not PY312, False, True, True, False, False, True, False)
    assert flavour.run(main()) == expected


def test_iscoroutine_accepts_abc_coroutines(flavour):
    aio = flavour.api

    class Coro(types.SimpleNamespace):
        def send(self, value):
            raise StopIteration

        def throw(self, *args):
            raise StopIteration

        def close(self):
            pass

        def __await__(self):
            return iter(())

    import collections.abc

    collections.abc.Coroutine.register(Coro)
    assert aio.iscoroutine(Coro())


def test_return_when_constants(flavour):
    aio = flavour.api
    assert (aio.FIRST_COMPLETED, aio.FIRST_EXCEPTION, aio.ALL_COMPLETED) == (
        concurrent.futures.FIRST_COMPLETED,
        concurrent.futures.FIRST_EXCEPTION,
        concurrent.futures.ALL_COMPLETED,
    )


def test_wait_for_returns_what_a_stubborn_task_returns_despite_outside_cancel(flavour):
    aio = flavour.api

    async def main():
        async def stubborn():
            for _ in range(3):
                try:
                    await aio.sleep(0.05)
                except aio.CancelledError:
                    pass
            return 42

        inner = aio.create_task(stubborn())
        waiting = aio.create_task(aio.wait_for(inner, timeout=0.005))
        await aio.sleep(0.03)  # the timeout (at 5 ms) has fired by now
        waiting.cancel()
        try:
            return await waiting, waiting.cancelling()
        except aio.CancelledError:
            return "cancelled", waiting.cancelling()

    # 3.12 semantics everywhere in sansloop (docs/compat.md #4)
    expected = ("cancelled", 1) if flavour.name == "asyncio" and not PY312 else (42, 1)
    assert flavour.run(main()) == expected


# ---------------------------------------------------------------- eager tasks


def test_gather_and_wait_with_eager_tasks(flavour):
    aio = flavour.api
    factory = flavour.eager_task_factory()

    async def at_once(v):
        return v

    async def after_a_turn(v):
        await aio.sleep(0)
        return v

    async def fails_at_once():
        raise KeyError("eager")

    async def main():
        aio.get_running_loop().set_task_factory(factory)
        done_now = aio.create_task(at_once(0))
        results = await aio.gather(at_once(1), after_a_turn(2), at_once(3))
        mixed = await aio.gather(at_once(4), fails_at_once(), return_exceptions=True)
        done, pending = await aio.wait([done_now, aio.create_task(after_a_turn(5))])
        return (
            done_now.done(),
            results,
            [type(r).__name__ for r in mixed],
            sorted(t.result() for t in done),
            pending,
        )

    assert flavour.run(main()) == (True, [1, 2, 3], ["int", "KeyError"], [0, 5], set())


# ---------------------------------------------------------------- more bad input


def test_bad_input_types(flavour):
    aio = flavour.api

    async def main():
        errors = []
        for make in (
            lambda: aio.create_task(1),
            lambda: aio.shield(1),
            lambda: aio.ensure_future("text"),
        ):
            try:
                make()
            except TypeError:
                errors.append("TypeError")
        try:
            await aio.wait_for(1, 10)
        except TypeError:
            errors.append("TypeError")
        try:
            aio.wrap_future(42)
        except AssertionError:
            errors.append("AssertionError")
        plain = [c for c in aio.as_completed([])]
        return errors, plain

    assert flavour.run(main()) == (["TypeError"] * 4 + ["AssertionError"], [])


def test_ensure_future_on_a_closed_loop_closes_the_coroutine(flavour):
    aio = flavour.api
    loop = flavour.new_loop()
    loop.close()
    started = []

    async def body():
        started.append(True)

    coro = body()
    with pytest.raises(RuntimeError, match="closed"):
        aio.ensure_future(coro, loop=loop)
    # closed by ensure_future: closing again is a no-op and it never ran
    assert coro.cr_frame is None
    assert started == []
