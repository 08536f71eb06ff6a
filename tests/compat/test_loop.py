"""The EventLoop's own behaviour, checked side by side with stdlib asyncio's loop.

Every test takes ``loop_factory`` (tests/conftest.py): stdlib asyncio, sansloop
loop mode and sansloop full mode must agree.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import socket
import threading

import pytest


@pytest.fixture
def loop(loop_factory):
    loop = loop_factory()
    yield loop
    loop.close()


def test_call_soon_runs_in_fifo_order_and_stop_finishes_the_tick(loop):
    ran = []

    def first():
        ran.append(1)
        loop.stop()
        loop.call_soon(ran.append, "next tick")

    loop.call_soon(first)
    loop.call_soon(ran.append, 2)
    loop.run_forever()
    assert ran == [1, 2]
    loop.run_forever_result = None
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == [1, 2, "next tick"]


def test_stop_before_run_forever_runs_one_tick(loop):
    ran = []
    loop.call_soon(ran.append, 1)
    loop.stop()
    loop.run_forever()
    assert ran == [1]


def test_timers_fire_in_deadline_order_not_early(loop):
    fired = []
    start = loop.time()
    for delay in (0.03, 0.01, 0.02):
        loop.call_later(delay, lambda d=delay: fired.append((d, loop.time() - start)))
    loop.call_later(0.04, loop.stop)
    loop.run_forever()
    assert [d for d, _ in fired] == [0.01, 0.02, 0.03]
    for delay, elapsed in fired:
        # Never early by more than the clock's resolution.
        assert elapsed >= delay - 0.002


def test_call_at_uses_loop_time_and_timer_handles_report_when(loop):
    when = loop.time() + 0.01
    timer = loop.call_at(when, loop.stop)
    assert timer.when() == when
    loop.run_forever()
    assert loop.time() >= when - 0.002


def test_cancelled_timer_does_not_run(loop):
    ran = []
    timer = loop.call_later(0.001, ran.append, "no")
    timer.cancel()
    assert timer.cancelled()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert ran == []


def test_callbacks_run_in_the_given_context(loop):
    var = contextvars.ContextVar("var", default="default")
    context = contextvars.copy_context()
    context.run(var.set, "set in context")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=context)
    loop.call_later(0, lambda: seen.append(var.get()), context=context)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert sorted(seen) == ["default", "set in context", "set in context"]


def test_run_until_complete_returns_the_result_and_raises_the_exception(loop):
    async def answer():
        await asyncio.sleep(0)
        return 42

    async def fail():
        raise KeyError("boom")

    assert loop.run_until_complete(answer()) == 42
    with pytest.raises(KeyError, match="boom"):
        loop.run_until_complete(fail())


def test_run_until_complete_reports_a_loop_stopped_early(loop):
    future = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed."):
        loop.run_until_complete(future)


def test_run_until_complete_rejects_a_future_of_another_loop(loop, loop_factory):
    other = loop_factory()
    try:
        with pytest.raises(ValueError, match="different loop"):
            loop.run_until_complete(other.create_future())
    finally:
        other.close()


def test_is_running_and_is_closed(loop):
    states = []
    loop.call_soon(lambda: states.append(loop.is_running()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert states == [True]
    assert not loop.is_running() and not loop.is_closed()
    loop.close()
    assert loop.is_closed()
    loop.close()  # idempotent
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()


def test_close_while_running_is_refused(loop):
    errors = []

    def try_close():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(try_close)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]


def test_running_loop_is_visible_to_asyncio_and_cleared_after(loop):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [loop]
    assert asyncio._get_running_loop() is None


def test_call_soon_threadsafe_from_eight_threads_loses_nothing(loop):
    counts = [0]
    per_thread = 10_000

    def bump():
        counts[0] += 1
        if counts[0] == 8 * per_thread:
            loop.stop()

    def worker():
        for _ in range(per_thread):
            loop.call_soon_threadsafe(bump)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    loop.call_soon(lambda: [t.start() for t in threads])
    loop.run_forever()
    for thread in threads:
        thread.join()
    assert counts[0] == 8 * per_thread


def test_call_soon_threadsafe_wakes_a_blocked_loop(loop):
    woke = []

    def from_thread():
        loop.call_soon_threadsafe(lambda: (woke.append(True), loop.stop()))

    # No timer and no fd: without the wakeup the loop would block forever.
    loop.call_soon(lambda: threading.Timer(0.02, from_thread).start())
    loop.run_forever()
    assert woke == [True]


def test_exception_in_callback_goes_to_the_handler_and_the_loop_lives_on(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))

    def boom():
        raise ZeroDivisionError

    handle = loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    [(seen_loop, context)] = contexts
    assert seen_loop is loop
    assert isinstance(context["exception"], ZeroDivisionError)
    assert context["handle"] is handle
    assert context["message"].startswith("Exception in callback ")
    assert loop.get_exception_handler() is not None
    with pytest.raises(TypeError, match="A callable object or None is expected"):
        loop.set_exception_handler(1)


def test_default_exception_handler_logs_on_the_asyncio_logger(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "something broke", "extra": 1})
    [record] = caplog.records
    assert record.name == "asyncio"
    assert record.getMessage() == "something broke\nextra: 1"


def test_a_failing_custom_handler_falls_back_to_the_default(loop, caplog):
    def bad_handler(lp, context):
        raise ValueError("handler broke")

    loop.set_exception_handler(bad_handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "original"})
    [record] = caplog.records
    assert record.getMessage().startswith("Unhandled error in exception handler")


def test_add_reader_and_writer_on_a_socketpair(loop):
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    received = []
    try:

        def readable():
            received.append(right.recv(100))
            loop.stop()

        def writable():
            left.send(b"ping")
            assert loop.remove_writer(left) is True

        loop.add_reader(right, readable)
        loop.add_writer(left.fileno(), writable)
        loop.run_forever()
        assert received == [b"ping"]
        assert loop.remove_reader(right) is True
        assert loop.remove_reader(right) is False
        assert loop.remove_writer(left) is False
    finally:
        left.close()
        right.close()


def test_add_reader_replaces_the_previous_callback(loop):
    left, right = socket.socketpair()
    try:
        calls = []
        loop.add_reader(right, calls.append, "old")
        loop.add_reader(right, lambda: (calls.append("new"), right.recv(10), loop.stop()))
        left.send(b"x")
        loop.run_forever()
        assert calls == ["new"]
        loop.remove_reader(right)
    finally:
        left.close()
        right.close()


def test_bad_file_objects_are_refused(loop):
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_reader(-1, print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader("not a file", print)


def test_run_in_executor_and_default_executor_rules(loop):
    result = loop.run_until_complete(loop.run_in_executor(None, sum, [1, 2, 3]))
    assert result == 6
    with pytest.raises(TypeError, match="executor must be ThreadPoolExecutor"):
        loop.set_default_executor(concurrent.futures.ProcessPoolExecutor)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(executor)
    names = loop.run_until_complete(
        loop.run_in_executor(None, lambda: threading.current_thread().name)
    )
    assert names.startswith("ThreadPoolExecutor")
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, print)


def test_run_in_executor_propagates_the_exception(loop):
    def fail():
        raise OSError("from a thread")

    with pytest.raises(OSError, match="from a thread"):
        loop.run_until_complete(loop.run_in_executor(None, fail))
    loop.run_until_complete(loop.shutdown_default_executor())


def test_shutdown_asyncgens_closes_open_generators(loop):
    closed = []

    async def numbers():
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(True)

    async def main():
        gen = numbers()
        assert await gen.__anext__() == 0
        return gen

    gen = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]
    del gen


def test_task_factory_is_used_and_validated(loop):
    async def noop():
        pass

    probe = loop.create_task(noop())
    task_class = type(probe)
    loop.run_until_complete(probe)
    made = []

    def factory(lp, coro, **kwargs):
        task = task_class(coro, loop=lp, **kwargs)
        made.append(task)
        return task

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def child():
        return "child"

    async def main():
        return await loop.create_task(child(), name="named")

    assert loop.run_until_complete(main()) == "child"
    assert any(t.get_name() == "named" for t in made)
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(1)
    loop.set_task_factory(None)


def test_debug_flag_and_slow_callback_warning(loop, caplog):
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.slow_callback_duration = 0.0
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert any("Executing" in r.getMessage() and "took" in r.getMessage() for r in caplog.records)


def test_non_thread_safe_call_is_detected_in_debug_mode(loop):
    loop.set_debug(True)
    errors = []

    def from_other_thread():
        try:
            loop.call_soon(print)
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(lambda: threading.Thread(target=from_other_thread).start())
    loop.run_forever()
    assert errors == [
        "Non-thread-safe operation invoked on an event loop other than the current one"
    ]


def test_unclosed_loop_warns(loop_factory):
    loop = loop_factory()
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del loop
        gc.collect()


def test_custom_exception_handler_context_follows_the_python_version(loop):
    # 3.12+: the handler runs in the failing handle's context; before: in the loop's.
    import sys

    var = contextvars.ContextVar("request", default="none")
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    context = contextvars.copy_context()
    context.run(var.set, "request-7")

    def boom():
        raise RuntimeError

    loop.call_soon(boom, context=context)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == (["request-7"] if sys.version_info >= (3, 12) else ["none"])


def test_mock_callables_are_accepted(loop):
    from unittest import mock

    callback = mock.Mock()
    loop.call_soon(callback, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    callback.assert_called_once_with(1)


def test_close_drops_fd_watchers(loop_factory):
    import weakref

    loop = loop_factory()
    left, right = socket.socketpair()
    try:

        class Owner:
            def on_readable(self):
                pass

        owner = Owner()
        loop.add_reader(left, owner.on_readable)
        ref = weakref.ref(owner)
        del owner
        loop.close()
        gc.collect()
        assert ref() is None
    finally:
        left.close()
        right.close()
