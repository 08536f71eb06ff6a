"""sansloop.core.tasks.Task and the task registry against asyncio, on stdlib loops.

Behaviour tests run twice through the ``impl`` fixture: on stdlib asyncio's
Task/Future/current_task/all_tasks (the reference) and on sansloop.core's;
both must agree. Tests of details only sansloop promises (eager start on
3.11, exact registry messages, white-box state) use sansloop's alone.
Nothing here sleeps on a clock: tasks wait on futures the test resolves, or
on ``asyncio.sleep(0)`` (one loop iteration).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import io
import re
import sys
import types
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from sansloop.core import taskregistry
from sansloop.core.futures import Future
from sansloop.core.tasks import Task, create_eager_task_factory, eager_task_factory, iscoroutine

OURS = types.SimpleNamespace(
    kind="sansloop",
    Task=Task,
    Future=Future,
    current_task=taskregistry.current_task,
    all_tasks=taskregistry.all_tasks,
)
STDLIB = types.SimpleNamespace(
    kind="asyncio",
    Task=asyncio.Task,
    Future=asyncio.Future,
    current_task=asyncio.current_task,
    all_tasks=asyncio.all_tasks,
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A stdlib loop whose exception handler records instead of logging.

    A test that expects reports reads and clears ``loop.reports``; any report
    left at the end fails the test.
    """
    loop = asyncio.new_event_loop()
    reports: list[dict[str, Any]] = []
    loop.reports = reports  # type: ignore[attr-defined]
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    yield loop
    loop.close()
    assert reports == []


@pytest.fixture(params=[STDLIB, OURS], ids=["asyncio", "sansloop"])
def impl(request: pytest.FixtureRequest, loop: Any) -> types.SimpleNamespace:
    """Task, Future, current_task, all_tasks of one implementation.

    The loop's ``create_task`` and ``create_future`` make that implementation's
    objects, so asyncio helpers (sleep, wait, gather) use them too.
    """
    ns: types.SimpleNamespace = request.param
    if ns is OURS:
        loop.set_task_factory(lambda lp, coro, **kw: Task(coro, loop=lp, **kw))
        loop.create_future = lambda: Future(loop=loop)
    return ns


def run_briefly(loop: asyncio.AbstractEventLoop) -> None:
    """Let every ready callback run, and those they queue, once."""
    loop.run_until_complete(asyncio.sleep(0))


@types.coroutine
def bare_yield(value: Any = None) -> Generator[Any, Any, Any]:
    """Yield *value* to the driving task, as ``asyncio.sleep(0)`` yields None."""
    return (yield value)


def innermost_context(exc: BaseException) -> tuple[type[BaseException], tuple[Any, ...], int]:
    depth = 0
    while exc.__context__ is not None:
        exc = exc.__context__
        depth += 1
    return type(exc), exc.args, depth


# -- running ---------------------------------------------------------------


def test_task_returns_the_coroutines_value(loop: Any, impl: Any) -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    task = impl.Task(add(2, 3), loop=loop)
    assert not task.done()
    assert loop.run_until_complete(task) == 5
    assert task.done() and task.result() == 5
    assert task.get_loop() is loop


def test_task_ends_with_the_coroutines_exception(loop: Any, impl: Any) -> None:
    async def boom() -> None:
        raise KeyError("k")

    task = impl.Task(boom(), loop=loop)
    with pytest.raises(KeyError):
        loop.run_until_complete(task)
    assert isinstance(task.exception(), KeyError)
    assert task.exception().__traceback__ is not None


def test_task_awaits_futures_of_its_implementation(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)

    async def waiter() -> Any:
        return await fut

    task = impl.Task(waiter(), loop=loop)
    run_briefly(loop)
    assert task._fut_waiter is fut
    fut.set_result("ok")
    assert loop.run_until_complete(task) == "ok"
    assert task._fut_waiter is None


def test_bare_yield_lets_others_run(loop: Any, impl: Any) -> None:
    order: list[str] = []

    async def worker(name: str) -> None:
        for i in range(3):
            order.append(f"{name}{i}")
            await bare_yield()

    a = impl.Task(worker("a"), loop=loop)
    b = impl.Task(worker("b"), loop=loop)
    loop.run_until_complete(asyncio.gather(a, b))
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_generator_based_coroutine_is_accepted_before_312(loop: Any) -> None:
    fut = Future(loop=loop)

    def legacy() -> Generator[Any, None, Any]:
        return (yield from fut)

    gen = legacy()
    assert iscoroutine(gen) is (sys.version_info < (3, 12))
    if sys.version_info >= (3, 12):
        with pytest.raises(TypeError, match="a coroutine was expected"):
            Task(gen, loop=loop)
        return
    task = Task(gen, loop=loop)
    loop.call_soon(fut.set_result, 9)
    assert loop.run_until_complete(task) == 9


def test_non_coroutine_is_refused_quietly(loop: Any, impl: Any) -> None:
    with pytest.raises(TypeError, match="a coroutine was expected, got 123"):
        impl.Task(123, loop=loop)
    gc.collect()
    assert loop.reports == []  # and no "destroyed but pending" report


def test_failed_construction_stays_quiet(loop: Any) -> None:
    class Unnamable:
        def __str__(self) -> str:
            raise ValueError("no name")

    async def noop() -> None:
        pass

    coro = noop()
    with pytest.raises(ValueError, match="no name"):
        Task(coro, loop=loop, name=Unnamable())
    coro.close()
    gc.collect()  # an error in __del__ would fail the test (filterwarnings=error)
    assert loop.reports == []


def test_coroutine_like_object_is_accepted(loop: Any, impl: Any) -> None:
    class CoroLike:
        def send(self, value: Any) -> Any:
            raise StopIteration(42)

        def throw(self, *args: Any) -> Any:
            raise AssertionError("not thrown into")

        def close(self) -> None:
            pass

        def __await__(self) -> Any:
            return self

    assert loop.run_until_complete(impl.Task(CoroLike(), loop=loop)) == 42


# -- misuse reported by throwing into the coroutine ---------------------------------


def test_bad_yield_is_reported_to_the_coroutine(loop: Any, impl: Any) -> None:
    async def bad() -> None:
        await bare_yield(123)

    with pytest.raises(RuntimeError, match=r"^Task got bad yield: 123$"):
        loop.run_until_complete(impl.Task(bad(), loop=loop))


def test_yield_instead_of_yield_from_is_reported(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)

    async def bad() -> None:
        await bare_yield(fut)  # the flag _asyncio_future_blocking is not set

    with pytest.raises(RuntimeError, match="yield was used instead of yield from in task"):
        loop.run_until_complete(impl.Task(bad(), loop=loop))
    fut.cancel()


def test_yielding_a_generator_is_reported(loop: Any, impl: Any) -> None:
    def gen() -> Generator[None, None, None]:
        yield

    inner = gen()

    async def bad() -> None:
        await bare_yield(inner)

    with pytest.raises(RuntimeError, match="yield was used instead of yield from for generator"):
        loop.run_until_complete(impl.Task(bad(), loop=loop))
    inner.close()


def test_future_of_another_loop_is_refused(loop: Any, impl: Any) -> None:
    other = asyncio.new_event_loop()
    try:
        fut = impl.Future(loop=other)

        async def bad() -> None:
            await fut

        with pytest.raises(
            RuntimeError, match=r"Task .* got Future .* attached to a different loop"
        ):
            loop.run_until_complete(impl.Task(bad(), loop=loop))
    finally:
        other.close()


def test_task_cannot_await_itself(loop: Any, impl: Any) -> None:
    async def selfish() -> None:
        await task

    task = impl.Task(selfish(), loop=loop)
    with pytest.raises(RuntimeError, match="Task cannot await on itself"):
        loop.run_until_complete(task)


def test_set_result_and_set_exception_are_refused(loop: Any, impl: Any) -> None:
    async def noop() -> str:
        return "own"

    task = impl.Task(noop(), loop=loop)
    with pytest.raises(RuntimeError, match="not support set_result"):
        task.set_result("other")
    with pytest.raises(RuntimeError, match="not support set_exception"):
        task.set_exception(ValueError())
    assert loop.run_until_complete(task) == "own"


def test_step_after_forced_finish_reports_invalid_state(loop: Any) -> None:
    async def noop() -> None:
        pass

    coro = noop()
    task = Task(coro, loop=loop)
    Future.set_result(task, "forced")
    assert loop.run_until_complete(task) == "forced"
    report = loop.reports.pop()
    assert isinstance(report["exception"], asyncio.InvalidStateError)
    assert str(report["exception"]).startswith("_step(): already done:")
    coro.close()


def test_fatal_exceptions_leave_the_loop_and_end_the_task(loop: Any, impl: Any) -> None:
    async def fatal() -> None:
        raise SystemExit(3)

    task = impl.Task(fatal(), loop=loop)
    with pytest.raises(SystemExit):
        loop.run_until_complete(task)
    assert task.done()
    assert isinstance(task.exception(), SystemExit)


# -- cancellation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"), [((), ()), ((None,), ()), (("why",), ("why",)), ((5,), (5,))]
)
def test_cancel_while_waiting_delivers_the_message(
    loop: Any, impl: Any, args: tuple[Any, ...], expected: tuple[Any, ...]
) -> None:
    fut = impl.Future(loop=loop)

    async def waiter() -> None:
        await fut

    task = impl.Task(waiter(), loop=loop)
    run_briefly(loop)
    assert task.cancel(*args) is True
    assert fut.cancelled()  # the future waited on is cancelled at once
    with pytest.raises(asyncio.CancelledError) as info:
        loop.run_until_complete(task)
    assert info.value.args == expected
    assert task.cancelled()
    assert task.cancel() is False


def test_cancel_before_start_throws_into_the_first_step(loop: Any, impl: Any) -> None:
    started = []

    async def never() -> None:
        started.append(True)

    async def main() -> None:
        task = impl.Task(never(), loop=loop)
        task.cancel("early")
        await asyncio.wait([task])
        task.exception()

    with pytest.raises(asyncio.CancelledError) as info:
        loop.run_until_complete(impl.Task(main(), loop=loop))
    assert info.value.args == ("early",)
    assert innermost_context(info.value) == (asyncio.CancelledError, ("early",), 0)
    assert started == []


def test_cancelled_error_chains_to_the_interruption(loop: Any, impl: Any) -> None:
    inner_fut = impl.Future(loop=loop)

    async def inner() -> None:
        await inner_fut

    async def outer() -> None:
        child = impl.Task(inner(), loop=loop)
        await asyncio.sleep(0)
        loop.call_soon(child.cancel, "msg")
        try:
            await child
        except asyncio.CancelledError as exc:
            raise ValueError("cancelled") from exc

    with pytest.raises(ValueError) as info:
        loop.run_until_complete(impl.Task(outer(), loop=loop))
    assert innermost_context(info.value) == (asyncio.CancelledError, ("msg",), 1)


def test_cancelled_task_result_shows_where_it_was_interrupted(loop: Any, impl: Any) -> None:
    import traceback

    async def nested() -> None:
        await loop.create_future()  # interrupted here

    async def main() -> None:
        child = impl.Task(nested(), loop=loop)
        await asyncio.sleep(0)
        child.cancel()
        await child  # and seen here

    try:
        loop.run_until_complete(impl.Task(main(), loop=loop))
    except asyncio.CancelledError:
        text = traceback.format_exc()
    else:
        pytest.fail("CancelledError not raised")
    assert "await loop.create_future()  # interrupted here" in text
    assert "await child  # and seen here" in text


def test_task_may_swallow_the_cancellation(loop: Any, impl: Any) -> None:
    first, second = impl.Future(loop=loop), impl.Future(loop=loop)

    async def stubborn() -> int:
        try:
            await first
        except asyncio.CancelledError:
            pass
        return await second

    task = impl.Task(stubborn(), loop=loop)
    run_briefly(loop)
    task.cancel()
    assert first.cancelled()
    run_briefly(loop)
    assert task._fut_waiter is second
    second.set_result(42)
    assert loop.run_until_complete(task) == 42
    assert not task.cancelled()
    assert task.cancelling() == 1


def test_self_cancel_cancels_the_next_future(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)

    async def quitter() -> None:
        task.cancel()
        assert task._must_cancel
        await fut

    task = impl.Task(quitter(), loop=loop)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert fut.cancelled()
    assert task.cancelled()
    assert not task._must_cancel


def test_cancel_just_before_returning_wins(loop: Any, impl: Any) -> None:
    async def almost() -> int:
        task.cancel("late")
        return 12

    task = impl.Task(almost(), loop=loop)
    with pytest.raises(asyncio.CancelledError, match="late"):
        loop.run_until_complete(task)
    assert task.cancelled()


def test_cancel_reaches_a_foreign_future(loop: Any) -> None:
    fut = asyncio.Future(loop=loop)  # the stdlib's, awaited by our task

    async def waiter() -> None:
        await fut

    task = Task(waiter(), loop=loop)
    run_briefly(loop)
    task.cancel("bye")
    assert fut.cancelled()
    with pytest.raises(asyncio.CancelledError, match="bye"):
        loop.run_until_complete(task)


def test_cancelling_counts_and_uncancel_takes_back(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)

    async def waiter() -> None:
        await fut

    task = impl.Task(waiter(), loop=loop)
    assert task.cancelling() == 0
    assert " cancelling " not in repr(task)
    assert task.cancel() and task.cancel()
    assert task.cancelling() == 2
    assert " cancelling " in repr(task)
    assert task.uncancel() == 1
    assert task.uncancel() == 0
    assert task.uncancel() == 0
    if sys.version_info >= (3, 13):
        # 3.13: back at zero, the undelivered request is withdrawn.
        assert not task._must_cancel
        run_briefly(loop)
        assert not task.done()
        fut.set_result(None)
        loop.run_until_complete(task)
        assert not task.cancelled()
    else:
        assert task._must_cancel
        with pytest.raises(asyncio.CancelledError):
            loop.run_until_complete(task)


def test_uncancel_after_catching_lets_the_task_go_on(loop: Any, impl: Any) -> None:
    first, second = impl.Future(loop=loop), impl.Future(loop=loop)

    async def resilient() -> str:
        try:
            await first
        except asyncio.CancelledError:
            current = impl.current_task(loop)
            assert current.uncancel() == 0
        await second
        return "survived"

    task = impl.Task(resilient(), loop=loop)
    run_briefly(loop)
    task.cancel()
    run_briefly(loop)
    assert task.cancelling() == 0
    second.set_result(None)
    assert loop.run_until_complete(task) == "survived"


def test_base_exception_raised_on_cancel_propagates(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)
    base = SystemExit()

    async def quitter() -> None:
        try:
            await fut
        except asyncio.CancelledError:
            raise base from None

    task = impl.Task(quitter(), loop=loop)
    run_briefly(loop)
    task.cancel()
    with pytest.raises(SystemExit):
        loop.run_forever()  # the step's SystemExit leaves the loop
    assert task.done() and not task.cancelled()
    assert task.exception() is base


# -- interplay with stdlib asyncio ---------------------------------------------------


def test_our_task_awaits_a_stdlib_future_and_task(loop: Any) -> None:
    stdlib_fut = asyncio.Future(loop=loop)

    async def child() -> str:
        await asyncio.sleep(0)
        return "child"

    async def main() -> tuple[Any, Any]:
        stdlib_task = asyncio.Task(child(), loop=loop)
        return await stdlib_fut, await stdlib_task

    task = Task(main(), loop=loop)
    run_briefly(loop)
    assert task._fut_waiter is stdlib_fut
    stdlib_fut.set_result("fut")
    assert loop.run_until_complete(task) == ("fut", "child")


def test_our_task_gets_a_stdlib_futures_exception(loop: Any) -> None:
    stdlib_fut = asyncio.Future(loop=loop)

    async def main() -> None:
        await stdlib_fut

    task = Task(main(), loop=loop)
    run_briefly(loop)
    stdlib_fut.set_exception(LookupError("from stdlib"))
    with pytest.raises(LookupError, match="from stdlib"):
        loop.run_until_complete(task)


def test_stdlib_task_awaits_our_task(loop: Any) -> None:
    gate = Future(loop=loop)

    async def ours() -> str:
        return await gate

    async def theirs() -> str:
        return "got " + await Task(ours(), loop=loop)

    stdlib_task = asyncio.Task(theirs(), loop=loop)
    run_briefly(loop)
    gate.set_result("ours")
    assert loop.run_until_complete(stdlib_task) == "got ours"


def test_stdlib_task_cancel_reaches_our_task(loop: Any) -> None:
    gate = Future(loop=loop)

    async def ours() -> None:
        await gate

    inner: list[Any] = []

    async def theirs() -> None:
        task = Task(ours(), loop=loop)
        inner.append(task)
        await task

    stdlib_task = asyncio.Task(theirs(), loop=loop)
    run_briefly(loop)
    run_briefly(loop)
    stdlib_task.cancel("down")
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(stdlib_task)
    assert inner[0].cancelled()
    assert gate.cancelled()


def test_duck_future_is_awaited(loop: Any) -> None:
    class Duck:
        _asyncio_future_blocking = False

        def __init__(self) -> None:
            self._loop = loop
            self.callbacks: list[Any] = []
            self.value: Any = None
            self.is_done = False

        def done(self) -> bool:
            return self.is_done

        def result(self) -> Any:
            return self.value

        def cancel(self, msg: Any = None) -> bool:
            return False

        def add_done_callback(self, fn: Any, *, context: Any = None) -> None:
            self.callbacks.append((fn, context))

        def resolve(self, value: Any) -> None:
            self.value, self.is_done = value, True
            for fn, ctx in self.callbacks:
                loop.call_soon(fn, self, context=ctx)

        def __await__(self) -> Any:
            if not self.is_done:
                self._asyncio_future_blocking = True
                yield self
            return self.result()

    duck = Duck()

    async def main() -> Any:
        return await duck

    task = Task(main(), loop=loop)
    run_briefly(loop)
    assert task._fut_waiter is duck
    assert duck._asyncio_future_blocking is False  # cleared by the task
    duck.resolve("quack")
    assert loop.run_until_complete(task) == "quack"


# -- contexts ----------------------------------------------------------------------


def test_task_runs_in_a_copy_of_the_creating_context(loop: Any, impl: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")

    async def child() -> str:
        seen = var.get()
        var.set("child")
        return seen

    async def main() -> tuple[str, str]:
        var.set("main")
        seen = await impl.Task(child(), loop=loop)
        return seen, var.get()

    assert loop.run_until_complete(impl.Task(main(), loop=loop)) == ("main", "main")
    assert var.get() == "default"


def test_task_runs_in_the_given_context(loop: Any, impl: Any) -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var")
    ctx = contextvars.copy_context()

    async def setter(value: int) -> None:
        await asyncio.sleep(0)
        var.set(value)

    task = impl.Task(setter(1), loop=loop, context=ctx)
    assert task.get_context() is ctx if hasattr(task, "get_context") else True
    loop.run_until_complete(task)
    assert ctx[var] == 1
    loop.run_until_complete(impl.Task(setter(2), loop=loop, context=ctx))
    assert ctx[var] == 2


def test_done_callbacks_of_awaited_futures_run_in_the_tasks_context(loop: Any, impl: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="none")
    fut = impl.Future(loop=loop)

    async def main() -> str:
        var.set("task")
        await fut
        return var.get()

    task = impl.Task(main(), loop=loop)
    run_briefly(loop)
    var.set("outside")
    fut.set_result(None)
    assert loop.run_until_complete(task) == "task"


# -- names, repr, stacks -------------------------------------------------------------


def test_default_names_count_up(loop: Any, impl: Any) -> None:
    async def noop() -> None:
        pass

    first = impl.Task(noop(), loop=loop)
    second = impl.Task(noop(), loop=loop)
    numbers = [int(re.fullmatch(r"Task-(\d+)", t.get_name()).group(1)) for t in (first, second)]
    assert numbers[0] < numbers[1]
    loop.run_until_complete(asyncio.gather(first, second))


def test_names_are_strings(loop: Any, impl: Any) -> None:
    async def noop() -> None:
        pass

    task = impl.Task(noop(), loop=loop, name=42)
    assert task.get_name() == "42"
    task.set_name({6})
    assert task.get_name() == "{6}"
    loop.run_until_complete(task)


def test_repr_follows_the_task_through_its_life(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)

    async def sleeper() -> str:
        await fut
        return "abc"

    coro = sleeper()
    code = sleeper.__code__
    qualname = sleeper.__qualname__
    task = impl.Task(coro, loop=loop, name="T")
    running_at = f"coro=<{qualname}() running at {code.co_filename}:{code.co_firstlineno}>"
    assert repr(task) == f"<Task pending name='T' {running_at}>"
    run_briefly(loop)
    assert re.fullmatch(
        rf"<Task pending name='T' coro=<{re.escape(qualname)}\(\) running at .*:\d+> "
        rf"wait_for={re.escape(repr(fut))} cb=\[.*\]>",
        repr(task),
    ) or re.fullmatch(
        rf"<Task pending name='T' coro=<{re.escape(qualname)}\(\) running at .*:\d+> "
        rf"wait_for={re.escape(repr(fut))}>",
        repr(task),
    )
    fut.set_result(None)
    loop.run_until_complete(task)
    done_at = f"coro=<{qualname}() done, defined at {code.co_filename}:{code.co_firstlineno}>"
    assert repr(task) == f"<Task finished name='T' {done_at} result='abc'>"


def test_repr_of_a_cancelling_and_cancelled_task(loop: Any, impl: Any) -> None:
    async def noop() -> None:
        pass

    task = impl.Task(noop(), loop=loop, name="C")
    task.cancel()
    assert repr(task).startswith("<Task cancelling name='C' coro=<")
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert repr(task).startswith("<Task cancelled name='C' coro=<")


def test_get_stack_and_print_stack(loop: Any, impl: Any) -> None:
    fut = impl.Future(loop=loop)

    async def deep() -> None:
        await fut

    task = impl.Task(deep(), loop=loop)
    run_briefly(loop)
    frames = task.get_stack()
    assert [f.f_code.co_name for f in frames] == ["deep"]
    out = io.StringIO()
    task.print_stack(file=out)
    assert out.getvalue().startswith(f"Stack for {task!r} (most recent call last):")
    assert "await fut" in out.getvalue()
    fut.set_exception(ArithmeticError("bad"))
    with pytest.raises(ArithmeticError):
        loop.run_until_complete(task)
    frames = task.get_stack()
    assert "deep" in [f.f_code.co_name for f in frames]
    assert len(task.get_stack(limit=1)) == 1
    out = io.StringIO()
    task.print_stack(file=out)
    assert out.getvalue().startswith(f"Traceback for {task!r} (most recent call last):")
    assert out.getvalue().endswith("ArithmeticError: bad\n")


def test_print_stack_of_a_finished_task(loop: Any) -> None:
    async def noop() -> None:
        pass

    task = Task(noop(), loop=loop)
    loop.run_until_complete(task)
    out = io.StringIO()
    task.print_stack(file=out)
    assert out.getvalue() == f"No stack for {task!r}\n"


def test_get_coro(loop: Any, impl: Any) -> None:
    async def noop() -> None:
        pass

    coro = noop()
    task = impl.Task(coro, loop=loop)
    assert task.get_coro() is coro
    loop.run_until_complete(task)


def test_generic_alias() -> None:
    assert isinstance(Task[int], types.GenericAlias)
    assert Task[int].__args__ == (int,)


# -- reporting -----------------------------------------------------------------------


def test_destroyed_pending_task_is_reported(loop: Any, impl: Any) -> None:
    loop.set_debug(True)

    async def forgotten() -> None:
        await impl.Future(loop=loop)

    task = impl.Task(forgotten(), loop=loop)
    run_briefly(loop)
    assert impl.all_tasks(loop) == {task}
    source = task._source_traceback
    del task
    gc.collect()
    assert impl.all_tasks(loop) == set()
    report = loop.reports.pop()
    assert report["message"] == "Task was destroyed but it is pending!"
    assert report["source_traceback"] is source
    assert type(report["task"]) is impl.Task
    loop.reports.clear()  # the coroutine's future may report too, in debug mode


def test_unretrieved_task_exception_is_reported(loop: Any, impl: Any) -> None:
    async def boom() -> None:
        raise OSError("unseen")

    task = impl.Task(boom(), loop=loop)
    run_briefly(loop)
    assert task.done()
    del task
    gc.collect()
    report = loop.reports.pop()
    assert report["message"] == "Task exception was never retrieved"
    assert isinstance(report["exception"], OSError)


def test_unreferenced_failed_task_reports_without_a_collection(loop: Any) -> None:
    # The task must not keep itself alive through its exception's traceback.
    async def boom() -> None:
        raise OSError("unseen")

    Task(boom(), loop=loop)
    gc.disable()
    try:
        run_briefly(loop)
        assert [r["message"] for r in loop.reports] == ["Task exception was never retrieved"]
    finally:
        gc.enable()
    loop.reports.clear()


def test_cancelled_task_does_not_report_its_exception(loop: Any, impl: Any) -> None:
    async def boom() -> None:
        raise TypeError

    async def main() -> None:
        task = impl.Task(boom(), loop=loop)
        await asyncio.sleep(0)
        task.cancel()

    loop.run_until_complete(impl.Task(main(), loop=loop))
    gc.collect()
    assert loop.reports == []


def test_source_traceback_points_at_the_creator(loop: Any) -> None:
    loop.set_debug(True)

    async def noop() -> None:
        pass

    task = Task(noop(), loop=loop)
    line = sys._getframe().f_lineno - 1
    assert task._source_traceback[-1][:3] == (
        __file__,
        line,
        "test_source_traceback_points_at_the_creator",
    )
    loop.run_until_complete(task)


def test_log_traceback_can_only_be_cleared(loop: Any, impl: Any) -> None:
    async def noop() -> None:
        pass

    task = impl.Task(noop(), loop=loop)
    with pytest.raises(ValueError, match="can only be set to False"):
        task._log_traceback = True
    loop.run_until_complete(task)


# -- the registry ----------------------------------------------------------------------


def test_current_task_inside_and_outside(loop: Any, impl: Any) -> None:
    assert impl.current_task(loop) is None

    async def which() -> Any:
        assert impl.current_task() is task
        await asyncio.sleep(0)
        return impl.current_task(loop)

    task = impl.Task(which(), loop=loop)
    assert loop.run_until_complete(task) is task
    assert impl.current_task(loop) is None


def test_current_task_without_a_running_loop(impl: Any) -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        impl.current_task()


def test_interleaved_tasks_each_see_themselves(loop: Any, impl: Any) -> None:
    gate = impl.Future(loop=loop)
    seen: list[tuple[str, bool]] = []

    async def first() -> None:
        seen.append(("first", impl.current_task() is t1))
        await gate
        seen.append(("first", impl.current_task() is t1))

    async def second() -> None:
        seen.append(("second", impl.current_task() is t2))
        gate.set_result(None)

    t1 = impl.Task(first(), loop=loop)
    t2 = impl.Task(second(), loop=loop)
    loop.run_until_complete(asyncio.wait([t1, t2]))
    assert seen == [("first", True), ("second", True), ("first", True)]


def test_all_tasks_lists_pending_tasks_of_the_loop(loop: Any, impl: Any) -> None:
    gate = impl.Future(loop=loop)

    async def waiter() -> None:
        await gate

    async def quick() -> None:
        pass

    a = impl.Task(waiter(), loop=loop)
    b = impl.Task(quick(), loop=loop)
    assert impl.all_tasks(loop) == {a, b}
    run_briefly(loop)
    assert impl.all_tasks(loop) == {a}
    other = asyncio.new_event_loop()
    try:
        assert impl.all_tasks(other) == set()
    finally:
        other.close()
    gate.set_result(None)
    loop.run_until_complete(a)
    assert impl.all_tasks(loop) == set()


def test_pending_tasks_come_in_registration_order(loop: Any) -> None:
    gate = Future(loop=loop)

    async def waiter() -> None:
        await gate

    tasks = [Task(waiter(), loop=loop) for _ in range(20)]
    assert taskregistry.pending_tasks(loop) == tasks
    tasks[3].cancel()
    run_briefly(loop)
    assert taskregistry.pending_tasks(loop) == tasks[:3] + tasks[4:]
    gate.set_result(None)
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    assert taskregistry.pending_tasks(loop) == []


def test_enter_and_leave_must_match() -> None:
    loop, one, two = object(), types.SimpleNamespace(), types.SimpleNamespace()
    taskregistry._enter_task(loop, one)
    with pytest.raises(
        RuntimeError, match=r"^Cannot enter into task .* while another task .* is being executed\.$"
    ):
        taskregistry._enter_task(loop, two)
    assert taskregistry.current_task(loop) is one
    with pytest.raises(
        RuntimeError, match=r"^Leaving task .* does not match the current task .*\.$"
    ):
        taskregistry._leave_task(loop, two)
    assert taskregistry.current_task(loop) is one
    taskregistry._leave_task(loop, one)
    assert taskregistry.current_task(loop) is None
    with pytest.raises(RuntimeError, match="does not match the current task None"):
        taskregistry._leave_task(loop, one)


def test_swap_current_task() -> None:
    loop, one, two = object(), types.SimpleNamespace(), types.SimpleNamespace()
    assert taskregistry._swap_current_task(loop, one) is None
    assert taskregistry._swap_current_task(loop, two) is one
    assert taskregistry._swap_current_task(loop, None) is two
    assert taskregistry.current_task(loop) is None


def test_register_unregister_and_collection() -> None:
    class TaskLike:
        def __init__(self, loop: object, done: bool) -> None:
            self._loop, self._done = loop, done

        def done(self) -> bool:
            return self._done

    loop = object()
    pending, finished = TaskLike(loop, False), TaskLike(loop, True)
    taskregistry._register_task(pending)
    taskregistry._register_task(pending)  # twice is once
    taskregistry._register_task(finished)
    assert taskregistry.all_tasks(loop) == {pending}
    taskregistry._unregister_task(pending)
    taskregistry._unregister_task(pending)  # not registered: no-op
    assert taskregistry.all_tasks(loop) == set()
    again = TaskLike(loop, False)
    taskregistry._register_task(again)
    assert any(ref() is again for ref in taskregistry._scheduled_tasks)
    del again
    gc.collect()
    # A collected task leaves the registry at once: no dead entry remains.
    assert all(ref() is not None for ref in taskregistry._scheduled_tasks)
    taskregistry._unregister_task(finished)


# -- eager start ---------------------------------------------------------------------------


def test_eager_task_runs_its_first_step_at_creation(loop: Any) -> None:
    gate = Future(loop=loop)
    trace: list[str] = []

    async def child() -> str:
        trace.append("child starts")
        assert taskregistry.current_task(loop) is task_box[0] if task_box else True
        await gate
        trace.append("child resumes")
        return "eager"

    task_box: list[Any] = []

    async def main() -> str:
        parent = taskregistry.current_task(loop)
        task = Task(child(), loop=loop, eager_start=True)
        task_box.append(task)
        trace.append("created")
        assert taskregistry.current_task(loop) is parent  # restored after the eager step
        assert task in taskregistry.all_tasks(loop)
        gate.set_result(None)
        return await task

    assert loop.run_until_complete(Task(main(), loop=loop)) == "eager"
    assert trace == ["child starts", "created", "child resumes"]


def test_eager_task_that_finishes_at_once_is_never_scheduled(loop: Any) -> None:
    async def quick() -> int:
        return 7

    async def main() -> tuple[bool, Any, Any, set[Any]]:
        task = Task(quick(), loop=loop, eager_start=True)
        return task.done(), task.result(), task.get_coro(), taskregistry.all_tasks(loop)

    done, result, coro, tasks = loop.run_until_complete(Task(main(), loop=loop))
    assert (done, result, coro) == (True, 7, None)
    assert len(tasks) == 1  # main only


def test_eager_task_sees_itself_as_current(loop: Any) -> None:
    seen: list[Any] = []

    async def child() -> None:
        seen.append(taskregistry.current_task(loop))

    async def main() -> Any:
        task = Task(child(), loop=loop, eager_start=True)
        return task

    task = loop.run_until_complete(Task(main(), loop=loop))
    assert seen == [task]


def test_eager_start_without_a_running_loop_schedules(loop: Any) -> None:
    async def quick() -> int:
        return 1

    task = Task(quick(), loop=loop, eager_start=True)
    assert not task.done()
    assert loop.run_until_complete(task) == 1


def test_eager_task_factories(loop: Any) -> None:
    made: list[dict[str, Any]] = []

    def constructor(coro: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return Task(coro, **kwargs)

    async def quick() -> str:
        return "fast"

    async def main() -> tuple[bool, str]:
        task = loop.create_task(quick(), name="q")
        return task.done(), task.get_name()

    loop.set_task_factory(create_eager_task_factory(constructor))
    assert loop.run_until_complete(main()) == (True, "q")
    assert made[-1]["eager_start"] is True
    loop.set_task_factory(eager_task_factory)
    assert loop.run_until_complete(main()) == (True, "q")
