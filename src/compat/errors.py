"""The loop's default exception handler: how an unhandled error is logged.

asyncio logs such errors on the ``asyncio`` logger with the context's message
followed by one ``key: value`` line per extra context entry, and the exception's
traceback attached. Tools grep these lines, so we keep the shape.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["logger", "log_exception_context", "ExceptionHandling"]

logger = logging.getLogger("asyncio")

# Context keys whose value is a recorded stack rather than an object to repr.
_STACK_KEYS = ("source_traceback", "handle_traceback")


def _describe(key: str, value: Any) -> str:
    if key in _STACK_KEYS:
        stack = "".join(traceback.format_list(value)).rstrip()
        title = (
            "Object created at (most recent call last):"
            if key == "source_traceback"
            else ("Handle created at (most recent call last):")
        )
        return f"{key}: {title}\n{stack}"
    return f"{key}: {value!r}"


def log_exception_context(context: dict[str, Any], current_handle: Any = None) -> None:
    """Log *context* on the ``asyncio`` logger the way asyncio does."""
    message = context.get("message") or "Unhandled exception in event loop"
    exception = context.get("exception")
    exc_info: Any = False
    if exception is not None:
        exc_info = (type(exception), exception, exception.__traceback__)
    if (
        "source_traceback" not in context
        and current_handle is not None
        and getattr(current_handle, "_source_traceback", None)
    ):
        context = dict(context, handle_traceback=current_handle._source_traceback)
    lines = [message]
    for key in sorted(context):
        if key in ("message", "exception"):
            continue
        lines.append(_describe(key, context[key]))
    logger.error("\n".join(lines), exc_info=exc_info)


# From 3.12 a custom handler runs in the contextvars context of the task,
# future or handle that failed, so it can read the request id a library set.
_HANDLER_IN_ORIGIN_CONTEXT = sys.version_info >= (3, 12)


def _origin_context(context: dict[str, Any]) -> contextvars.Context | None:
    for key in ("task", "future", "handle"):
        origin = context.get(key)
        if origin is not None:
            get_context = getattr(origin, "get_context", None)
            return get_context() if get_context is not None else None
    return None


class ExceptionHandling:
    """The loop's exception-handler methods (a mixin of ``EventLoop``)."""

    _exception_handler: Callable[[Any, dict[str, Any]], object] | None
    _current_handle: Any

    def get_exception_handler(self) -> Any:
        """The custom exception handler, or None."""
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        """Use ``handler(loop, context)`` for unhandled errors (None: default)."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log *context* on the ``asyncio`` logger, as asyncio does."""
        log_exception_context(context, self._current_handle)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an unhandled error to the handler (never raises, but for exits)."""
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            runs_in = _origin_context(context) if _HANDLER_IN_ORIGIN_CONTEXT else None
            if runs_in is None:
                handler(self, context)
            else:
                runs_in.run(handler, self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an unexpected "
                    "error in custom exception handler",
                    exc_info=True,
                )
