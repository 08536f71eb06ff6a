"""Integration tier: real third-party frameworks, unchanged, on sansloop.

Every scenario here runs twice, through the ``run_on`` fixture: on stdlib
asyncio's own loop (the reference) and on a sansloop loop in loop mode
(``asyncio.Runner(loop_factory=sansloop.new_event_loop)``, stdlib futures and
tasks on our loop, as a uvloop-style drop-in). The same assertions must hold
on both, or sansloop has a bug.

The frameworks come with the ``integration`` extra
(``pip install -e '.[test,integration]'``, which CI installs). Without it the
tests are skipped, with that reason: each test module
``pytest.importorskip``s the frameworks it drives at collection, and the
report header names what is missing.

pytest-asyncio: the ``pytest_asyncio_loop_factories`` hook below hands its
tests (only ``mark.asyncio`` tests in this directory; none exist elsewhere) a
sansloop loop. It is an optional hook so that pytest accepts this file when
the plugin is not installed; when the plugin is installed but disabled
(``-p no:asyncio``) its tests are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import pytest

import sansloop

_INTEGRATION_EXTRA = ("aiohttp", "websockets", "anyio", "uvicorn", "httpx", "pytest_asyncio")
_MISSING = [name for name in _INTEGRATION_EXTRA if importlib.util.find_spec(name) is None]


def pytest_report_header() -> str | None:
    if _MISSING:
        return (
            "tests/integration skipped: the 'integration' extra is not installed "
            f"(missing {', '.join(_MISSING)}; pip install -e '.[test,integration]')"
        )
    return None


T = TypeVar("T")

#: name -> loop factory for asyncio.Runner; None means asyncio's own loop.
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    "sansloop": sansloop.new_event_loop,
}


class RunOn:
    """Runs a main coroutine to completion on one kind of loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop_factory = LOOPS[name]

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            loop = runner.get_loop()
            if self.loop_factory is not None:
                assert type(loop) is sansloop.EventLoop
            else:
                assert not isinstance(loop, sansloop.EventLoop)
            return runner.run(coro)


@pytest.fixture(params=list(LOOPS))
def run_on(request: pytest.FixtureRequest) -> RunOn:
    """``run_on(main())``: run ``main()`` on asyncio's loop, then on sansloop's."""
    return RunOn(request.param)


@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio (>= 1.3): run this directory's asyncio tests on sansloop."""
    return {"sansloop": sansloop.new_event_loop}


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("asyncio"):
        config.addinivalue_line("markers", "asyncio: a pytest-asyncio test (plugin not loaded)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.pluginmanager.hasplugin("asyncio"):
        return
    skip = pytest.mark.skip(reason="pytest-asyncio is installed but disabled (-p no:asyncio)")
    for item in items:
        if item.get_closest_marker("asyncio") is not None:
            item.add_marker(skip)
