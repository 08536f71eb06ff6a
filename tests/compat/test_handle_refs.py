"""A finished callback's handle is not kept alive by the frames it ran.

A coroutine that ends in an exception keeps its caller's frame (f_back), so a
handle's run frame must not keep the handle, or the task would outlive its
last reference and "Task exception was never retrieved" would wait for a gc
pass (CPython's gh-96704 tests expect it at once).
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

import sansloop
import sansloop.compat


@pytest.mark.parametrize("factory", [sansloop.new_event_loop, sansloop.compat.new_event_loop])
def test_failed_unreferenced_task_is_freed_without_gc(factory: object) -> None:
    reported: list[str] = []

    async def fails() -> None:
        raise ZeroDivisionError

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
        task_ref = weakref.ref(loop.create_task(fails()))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return task_ref() is None

    gc.disable()
    try:
        loop = factory()  # type: ignore[operator]
        try:
            freed = loop.run_until_complete(main())
        finally:
            loop.close()
    finally:
        gc.enable()
    assert freed
    assert reported == ["Task exception was never retrieved"]
