"""TransportLifecycle: every (state, input) pair, enumerated.

The grid below is the specification written out by hand, independently of
the table in core.transportstate: for each state, the next state for each
input, or ``MISS`` where the input cannot happen in that state (our own bug,
refused with TransitionError). Then properties every transition must have.
"""

from __future__ import annotations

import itertools

import pytest

from sansloop.core.transportstate import (
    CLOSING_STATES,
    LOST_STATES,
    READING_STATES,
    TRANSITIONS,
    Action,
    Input,
    State,
    TransitionError,
    TransportLifecycle,
)

S, In, A = State, Input, Action
MISS = None
CE = S.CLOSING_AFTER_WRITE_EOF
DE = S.CLOSED_AFTER_WRITE_EOF
AE = S.ABORTED_AFTER_WRITE_EOF
ABORTED_STATES = {S.ABORTED, AE}

_INPUTS = [
    In.READABLE,
    In.DRAINED,
    In.SHORT_WRITE,
    In.EAGAIN,
    In.EOF,
    In.RESET,
    In.CLOSE,
    In.ABORT,
    In.WRITE_EOF,
    In.PAUSE,
    In.RESUME,
]

# fmt: off
# columns:  READABLE      DRAINED      SHORT_WRITE  EAGAIN       EOF          RESET      CLOSE      ABORT      WRITE_EOF            PAUSE                 RESUME
GRID: dict[State, list[State | None]] = {
    S.OPEN:             [S.OPEN,      S.OPEN,      S.OPEN,      S.OPEN,      S.READ_EOF,  S.ABORTED, S.CLOSING, S.ABORTED, S.WRITE_EOF,         S.READ_PAUSED,        S.OPEN],
    S.READ_PAUSED:      [MISS,        S.READ_PAUSED, S.READ_PAUSED, S.READ_PAUSED, MISS,  S.ABORTED, S.CLOSING, S.ABORTED, S.WRITE_EOF_PAUSED,  S.READ_PAUSED,        S.OPEN],
    S.READ_EOF:         [MISS,        S.READ_EOF,  S.READ_EOF,  S.READ_EOF,  MISS,        S.ABORTED, S.CLOSING, S.ABORTED, S.BOTH_EOF,          S.READ_EOF,           S.READ_EOF],
    S.WRITE_EOF:        [S.WRITE_EOF, S.WRITE_EOF, S.WRITE_EOF, S.WRITE_EOF, S.BOTH_EOF,  AE,        CE,        AE,        S.WRITE_EOF,         S.WRITE_EOF_PAUSED,   S.WRITE_EOF],
    S.WRITE_EOF_PAUSED: [MISS,        S.WRITE_EOF_PAUSED, S.WRITE_EOF_PAUSED, S.WRITE_EOF_PAUSED, MISS, AE, CE, AE, S.WRITE_EOF_PAUSED, S.WRITE_EOF_PAUSED, S.WRITE_EOF],
    S.BOTH_EOF:         [MISS,        S.BOTH_EOF,  S.BOTH_EOF,  S.BOTH_EOF,  MISS,        AE,        CE,        AE,        S.BOTH_EOF,          S.BOTH_EOF,           S.BOTH_EOF],
    S.CLOSING:          [MISS,        S.CLOSED,    S.CLOSING,   S.CLOSING,   MISS,        S.ABORTED, S.CLOSING, S.ABORTED, S.CLOSING,           S.CLOSING,            S.CLOSING],
    S.CLOSED:           [MISS,        MISS,        MISS,        MISS,        MISS,        S.CLOSED,  S.CLOSED,  S.CLOSED,  S.CLOSED,            S.CLOSED,             S.CLOSED],
    S.ABORTED:          [MISS,        MISS,        MISS,        MISS,        MISS,        S.ABORTED, S.ABORTED, S.ABORTED, S.ABORTED,           S.ABORTED,            S.ABORTED],
    CE:                 [MISS,        DE,          CE,          CE,          MISS,        AE,        CE,        AE,        CE,                  CE,                   CE],
    DE:                 [MISS,        MISS,        MISS,        MISS,        MISS,        DE,        DE,        DE,        DE,                  DE,                   DE],
    AE:                 [MISS,        MISS,        MISS,        MISS,        MISS,        AE,        AE,        AE,        AE,                  AE,                   AE],
}
# fmt: on

PAIRS = list(itertools.product(list(State), _INPUTS))
USER_INPUTS = {In.CLOSE, In.ABORT, In.WRITE_EOF, In.PAUSE, In.RESUME}


def test_grid_covers_every_state_and_input() -> None:
    assert set(GRID) == set(State)
    assert set(_INPUTS) == set(Input)
    assert all(len(row) == len(_INPUTS) for row in GRID.values())


@pytest.mark.parametrize(("state", "inp"), PAIRS, ids=lambda v: v.name)
def test_every_pair(state: State, inp: Input) -> None:
    expected = GRID[state][_INPUTS.index(inp)]
    machine = TransportLifecycle(state)
    if expected is MISS:
        assert (state, inp) not in TRANSITIONS
        with pytest.raises(TransitionError) as info:
            machine.feed(inp)
        assert repr(inp.value) in str(info.value) and repr(state.value) in str(info.value)
        assert machine.state is state  # a miss changes nothing
        return
    actions = machine.feed(inp)
    assert machine.state is expected
    assert len(set(actions)) == len(actions)  # no action twice in one step

    # Reading is watched exactly in the reading states: actions keep it so.
    watched = state in READING_STATES
    if A.STOP_READING in actions:
        assert watched
        watched = False
    if A.START_READING in actions:
        assert not watched
        watched = True
    assert watched == (expected in READING_STATES)

    # connection_lost is scheduled exactly on entering a lost state.
    entering_lost = expected in LOST_STATES and state not in LOST_STATES
    assert (A.LOSE in actions) == entering_lost
    if entering_lost:
        assert actions[-1] is A.LOSE
    # abort and fatal errors discard; a clean close does not.
    assert (A.DISCARD in actions) == (expected in ABORTED_STATES and state not in LOST_STATES)
    assert (A.DELIVER in actions) == (inp is In.READABLE)
    assert (A.EOF_RECEIVED in actions) == (inp is In.EOF)
    # the write side shuts once the buffer drains after write_eof()
    assert (A.SHUTDOWN_WRITE in actions) == (
        inp is In.DRAINED and state in (S.WRITE_EOF, S.WRITE_EOF_PAUSED, S.BOTH_EOF)
    )
    if A.WATCH_WRITABLE in actions:
        assert inp in (In.SHORT_WRITE, In.EAGAIN)
    # close() and write_eof() ask the caller whether the buffer is empty.
    assert (A.CHECK_DRAINED in actions) == (
        inp in (In.CLOSE, In.WRITE_EOF) and expected is not state and expected not in ABORTED_STATES
    )


def test_user_calls_never_miss() -> None:
    for state in State:
        for inp in USER_INPUTS:
            assert (state, inp) in TRANSITIONS


def test_lost_states_are_absorbing() -> None:
    for (state, _inp), (nxt, actions) in TRANSITIONS.items():
        if state in LOST_STATES:
            assert nxt is state and actions == ()


def test_closing_is_left_only_by_drain_or_force() -> None:
    for closing in (S.CLOSING, CE):
        ways_out = {
            inp
            for (state, inp), (nxt, _) in TRANSITIONS.items()
            if state is closing and nxt is not closing
        }
        assert ways_out == {In.DRAINED, In.ABORT, In.RESET}


def test_write_eof_is_remembered_through_closing() -> None:
    machine = TransportLifecycle()
    machine.feed(In.WRITE_EOF)
    assert machine.write_eof_called
    machine.feed(In.CLOSE)
    assert machine.state is CE and machine.write_eof_called and machine.is_closing
    machine.feed(In.DRAINED)
    assert machine.state is DE and machine.write_eof_called and machine.is_lost


def test_close_flushes_then_loses() -> None:
    machine = TransportLifecycle()
    assert machine.feed(In.CLOSE) == (A.STOP_READING, A.CHECK_DRAINED)
    assert machine.is_closing and not machine.is_lost
    assert machine.feed(In.SHORT_WRITE) == (A.WATCH_WRITABLE,)
    assert machine.feed(In.DRAINED) == (A.STOP_WRITING, A.LOSE)
    assert machine.is_lost and machine.state is S.CLOSED
    assert machine.feed(In.ABORT) == ()


def test_abort_discards() -> None:
    machine = TransportLifecycle(S.READ_PAUSED)
    assert machine.feed(In.ABORT) == (A.STOP_WRITING, A.DISCARD, A.LOSE)
    assert repr(machine) == "<TransportLifecycle aborted>"


def test_properties_follow_the_state() -> None:
    for state in State:
        machine = TransportLifecycle(state)
        assert machine.is_reading == (state in (S.OPEN, S.WRITE_EOF))
        assert machine.is_closing == (state in CLOSING_STATES)
        assert machine.is_closing == (state in (S.CLOSING, S.CLOSED, S.ABORTED, CE, DE, AE))
        assert machine.is_lost == (state in (S.CLOSED, S.ABORTED, DE, AE))
        assert machine.write_eof_called == (
            state in (S.WRITE_EOF, S.WRITE_EOF_PAUSED, S.BOTH_EOF, CE, DE, AE)
        )
