"""The bridge between event-loop futures and ``concurrent.futures.Future``.

Contract:
- ``chain_future(source, destination)``: when *source* finishes, its outcome
  (result, exception or cancellation) is copied into *destination*; when
  *destination* is cancelled, *source* is cancelled. Either side may be an
  asyncio-compatible future (stdlib or sansloop) or a
  ``concurrent.futures.Future``. Copies that cross a loop boundary go through
  the target loop's ``call_soon_threadsafe``, so the two sides may live in
  different threads; nothing is copied into a future whose loop is closed.
  ``concurrent.futures`` exception classes are translated to asyncio's
  (CancelledError, InvalidStateError) on the way into a loop future.
- ``wrap_future(future, *, loop=None)``: a loop future mirroring a
  ``concurrent.futures.Future`` (a loop future is returned unchanged).
- ``run_coroutine_threadsafe(coro, loop)``: submit *coro* to *loop* from any
  thread; the returned ``concurrent.futures.Future`` mirrors the task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from asyncio.exceptions import CancelledError, InvalidStateError
from collections.abc import Coroutine
from typing import Any

from .coroutines import future_loop, iscoroutine, isfuture

__all__ = ["chain_future", "wrap_future", "run_coroutine_threadsafe"]


def _loop_side_exception(exc: BaseException) -> BaseException:
    """Translate a concurrent.futures exception into the one asyncio code expects."""
    kind = type(exc)
    if kind is concurrent.futures.CancelledError:
        return CancelledError(*exc.args).with_traceback(exc.__traceback__)
    if kind is concurrent.futures.InvalidStateError:
        return InvalidStateError(*exc.args).with_traceback(exc.__traceback__)
    return exc


def _copy_into_loop_future(source: Any, dest: Any) -> None:
    """Give the finished *source*'s outcome to the loop future *dest*."""
    if dest.cancelled():
        return
    if source.cancelled():
        dest.cancel()
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(_loop_side_exception(exc))
    else:
        dest.set_result(source.result())


def _copy_into_concurrent_future(source: Any, dest: concurrent.futures.Future[Any]) -> None:
    """Give the finished *source*'s outcome to the concurrent future *dest*."""
    if source.cancelled():
        dest.cancel()
    if not dest.set_running_or_notify_cancel():
        return  # cancelled (by us just now, or by its owner)
    exc = source.exception()
    if exc is not None:
        dest.set_exception(_loop_side_exception(exc))
    else:
        dest.set_result(source.result())


def _copy_outcome(source: Any, dest: Any) -> None:
    if isfuture(dest):
        _copy_into_loop_future(source, dest)
    else:
        _copy_into_concurrent_future(source, dest)


def _require_future(obj: Any, role: str) -> Any:
    """The loop of *obj* (None for a concurrent future); TypeError if not a future."""
    if isfuture(obj):
        return future_loop(obj)
    if isinstance(obj, concurrent.futures.Future):
        return None
    raise TypeError(f"A future is required for {role} argument")


def chain_future(source: Any, destination: Any) -> None:
    """Make *destination* follow *source*'s outcome, and *source* follow its cancel."""
    source_loop = _require_future(source, "source")
    dest_loop = _require_future(destination, "destination")

    def on_destination_done(destination: Any) -> None:
        if not destination.cancelled():
            return
        if source_loop is None or source_loop is dest_loop:
            source.cancel()
        else:
            source_loop.call_soon_threadsafe(source.cancel)

    def on_source_done(source: Any) -> None:
        if dest_loop is None or dest_loop is source_loop:
            _copy_outcome(source, destination)
            return
        if dest_loop.is_closed():
            return  # nobody is left to hear it
        dest_loop.call_soon_threadsafe(_copy_outcome, source, destination)

    destination.add_done_callback(on_destination_done)
    source.add_done_callback(on_source_done)


def wrap_future(future: Any, *, loop: Any = None) -> Any:
    """Return a loop future that mirrors the ``concurrent.futures.Future`` *future*."""
    if isfuture(future):
        return future
    if not isinstance(future, concurrent.futures.Future):
        raise AssertionError(f"concurrent.futures.Future is expected, got {future!r}")
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop()
    mirror = loop.create_future()
    chain_future(future, mirror)
    return mirror


def run_coroutine_threadsafe(
    coro: Coroutine[Any, Any, Any], loop: Any
) -> concurrent.futures.Future[Any]:
    """Submit *coro* to *loop* from another thread; return a concurrent future for it."""
    if not iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    result: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def start() -> None:
        try:
            chain_future(loop.create_task(coro), result)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if result.set_running_or_notify_cancel():
                result.set_exception(exc)
            raise

    loop.call_soon_threadsafe(start)
    return result
