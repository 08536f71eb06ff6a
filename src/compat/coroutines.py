"""Duck-typing predicates of the asyncio task API: what counts as a future or
a coroutine, and which loop a future belongs to.

Contract:
- ``isfuture(obj)`` is true for any object whose class advertises the awaiting
  protocol (``_asyncio_future_blocking``) with a non-None value on the instance,
  so stdlib ``asyncio.Future``/``Task``, sansloop's core futures and third-party
  look-alikes are all futures.
- ``iscoroutine(obj)`` follows the running interpreter's asyncio: native
  coroutines and ``collections.abc.Coroutine`` instances, plus generators on
  Python 3.11 (3.12 dropped generator-based coroutines).
- ``iscoroutinefunction(func)`` is true for ``async def`` functions and for
  callables carrying asyncio's legacy ``_is_coroutine`` marker.
- ``future_loop(fut)`` is the loop ``fut`` is bound to (``get_loop()``, or the
  ``_loop`` attribute of futures that predate it).

Nothing here touches a loop or a clock.
"""

from __future__ import annotations

import collections.abc
import inspect
import sys
import types
from asyncio import coroutines as _stdlib_coroutines
from typing import Any

__all__ = ["isfuture", "iscoroutine", "iscoroutinefunction", "future_loop"]

# Generator-based coroutines still count as coroutines for asyncio 3.11.
if sys.version_info >= (3, 12):
    _COROUTINE_TYPES: tuple[type, ...] = (types.CoroutineType, collections.abc.Coroutine)
else:
    _COROUTINE_TYPES = (
        types.CoroutineType,
        types.GeneratorType,
        collections.abc.Coroutine,
    )

# The marker asyncio's legacy ``@coroutine`` decorator and its internal
# helpers put on functions; honoured so that those still count.
_LEGACY_MARKER: object = getattr(_stdlib_coroutines, "_is_coroutine", object())


def isfuture(obj: Any) -> bool:
    """Return True if *obj* is an asyncio-compatible future (or task)."""
    if not hasattr(type(obj), "_asyncio_future_blocking"):
        return False
    return obj._asyncio_future_blocking is not None


def iscoroutine(obj: Any) -> bool:
    """Return True if *obj* is a coroutine object, as asyncio defines it."""
    return isinstance(obj, _COROUTINE_TYPES)


def iscoroutinefunction(func: Any) -> bool:
    """Return True if *func* is a coroutine function (``async def`` or marked)."""
    if inspect.iscoroutinefunction(func):
        return True
    return getattr(func, "_is_coroutine", None) is _LEGACY_MARKER


def future_loop(fut: Any) -> Any:
    """The event loop *fut* is attached to."""
    get_loop = getattr(fut, "get_loop", None)
    if get_loop is not None:
        return get_loop()
    return fut._loop
