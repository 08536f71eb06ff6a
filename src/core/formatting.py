"""How callbacks and stacks are described in reprs and log messages.

asyncio users read these strings in logs and tests compare them, so the shapes
follow asyncio's: ``name(arg1, arg2) at file.py:12`` with ``functools.partial``
unwrapped and long arguments shortened by ``reprlib``.
"""

from __future__ import annotations

import functools
import inspect
import reprlib
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["format_callback", "format_callback_source", "callable_source", "extract_stack"]

#: How many frames debug mode records at a creation site (asyncio uses 10).
DEBUG_STACK_DEPTH = 10


def callable_source(func: object) -> tuple[str, int] | None:
    """Return (filename, first line) of the code behind *func*, if it has one."""
    while True:
        func = inspect.unwrap(func)  # type: ignore[arg-type]
        if isinstance(func, (functools.partial, functools.partialmethod)):
            func = func.func
            continue
        break
    if inspect.isfunction(func):
        return func.__code__.co_filename, func.__code__.co_firstlineno
    return None


def _format_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any] | None) -> str:
    parts = [reprlib.repr(value) for value in args]
    if kwargs:
        parts += [f"{key}={reprlib.repr(value)}" for key, value in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


def format_callback(
    func: Callable[..., object] | object,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None = None,
) -> str:
    """Describe ``func(*args, **kwargs)``; partials show their bound arguments."""
    trailer = ""
    while isinstance(func, functools.partial):
        partial: functools.partial[object] = func
        trailer = _format_arguments(args, kwargs) + trailer
        func, args, kwargs = partial.func, partial.args, partial.keywords
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{name}{_format_arguments(args, kwargs)}{trailer}"


def format_callback_source(func: Callable[..., object] | object, args: tuple[Any, ...]) -> str:
    """Describe a callback and where its code lives."""
    text = format_callback(func, args)
    source = callable_source(func)
    if source is not None:
        text += f" at {source[0]}:{source[1]}"
    return text


def extract_stack(frame: Any = None, limit: int | None = None) -> traceback.StackSummary:
    """Record the caller's stack cheaply (no source lines), oldest frame first."""
    if frame is None:
        frame = sys._getframe(1)
    summary = traceback.StackSummary.extract(
        traceback.walk_stack(frame),
        limit=DEBUG_STACK_DEPTH if limit is None else limit,
        lookup_lines=False,
    )
    summary.reverse()
    return summary
