"""Behaviour of timeout(), timeout_at() and Timeout on every flavour (conftest)."""

from __future__ import annotations

import re
import sys

PY313 = sys.version_info >= (3, 13)


def test_timeout_expires_into_timeout_error(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        never = loop.create_future()
        task = aio.current_task()
        try:
            async with aio.timeout(0.01) as cm:
                await never
        except TimeoutError as exc:
            cause = type(exc.__cause__).__name__
        return cause, cm.expired(), never.cancelled(), task.cancelling(), repr(cm)

    assert flavour.run(main()) == ("CancelledError", True, True, 0, "<Timeout [expired]>")


def test_timeout_not_reached(flavour):
    aio = flavour.api

    async def main():
        async with aio.timeout(3600) as cm:
            await aio.sleep(0)
            active = repr(cm)
        return (
            bool(re.fullmatch(r"<Timeout \[active\] when=[0-9.]+>", active)),
            cm.expired(),
            repr(cm),
        )

    assert flavour.run(main()) == (True, False, "<Timeout [finished]>")


def test_timeout_none_never_expires_and_can_be_rescheduled(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        try:
            async with aio.timeout(None) as cm:
                first_when = cm.when()
                first_repr = repr(cm)
                await aio.sleep(0)
                cm.reschedule(loop.time() + 0.01)
                await loop.create_future()
        except TimeoutError:
            return first_when, first_repr, cm.expired()

    assert flavour.run(main()) == (None, "<Timeout [active] when=None>", True)


def test_reschedule_away_a_deadline(flavour):
    aio = flavour.api

    async def main():
        async with aio.timeout(0.01) as cm:
            cm.reschedule(None)
            await aio.sleep(0.02)
        return cm.expired(), cm.when()

    assert flavour.run(main()) == (False, None)


def test_timeout_at_in_the_past_fires_on_next_turn(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        reached = []
        try:
            async with aio.timeout_at(loop.time() - 1):
                reached.append("before")
                await aio.sleep(0)
                reached.append("after")
        except TimeoutError:
            return reached

    assert flavour.run(main()) == ["before"]


def test_timeout_state_errors(flavour):
    aio = flavour.api

    async def main():
        cm = aio.timeout(1)
        messages = [repr(cm)]
        try:
            cm.reschedule(2)
        except RuntimeError as exc:
            messages.append(str(exc))
        async with cm:
            try:
                async with cm:
                    pass
            except RuntimeError as exc:
                messages.append(str(exc))
        try:
            cm.reschedule(3)
        except RuntimeError as exc:
            messages.append(str(exc))
        expired = aio.timeout(0)
        try:
            async with expired:
                await aio.sleep(1)
        except TimeoutError:
            pass
        try:
            expired.reschedule(3)
        except RuntimeError as exc:
            messages.append(str(exc))
        return messages

    assert flavour.run(main()) == [
        "<Timeout [created]>",
        "Timeout has not been entered",
        "Timeout has already been entered",
        "Cannot change state of finished Timeout",
        "Cannot change state of expired Timeout",
    ]


def test_timeout_outside_a_task(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        outcome = loop.create_future()
        cm = aio.timeout(1)

        def enter_from_a_callback():
            entering = cm.__aenter__()
            try:
                entering.send(None)
            except RuntimeError as exc:
                outcome.set_result(str(exc))
            finally:
                entering.close()

        loop.call_soon(enter_from_a_callback)
        return await outcome

    assert flavour.run(main()) == "Timeout should be used inside a task"


def test_nested_timeouts_inner_fires(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        async with aio.timeout(3600) as outer:
            try:
                async with aio.timeout(0.01) as inner:
                    await loop.create_future()
            except TimeoutError:
                pass
            await aio.sleep(0)
        return inner.expired(), outer.expired(), aio.current_task().cancelling()

    assert flavour.run(main()) == (True, False, 0)


def test_nested_timeouts_outer_fires(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        try:
            async with aio.timeout(0.01) as outer:
                async with aio.timeout(3600) as inner:
                    await loop.create_future()
        except TimeoutError:
            return outer.expired(), inner.expired(), repr(inner)

    assert flavour.run(main()) == (True, False, "<Timeout [finished]>")


def test_outside_cancellation_wins_over_timeout(flavour):
    aio = flavour.api

    async def main():
        me = aio.current_task()
        try:
            async with aio.timeout(0) as cm:
                me.cancel("outside")
                await aio.sleep(3600)
        except TimeoutError:
            return "timeout"
        except aio.CancelledError as exc:
            return "cancelled", exc.args, cm.expired(), me.cancelling()

    assert flavour.run(main()) == ("cancelled", ("outside",), True, 1)


def test_block_that_swallows_the_cancellation(flavour):
    aio = flavour.api

    async def main():
        async with aio.timeout(0.01) as cm:
            try:
                await aio.sleep(3600)
            except aio.CancelledError:
                pass
        return cm.expired(), aio.current_task().cancelling()

    assert flavour.run(main()) == (True, 0)


def test_other_exception_raised_while_handling_the_timeout(flavour):
    aio = flavour.api

    async def main():
        try:
            async with aio.timeout(0.01):
                try:
                    await aio.sleep(3600)
                except aio.CancelledError:
                    raise ValueError("cleanup failed") from None
        except ValueError as exc:
            chain = []
            node = exc.__context__
            while node is not None:
                chain.append(type(node).__name__)
                node = node.__context__
            return chain

    # 3.13 splices a TimeoutError into the chain; 3.11/3.12 leave it alone.
    expected = ["TimeoutError", "CancelledError"] if PY313 else ["CancelledError"]
    assert flavour.run(main()) == expected


def test_timeout_repr_rounds_when(flavour):
    aio = flavour.api

    async def main():
        async with aio.timeout_at(12345.67891) as cm:
            return repr(cm)

    assert flavour.run(main()) == "<Timeout [active] when=12345.679>"


def test_timeout_constructed_directly(flavour):
    aio = flavour.api

    async def main():
        loop = aio.get_running_loop()
        cm = aio.Timeout(loop.time() + 0.01)
        before = repr(cm)
        try:
            async with cm:
                await loop.create_future()
        except TimeoutError:
            return before, cm.expired()

    assert flavour.run(main()) == ("<Timeout [created]>", True)
