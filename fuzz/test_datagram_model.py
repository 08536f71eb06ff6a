"""DatagramMachine under random inputs, against a plain reference model.

Hypothesis drives sequences of sends (sent at once when the machine says it is
idle, or refused by the "socket" and queued), flushes, failed sends, limit
changes, reading pauses, closes and aborts. A reference model -- a list of
queued payloads, a lifecycle word and two flags -- says what must be true after
each step; the actions the machine returns drive a simulated fd (reader and
writer registered or not) and a simulated protocol (pause/resume calls,
connection_lost count), whose invariants are checked too:

- the writer is registered exactly while datagrams are queued, the reader
  exactly while the transport is open and not paused;
- pause_writing / resume_writing strictly alternate, pause first; a pause only
  above the high mark, a resume only at or below the low mark;
- connection_lost is scheduled at most once, and exactly once when lost;
- the buffer size is the sum of the queued payloads plus 8 each; what reached
  the wire is every sent datagram, in order, minus those reported as failed
  and those discarded by abort.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sansloop.core import datagram as dg
from sansloop.core.flowcontrol import WriteFlowControl

FUZZ_SETTINGS = settings(max_examples=300, stateful_step_count=40, deadline=None)

limits = st.integers(min_value=0, max_value=400)


class DatagramModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = dg.DatagramMachine(flow=WriteFlowControl(high=200, low=50))
        self.high, self.low = 200, 50
        # The model.
        self.queue: list[bytes] = []
        self.state = "open"
        self.paused_reading = False
        # The simulated world the actions drive.
        self.reader = True  # reading starts once connection_made ran
        self.writer = False
        self.signals: list[str] = []
        self.lost = 0
        self.wire: list[bytes] = []
        self.expected_wire: list[bytes] = []
        self.counter = 0

    # -- carrying out actions, as the transport does --------------------------

    def apply(self, actions: int) -> None:
        if actions & dg.STOP_READING:
            self.reader = False
        if actions & dg.START_READING:
            assert not self.reader
            self.reader = True
        if actions & dg.STOP_WRITING:
            assert self.writer
            self.writer = False
        if actions & dg.START_WRITING:
            assert not self.writer
            self.writer = True
        if actions & dg.PAUSE_PROTOCOL:
            assert self.m.buffer_size() > self.high
            self.signals.append("pause")
        if actions & dg.RESUME_PROTOCOL:
            assert self.m.buffer_size() <= self.low
            self.signals.append("resume")
        if actions & dg.LOSE:
            self.lost += 1

    def payload(self, size: int) -> bytes:
        self.counter += 1
        return self.counter.to_bytes(4, "big") + b"x" * size

    # -- rules ------------------------------------------------------------

    @rule(size=st.integers(min_value=0, max_value=120), refused=st.booleans())
    def send(self, size: int, refused: bool) -> None:
        data = self.payload(size)
        assert self.m.target(data) is None
        if self.m.idle() and not refused:
            assert self.state != "lost" and not self.queue
            self.wire.append(data)
            self.expected_wire.append(data)
            return
        actions = self.m.enqueue(data, None)
        if self.state == "lost":
            assert actions == dg.DROPPED
            return
        self.queue.append(data)
        self.expected_wire.append(data)
        self.apply(actions)

    @precondition(lambda self: self.writer)
    @rule(failed=st.booleans())
    def writable(self, failed: bool) -> None:
        data, _ = self.m.head()
        assert data == self.queue[0]
        actions = self.m.pop()
        self.queue.pop(0)
        if failed:
            self.expected_wire.remove(data)
        else:
            self.wire.append(data)
        if not self.queue and self.state == "closing":
            self.state = "lost"
        self.apply(actions)

    @rule(high=limits, low=limits)
    def set_limits(self, high: int, low: int) -> None:
        high, low = max(high, low), min(high, low)
        self.high, self.low = high, low
        self.apply(self.m.set_write_buffer_limits(high, low))

    @rule(pause=st.booleans())
    def reading(self, pause: bool) -> None:
        if self.state == "open":
            self.paused_reading = pause
        self.apply(self.m.pause_reading() if pause else self.m.resume_reading())

    @rule()
    def close(self) -> None:
        if self.state == "open":
            self.state = "closing" if self.queue else "lost"
        self.apply(self.m.close())

    @rule()
    def abort(self) -> None:
        if self.state != "lost":
            for data in self.queue:
                self.expected_wire.remove(data)
            self.queue.clear()
            self.state = "lost"
            self.writer = False  # abort says STOP_WRITING only if it was writing
        self.apply(self.m.abort() & ~dg.STOP_WRITING)

    # -- invariants ---------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        m = self.m
        assert m.state == self.state
        assert m.queued() == len(self.queue)
        assert m.buffer_size() == sum(len(d) + dg.HEADER_SIZE for d in self.queue)
        assert m.is_reading() == (self.state == "open" and not self.paused_reading)
        assert m.idle() == (not self.queue and self.state != "lost")

    @invariant()
    def the_world_is_consistent(self) -> None:
        assert self.writer == bool(self.queue)
        assert self.reader == self.m.is_reading()
        assert self.lost == (1 if self.state == "lost" else 0)
        for first, second in zip(self.signals, self.signals[1:], strict=False):
            assert first != second
        if self.signals:
            assert self.signals[0] == "pause"
        # What reached the wire is what was sent, in order, less the failures
        # and the discarded; what is still queued comes after it.
        assert self.wire + self.queue == self.expected_wire


DatagramModel.TestCase.settings = FUZZ_SETTINGS
TestDatagramModel = DatagramModel.TestCase
