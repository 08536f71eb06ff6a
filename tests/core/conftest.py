"""Shared setup for the core tests.

Core machines find the running loop through ``sansloop.core.binding``; here they
see stdlib asyncio's, as under ``sansloop.compat``. The core queues raise the
stdlib's own QueueEmpty/QueueFull (and QueueShutDown on 3.13+), as they do once
``sansloop.compat`` is imported.

``sync_impl`` runs a behaviour test twice: on stdlib asyncio's primitives (the
reference) and on sansloop.core's. A test that passes on the first and fails on
the second shows a sansloop bug. ``run`` runs the test's main coroutine on each
kind of loop of ``tests/conftest.py`` (stdlib, sansloop loop mode, sansloop full
mode), so the primitives are also checked against each kind of future.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from sansloop.core import barriers, binding, locks, queues

binding.install(asyncio.get_running_loop, asyncio.get_event_loop)
queues.install_exceptions(
    asyncio.QueueEmpty, asyncio.QueueFull, getattr(asyncio, "QueueShutDown", None)
)

_SYNC_NAMES = (
    "Lock",
    "Event",
    "Condition",
    "Semaphore",
    "BoundedSemaphore",
    "Barrier",
    "Queue",
    "PriorityQueue",
    "LifoQueue",
)

#: asyncio 3.13 fixed corner cases of Semaphore and Condition that 3.11/3.12
#: still have (a woken waiter that is cancelled, a notified waiter that is
#: cancelled); sansloop implements the fixed behaviour on every version.
STDLIB_HAS_313_SEMANTICS = sys.version_info >= (3, 13)


def _namespace(kind: str) -> types.SimpleNamespace:
    if kind == "asyncio":
        return types.SimpleNamespace(kind=kind, **{n: getattr(asyncio, n) for n in _SYNC_NAMES})
    ours = {}
    for name in _SYNC_NAMES:
        for module in (locks, barriers, queues):
            if hasattr(module, name):
                ours[name] = getattr(module, name)
    return types.SimpleNamespace(kind=kind, **ours)


@pytest.fixture(params=["asyncio", "sansloop"])
def sync_impl(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """The synchronization primitives of stdlib asyncio or of sansloop.core."""
    return _namespace(request.param)


@pytest.fixture(params=["asyncio", "sansloop"] if STDLIB_HAS_313_SEMANTICS else ["sansloop"])
def sync_impl_313(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """Like ``sync_impl``, but only implementations with asyncio 3.13's fixes."""
    return _namespace(request.param)


@pytest.fixture
def run(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[[Any], Any]:
    """Run a coroutine to completion on a fresh loop of each kind (tests/conftest.py)."""

    def run_on_fresh_loop(coro: Any) -> Any:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)

    return run_on_fresh_loop
