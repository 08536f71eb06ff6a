"""sansloop.core.datagram.DatagramMachine: the datagram transport with no socket.

Every (state, input) pair of the lifecycle table is driven from a real
machine; then random runs of sends, socket refusals (EAGAIN), flushes, errors,
limits, pauses, closes and aborts are checked against a small reference model
(a list of queued datagrams and two flags), and against the invariants the
transport relies on: LOSE exactly once, pause/resume strictly alternating,
the byte count equal to the queued payloads plus 8 each, nothing sent after LOSE.
"""

from __future__ import annotations

import random

import pytest

from sansloop.core import datagram as dg
from sansloop.core.datagram import DatagramMachine
from sansloop.core.flowcontrol import WriteFlowControl


def _machine_in(state: str, queued: int = 0) -> DatagramMachine:
    """A machine brought to *state* with *queued* datagrams through its public inputs."""
    m = DatagramMachine()
    for i in range(queued):
        m.enqueue(b"x" * i, ("127.0.0.1", 9))
    if state == dg.CLOSING:
        assert queued, "CLOSING needs a non-empty queue"
        m.close()
    elif state == dg.LOST:
        m.abort()
    assert m.state == state
    return m


@pytest.mark.parametrize(("state", "event"), sorted(dg.TRANSITIONS))
def test_every_table_entry_is_reachable_and_applied(state: str, event: str) -> None:
    queued = 1 if event in (dg.CLOSE_BUSY, dg.DRAINED) or state == dg.CLOSING else 0
    m = _machine_in(state, queued)
    expected_state, expected_actions = dg.TRANSITIONS[(state, event)]
    if event in (dg.CLOSE_IDLE, dg.CLOSE_BUSY):
        actions = m.close()
    elif event == dg.ABORT:
        actions = m.abort()
    else:
        actions = m.pop() & ~dg.RESUME_PROTOCOL
    assert (m.state, actions) == (expected_state, expected_actions)


@pytest.mark.parametrize(("state", "event"), [(dg.LOST, dg.DRAINED), (dg.CLOSING, dg.CLOSE_IDLE)])
def test_the_impossible_pairs_are_reported_as_our_bug(state: str, event: str) -> None:
    assert (state, event) not in dg.TRANSITIONS
    m = _machine_in(state, 1)
    with pytest.raises(RuntimeError, match="DatagramMachine bug"):
        m._step(event)


def test_send_validation_unconnected_and_connected() -> None:
    m = DatagramMachine()
    assert m.target(b"a", ("h", 1)) == ("h", 1)
    assert m.target(bytearray(b"a")) is None
    assert m.target(memoryview(b"")) is None
    with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
        m.target("a", ("h", 1))
    c = DatagramMachine(("127.0.0.1", 5))
    assert c.target(b"a") == ("127.0.0.1", 5)
    assert c.target(b"a", ("127.0.0.1", 5)) == ("127.0.0.1", 5)
    with pytest.raises(ValueError, match=r"Invalid address: must be None or \('127.0.0.1', 5\)"):
        c.target(b"a", ("127.0.0.1", 6))


def test_enqueue_copies_and_counts_header_bytes() -> None:
    m = DatagramMachine()
    data = bytearray(b"abc")
    assert m.enqueue(data, "peer") == dg.START_WRITING
    data[:] = b"zzz"
    assert m.enqueue(b"", "peer") == 0  # an empty datagram is a datagram
    assert m.head() == (b"abc", "peer")
    assert m.buffer_size() == 3 + 8 + 0 + 8
    assert not m.idle()
    assert m.pop() == 0
    assert m.pop() == dg.STOP_WRITING
    assert m.buffer_size() == 0 and m.idle()


def test_flow_control_pauses_above_high_and_resumes_at_low() -> None:
    m = DatagramMachine(flow=WriteFlowControl(high=100, low=20))
    assert m.get_write_buffer_limits() == (20, 100)
    assert m.enqueue(b"x" * 50, None) == dg.START_WRITING  # 58
    assert m.enqueue(b"x" * 34, None) == 0  # 100: not above
    assert m.enqueue(b"", None) == dg.PAUSE_PROTOCOL  # 108
    assert m.enqueue(b"x", None) == 0  # already paused
    assert m.pop() == 0  # 50: still above low
    assert m.pop() == dg.RESUME_PROTOCOL  # 8 + 9
    assert m.pop() == 0
    assert m.pop() == dg.STOP_WRITING


def test_new_limits_can_pause_at_once() -> None:
    m = DatagramMachine()
    m.enqueue(b"x" * 100, None)
    assert m.set_write_buffer_limits(high=50) == dg.PAUSE_PROTOCOL
    assert m.get_write_buffer_limits() == (12, 50)
    with pytest.raises(ValueError, match=r"high \(1\) must be >= low \(2\) must be >= 0"):
        m.set_write_buffer_limits(high=1, low=2)


def test_close_flushes_then_loses_once() -> None:
    m = DatagramMachine()
    m.enqueue(b"a", None)
    assert m.close() == dg.STOP_READING
    assert m.is_closing() and not m.is_reading() and m.state == dg.CLOSING
    assert not m.idle()  # still flushing: new datagrams queue behind
    assert m.enqueue(b"b", None) == 0
    assert m.pop() == 0
    assert m.pop() == dg.STOP_WRITING | dg.LOSE
    assert m.close() == 0 and m.abort() == 0


def test_abort_discards_and_drops_later_sends() -> None:
    m = DatagramMachine()
    m.enqueue(b"a" * 10, None)
    assert m.abort() == dg.STOP_READING | dg.STOP_WRITING | dg.LOSE
    assert m.queued() == 0 and m.buffer_size() == 0
    assert not m.idle()
    assert m.enqueue(b"late", None) == dg.DROPPED
    assert m.dropped == 1 and m.queued() == 0


def test_reading_pause_resume_only_while_open() -> None:
    m = DatagramMachine()
    assert m.resume_reading() == 0
    assert m.pause_reading() == dg.STOP_READING
    assert m.pause_reading() == 0
    assert not m.is_reading()
    assert m.resume_reading() == dg.START_READING
    assert m.is_reading()
    m.pause_reading()
    m.close()
    assert m.resume_reading() == 0 and m.pause_reading() == 0
    # Closing while paused stops reading again: removing an absent reader is harmless.


def test_statistics() -> None:
    m = DatagramMachine()
    m.enqueue(b"abc", None)
    stats = m.statistics()
    assert stats["state"] == dg.OPEN
    assert stats["queued_datagrams"] == 1
    assert stats["buffer_size"] == 11
    assert (stats["low_water"], stats["high_water"]) == (16384, 65536)
    assert stats["writing_paused"] is False and stats["reading_paused"] is False


class _Model:
    """What a datagram transport should do, said as plainly as possible."""

    def __init__(self, high: int, low: int) -> None:
        self.queue: list[bytes] = []
        self.state = "open"
        self.paused = False
        self.high, self.low = high, low

    def size(self) -> int:
        return sum(len(d) + 8 for d in self.queue)


@pytest.mark.parametrize("seed", range(40))
def test_random_runs_agree_with_the_model(seed: int) -> None:
    rng = random.Random(seed)
    high = rng.choice([0, 10, 64, 300])
    low = rng.randint(0, high)
    m = DatagramMachine(flow=WriteFlowControl(high=high, low=low))
    model = _Model(high, low)
    wire: list[bytes] = []  # what the "socket" accepted
    signals: list[str] = []
    lost = 0
    writing = False
    for _ in range(300):
        op = rng.choice(
            ["send", "send", "send", "flush", "flush", "fail", "close", "abort", "limits", "pause"]
        )
        if op == "send":
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            if m.idle() and rng.random() < 0.5:
                assert model.state != "lost" and not model.queue
                wire.append(data)  # sent at once
                continue
            actions = m.enqueue(data, None)
            if model.state == "lost":
                assert actions == dg.DROPPED
                continue
            assert bool(actions & dg.START_WRITING) == (not model.queue)
            model.queue.append(data)
        elif op in ("flush", "fail"):
            if not m.queued():
                assert not model.queue
                continue
            assert writing
            data, _ = m.head()
            assert data == model.queue[0]
            actions = m.pop()
            model.queue.pop(0)
            if op == "flush":
                wire.append(data)
            if not model.queue:
                expected = dg.STOP_WRITING | (dg.LOSE if model.state == "closing" else 0)
                assert actions & (dg.STOP_WRITING | dg.LOSE) == expected
                if model.state == "closing":
                    model.state = "lost"
            else:
                assert actions & (dg.STOP_WRITING | dg.LOSE) == 0
        elif op == "close":
            actions = m.close()
            if model.state == "open":
                model.state = "closing" if model.queue else "lost"
        elif op == "pause":
            if rng.random() < 0.5:
                actions = m.pause_reading()
                expected = dg.STOP_READING if model.state == "open" and not model.paused else 0
                model.paused = model.paused or model.state == "open"
            else:
                actions = m.resume_reading()
                expected = dg.START_READING if model.state == "open" and model.paused else 0
                model.paused = model.paused and model.state != "open"
            assert actions == expected
        elif op == "abort":
            actions = m.abort()
            if model.state != "lost":
                model.state = "lost"
                model.queue.clear()
        else:
            high = rng.choice([0, 10, 64, 300])
            low = rng.randint(0, high)
            actions = m.set_write_buffer_limits(high, low)
            model.high, model.low = high, low
        if actions & dg.START_WRITING:
            assert not writing
            writing = True
        if actions & dg.STOP_WRITING:
            writing = False
        if actions & dg.LOSE:
            lost += 1
            writing = False
        for flag, name in ((dg.PAUSE_PROTOCOL, "pause"), (dg.RESUME_PROTOCOL, "resume")):
            if actions & flag:
                signals.append(name)
                if name == "pause":
                    assert m.buffer_size() > model.high
                else:
                    assert m.buffer_size() <= model.low
        assert m.state == model.state
        assert m.buffer_size() == model.size()
        assert m.queued() == len(model.queue)
        assert m.is_reading() == m.reading == (model.state == "open" and not model.paused)
        assert m.idle() == m.direct == (not model.queue and model.state != "lost")
        assert writing == bool(model.queue)
    assert lost == (1 if model.state == "lost" else 0)
    for first, second in zip(signals, signals[1:], strict=False):
        assert first != second, signals
    if signals:
        assert signals[0] == "pause"
