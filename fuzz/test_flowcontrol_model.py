"""WriteFlowControl under random writes, sends, limit changes and discards.

Hypothesis drives one sequence of inputs into three things at once:

* ``sansloop.core.flowcontrol.WriteFlowControl``, the machine under test;
* stdlib asyncio's own flow-control mixin (``asyncio.transports._FlowControlMixin``)
  on a stand-in transport whose buffer size we set, with a protocol that
  records ``pause_writing()``/``resume_writing()``: what asyncio's transports
  would tell the protocol;
* a reference model: a byte count and a paused flag.

Checked after every step: the signal our machine returned is the call the
protocol heard from asyncio's mixin (or neither); PAUSE and RESUME strictly
alternate, starting with PAUSE; PAUSE only when the buffer is above the high
mark, RESUME only when it is at or below the low mark; ``size``, ``paused``
and ``get_limits()`` agree with the model and with asyncio. At the end, a
buffer drained to empty leaves the protocol flowing (unless the buffer was
discarded while paused: asyncio owes a lost connection no resume).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sansloop.core.flowcontrol import PAUSE, RESUME, WriteFlowControl

nbytes = st.integers(min_value=0, max_value=300)
mark = st.one_of(st.none(), st.integers(min_value=0, max_value=400))


class _Protocol:
    def __init__(self) -> None:
        self.heard: list[str] = []

    def pause_writing(self) -> None:
        self.heard.append(PAUSE)

    def resume_writing(self) -> None:
        self.heard.append(RESUME)


class _StdlibTransport(asyncio.transports._FlowControlMixin):  # type: ignore[name-defined,misc]
    """asyncio's flow-control decisions over a buffer size we set by hand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, high: Any, low: Any) -> None:
        super().__init__(None, loop)
        self._protocol = _Protocol()
        self.buffered = 0
        self._set_write_buffer_limits(high=high, low=low)

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FlowControlMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.ours: WriteFlowControl | None = None
        self.theirs: _StdlibTransport | None = None
        self.signals: list[str] = []
        self.size = 0
        self.discarded_while_paused = False

    def teardown(self) -> None:
        self.loop.close()

    def _compare(self, got: str | None) -> None:
        assert self.ours is not None and self.theirs is not None
        heard = self.theirs._protocol.heard
        expected = heard.pop() if heard else None
        assert not heard
        assert got == expected
        if got is not None:
            self.signals.append(got)
        # model rules
        if got == PAUSE:
            assert self.size > self.ours.high
        if got == RESUME:
            assert self.size <= self.ours.low

    @precondition(lambda self: self.ours is None)
    @rule(high=mark, low=mark)
    def start(self, high: int | None, low: int | None) -> None:
        try:
            ours = WriteFlowControl(high, low)
        except ValueError as exc:
            assert "must be >= low" in str(exc)
            try:
                _StdlibTransport(self.loop, high, low)
            except ValueError as theirs:
                assert str(theirs) == str(exc)
            else:
                raise AssertionError("asyncio accepted limits sansloop refused") from None
            return
        self.ours = ours
        self.theirs = _StdlibTransport(self.loop, high, low)

    @precondition(lambda self: self.ours is not None)
    @rule(n=nbytes)
    def write(self, n: int) -> None:
        assert self.ours is not None and self.theirs is not None
        self.size += n
        self.theirs.buffered += n
        self.theirs._maybe_pause_protocol()
        self._compare(self.ours.grow(n))

    @precondition(lambda self: self.ours is not None and self.size > 0)
    @rule(data=st.data())
    def send(self, data: Any) -> None:
        assert self.ours is not None and self.theirs is not None
        n = data.draw(st.integers(min_value=1, max_value=self.size))
        self.size -= n
        self.theirs.buffered -= n
        self.theirs._maybe_resume_protocol()
        self._compare(self.ours.shrink(n))

    @precondition(lambda self: self.ours is not None)
    @rule(where=st.sampled_from(["low", "high"]), offset=st.integers(min_value=-1, max_value=1))
    def to_the_mark(self, where: str, offset: int) -> None:
        """Write or send so that the buffer lands on a mark, or one byte off it."""
        assert self.ours is not None
        target = max(0, (self.ours.low if where == "low" else self.ours.high) + offset)
        if target > self.size:
            self.write(target - self.size)
        elif target < self.size:
            n = self.size - target
            self.size -= n
            assert self.theirs is not None
            self.theirs.buffered -= n
            self.theirs._maybe_resume_protocol()
            self._compare(self.ours.shrink(n))

    @precondition(lambda self: self.ours is not None)
    @rule(high=mark, low=mark)
    def set_limits(self, high: int | None, low: int | None) -> None:
        assert self.ours is not None and self.theirs is not None
        try:
            got = self.ours.set_limits(high, low)
        except ValueError as exc:
            try:
                self.theirs.set_write_buffer_limits(high, low)
            except ValueError as theirs:
                assert str(theirs) == str(exc)
            else:
                raise AssertionError("asyncio accepted limits sansloop refused") from None
            return
        self.theirs.set_write_buffer_limits(high, low)
        self._compare(got)

    @precondition(lambda self: self.ours is not None)
    @rule()
    def discard(self) -> None:
        assert self.ours is not None and self.theirs is not None
        if self.ours.paused:
            self.discarded_while_paused = True
        self.size = 0
        self.theirs.buffered = 0
        self.ours.clear()

    @precondition(lambda self: self.ours is not None)
    @rule()
    def recheck(self) -> None:
        assert self.ours is not None and self.theirs is not None
        if self.theirs._protocol_paused:
            self.theirs._maybe_resume_protocol()
        else:
            self.theirs._maybe_pause_protocol()
        self._compare(self.ours.check())

    @invariant()
    def agree(self) -> None:
        if self.ours is None or self.theirs is None:
            return
        assert self.ours.size == self.size == self.theirs.buffered
        assert self.ours.paused == self.theirs._protocol_paused
        assert self.ours.get_limits() == self.theirs.get_write_buffer_limits()
        expected = [PAUSE, RESUME] * (len(self.signals) // 2 + 1)
        assert self.signals == expected[: len(self.signals)]
        assert self.ours.paused == (bool(self.signals) and self.signals[-1] == PAUSE)
        if self.size == 0 and not self.discarded_while_paused:
            # drained (and not discarded while paused): flowing, since an
            # empty buffer is never above a mark and always at or below one
            assert not self.ours.paused


FlowControlMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestFlowControl = FlowControlMachine.TestCase
