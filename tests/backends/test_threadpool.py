"""The default executor: a stdlib ThreadPoolExecutor with sansloop's defaults."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

import pytest

from sansloop.backends.base import Backend
from sansloop.backends.threadpool import ThreadPoolExecutor, default_max_workers


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def test_default_max_workers_is_asyncios_rule() -> None:
    assert default_max_workers() == min(32, usable_cpus() + 4)
    with ThreadPoolExecutor() as pool:
        assert pool.statistics()["max_workers"] == default_max_workers()


def test_is_a_stdlib_thread_pool_accepted_by_asyncio() -> None:
    pool = ThreadPoolExecutor(max_workers=2)
    assert isinstance(pool, concurrent.futures.ThreadPoolExecutor)
    loop = asyncio.new_event_loop()
    try:
        loop.set_default_executor(pool)  # TypeError for anything else since 3.11

        async def main() -> str:
            return await loop.run_in_executor(None, lambda: threading.current_thread().name)

        name = loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    assert name.startswith("sansloop_")


def test_threads_are_named_and_started_lazily() -> None:
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="work") as pool:
        assert pool.statistics() == {"max_workers": 3, "threads": 0, "queued": 0}
        name = pool.submit(lambda: threading.current_thread().name).result(timeout=10)
        assert name == "work_0"
        assert pool.statistics()["threads"] == 1


def test_statistics_counts_queued_work() -> None:
    release = threading.Event()
    started = threading.Barrier(3)

    def blocker() -> None:
        started.wait(10)
        release.wait(10)

    with ThreadPoolExecutor(max_workers=2) as pool:
        blockers = [pool.submit(blocker) for _ in range(2)]
        started.wait(10)  # both workers are busy now
        waiting = [pool.submit(int, "7") for _ in range(3)]
        stats = pool.statistics()
        assert stats == {"max_workers": 2, "threads": 2, "queued": 3}
        assert "threads=2/2 queued=3" in repr(pool)
        release.set()
        assert [f.result(timeout=10) for f in waiting] == [7, 7, 7]
        for f in blockers:
            f.result(timeout=10)
        assert pool.statistics()["queued"] == 0


def test_bad_max_workers_is_rejected_like_the_stdlib() -> None:
    with pytest.raises(ValueError):
        ThreadPoolExecutor(max_workers=0)


def test_backend_default_executor_is_ours() -> None:
    class Minimal(Backend):
        def register(self, fd: int, events: int) -> None: ...
        def modify(self, fd: int, events: int) -> None: ...
        def unregister(self, fd: int) -> None: ...
        def poll(self, timeout: float | None) -> list[tuple[int, int]]:
            return []

        def wakeup(self) -> None: ...
        def close(self) -> None: ...

    pool = Minimal().default_executor()
    try:
        assert isinstance(pool, ThreadPoolExecutor)
        assert (
            pool.submit(lambda: threading.current_thread().name).result(10).startswith("sansloop_")
        )
    finally:
        pool.shutdown(wait=True)
