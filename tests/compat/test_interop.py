"""Stdlib asyncio code and sansloop's own objects working together in full mode.

A full-mode program still imports libraries written against stdlib asyncio;
those call asyncio.current_task(), asyncio.timeout(), asyncio.Lock... on our
tasks. These tests pin that they work.
"""

from __future__ import annotations

import asyncio

import pytest

import sansloop.compat as sc


def test_stdlib_current_task_sees_our_task():
    async def main():
        return asyncio.current_task(), sc.current_task()

    stdlib_view, our_view = sc.run(main())
    assert type(stdlib_view) is sc.Task
    assert stdlib_view is our_view


def test_stdlib_timeout_cancels_our_task():
    steps = []

    async def main():
        try:
            async with asyncio.timeout(0.01):
                await sc.sleep(10)
        except TimeoutError:
            steps.append("timed out")
        steps.append(asyncio.current_task().cancelling())

    sc.run(main())
    assert steps == ["timed out", 0]


def test_stdlib_primitives_and_our_tasks_mix():
    async def main():
        lock = asyncio.Lock()
        queue = asyncio.Queue()

        async def worker(i):
            async with lock:
                await queue.put(i)

        await sc.gather(*(worker(i) for i in range(5)))
        return sorted(queue.get_nowait() for _ in range(5))

    assert sc.run(main()) == [0, 1, 2, 3, 4]


def test_stdlib_task_sees_itself_on_a_full_mode_loop():
    async def inner():
        return asyncio.current_task()

    async def main():
        stdlib_task = asyncio.Task(inner())
        return stdlib_task, await stdlib_task

    task, seen = sc.run(main())
    assert seen is task and type(task) is asyncio.Task


def test_switching_the_table_while_a_task_runs_is_refused():
    from sansloop.core import tasks as core_tasks

    async def main():
        with pytest.raises(RuntimeError, match="while a task is running"):
            core_tasks.share_current_task_table({})

    sc.run(main())
