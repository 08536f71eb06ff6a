"""Validation of callbacks handed to the loop.

asyncio refuses coroutines and non-callables only in debug mode; we refuse them
always (docs/compat.md), so the check must cost next to nothing on the hot
path: one set lookup for C callables, a flag test for Python functions.
"""

from __future__ import annotations

import asyncio
import inspect
import types

__all__ = ["check_callback"]

# Types whose instances are known plain callables (never coroutine functions);
# grows with C-implemented callable types as they are seen, such as the bound
# step methods of stdlib's C Task, so the check costs one set lookup.
_PLAIN_CALLABLE_TYPES: set[type] = {
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    types.MethodWrapperType,
}
_COROUTINE_FLAGS = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE
_HEAP_TYPE_FLAG = 1 << 9  # Py_TPFLAGS_HEAPTYPE: the type was defined in Python


def check_callback(callback: object, method: str) -> None:
    """Refuse coroutines and non-callables (asyncio checks only in debug mode)."""
    kind = type(callback)
    if kind in _PLAIN_CALLABLE_TYPES:
        return
    if kind is types.FunctionType:
        if not callback.__code__.co_flags & _COROUTINE_FLAGS:  # type: ignore[attr-defined]
            # Only a function with attributes can carry a coroutine marker; the
            # full test costs ~170 ns, too much for every call_soon.
            if not callback.__dict__ or not asyncio.iscoroutinefunction(callback):  # type: ignore[attr-defined]
                return
    elif kind is types.MethodType:
        func = callback.__func__  # type: ignore[attr-defined]
        if type(func) is types.FunctionType and not func.__code__.co_flags & _COROUTINE_FLAGS:
            return
    elif not kind.__flags__ & _HEAP_TYPE_FLAG and callable(callback):
        # A C type's instances cannot be coroutine functions (and coroutine
        # objects are not callable).
        _PLAIN_CALLABLE_TYPES.add(kind)
        return
    # asyncio's own test knows its markers (by identity: a Mock has every attribute).
    if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")
