"""The loop's asynchronous-generator hooks and shutdown_asyncgens().

A mixin of ``EventLoop``. While the loop runs, ``sys.set_asyncgen_hooks`` points
here: every async generator first iterated on the loop is remembered (weakly),
and one finalised by the garbage collector is closed by a task on the loop.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["AsyncGenOps"]


class AsyncGenOps:
    """Async generator bookkeeping for the loop."""

    _asyncgens: weakref.WeakSet[Any]
    _asyncgens_shutdown_called: bool
    is_closed: Callable[[], bool]
    call_soon_threadsafe: Callable[..., Any]
    create_task: Callable[..., Any]
    call_exception_handler: Callable[[dict[str, Any]], None]

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                "loop.shutdown_asyncgens() call",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        """Close every asynchronous generator still open on this loop."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        generators = list(self._asyncgens)
        self._asyncgens.clear()
        closing = [self.create_task(agen.aclose()) for agen in generators]
        for agen, task in zip(generators, closing, strict=True):
            try:
                await task
            except Exception as exc:
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                        "exception": exc,
                        "asyncgen": agen,
                    }
                )
