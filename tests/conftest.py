"""Fixtures shared by the whole suite (kept minimal; tiers add their own).

``loop_factory``: each way of making an event loop that a behaviour test
should agree on — stdlib asyncio's own loop (the reference), a sansloop loop
in loop mode (stdlib futures and tasks on our loop) and a sansloop loop in
full mode (sansloop's own futures and tasks).

``_no_leaks`` (autouse): after every test, the process has no more open fds
(/proc/self/fd), no new live threads (compared by identity, after a short
join) and no new child processes (/proc/self/task/*/children, after a short
wait) than before it, and collecting garbage raised no ResourceWarning. It is
cheap when nothing leaked (two directory listings and a thread list); only a
surplus of fds pays for a ``gc.collect()``, which is where a leaked socket's
ResourceWarning surfaces. A test that failed is not checked again (its
cleanup may legitimately not have run). ``@pytest.mark.allow_leaks(reason)``
exempts a test that keeps something alive on purpose; say why.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import warnings
from collections.abc import Callable, Generator
from typing import Any

import pytest


def _stdlib_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def _sansloop_loop_mode() -> asyncio.AbstractEventLoop:
    import sansloop

    return sansloop.new_event_loop()


def _sansloop_full_mode() -> asyncio.AbstractEventLoop:
    import sansloop.compat

    return sansloop.compat.new_event_loop()


LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": _stdlib_loop,
    "sansloop-loop": _sansloop_loop_mode,
    "sansloop-full": _sansloop_full_mode,
}


@pytest.fixture(params=list(LOOP_FACTORIES))
def loop_factory(request: pytest.FixtureRequest) -> Callable[[], asyncio.AbstractEventLoop]:
    """A zero-argument callable making a new event loop of one kind."""
    return LOOP_FACTORIES[request.param]


# -- the leak ledger of every test ------------------------------------------------

#: How long a test's threads and children get to finish after it returns.
LEAK_GRACE_SECONDS = 2.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_leaks(reason): the test keeps fds, threads or children alive on purpose",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


def _open_fds() -> dict[str, str]:
    """fd -> what it is, for every open fd (not the listing's own, closed by then)."""
    try:
        names = os.listdir("/proc/self/fd")
    except FileNotFoundError:  # not Linux: fds are not checked
        return {}
    fds = {}
    for name in names:
        try:
            fds[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return fds


def _children() -> set[int]:
    pids: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except FileNotFoundError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(pid) for pid in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    return pids


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    """Fail a test that leaves fds, threads, children or ResourceWarnings behind."""
    fds_before = _open_fds()
    threads_before = set(threading.enumerate())
    children_before = _children()
    yield
    if request.node.stash.get(_CALL_FAILED, False):
        return
    if request.node.get_closest_marker("allow_leaks") is not None:
        return
    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    problems: list[str] = []

    # Threads first: an executor's worker may be what holds an fd.
    new_threads = [t for t in threading.enumerate() if t not in threads_before]
    for thread in new_threads:
        if isinstance(thread, threading._DummyThread):  # type: ignore[attr-defined]
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            problems.append(f"thread still running: {thread!r}")

    new_children = _children() - children_before
    while new_children and time.monotonic() < deadline:
        time.sleep(0.01)  # a child being reaped by its watcher: bounded wait
        new_children = _children() - children_before
    if new_children:
        problems.append(f"child processes left: {sorted(new_children)}")

    fds_after = _open_fds()
    if len(fds_after) > len(fds_before):
        # A leaked object may only be waiting for the cycle collector: collect,
        # and what it closes must not have warned either.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        for warning in caught:
            if issubclass(warning.category, ResourceWarning):
                problems.append(f"ResourceWarning: {warning.message}")
        fds_after = _open_fds()
        if len(fds_after) > len(fds_before):
            surplus = sorted(
                (int(fd), what) for fd, what in fds_after.items() if fds_before.get(fd) != what
            )
            described = [f"{fd} -> {what}" for fd, what in surplus]
            problems.append(f"{len(fds_after) - len(fds_before)} more open fds: {described}")
    if problems:
        pytest.fail("the test leaked:\n  " + "\n  ".join(problems), pytrace=False)
