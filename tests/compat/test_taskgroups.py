"""Behaviour of TaskGroup on every flavour (conftest)."""

from __future__ import annotations

import contextvars
import sys

PY313 = sys.version_info >= (3, 13)


def test_children_run_to_completion(flavour):
    aio = flavour.api

    async def value(v, delay):
        await aio.sleep(delay)
        return v

    async def main():
        async with aio.TaskGroup() as tg:
            a = tg.create_task(value("a", 0.01))
            b = tg.create_task(value("b", 0))
        return a.result(), b.result()

    assert flavour.run(main()) == ("a", "b")


def test_a_failing_child_cancels_siblings_and_body(flavour):
    aio = flavour.api
    log = []

    async def fail():
        await aio.sleep(0)
        raise ZeroDivisionError("zero")

    async def sibling():
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            log.append("sibling cancelled")
            raise

    async def main():
        me = aio.current_task()
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(sibling())
                tg.create_task(fail())
                try:
                    await aio.sleep(3600)
                except aio.CancelledError:
                    log.append("body cancelled")
                    raise
        except BaseExceptionGroup as eg:
            return (
                type(eg).__name__,
                eg.message,
                [(type(e).__name__, e.args) for e in eg.exceptions],
                me.cancelling(),
                log,
            )

    assert flavour.run(main()) == (
        "ExceptionGroup",
        "unhandled errors in a TaskGroup",
        [("ZeroDivisionError", ("zero",))],
        0,
        ["sibling cancelled", "body cancelled"],
    )


def test_several_failures_are_collected(flavour):
    aio = flavour.api

    async def fail(exc):
        raise exc

    async def main():
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(KeyError("k")))
                tg.create_task(fail(ValueError("v")))
        except ExceptionGroup as eg:
            return sorted(type(e).__name__ for e in eg.exceptions)

    assert flavour.run(main()) == ["KeyError", "ValueError"]


def test_body_error_joins_the_group(flavour):
    aio = flavour.api

    async def main():
        child = None
        try:
            async with aio.TaskGroup() as tg:
                child = tg.create_task(aio.sleep(3600))
                await aio.sleep(0)
                raise RuntimeError("body")
        except ExceptionGroup as eg:
            return [str(e) for e in eg.exceptions], child.cancelled()

    assert flavour.run(main()) == (["body"], True)


def test_cancellation_from_outside_propagates(flavour):
    aio = flavour.api

    async def main():
        children = []

        async def parent():
            async with aio.TaskGroup() as tg:
                children.append(tg.create_task(aio.sleep(3600)))
                await aio.sleep(3600)

        task = aio.create_task(parent())
        await aio.sleep(0)
        await aio.sleep(0)
        task.cancel()
        try:
            await task
        except aio.CancelledError:
            pass
        return task.cancelled(), children[0].cancelled()

    assert flavour.run(main()) == (True, True)


def test_cancellation_while_waiting_for_children_at_exit(flavour):
    aio = flavour.api

    async def main():
        children = []

        async def parent():
            async with aio.TaskGroup() as tg:
                children.append(tg.create_task(aio.sleep(3600)))

        task = aio.create_task(parent())
        await aio.sleep(0)
        await aio.sleep(0)
        task.cancel()
        try:
            await task
        except aio.CancelledError:
            pass
        return task.cancelled(), children[0].cancelled()

    assert flavour.run(main()) == (True, True)


def test_errors_win_over_outside_cancellation_and_cancel_count(flavour):
    """3.13 keeps the outside cancel request pending after the group raises."""
    aio = flavour.api

    async def slow_fail():
        try:
            await aio.sleep(3600)
        finally:
            raise KeyError("k")

    async def main():
        me = aio.current_task()
        loop = aio.get_running_loop()
        out = []
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(slow_fail())
                loop.call_soon(me.cancel)
        except BaseExceptionGroup as eg:
            out.append(("group", [type(e).__name__ for e in eg.exceptions], me.cancelling()))
        try:
            await aio.sleep(0)
            out.append("no pending cancel")
        except aio.CancelledError:
            out.append("pending cancel")
        while me.cancelling():
            me.uncancel()
        return out

    expected_after = "pending cancel" if PY313 else "no pending cancel"
    assert flavour.run(main()) == [("group", ["KeyError"], 1), expected_after]


def test_create_task_refusals(flavour):
    aio = flavour.api

    async def nothing():
        pass

    async def fail():
        raise OSError("x")

    def refusal(tg):
        coro = nothing()
        try:
            tg.create_task(coro)
        except RuntimeError as exc:
            return str(exc).rsplit(">", 1)[1].strip()
        finally:
            coro.close()  # stdlib 3.11/3.12 leave the refused coroutine open

    async def main():
        messages = []
        tg = aio.TaskGroup()
        messages.append(refusal(tg))
        async with tg:
            pass
        messages.append(refusal(tg))
        try:
            async with aio.TaskGroup() as tg2:
                tg2.create_task(fail())
                try:
                    await aio.sleep(3600)
                except aio.CancelledError:
                    messages.append(refusal(tg2))
                    raise
        except ExceptionGroup:
            pass
        return messages

    assert flavour.run(main()) == ["has not been entered", "is finished", "is shutting down"]


def test_enter_twice_and_repr(flavour):
    aio = flavour.api

    async def main():
        tg = aio.TaskGroup()
        reprs = [repr(tg)]
        async with tg:
            tg.create_task(aio.sleep(0))
            reprs.append(repr(tg))
            try:
                async with tg:
                    pass
            except RuntimeError as exc:
                reprs.append(str(exc))
        return reprs

    assert flavour.run(main()) == [
        "<TaskGroup>",
        "<TaskGroup tasks=1 entered>",
        "TaskGroup <TaskGroup tasks=1 entered> has already been entered",
    ]


def test_create_task_name_and_context(flavour):
    aio = flavour.api
    var = contextvars.ContextVar("var", default="unset")

    async def read():
        return var.get()

    async def main():
        ctx = contextvars.copy_context()
        ctx.run(var.set, "ctx")
        async with aio.TaskGroup() as tg:
            named = tg.create_task(read(), name="named")
            in_ctx = tg.create_task(read(), context=ctx)
        return named.get_name(), named.result(), in_ctx.result()

    assert flavour.run(main()) == ("named", "unset", "ctx")


def test_taskgroup_inside_a_timeout(flavour):
    aio = flavour.api

    async def main():
        children = []
        try:
            async with aio.timeout(0.01):
                async with aio.TaskGroup() as tg:
                    children.append(tg.create_task(aio.sleep(3600)))
                    children.append(tg.create_task(aio.sleep(3600)))
        except TimeoutError:
            return [c.cancelled() for c in children], aio.current_task().cancelling()

    assert flavour.run(main()) == ([True, True], 0)


def test_nested_groups_failure_propagates_as_nested_groups(flavour):
    aio = flavour.api

    async def fail():
        raise LookupError("deep")

    async def inner_group():
        async with aio.TaskGroup() as tg:
            tg.create_task(fail())

    async def main():
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(inner_group())
        except ExceptionGroup as eg:
            (inner,) = eg.exceptions
            return type(inner).__name__, [str(e) for e in inner.exceptions]

    assert flavour.run(main()) == ("ExceptionGroup", ["deep"])


def test_eager_children(flavour):
    aio = flavour.api
    factory = flavour.eager_task_factory()

    async def at_once(v):
        return v

    async def fails_at_once():
        raise KeyError("eager")

    async def main():
        aio.get_running_loop().set_task_factory(factory)
        async with aio.TaskGroup() as tg:
            first = tg.create_task(at_once(1))
            already = first.done()
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(fails_at_once())
                await aio.sleep(3600)
        except ExceptionGroup as eg:
            failure = [type(e).__name__ for e in eg.exceptions]
        return already, first.result(), failure, aio.current_task().cancelling()

    assert flavour.run(main()) == (True, 1, ["KeyError"], 0)
