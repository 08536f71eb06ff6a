"""Behaviour of run() and Runner on every flavour (conftest), plus what is
particular to sansloop's: the default loop is a full-mode sansloop loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import sys
import threading

import pytest

import sansloop
import sansloop.compat
from sansloop.compat import runners

PY312 = sys.version_info >= (3, 12)


def test_run_returns_and_raises(flavour):
    aio = flavour.api

    async def ok():
        return "result"

    async def bad():
        raise KeyError("k")

    assert aio.run(ok()) == "result"
    with pytest.raises(KeyError):
        aio.run(bad())


def test_run_refuses_non_coroutines(flavour):
    aio = flavour.api
    with pytest.raises(ValueError, match="a coroutine was expected, got 1"):
        aio.run(1)


def test_run_inside_a_running_loop(flavour):
    aio = flavour.api

    async def inner():
        pass

    async def main():
        coro = inner()
        try:
            aio.run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()

    assert flavour.run(main()) == "asyncio.run() cannot be called from a running event loop"


def test_run_debug_flag(flavour):
    aio = flavour.api

    async def main():
        return aio.get_running_loop().get_debug()

    assert aio.run(main(), debug=True) is True
    assert aio.run(main(), debug=False) is False


def test_run_with_loop_factory(flavour):
    if flavour.name == "asyncio" and not PY312:
        pytest.skip("asyncio.run() gained loop_factory in 3.12; sansloop has it on every version")
    aio = flavour.api
    made = []

    def factory():
        loop = flavour.new_loop()
        made.append(loop)
        return loop

    async def main():
        return aio.get_running_loop()

    assert aio.run(main(), loop_factory=factory) is made[0]
    assert made[0].is_closed()


def test_leftover_tasks_are_cancelled_and_their_errors_reported(flavour):
    aio = flavour.api
    log = []

    async def sleeper():
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            log.append("sleeper cancelled")
            raise

    async def refuses():
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            raise OSError("failed while cancelled") from None

    def handler(loop, context):
        log.append((context["message"], type(context["exception"]).__name__))

    async def main():
        aio.get_running_loop().set_exception_handler(handler)
        tasks.append(aio.create_task(sleeper()))
        tasks.append(aio.create_task(refuses()))
        await aio.sleep(0)
        return "main done"

    tasks = []
    assert flavour.run(main()) == "main done"
    assert sorted(map(str, log)) == sorted(
        map(
            str,
            [
                "sleeper cancelled",
                ("unhandled exception during asyncio.run() shutdown", "OSError"),
            ],
        )
    )
    assert tasks[0].cancelled()


def test_async_generators_are_finalized(flavour):
    log = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            log.append("finalized")

    async def main():
        gen = agen()
        holder.append(gen)
        return await gen.__anext__()

    holder = []
    assert flavour.run(main()) == 1
    assert log == ["finalized"]


def test_runner_reuses_its_loop_and_context(flavour):
    aio = flavour.api
    var = contextvars.ContextVar("var", default="unset")

    async def set_it():
        var.set("set")
        return aio.get_running_loop()

    async def get_it():
        return var.get(), aio.get_running_loop()

    with aio.Runner() as runner:
        loop1 = runner.run(set_it())
        value, loop2 = runner.run(get_it())
        assert runner.get_loop() is loop1
    assert (value, loop1 is loop2, loop1.is_closed()) == ("set", True, True)


def test_runner_run_with_a_context(flavour):
    aio = flavour.api
    var = contextvars.ContextVar("var", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")

    async def get_it():
        return var.get()

    with aio.Runner() as runner:
        assert runner.run(get_it(), context=ctx) == "given"
        assert runner.run(get_it()) == "unset"


def test_runner_closed_state(flavour):
    aio = flavour.api
    runner = aio.Runner()
    runner.close()  # never used: a no-op
    runner.get_loop()
    runner.close()
    runner.close()  # twice: a no-op

    async def nothing():
        pass

    coro = nothing()
    with pytest.raises(RuntimeError, match="Runner is closed"):
        runner.run(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Runner is closed"):
        runner.get_loop()


def test_runner_run_from_a_running_loop(flavour):
    aio = flavour.api

    async def inner():
        pass

    async def main(runner):
        coro = inner()
        try:
            runner.run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()

    with aio.Runner() as runner:
        message = flavour.run(main(runner))
    assert message == "Runner.run() cannot be called from a running event loop"


def test_sigint_cancels_the_main_task(flavour):
    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    aio = flavour.api
    seen = []

    async def main():
        try:
            signal.raise_signal(signal.SIGINT)
            await aio.sleep(3600)
        except aio.CancelledError:
            seen.append("cancelled")
            raise

    with pytest.raises(KeyboardInterrupt):
        aio.run(main())
    assert seen == ["cancelled"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_swallowed_by_main_returns_normally(flavour):
    aio = flavour.api

    async def main():
        try:
            signal.raise_signal(signal.SIGINT)
            await aio.sleep(3600)
        except aio.CancelledError:
            return "handled"

    assert aio.run(main()) == "handled"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_sigint_raises_keyboard_interrupt_at_once(flavour):
    aio = flavour.api

    async def main():
        try:
            signal.raise_signal(signal.SIGINT)
            await aio.sleep(3600)
        except aio.CancelledError:
            signal.raise_signal(signal.SIGINT)  # raises KeyboardInterrupt here
            return "not reached"

    with pytest.raises(KeyboardInterrupt):
        aio.run(main())


def test_sigint_handler_left_alone_when_someone_else_owns_it(flavour):
    aio = flavour.api
    calls = []

    def custom(signum, frame):
        calls.append(signum)

    async def main():
        return signal.getsignal(signal.SIGINT) is custom

    previous = signal.signal(signal.SIGINT, custom)
    try:
        assert aio.run(main()) is True
    finally:
        signal.signal(signal.SIGINT, previous)


def _wakeup_fd() -> int:
    previous = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous)
    return previous


@pytest.mark.parametrize("make_loop", [sansloop.new_event_loop, None], ids=["loop", "full"])
def test_sigint_from_outside_while_the_loop_is_blocked_in_poll(make_loop):
    """Ctrl-C sent by another thread wakes a loop blocked in its poll.

    The kernel may hand the signal to any thread; only the wakeup fd of the
    loop's signal channel then wakes the main thread's poll. (Stdlib asyncio
    installs none for Runner's handler: this program can hang there, and does
    on 3.11 after an earlier run with a custom SIGINT handler.)
    """
    wakeup_fd_before = _wakeup_fd()
    blocked = threading.Event()

    def ctrl_c_from_outside():
        blocked.wait(30)
        os.kill(os.getpid(), signal.SIGINT)

    async def main():
        blocked.set()
        await asyncio.sleep(3600)  # nothing but the signal can end this

    sender = threading.Thread(target=ctrl_c_from_outside)
    sender.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            runners.run(main(), loop_factory=make_loop)
    finally:
        sender.join(30)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _wakeup_fd() == wakeup_fd_before


def test_second_sigint_interrupts_a_callback_that_hangs(flavour):
    aio = flavour.api
    progress = []

    async def main():
        task = aio.current_task()
        os.kill(os.getpid(), signal.SIGINT)  # the main task is to be cancelled
        for _ in range(20_000_000):  # "hangs": ends early only by KeyboardInterrupt
            if not progress and task.cancelling():
                progress.append("first Ctrl-C seen")
                os.kill(os.getpid(), signal.SIGINT)  # interrupts whatever runs
        progress.append("finished")

    with pytest.raises(KeyboardInterrupt):
        aio.run(main())
    assert progress == ["first Ctrl-C seen"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_loop_sigint_handler_added_by_main_is_left_to_the_loop(flavour):
    aio = flavour.api
    calls = []

    async def main():
        loop = aio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, calls.append, "loop handler")
        signal.raise_signal(signal.SIGINT)
        await aio.sleep(0)
        await aio.sleep(0)
        return signal.getsignal(signal.SIGINT) is signal.default_int_handler

    assert aio.run(main()) is False  # the loop's handler, not the default, while it ran
    assert calls == ["loop handler"]
    # Closing the loop removed its handler: SIGINT raises KeyboardInterrupt again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -------------------------------------------------------------- sansloop's own


def test_default_loop_is_full_mode_sansloop():
    async def main():
        loop = asyncio.get_running_loop()
        task = sansloop.compat.current_task()
        return type(loop), loop.mode, type(task), asyncio.get_event_loop() is loop

    loop_type, mode, task_type, current = runners.run(main())
    assert (loop_type, mode, task_type, current) == (
        sansloop.compat.SelectorEventLoop,
        "full",
        sansloop.compat.Task,
        True,
    )


def test_default_runner_sets_and_clears_the_current_loop():
    with runners.Runner() as runner:
        loop = runner.get_loop()
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
    assert loop.is_closed()
    with pytest.raises(RuntimeError):
        asyncio.get_event_loop_policy().get_event_loop()


def test_factory_loop_is_closed_by_the_runner():
    made = []

    def factory():
        loop = asyncio.new_event_loop()
        made.append(loop)
        return loop

    with runners.Runner(loop_factory=factory) as runner:
        assert runner.get_loop() is made[0]
        assert not made[0].is_closed()
    assert made[0].is_closed()


def test_an_installed_policy_makes_the_default_loop():
    made = []

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            loop = super().new_event_loop()
            made.append(loop)
            return loop

    async def main():
        return asyncio.get_running_loop()

    asyncio.set_event_loop_policy(Policy())
    try:
        assert runners.run(main()) is made[0]
    finally:
        asyncio.set_event_loop_policy(None)
    assert made[0].is_closed()


def test_sigint_goes_through_the_loops_signal_channel():
    wakeup_fd_before = _wakeup_fd()

    async def main():
        loop = asyncio.get_running_loop()
        channel = loop._signal_channel
        return (
            list(loop._interrupt_handlers),
            _wakeup_fd() not in (-1, wakeup_fd_before),
            channel is not None and loop._interest.reader(channel.fileno()) is not None,
        )

    with runners.Runner() as runner:
        installed = runner.run(main())
        loop = runner.get_loop()
        after_run = dict(loop._interrupt_handlers), _wakeup_fd() == wakeup_fd_before
    assert installed == ([signal.SIGINT], True, True)
    assert after_run == ({}, True)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("mode", ["loop", "full"])
def test_a_simulated_ctrl_c_is_taken_as_a_real_one(mode):
    # Through the loop's signal channel, the simulated backend's SIGINT
    # reaches Runner as a real one would: at its virtual time, deterministically.
    import sansloop.sim

    seen = []

    async def main(backend):
        backend.send_signal(signal.SIGINT, at=backend.time() + 5)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(backend.time())
            raise

    with pytest.raises(KeyboardInterrupt):
        sansloop.sim.run(main, seed=1, mode=mode)
    assert seen == [5.0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
