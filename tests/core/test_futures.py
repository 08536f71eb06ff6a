"""sansloop.core.futures.Future against asyncio.Future, on stdlib loops.

Most tests run twice through the ``Future`` fixture: once on the stdlib's own
class (the reference) and once on ours; both must agree. Tests that pin a
detail only our class promises (an exact message of the pure-Python asyncio
Future, a white-box attribute) use ours alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import re
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sansloop.core import futures as core_futures
from sansloop.core.futures import Future, get_future_loop, isfuture

OURS = Future
IMPLS = {"asyncio": asyncio.Future, "sansloop": OURS}


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


@pytest.fixture(params=list(IMPLS))
def FutureCls(request: pytest.FixtureRequest) -> type[Any]:  # noqa: N802 - a class
    """The Future class under test: stdlib asyncio's or sansloop's."""
    return IMPLS[request.param]


def run_briefly(loop: asyncio.AbstractEventLoop) -> None:
    """Run one loop iteration's worth of ready callbacks (and those they queue)."""
    loop.run_until_complete(asyncio.sleep(0))


# -- states ----------------------------------------------------------------


def test_pending_future_has_no_result_yet(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    assert not fut.done()
    assert not fut.cancelled()
    with pytest.raises(asyncio.InvalidStateError):
        fut.result()
    with pytest.raises(asyncio.InvalidStateError):
        fut.exception()
    assert fut.get_loop() is loop


def test_not_ready_messages_are_asyncios() -> None:
    loop = asyncio.new_event_loop()
    try:
        fut = OURS(loop=loop)
        with pytest.raises(asyncio.InvalidStateError, match=r"^Result is not ready\.$"):
            fut.result()
        with pytest.raises(asyncio.InvalidStateError, match=r"^Exception is not set\.$"):
            fut.exception()
    finally:
        loop.close()


def test_set_result_finishes_once(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    fut.set_result(42)
    assert fut.done() and not fut.cancelled()
    assert fut.result() == 42
    assert fut.exception() is None
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_exception(ValueError())
    assert fut.cancel() is False
    assert fut.result() == 42


def test_set_result_twice_names_the_state(loop: Any) -> None:
    fut = OURS(loop=loop)
    fut.set_result(42)
    with pytest.raises(asyncio.InvalidStateError, match=r"^FINISHED: <Future finished result=42>$"):
        fut.set_result(1)


def test_set_exception_raises_it_from_result(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    error = ValueError("boom")
    fut.set_exception(error)
    assert fut.done() and not fut.cancelled()
    assert fut.exception() is error
    with pytest.raises(ValueError, match="boom") as info:
        fut.result()
    assert info.value is error


def test_exception_class_is_instantiated(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    fut.set_exception(KeyError)
    assert type(fut.exception()) is KeyError
    assert fut.exception().args == ()


def test_stop_iteration_cannot_travel_through_a_future(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    if sys.version_info >= (3, 13):
        fut.set_exception(StopIteration(7))
        wrapped = fut.exception()
        assert type(wrapped) is RuntimeError
        assert "StopIteration interacts badly with generators" in str(wrapped)
        assert type(wrapped.__cause__) is StopIteration
    else:
        with pytest.raises(TypeError, match="StopIteration .* cannot be raised"):
            fut.set_exception(StopIteration)
        assert not fut.done()
        fut.cancel()


def test_set_exception_rejects_non_exceptions(loop: Any) -> None:
    fut = OURS(loop=loop)
    with pytest.raises(TypeError, match="invalid exception object"):
        fut.set_exception(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="invalid exception object"):
        fut.set_exception(int)  # type: ignore[arg-type]
    assert not fut.done()


def test_exception_tracebacks_do_not_pile_up(loop: Any) -> None:
    # Each raise starts again from the traceback stored at set_exception().
    fut = OURS(loop=loop)
    try:
        raise ValueError("once")
    except ValueError as exc:
        fut.set_exception(exc)
    depths = []
    for _ in range(3):
        try:
            fut.result()
        except ValueError as exc:
            depth = 0
            tb = exc.__traceback__
            while tb is not None:
                depth += 1
                tb = tb.tb_next
            depths.append(depth)
    assert depths[0] == depths[1] == depths[2]


# -- cancellation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"), [((), ()), ((None,), ()), (("why",), ("why",)), ((5,), (5,))]
)
def test_cancel_carries_its_message(
    loop: Any, FutureCls: type[Any], args: tuple[Any, ...], expected: tuple[Any, ...]
) -> None:
    fut = FutureCls(loop=loop)
    assert fut.cancel(*args) is True
    assert fut.cancelled() and fut.done()
    with pytest.raises(asyncio.CancelledError) as info:
        fut.result()
    assert info.value.args == expected
    with pytest.raises(asyncio.CancelledError) as info:
        fut.exception()
    assert info.value.args == expected
    assert fut.cancel() is False
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_result(None)


def test_cancel_message_attribute(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    assert fut._cancel_message is None
    fut.cancel("first")
    assert fut._cancel_message == "first"
    fut._cancel_message = "second"
    with pytest.raises(asyncio.CancelledError, match="second"):
        loop.run_until_complete(fut)


def test_make_cancelled_error_hands_out_the_caught_error_once(loop: Any) -> None:
    fut = OURS(loop=loop)
    caught = asyncio.CancelledError("inside")
    fut._cancelled_exc = caught
    fut.cancel("outside")
    assert fut._make_cancelled_error() is caught
    fresh = fut._make_cancelled_error()
    assert fresh is not caught
    assert fresh.args == ("outside",)


# -- done callbacks ------------------------------------------------------------


def test_callbacks_run_through_the_loop_in_order(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    calls: list[tuple[str, Any]] = []
    fut.add_done_callback(lambda f: calls.append(("a", f)))
    fut.add_done_callback(lambda f: calls.append(("b", f)))
    fut.add_done_callback(lambda f: calls.append(("c", f)))
    fut.set_result("x")
    assert calls == []  # never synchronously
    run_briefly(loop)
    assert calls == [("a", fut), ("b", fut), ("c", fut)]


def test_callback_added_after_done_is_scheduled(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    fut.cancel()
    calls: list[Any] = []
    fut.add_done_callback(calls.append)
    assert calls == []
    run_briefly(loop)
    assert calls == [fut]


def test_callbacks_run_in_their_context(loop: Any, FutureCls: type[Any]) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []
    fut = FutureCls(loop=loop)
    var.set("at add time")
    fut.add_done_callback(lambda f: seen.append(var.get()))
    given = contextvars.Context()
    given.run(var.set, "given")
    fut.add_done_callback(lambda f: seen.append(var.get()), context=given)
    var.set("at resolve time")
    fut.set_result(None)
    run_briefly(loop)
    assert seen == ["at add time", "given"]


def test_remove_done_callback_counts_all_registrations(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    calls: list[str] = []

    def one(f: Any) -> None:
        calls.append("one")

    def two(f: Any) -> None:
        calls.append("two")

    fut.add_done_callback(one)
    fut.add_done_callback(two)
    fut.add_done_callback(one)
    fut.add_done_callback(one)
    assert fut.remove_done_callback(one) == 3
    assert fut.remove_done_callback(one) == 0
    fut.add_done_callback(one)
    fut.set_result(None)
    run_briefly(loop)
    assert calls == ["two", "one"]


def test_remove_first_callback_keeps_the_others_in_order(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    calls: list[int] = []
    callbacks = [lambda f, i=i: calls.append(i) for i in range(4)]
    for cb in callbacks:
        fut.add_done_callback(cb)
    assert fut.remove_done_callback(callbacks[0]) == 1
    assert fut.remove_done_callback(callbacks[2]) == 1
    fut.add_done_callback(callbacks[0])
    fut.set_result(None)
    run_briefly(loop)
    assert calls == [1, 3, 0]


def test_callbacks_attribute_lists_pending_pairs(loop: Any) -> None:
    fut = OURS(loop=loop)
    assert fut._callbacks is None
    ctx = contextvars.copy_context()
    fut.add_done_callback(print, context=ctx)
    fut.add_done_callback(repr, context=ctx)
    assert fut._callbacks == [(print, ctx), (repr, ctx)]
    fut.set_result(None)
    assert fut._callbacks is None
    run_briefly(loop)


# -- awaiting ----------------------------------------------------------------


def test_yield_from_a_pending_future_yields_it(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)

    def consumer() -> Any:
        value = yield from fut
        return value

    gen = consumer()
    assert gen.send(None) is fut
    assert fut._asyncio_future_blocking is True
    fut.set_result("done")
    with pytest.raises(StopIteration) as info:
        gen.send(None)
    assert info.value.value == "done"


def test_resuming_before_done_is_an_error(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    it = fut.__await__()
    assert next(it) is fut
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        next(it)
    fut.cancel()


def test_await_a_done_future_does_not_suspend(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    fut.set_result((1, 2))
    with pytest.raises(StopIteration) as info:
        next(iter(fut))
    assert info.value.value == (1, 2)


def test_run_until_complete_on_our_future(loop: Any) -> None:
    fut = OURS(loop=loop)
    loop.call_soon(fut.set_result, "value")
    assert loop.run_until_complete(fut) == "value"


# -- the loop ----------------------------------------------------------------


def test_loop_none_uses_the_running_loop(loop: Any) -> None:
    async def make() -> Any:
        return OURS()

    fut = loop.run_until_complete(make())
    assert fut.get_loop() is loop
    assert fut._loop is loop


def test_loop_none_without_any_loop_is_an_error() -> None:
    asyncio.set_event_loop(None)
    with pytest.raises(RuntimeError, match="no current event loop"):
        OURS()


def test_loop_is_keyword_only(loop: Any) -> None:
    with pytest.raises(TypeError):
        OURS(loop)  # type: ignore[misc]


def test_subclass_that_skips_init_is_not_initialized(loop: Any) -> None:
    class Lazy(OURS):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

    fut = Lazy(loop=loop)
    with pytest.raises(RuntimeError, match=r"^Future object is not initialized\.$"):
        fut.get_loop()
    assert not fut.done()
    assert not fut.cancelled()
    with pytest.raises(asyncio.InvalidStateError):
        fut.result()


def test_get_future_loop_prefers_get_loop(loop: Any) -> None:
    other = asyncio.new_event_loop()
    try:
        duck = types.SimpleNamespace(_loop=other)
        assert get_future_loop(duck) is other
        duck.get_loop = lambda: loop
        assert get_future_loop(duck) is loop
        assert get_future_loop(OURS(loop=other)) is other
    finally:
        other.close()


# -- reporting ---------------------------------------------------------------


def test_unretrieved_exception_is_reported_when_collected(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    error = RuntimeError("lost")
    fut.set_exception(error)
    del fut
    gc.collect()
    assert len(loop.reports) == 1
    report = loop.reports.pop()
    assert report["message"] == f"{FutureCls.__name__} exception was never retrieved"
    assert report["exception"] is error
    assert type(report["future"]) is FutureCls


@pytest.mark.parametrize("look", ["result", "exception", "cancel"])
def test_looked_at_exception_is_not_reported(loop: Any, FutureCls: type[Any], look: str) -> None:
    fut = FutureCls(loop=loop)
    fut.set_exception(RuntimeError("seen"))
    try:
        getattr(fut, look)()
    except RuntimeError:
        pass
    del fut
    gc.collect()
    assert loop.reports == []


def test_log_traceback_can_only_be_cleared(loop: Any, FutureCls: type[Any]) -> None:
    fut = FutureCls(loop=loop)
    fut.set_exception(RuntimeError())
    assert fut._log_traceback is True
    with pytest.raises(ValueError, match="can only be set to False"):
        fut._log_traceback = True
    fut._log_traceback = False
    assert fut._log_traceback is False


def test_debug_mode_records_the_creation_site(loop: Any) -> None:
    loop.set_debug(True)
    fut = OURS(loop=loop)
    line = sys._getframe().f_lineno - 1
    assert isinstance(fut._source_traceback, list)
    frame = fut._source_traceback[-1]
    assert frame[:3] == (__file__, line, "test_debug_mode_records_the_creation_site")
    assert repr(fut) == f"<Future pending created at {__file__}:{line}>"
    fut.set_exception(ValueError("x"))
    source = fut._source_traceback
    del fut
    gc.collect()
    assert loop.reports.pop()["source_traceback"] is source


# -- repr ----------------------------------------------------------------------


def _first(fut: Any) -> None:
    pass


def _middle(fut: Any) -> None:
    pass


def _last(fut: Any) -> None:
    pass


def _where(func: Callable[..., object]) -> str:
    code = func.__code__
    return re.escape(f"{func.__qualname__}() at {code.co_filename}:{code.co_firstlineno}")


def test_repr_of_each_state(loop: Any, FutureCls: type[Any]) -> None:
    name = FutureCls.__name__
    fut = FutureCls(loop=loop)
    assert repr(fut) == f"<{name} pending>"
    fut.cancel()
    assert repr(fut) == f"<{name} cancelled>"
    fut = FutureCls(loop=loop)
    fut.set_result("a" * 100)
    assert repr(fut) == f"<{name} finished result='aaaaaaaaaaaa...aaaaaaaaaaaaa'>"
    fut = FutureCls(loop=loop)
    fut.set_exception(KeyError("k"))
    assert repr(fut) == f"<{name} finished exception=KeyError('k')>"
    fut.exception()


def test_repr_lists_callbacks(loop: Any, FutureCls: type[Any]) -> None:
    name = FutureCls.__name__
    fut = FutureCls(loop=loop)
    fut.add_done_callback(_first)
    assert re.fullmatch(rf"<{name} pending cb=\[{_where(_first)}\]>", repr(fut))
    fut.add_done_callback(_last)
    assert re.fullmatch(rf"<{name} pending cb=\[{_where(_first)}, {_where(_last)}\]>", repr(fut))
    fut.remove_done_callback(_last)
    for _ in range(5):
        fut.add_done_callback(_middle)
    fut.add_done_callback(_last)
    assert re.fullmatch(
        rf"<{name} pending cb=\[{_where(_first)}, <5 more>, {_where(_last)}\]>", repr(fut)
    )
    fut.cancel()
    assert repr(fut) == f"<{name} cancelled>"
    run_briefly(loop)


def test_recursive_repr_is_cut(loop: Any) -> None:
    fut = OURS(loop=loop)
    fut.set_result([fut])
    assert repr(fut) == "<Future finished result=[...]>"


# -- protocol and typing -----------------------------------------------------


def test_isfuture_accepts_every_kind_of_future(loop: Any) -> None:
    assert isfuture(OURS(loop=loop))
    assert isfuture(asyncio.Future(loop=loop))
    assert not isfuture(OURS)
    assert not isfuture(None)
    assert asyncio.isfuture(OURS(loop=loop))


def test_class_subscription_gives_a_generic_alias() -> None:
    alias = OURS[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__args__ == (int,)


def test_futures_are_weakly_referenceable_and_slotted(loop: Any) -> None:
    import weakref

    fut = OURS(loop=loop)
    assert weakref.ref(fut)() is fut
    assert not hasattr(fut, "__dict__")


# -- interplay with stdlib asyncio ---------------------------------------------


def test_stdlib_task_awaits_our_future(loop: Any) -> None:
    fut = OURS(loop=loop)

    async def waiter() -> Any:
        return await fut

    task = loop.create_task(waiter())
    run_briefly(loop)
    assert not task.done()
    fut.set_result("through")
    assert loop.run_until_complete(task) == "through"


def test_stdlib_task_gets_our_futures_exception(loop: Any) -> None:
    fut = OURS(loop=loop)

    async def waiter() -> Any:
        return await fut

    task = loop.create_task(waiter())
    run_briefly(loop)
    fut.set_exception(ZeroDivisionError("inner"))
    with pytest.raises(ZeroDivisionError, match="inner"):
        loop.run_until_complete(task)


def test_cancelling_a_stdlib_task_cancels_our_future(loop: Any) -> None:
    fut = OURS(loop=loop)

    async def waiter() -> Any:
        return await fut

    task = loop.create_task(waiter())
    run_briefly(loop)
    task.cancel("stop")
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert fut.cancelled()
    assert fut._cancel_message == "stop"


def test_stdlib_gather_and_wait_accept_our_futures(loop: Any) -> None:
    a, b = OURS(loop=loop), OURS(loop=loop)
    loop.call_soon(a.set_result, 1)
    loop.call_soon(b.set_result, 2)
    assert loop.run_until_complete(asyncio.gather(a, b)) == [1, 2]
    c = OURS(loop=loop)
    c.set_exception(KeyError("c"))
    done, pending = loop.run_until_complete(asyncio.wait([a, c]))
    assert done == {a, c} and pending == set()
    assert isinstance(c.exception(), KeyError)


def test_wrap_future_keeps_ours(loop: Any) -> None:
    fut = OURS(loop=loop)
    assert asyncio.wrap_future(fut) is fut
    assert asyncio.ensure_future(fut) is fut
    fut.cancel()


def test_state_names_are_asyncios(loop: Any) -> None:
    fut = OURS(loop=loop)
    assert fut._state == "PENDING"
    fut.set_result(None)
    assert fut._state == "FINISHED"
    assert core_futures.future_repr_info(fut) == ["finished", "result=None"]
