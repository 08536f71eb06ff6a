"""How core machines find the loop they run on.

Core never discovers a loop by itself: finding "the running loop" is a
per-thread fact that belongs to whoever runs the loop. A core object that binds
lazily to its loop (a Lock on first contended acquire, a Future made with
``loop=None``) asks this module, and whoever embeds core installs the getters:
``sansloop.compat`` installs asyncio's own, so our machines see the same running
loop as stdlib asyncio code does.

``get_running_loop()`` raises RuntimeError("no running event loop") when no
loop runs; ``get_event_loop()`` follows asyncio's rules for ``loop=None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["get_running_loop", "get_event_loop", "install"]


def _no_running_loop() -> Any:
    raise RuntimeError("no running event loop")


_running_loop_getter: Callable[[], Any] = _no_running_loop
_event_loop_getter: Callable[[], Any] = _no_running_loop


def install(
    running_loop_getter: Callable[[], Any],
    event_loop_getter: Callable[[], Any] | None = None,
) -> None:
    """Install the functions that answer "which loop is running/current"."""
    global _running_loop_getter, _event_loop_getter
    _running_loop_getter = running_loop_getter
    _event_loop_getter = event_loop_getter or running_loop_getter


def get_running_loop() -> Any:
    """The loop running in this thread; RuntimeError if there is none."""
    return _running_loop_getter()


def get_event_loop() -> Any:
    """The current loop as ``asyncio.get_event_loop()`` defines it."""
    return _event_loop_getter()
