"""``asyncio.to_thread``: run a blocking function in the loop's executor.

Contract: ``await to_thread(func, *args, **kwargs)`` calls
``func(*args, **kwargs)`` in the running loop's default executor
(``loop.run_in_executor(None, ...)``, which a backend may implement as it
likes: a thread pool, or inline under simulation) inside a *copy* of the
caller's ``contextvars.Context``, and returns its result or raises its
exception. Context changes made by *func* do not leak back to the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["to_thread"]

P = ParamSpec("P")
R = TypeVar("R")


async def to_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in a worker thread with the current context."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    result: R = await loop.run_in_executor(None, call)
    return result
