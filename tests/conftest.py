"""Fixtures shared by the whole suite (kept minimal; tiers add their own).

``loop_factory``: each way of making an event loop that a behaviour test
should agree on — stdlib asyncio's own loop (the reference), a sansloop loop
in loop mode (stdlib futures and tasks on our loop) and a sansloop loop in
full mode (sansloop's own futures and tasks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

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
