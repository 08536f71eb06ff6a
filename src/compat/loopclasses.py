"""asyncio's concrete loop classes, under their names, as full-mode sansloop loops.

Contract: ``SelectorEventLoop(selector=None)`` (and ``EventLoop``, which is the
same class, as ``asyncio.EventLoop`` is ``SelectorEventLoop`` on Unix) takes
asyncio's constructor arguments and makes a sansloop ``EventLoop`` in full
mode: with no selector, on the platform's default backend (epoll on Linux);
with a selector (a ``selectors.BaseSelector`` or an object shaped like one),
on the selectors backend driving that very selector. ``new_event_loop()``,
``DefaultEventLoopPolicy`` and ``Runner`` without a factory make instances of
this class, so ``isinstance(loop, sansloop.compat.SelectorEventLoop)`` holds
for the loops they give, as it does for asyncio's.

To choose a backend or loop mode, use ``sansloop.EventLoop(backend, mode=...)``
(``sansloop.compat.loop.EventLoop``), the base class of this one.
"""

from __future__ import annotations

import selectors

from .loop import EventLoop as _SansloopLoop

__all__ = ["SelectorEventLoop"]


class SelectorEventLoop(_SansloopLoop):
    """A full-mode sansloop loop with ``asyncio.SelectorEventLoop``'s constructor."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        if selector is None:
            super().__init__(mode="full")
            return
        from ..backends.selectors import SelectorsBackend

        super().__init__(SelectorsBackend(selector), mode="full")
