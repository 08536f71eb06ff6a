"""TransportLifecycle under random sequences of I/O results and user calls.

A small driver plays the transport around the machine: it keeps a byte count
for the write buffer, performs the machine's actions (watch/stop watching the
fd, shut down, discard, lose) and records what an observer would see. A
reference model, written the other way -- a handful of booleans the way a
hand-written transport keeps them -- predicts the same observations. After
every step they must agree: whether reading and writing are watched,
is_closing(), how many times connection_lost was scheduled (never more than
once), how many times the write side was shut down, the buffered bytes, and
which writes were refused.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sansloop.core.transportstate import Action, Input, TransportLifecycle

A, In = Action, Input


class Driver:
    """The machine plus a pretend socket: what a transport would do and show."""

    def __init__(self) -> None:
        self.machine = TransportLifecycle()
        self.buffer = 0
        self.reading_watched = True
        self.writing_watched = False
        self.lost = 0
        self.shutdowns = 0
        self.delivered = 0

    def perform(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if action is A.STOP_READING:
                assert self.reading_watched
                self.reading_watched = False
            elif action is A.START_READING:
                assert not self.reading_watched
                self.reading_watched = True
            elif action is A.WATCH_WRITABLE:
                self.writing_watched = True
            elif action is A.STOP_WRITING:
                self.writing_watched = False
            elif action is A.CHECK_DRAINED:
                if self.buffer == 0:
                    self.perform(self.machine.feed(In.DRAINED))
            elif action is A.SHUTDOWN_WRITE:
                self.shutdowns += 1
            elif action is A.DISCARD:
                self.buffer = 0
            elif action is A.LOSE:
                self.lost += 1
                self.reading_watched = self.writing_watched = False
            elif action is A.DELIVER:
                self.delivered += 1
            elif action is A.EOF_RECEIVED:
                pass  # the caller decides with keep_open below
            else:  # pragma: no cover - a new action the driver does not know
                raise AssertionError(action)

    # user calls
    def write(self, n: int, taken: int) -> str:
        m = self.machine
        if m.write_eof_called:
            return "refused"
        if m.is_lost:
            return "dropped"
        if self.buffer:
            self.buffer += n
            return "buffered"
        taken = min(taken, n)
        if taken == n:
            return "sent"
        self.buffer = n - taken
        self.perform(m.feed(In.SHORT_WRITE if taken else In.EAGAIN))
        return "buffered"

    def call(self, inp: Input) -> None:
        self.perform(self.machine.feed(inp))

    # I/O results
    def flush(self, k: int) -> None:
        self.buffer -= min(k, self.buffer)
        if self.buffer == 0:
            self.perform(self.machine.feed(In.DRAINED))

    def peer_data(self) -> None:
        self.perform(self.machine.feed(In.READABLE))

    def peer_eof(self, keep_open: bool) -> None:
        actions = self.machine.feed(In.EOF)
        self.perform(actions)
        assert A.EOF_RECEIVED in actions
        if not keep_open:
            self.call(In.CLOSE)


class Model:
    """The same transport kept with booleans, asyncio-style."""

    def __init__(self) -> None:
        self.closing = False
        self.lost = 0
        self.paused = False
        self.read_eof = False
        self.eof_written = False
        self.shutdowns = 0
        self.buffer = 0

    @property
    def reading(self) -> bool:
        return not self.closing and not self.paused and not self.read_eof

    def write(self, n: int, taken: int) -> str:
        if self.eof_written:
            return "refused"
        if self.lost:
            return "dropped"
        if self.buffer:
            self.buffer += n
            return "buffered"
        if min(taken, n) == n:
            return "sent"
        self.buffer = n - min(taken, n)
        return "buffered"

    def _lose(self) -> None:
        if not self.lost:
            self.lost = 1

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self.buffer == 0:
            self._lose()

    def abort(self) -> None:
        if self.lost:
            return
        self.closing = True
        self.buffer = 0
        self._lose()

    def write_eof(self) -> None:
        if self.closing or self.eof_written:
            return
        self.eof_written = True
        if self.buffer == 0:
            self.shutdowns += 1

    def drained(self) -> None:
        if self.closing:
            self._lose()
        elif self.eof_written:
            self.shutdowns += 1

    def flush(self, k: int) -> None:
        self.buffer -= min(k, self.buffer)
        if self.buffer == 0:
            self.drained()

    def pause(self) -> None:
        if self.reading:
            self.paused = True

    def resume(self) -> None:
        if self.paused and not self.closing:
            self.paused = False

    def peer_eof(self, keep_open: bool) -> None:
        self.read_eof = True
        if not keep_open:
            self.close()


sizes = st.integers(min_value=1, max_value=50)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.driver = Driver()
        self.model = Model()

    @rule(n=sizes, taken=st.integers(0, 50))
    def write(self, n: int, taken: int) -> None:
        assert self.driver.write(n, taken) == self.model.write(n, taken)

    @rule()
    def close(self) -> None:
        self.driver.call(In.CLOSE)
        self.model.close()

    @rule()
    def abort(self) -> None:
        self.driver.call(In.ABORT)
        self.model.abort()

    @rule()
    def write_eof(self) -> None:
        self.driver.call(In.WRITE_EOF)
        self.model.write_eof()

    @rule()
    def pause_reading(self) -> None:
        self.driver.call(In.PAUSE)
        self.model.pause()

    @rule()
    def resume_reading(self) -> None:
        self.driver.call(In.RESUME)
        self.model.resume()

    @precondition(lambda self: self.driver.writing_watched)
    @rule(k=st.integers(1, 60))
    def socket_writable(self, k: int) -> None:
        self.driver.flush(k)
        self.model.flush(k)

    @precondition(lambda self: self.driver.reading_watched)
    @rule()
    def peer_sends(self) -> None:
        before = self.driver.delivered
        self.driver.peer_data()
        assert self.driver.delivered == before + 1

    @precondition(lambda self: self.driver.reading_watched)
    @rule(keep_open=st.booleans())
    def peer_eof(self, keep_open: bool) -> None:
        self.driver.peer_eof(keep_open)
        self.model.peer_eof(keep_open)

    @precondition(lambda self: not self.driver.machine.is_lost)
    @rule()
    def connection_reset(self) -> None:
        self.driver.call(In.RESET)
        self.model.abort()

    @invariant()
    def agree(self) -> None:
        d, m = self.driver, self.model
        assert d.lost == m.lost <= 1
        assert d.machine.is_closing == m.closing
        assert d.reading_watched == m.reading == d.machine.is_reading
        assert d.buffer == m.buffer
        assert d.writing_watched == (d.buffer > 0 and not d.lost)
        assert d.shutdowns == m.shutdowns <= 1


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
