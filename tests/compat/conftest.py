"""The ``flavour`` fixture: one behaviour test, run on asyncio and on sansloop.

Each flavour gives an asyncio-shaped namespace (``api``) and a ``run(coro)``
that runs a main coroutine to completion:

- ``asyncio``: the reference, stdlib asyncio on its own loop;
- ``compat-on-stdlib-loop``: sansloop's task API (sansloop.compat.tasks,
  timeouts, taskgroups, runners, threads) driving a stdlib loop and stdlib
  futures, which shows the API is generic over asyncio-shaped objects;
- ``compat-full``: ``import sansloop.compat as asyncio``: the whole namespace
  on a full-mode sansloop loop, where every future and task is sansloop's own.

A test passes on all three or it shows a sansloop bug.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from sansloop.compat import runners, taskgroups, tasks, threads, timeouts


def _compat_namespace() -> types.SimpleNamespace:
    names: dict[str, Any] = {}
    for module in (tasks, timeouts, taskgroups, runners, threads):
        for name in module.__all__:
            names[name] = getattr(module, name)
    names["CancelledError"] = asyncio.CancelledError
    names["InvalidStateError"] = asyncio.InvalidStateError
    names["get_running_loop"] = asyncio.get_running_loop
    return types.SimpleNamespace(**names)


@dataclass
class Flavour:
    name: str
    api: Any
    run: Callable[[Coroutine[Any, Any, Any]], Any]
    new_loop: Callable[[], Any]

    def __repr__(self) -> str:
        return self.name

    def eager_task_factory(self) -> Any:
        """The eager task factory for this flavour's loops; skip where there is none."""
        if self.name == "compat-full":
            return self.api.eager_task_factory
        factory = getattr(asyncio, "eager_task_factory", None)  # 3.12+
        if factory is None:
            pytest.skip("stdlib asyncio gained eager tasks in 3.12")
        return factory


def _make(name: str) -> Flavour:
    if name == "asyncio":
        return Flavour(name, asyncio, asyncio.run, asyncio.new_event_loop)
    api = _compat_namespace()
    if name == "compat-on-stdlib-loop":
        return Flavour(
            name,
            api,
            lambda main: runners.run(main, loop_factory=asyncio.new_event_loop),
            asyncio.new_event_loop,
        )
    import sansloop.compat

    return Flavour(name, sansloop.compat, sansloop.compat.run, sansloop.compat.new_event_loop)


FLAVOURS = ["asyncio", "compat-on-stdlib-loop", "compat-full"]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    """One of the three ways to run the same asyncio program."""
    return _make(request.param)
