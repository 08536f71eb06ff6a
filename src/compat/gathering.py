"""``gather()`` and ``shield()``: futures that follow other futures.

Contract (asyncio's):
- ``gather(*aws, return_exceptions=False)`` returns a future of the loop's own
  kind whose result is the list of the awaitables' results, in argument order
  (a repeated awaitable is run once and its result repeated). Without
  *return_exceptions* the first exception, or a child's cancellation as
  CancelledError, becomes the outcome at once and the other children keep
  running; with it, exceptions (and CancelledError instances) are results.
  Cancelling the returned future cancels every unfinished child, and the
  future then ends with CancelledError once they have all finished, even with
  *return_exceptions*. All futures must share one loop (ValueError).
  With no awaitables, a finished future with ``[]``.
- ``shield(aw)`` returns a future that follows *aw*; cancelling it leaves *aw*
  running, while *aw* being cancelled cancels it.
"""

from __future__ import annotations

from asyncio.exceptions import CancelledError
from typing import Any

from .coroutines import future_loop
from .ensure import cancelled_error_of, current_loop, ensure_future

__all__ = ["gather", "shield"]


_gathering_classes: dict[type, type] = {}


def _gathering_future_class(base: type) -> type:
    """A subclass of the loop's future class whose cancel() acts like a task's.

    ``gather()`` returns a future of the loop's own kind (a stdlib Future on a
    stdlib loop, ours on ours); cancelling it must cancel the children and let
    the future end only once they have, which is this override.
    """
    cls = _gathering_classes.get(base)
    if cls is None:

        def cancel(self: Any, msg: Any = None) -> bool:
            if self.done():
                return False
            # Every child gets the request: no short-circuit.
            accepted = [child.cancel(msg=msg) for child in self._gather_children]
            if not any(accepted):
                return False
            # The outcome becomes CancelledError even with return_exceptions.
            self._gather_cancel_requested = True
            return True

        cls = type(
            "_GatheringFuture",
            (base,),
            {
                "__doc__": "The future gather() returns; cancel() cancels the children.",
                "__module__": __name__,
                "cancel": cancel,
            },
        )
        _gathering_classes[base] = cls
    return cls


def _child_outcome(child: Any) -> Any:
    """What a finished child contributes to a return_exceptions result list."""
    if child.cancelled():
        args = cancelled_error_of(child).args
        return CancelledError(args[0] if args else "")
    exc = child.exception()
    return exc if exc is not None else child.result()


class _Gathering:
    """The bookkeeping of one gather() call: the children and the outer future."""

    __slots__ = ("children", "outer", "return_exceptions", "pending")

    def __init__(self, return_exceptions: bool) -> None:
        self.children: list[Any] = []
        self.outer: Any = None
        self.return_exceptions = return_exceptions
        self.pending = 0

    def on_child_done(self, child: Any) -> None:
        self.pending -= 1
        outer = self.outer
        if outer is None or outer.done():
            if not child.cancelled():
                child.exception()  # mark it retrieved: nobody else will look
            return
        if not self.return_exceptions:
            if child.cancelled():
                outer.set_exception(cancelled_error_of(child))
                return
            exc = child.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
        if self.pending:
            return
        if outer._gather_cancel_requested:
            # gather() was cancelled: that wins even with return_exceptions.
            last = self.children[-1]
            err = cancelled_error_of(last) if last.cancelled() else CancelledError()
            outer.set_exception(err)
        elif self.return_exceptions:
            outer.set_result([_child_outcome(c) for c in self.children])
        else:
            # Otherwise we would have ended at the first failure: all succeeded.
            outer.set_result([c.result() for c in self.children])


def gather(*coros_or_futures: Any, return_exceptions: bool = False) -> Any:
    """Run the awaitables concurrently; the returned future gives their results.

    Results come in argument order. Without *return_exceptions* the first
    exception (or a child's cancellation, as CancelledError) becomes the
    outcome at once and the other children keep running; with it, exceptions
    are results. All futures must belong to the same loop (ValueError).
    """
    if not coros_or_futures:
        loop = current_loop()
        outer = loop.create_future()
        outer.set_result([])
        return outer

    state = _Gathering(return_exceptions)
    children = state.children
    on_child_done = state.on_child_done
    seen: dict[Any, Any] = {}
    already_done: list[Any] = []
    loop = None
    for arg in coros_or_futures:
        fut = seen.get(arg)
        if fut is None:
            fut = ensure_future(arg, loop=loop)
            if loop is None:
                loop = future_loop(fut)
            if fut is not arg:
                # A task we made for the caller: its owner is the gather.
                try:
                    fut._log_destroy_pending = False
                except AttributeError:
                    pass  # a future type without that debug flag
            seen[arg] = fut
            if fut.done():
                already_done.append(fut)
            else:
                fut.add_done_callback(on_child_done)
        children.append(fut)
    state.pending = len(seen)

    base = type(loop.create_future())
    outer = _gathering_future_class(base)(loop=loop)
    outer._gather_children = state.children
    outer._gather_cancel_requested = False
    state.outer = outer
    # Children that finished before we could listen (eager tasks, done
    # futures) are accounted now that the outer future exists.
    for fut in already_done:
        state.on_child_done(fut)
    return outer


# ---------------------------------------------------------------- shield


def shield(arg: Any) -> Any:
    """Wait for *arg*, protecting it from the cancellation of the awaiting task.

    Cancelling the returned future does not cancel the inner one; if the inner
    one is cancelled by other means, the returned one is cancelled too.
    """
    inner = ensure_future(arg)
    if inner.done():
        return inner
    outer = future_loop(inner).create_future()

    def inner_done(inner: Any) -> None:
        if outer.cancelled():
            if not inner.cancelled():
                inner.exception()  # mark it retrieved
            return
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def outer_done(outer: Any) -> None:
        if not inner.done():
            inner.remove_done_callback(inner_done)

    inner.add_done_callback(inner_done)
    outer.add_done_callback(outer_done)
    return outer
