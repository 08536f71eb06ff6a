"""How a task's coroutine is described: its repr fragment and its stack.

Contract
--------
``format_coroutine(coro)`` gives the text asyncio puts inside ``coro=<...>``
in a task's repr: ``name() running at file:line`` while the coroutine is
suspended, ``name() done, defined at file:line`` once it has finished, and
just ``name()`` for coroutine-like objects without code.

``coroutine_stack(coro, exception, limit)`` lists the frames
``Task.get_stack()`` returns (the suspended stack, or the traceback of the
exception that ended the coroutine) and ``print_coroutine_stack`` writes them
the way ``Task.print_stack()`` does. Pure functions of their inputs; nothing
here changes a task.
"""

from __future__ import annotations

import linecache
import sys
import traceback
from types import FrameType
from typing import Any, TextIO

__all__ = ["format_coroutine", "coroutine_stack", "print_coroutine_stack"]


def _coroutine_name(coro: Any) -> str:
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None)
    if not name:
        name = f"<{type(coro).__name__} without __name__>"
    return f"{name}()"


def _first_attribute(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value:
            return value
    return None


def format_coroutine(coro: Any) -> str:
    """Describe *coro* as asyncio does inside a task's repr."""
    name = _coroutine_name(coro)
    code = _first_attribute(coro, "cr_code", "gi_code")
    if code is None:
        # A coroutine-like object without code objects of its own.
        running = getattr(coro, "cr_running", None)
        if running is None:
            running = getattr(coro, "gi_running", False)
        return f"{name} running" if running else name
    filename = code.co_filename or "<empty co_filename>"
    frame = _first_attribute(coro, "gi_frame", "cr_frame")
    if frame is not None:
        return f"{name} running at {filename}:{frame.f_lineno}"
    return f"{name} done, defined at {filename}:{code.co_firstlineno}"


def coroutine_stack(
    coro: Any, exception: BaseException | None, limit: int | None
) -> list[FrameType]:
    """The frames of a task's coroutine, oldest first.

    A suspended coroutine gives its stack (only its own frame, in practice),
    newest *limit* frames; a coroutine ended by *exception* gives that
    traceback's frames, oldest *limit* frames; otherwise an empty list.
    """
    frames: list[FrameType] = []
    frame = _first_attribute(coro, "cr_frame", "gi_frame", "ag_frame")
    if frame is not None:
        while frame is not None and (limit is None or len(frames) < limit):
            frames.append(frame)
            frame = frame.f_back
        frames.reverse()
    elif exception is not None:
        tb = exception.__traceback__
        while tb is not None and (limit is None or len(frames) < limit):
            frames.append(tb.tb_frame)
            tb = tb.tb_next
    return frames


def print_coroutine_stack(
    task: Any, frames: list[FrameType], exception: BaseException | None, file: TextIO | None
) -> None:
    """Print *frames* of *task* like ``Task.print_stack()`` (to stderr by default)."""
    if file is None:
        file = sys.stderr
    entries = []
    checked: set[str] = set()
    for frame in frames:
        lineno = frame.f_lineno or 0
        filename = frame.f_code.co_filename
        if filename not in checked:
            checked.add(filename)
            linecache.checkcache(filename)
        line = linecache.getline(filename, lineno, frame.f_globals)
        entries.append((filename, lineno, frame.f_code.co_name, line))
    if entries:
        kind = "Stack" if exception is None else "Traceback"
        print(f"{kind} for {task!r} (most recent call last):", file=file)
    else:
        print(f"No stack for {task!r}", file=file)
    traceback.print_list(traceback.StackSummary.from_list(entries), file=file)
    if exception is not None:
        for line in traceback.format_exception_only(type(exception), exception):
            print(line, file=file, end="")
