"""sansloop.compat: the asyncio namespace, on sansloop's own objects (full mode).

``import sansloop.compat as asyncio`` gives a module with asyncio's names whose
futures, tasks, locks and queues are sansloop's core machines and whose loops
are sansloop ``EventLoop``s in full mode.
"""

from __future__ import annotations

import asyncio as _asyncio

from ..core import binding as _binding
from .loop import EventLoop
from .policy import EventLoopPolicy

# Our core machines find the running loop the same way stdlib code does.
_binding.install(_asyncio.get_running_loop, _asyncio.get_event_loop)


def new_event_loop() -> EventLoop:
    """A new sansloop loop in full mode."""
    return EventLoop(mode="full")
