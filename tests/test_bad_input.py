"""Bad input gets asyncio's exception with asyncio's message: never a hang, a
silent drop or a crash of the loop.

Every case runs on three loops:

- ``asyncio-debug``: stdlib asyncio in debug mode, the reference (stdlib checks
  callbacks only in debug mode);
- ``sansloop-loop``: ``sansloop.new_event_loop()`` (loop mode), debug off;
- ``sansloop-full``: ``sansloop.compat.new_event_loop()`` (full mode, sansloop's
  own futures and tasks), debug off.

sansloop checks callbacks in every mode, and refuses NaN delays where stdlib 3.11
schedules them: both are deliberate (docs/compat.md); the tests named
``test_sansloop_*`` pin them on sansloop's loops alone.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat

REFERENCE = "asyncio-debug"
SANSLOOP_KINDS = ["sansloop-loop", "sansloop-full"]
ALL_KINDS = [REFERENCE, *SANSLOOP_KINDS]


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == REFERENCE:
        loop = asyncio.new_event_loop()
        loop.set_debug(True)
        return loop
    if kind == "sansloop-loop":
        return sansloop.new_event_loop()
    return sansloop.compat.new_event_loop()


@pytest.fixture(params=ALL_KINDS)
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = _new_loop(request.param)
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture(params=SANSLOOP_KINDS)
def sloop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = _new_loop(request.param)
    assert not loop.get_debug()
    try:
        yield loop
    finally:
        loop.close()


def _error(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    """The exception type and message *call* raises (fails if it returns)."""
    with pytest.raises(Exception) as caught:
        call()
    return type(caught.value), str(caught.value)


async def _coroutine_function() -> None:
    pass


def _plain() -> None:
    pass


# -- callbacks that are not callbacks ------------------------------------------------


def _schedulers(loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[Any], object]]:
    return {
        "call_soon": loop.call_soon,
        "call_later": lambda cb: loop.call_later(1, cb),
        "call_at": lambda cb: loop.call_at(loop.time() + 1, cb),
        "call_soon_threadsafe": loop.call_soon_threadsafe,
    }


def _reported_name(loop: asyncio.AbstractEventLoop, method: str) -> str:
    """The method an error names: stdlib's call_later delegates to call_at and
    names that; sansloop names the method called (docs/compat.md)."""
    if method == "call_later" and not isinstance(loop, sansloop.EventLoop):
        return "call_at"
    return method


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
@pytest.mark.parametrize("bad", [1, None, "print"], ids=["int", "None", "str"])
def test_non_callable_is_refused(loop: asyncio.AbstractEventLoop, method: str, bad: Any) -> None:
    name = _reported_name(loop, method)
    assert _error(lambda: _schedulers(loop)[method](bad)) == (
        TypeError,
        f"a callable object was expected by {name}(), got {bad!r}",
    )
    assert loop.run_until_complete(asyncio.sleep(0, "still works")) == "still works"


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
def test_coroutine_function_is_refused(loop: asyncio.AbstractEventLoop, method: str) -> None:
    name = _reported_name(loop, method)
    assert _error(lambda: _schedulers(loop)[method](_coroutine_function)) == (
        TypeError,
        f"coroutines cannot be used with {name}()",
    )


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
def test_coroutine_object_is_refused(loop: asyncio.AbstractEventLoop, method: str) -> None:
    name = _reported_name(loop, method)
    coro = _coroutine_function()
    try:
        assert _error(lambda: _schedulers(loop)[method](coro)) == (
            TypeError,
            f"coroutines cannot be used with {name}()",
        )
    finally:
        coro.close()


def test_coroutine_function_refused_by_run_in_executor(loop: asyncio.AbstractEventLoop) -> None:
    assert _error(lambda: loop.run_in_executor(None, _coroutine_function)) == (
        TypeError,
        "coroutines cannot be used with run_in_executor()",
    )


def test_sansloop_checks_callbacks_without_debug_mode(sloop: asyncio.AbstractEventLoop) -> None:
    """Deliberate difference: stdlib asyncio checks only in debug mode."""
    assert _error(lambda: sloop.call_soon(1)) == (
        TypeError,
        "a callable object was expected by call_soon(), got 1",
    )
    assert _error(lambda: sloop.call_soon(_coroutine_function)) == (
        TypeError,
        "coroutines cannot be used with call_soon()",
    )


def test_create_task_needs_a_coroutine(loop: asyncio.AbstractEventLoop) -> None:
    assert _error(lambda: loop.create_task(1)) == (TypeError, "a coroutine was expected, got 1")


def test_add_reader_needs_a_file(loop: asyncio.AbstractEventLoop) -> None:
    assert _error(lambda: loop.add_reader("x", _plain)) == (
        ValueError,
        "Invalid file object: 'x'",
    )


# -- delays ----------------------------------------------------------------------------


def test_call_later_none_delay(loop: asyncio.AbstractEventLoop) -> None:
    assert _error(lambda: loop.call_later(None, _plain)) == (TypeError, "delay must not be None")


def test_call_at_none_when(loop: asyncio.AbstractEventLoop) -> None:
    assert _error(lambda: loop.call_at(None, _plain)) == (TypeError, "when cannot be None")


def test_sansloop_refuses_nan_delays(sloop: asyncio.AbstractEventLoop) -> None:
    """Deliberate difference: stdlib 3.11/3.12 schedule a timer at NaN."""
    assert _error(lambda: sloop.call_later(math.nan, _plain)) == (
        ValueError,
        "Invalid delay: NaN (not a number)",
    )
    assert _error(lambda: sloop.call_at(math.nan, _plain)) == (
        ValueError,
        "Invalid time: NaN (not a number)",
    )
    assert sloop.statistics()["timers"] == 0


def test_sansloop_sleep_nan_raises(sloop: asyncio.AbstractEventLoop) -> None:
    """asyncio.sleep(nan) raises ValueError, as it does from Python 3.13 on."""

    async def main() -> None:
        await asyncio.sleep(math.nan)

    assert _error(lambda: sloop.run_until_complete(main())) == (
        ValueError,
        "Invalid delay: NaN (not a number)",
    )


# -- running and closing -------------------------------------------------------------


def test_run_until_complete_on_a_running_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def nested() -> None:
        pass

    async def main() -> tuple[type[BaseException], str]:
        coro = nested()
        try:
            return _error(lambda: loop.run_until_complete(coro))
        finally:
            coro.close()

    assert loop.run_until_complete(main()) == (RuntimeError, "This event loop is already running")


def test_run_forever_on_a_running_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[type[BaseException], str]:
        return _error(loop.run_forever)

    assert loop.run_until_complete(main()) == (RuntimeError, "This event loop is already running")


def test_close_a_running_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[type[BaseException], str]:
        return _error(loop.close)

    assert loop.run_until_complete(main()) == (RuntimeError, "Cannot close a running event loop")
    assert not loop.is_closed()


def test_run_until_complete_on_a_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    coro = _coroutine_function()
    try:
        assert _error(lambda: loop.run_until_complete(coro)) == (
            RuntimeError,
            "Event loop is closed",
        )
    finally:
        coro.close()
    assert _error(lambda: loop.call_soon(_plain)) == (RuntimeError, "Event loop is closed")
    assert _error(lambda: loop.call_later(1, _plain)) == (RuntimeError, "Event loop is closed")
    assert _error(loop.run_forever) == (RuntimeError, "Event loop is closed")


# -- futures -----------------------------------------------------------------------------


def test_future_class_matches_the_mode(loop: asyncio.AbstractEventLoop) -> None:
    future = loop.create_future()
    expected = "sansloop.core" if getattr(loop, "mode", "loop") == "full" else "_asyncio"
    assert type(future).__module__.startswith(expected)
    future.cancel()


#: Stdlib asyncio has two Futures with different messages: the C one (what
#: programs get) and the pure-Python one (asyncio.futures._PyFuture). Either is
#: asyncio's message.
INVALID_STATE_DONE = {"invalid state", "FINISHED: <Future finished result=1>"}
RESULT_NOT_SET = {"Result is not set.", "Result is not ready."}
EXCEPTION_NOT_SET = {"Exception is not set."}


@pytest.mark.parametrize("future_class", ["C", "Python"])
def test_both_stdlib_futures_give_these_messages(future_class: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        cls = asyncio.futures._CFuture if future_class == "C" else asyncio.futures._PyFuture
        done = cls(loop=loop)
        done.set_result(1)
        assert _error(lambda: done.set_result(2))[1] in INVALID_STATE_DONE
        pending = cls(loop=loop)
        assert _error(pending.result)[1] in RESULT_NOT_SET
        assert _error(pending.exception)[1] in EXCEPTION_NOT_SET
        pending.cancel()
    finally:
        loop.close()


def test_set_result_on_a_done_future(loop: asyncio.AbstractEventLoop) -> None:
    future = loop.create_future()
    future.set_result(1)
    error_type, message = _error(lambda: future.set_result(2))
    assert error_type is asyncio.InvalidStateError and message in INVALID_STATE_DONE
    error_type, message = _error(lambda: future.set_exception(ValueError()))
    assert error_type is asyncio.InvalidStateError and message in INVALID_STATE_DONE
    assert future.result() == 1


def test_result_of_a_pending_future(loop: asyncio.AbstractEventLoop) -> None:
    future = loop.create_future()
    error_type, message = _error(future.result)
    assert error_type is asyncio.InvalidStateError and message in RESULT_NOT_SET
    error_type, message = _error(future.exception)
    assert error_type is asyncio.InvalidStateError and message in EXCEPTION_NOT_SET
    future.cancel()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_awaiting_a_future_of_another_loop(kind: str) -> None:
    loop, other = _new_loop(kind), _new_loop(kind)
    try:
        foreign = other.create_future()

        async def main() -> None:
            await foreign

        error_type, message = _error(lambda: loop.run_until_complete(main()))
        assert error_type is RuntimeError
        assert re.fullmatch(
            r"Task <Task .*main\(\).*> got Future <Future pending.*> attached to a different loop",
            message,
        ), message
        foreign.cancel()
    finally:
        loop.close()
        other.close()


# -- an error in a callback is reported, and the loop goes on ---------------------------------


def test_a_failing_callback_goes_to_the_exception_handler(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[dict[str, Any]] = []
    order: list[str] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))

    def fails() -> None:
        order.append("fails")
        raise ZeroDivisionError("boom")

    loop.call_soon(fails)
    loop.call_soon(order.append, "after")
    loop.run_until_complete(asyncio.sleep(0))
    assert order == ["fails", "after"]
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ZeroDivisionError)
    assert seen[0]["message"].startswith("Exception in callback ")


# -- misuse of the module-level API: the same error as stdlib asyncio ---------------------
#
# Each case misuses one asyncio API from inside a running task and reports the
# exception it got as (type name, message). It runs through the module object
# ``aio`` on stdlib asyncio (the reference), on stdlib asyncio over a sansloop
# loop (loop mode) and on sansloop.compat (full mode); the reports must agree.


async def _noop() -> None:
    pass


async def _report(attempt: Callable[[], Any]) -> tuple[str, str]:
    try:
        result = attempt()
        if asyncio.iscoroutine(result) or asyncio.isfuture(result):
            await result
    except Exception as error:
        return type(error).__name__, str(error)
    return ("no error", "")


async def wait_on_nothing(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.wait([]))


async def wait_on_a_coroutine(aio: Any) -> tuple[str, str]:
    coro = _noop()
    try:
        return await _report(lambda: aio.wait([coro]))
    finally:
        coro.close()


async def wait_bogus_return_when(aio: Any) -> tuple[str, str]:
    task = aio.ensure_future(_noop())
    try:
        return await _report(lambda: aio.wait([task], return_when="bogus"))
    finally:
        await task


async def release_an_unlocked_lock(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Lock().release())


async def negative_semaphore(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Semaphore(-1))


async def bounded_semaphore_overrelease(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.BoundedSemaphore(1).release())


async def condition_notify_unlocked(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Condition().notify())


async def condition_wait_unlocked(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Condition().wait())


async def barrier_of_no_parties(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Barrier(0))


async def queue_task_done_too_often(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Queue().task_done())


async def queue_get_nowait_when_empty(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.Queue().get_nowait())


async def timeout_reschedule_before_entry(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.timeout(1).reschedule(1))


async def wait_for_negative_timeout(aio: Any) -> tuple[str, str]:
    event = aio.Event()
    return await _report(lambda: aio.wait_for(event.wait(), -1))


async def ensure_future_of_a_number(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.ensure_future(1))


async def gather_a_number(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.gather(1))


async def shield_a_number(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.shield(1))


async def create_task_of_a_number(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.create_task(1))


async def to_thread_of_a_number(aio: Any) -> tuple[str, str]:
    return await _report(lambda: aio.to_thread(1))


async def taskgroup_used_after_exit(aio: Any) -> tuple[str, str]:
    async with aio.TaskGroup() as group:
        pass
    coro = _noop()
    try:
        return await _report(lambda: group.create_task(coro))
    finally:
        coro.close()


async def taskgroup_entered_twice(aio: Any) -> tuple[str, str]:
    group = aio.TaskGroup()
    async with group:

        async def again() -> None:
            async with group:
                pass

        return await _report(again)


MISUSES = [
    wait_on_nothing,
    wait_on_a_coroutine,
    wait_bogus_return_when,
    release_an_unlocked_lock,
    negative_semaphore,
    bounded_semaphore_overrelease,
    condition_notify_unlocked,
    condition_wait_unlocked,
    barrier_of_no_parties,
    queue_task_done_too_often,
    queue_get_nowait_when_empty,
    timeout_reschedule_before_entry,
    wait_for_negative_timeout,
    ensure_future_of_a_number,
    gather_a_number,
    shield_a_number,
    create_task_of_a_number,
    to_thread_of_a_number,
    taskgroup_used_after_exit,
    taskgroup_entered_twice,
]


def _run_misuse(mode: str, misuse: Callable[[Any], Any]) -> Any:
    if mode == "asyncio":
        return asyncio.run(misuse(asyncio))
    if mode == "sansloop-loop":
        with asyncio.Runner(loop_factory=sansloop.new_event_loop) as runner:
            return runner.run(misuse(asyncio))
    return sansloop.compat.run(misuse(sansloop.compat))


@pytest.mark.parametrize("mode", SANSLOOP_KINDS)
@pytest.mark.parametrize("misuse", MISUSES, ids=lambda m: m.__name__)
def test_misuse_gets_asyncios_error(misuse: Callable[[Any], Any], mode: str) -> None:
    expected = _run_misuse("asyncio", misuse)
    assert expected[0] != "no error", f"stdlib asyncio accepted {misuse.__name__}"
    assert _run_misuse(mode, misuse) == expected


@pytest.mark.parametrize("run", [sansloop.run, sansloop.compat.run, asyncio.run])
def test_run_needs_a_coroutine(run: Callable[[Any], Any]) -> None:
    assert _error(lambda: run(1)) == (ValueError, "a coroutine was expected, got 1")
