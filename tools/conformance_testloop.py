"""A stand-in for CPython's test_utils.TestLoop, built on our loop.

Many tests of test_tasks, test_futures and others run on ``TestLoop``: a
``BaseEventLoop`` whose clock is virtual (it starts at 0) and moves only when
a generator written by the test says so. After every loop iteration TestLoop
sends the generator the ``when`` of each timer scheduled during the iteration
and advances its clock by what the generator yields back; the generator
asserts on those ``when`` values. Its selector never blocks.

In loop mode those tests would otherwise run on a stock loop and be excluded.
``VirtualTimeLoop`` gives them the same contract on sansloop's EventLoop:

- the loop is sansloop's ``EventLoop`` with a backend (``VirtualClockBackend``)
  whose clock is virtual and whose ``poll`` never blocks (real fds still
  work: it polls the default backend with a zero timeout);
- ``call_at``/``call_later`` note each timer's ``when`` (public methods,
  overridden in a subclass exactly as TestLoop overrides ``call_at``);
- after each iteration (``_run_once``, the loop's own tick, which TestLoop
  also hooks) the notes go to the generator and the clock advances;
- ``advance_time()`` and the "time generator is not finished" check on close
  behave as TestLoop's.

The tests' other TestLoop helpers (``assert_reader``, ``readers``, the mocked
selector) serve tests of asyncio's private transports; those are excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

__all__ = ["virtual_time_loop_factory"]


def virtual_time_loop_factory(loop_class: type, mode: str = "loop") -> Callable[..., Any]:
    """``factory(gen=None)`` making ``loop_class`` loops on a virtual clock."""
    from sansloop.backends import default_backend
    from sansloop.backends.base import Backend

    class VirtualClockBackend(Backend):
        """The default backend's fds, a clock that only moves when told."""

        name = "virtual-clock"
        clock_resolution = 1e-9

        def __init__(self) -> None:
            self._inner = default_backend()
            self.now = 0.0

        def time(self) -> float:  # type: ignore[override]
            return self.now

        def register(self, fd: int, events: int) -> None:
            self._inner.register(fd, events)

        def modify(self, fd: int, events: int) -> None:
            self._inner.modify(fd, events)

        def unregister(self, fd: int) -> None:
            self._inner.unregister(fd)

        def poll(self, timeout: float | None) -> list[tuple[int, int]]:
            return self._inner.poll(0)

        def wakeup(self) -> None:
            self._inner.wakeup()

        def close(self) -> None:
            self._inner.close()

    class VirtualTimeLoop(loop_class):  # type: ignore[misc,valid-type]
        def __init__(self, gen: Callable[[], Generator[Any, Any, Any]] | None = None) -> None:
            self._virtual_backend = VirtualClockBackend()
            super().__init__(self._virtual_backend, mode=mode)
            if gen is None:

                def gen() -> Generator[Any, Any, Any]:
                    yield

                self._check_on_close = False
            else:
                self._check_on_close = True
            self._gen = gen()
            next(self._gen)
            self._whens: list[float] = []
            self._in_call_later = False

        def advance_time(self, advance: float) -> None:
            if advance:
                self._virtual_backend.now += advance

        def call_at(self, when: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            handle = super().call_at(when, callback, *args, context=context)
            if not self._in_call_later:
                self._whens.append(when)
            return handle

        def call_later(self, delay: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            self._in_call_later = True
            try:
                handle = super().call_later(delay, callback, *args, context=context)
            finally:
                self._in_call_later = False
            self._whens.append(handle.when())
            return handle

        def _run_once(self) -> None:
            super()._run_once()
            whens, self._whens = self._whens, []
            for when in whens:
                self.advance_time(self._gen.send(when))

        def close(self) -> None:
            super().close()
            if self._check_on_close:
                try:
                    self._gen.send(0)
                except StopIteration:
                    pass
                else:  # pragma: no cover
                    raise AssertionError("Time generator is not finished")

    VirtualTimeLoop.__name__ = VirtualTimeLoop.__qualname__ = "VirtualTimeLoop"
    return VirtualTimeLoop
