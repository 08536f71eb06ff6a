"""WriteFlowControl: asyncio's water marks and a strictly alternating pause/resume."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sansloop.core.flowcontrol import (
    DEFAULT_HIGH_WATER,
    PAUSE,
    RESUME,
    WriteFlowControl,
    resolve_limits,
)


@pytest.mark.parametrize(
    ("high", "low", "expected"),
    [
        (None, None, (65536, 16384)),
        (1000, None, (1000, 250)),
        (None, 100, (400, 100)),
        (0, None, (0, 0)),
        (10, 10, (10, 10)),
        (3, None, (3, 0)),
    ],
)
def test_limits_resolve_like_asyncio(high: int | None, low: int | None, expected: tuple) -> None:
    assert resolve_limits(high, low) == expected
    flow = WriteFlowControl(high, low)
    assert flow.get_limits() == (expected[1], expected[0])  # (low, high)
    assert (flow.high, flow.low) == expected


@pytest.mark.parametrize(
    ("high", "low", "message"),
    [
        (1, 2, "high (1) must be >= low (2) must be >= 0"),
        (-4, None, "high (-4) must be >= low (-1) must be >= 0"),
        (None, -1, "high (-4) must be >= low (-1) must be >= 0"),
    ],
)
def test_bad_limits_are_refused(high: int | None, low: int | None, message: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_limits(high, low)
    assert str(info.value) == message
    flow = WriteFlowControl()
    with pytest.raises(ValueError):
        flow.set_limits(high, low)
    assert flow.get_limits() == (DEFAULT_HIGH_WATER // 4, DEFAULT_HIGH_WATER)


def test_pause_above_high_resume_at_low() -> None:
    flow = WriteFlowControl(high=100, low=20)
    assert flow.grow(100) is None  # at the mark is not above it
    assert flow.grow(1) == PAUSE
    assert flow.paused
    assert flow.grow(1000) is None  # already paused: said once
    assert flow.shrink(1000) is None  # 101 left, above low
    assert flow.shrink(80) is None  # 21 left
    assert flow.shrink(1) == RESUME  # 20 left: at low
    assert not flow.paused and flow.size == 20
    assert flow.shrink(20) is None
    assert flow.statistics() == {"size": 0, "high": 100, "low": 20, "paused": False, "pauses": 1}


def test_new_limits_pause_now_but_never_resume_by_themselves() -> None:
    flow = WriteFlowControl()
    flow.grow(500)
    assert flow.set_limits(high=100) == PAUSE
    assert flow.set_limits(high=10_000) is None
    assert flow.paused  # asyncio resumes on the next drain, not on new limits
    assert flow.check() == RESUME  # an explicit re-evaluation does resume


def test_check_reevaluates() -> None:
    flow = WriteFlowControl(high=100, low=10)
    assert flow.grow(200) == PAUSE
    assert flow.check() is None
    flow.set_limits(high=1000, low=500)
    assert flow.check() == RESUME
    assert flow.check() is None


def test_clear_forgets_bytes_but_owes_no_resume() -> None:
    flow = WriteFlowControl(high=10)
    assert flow.grow(50) == PAUSE
    flow.clear()
    assert flow.size == 0 and flow.paused


def test_shrinking_more_than_buffered_is_a_caller_bug() -> None:
    flow = WriteFlowControl()
    flow.grow(3)
    with pytest.raises(ValueError, match="cannot shrink a buffer of 3 bytes by 4"):
        flow.shrink(4)
    assert flow.size == 3


def test_repr() -> None:
    assert repr(WriteFlowControl(high=8, low=2)) == "<WriteFlowControl flowing size=0 low=2 high=8>"


ops = st.lists(
    st.one_of(
        st.tuples(st.just("grow"), st.integers(0, 300)),
        st.tuples(st.just("shrink"), st.integers(0, 300)),
        st.tuples(st.just("limits"), st.integers(0, 200), st.integers(0, 200)),
        st.tuples(st.just("check")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_signals_alternate_and_respect_the_marks(script: list[tuple]) -> None:
    flow = WriteFlowControl(high=100, low=25)
    size = 0
    heard: list[str] = []
    for op in script:
        if op[0] == "grow":
            signal = flow.grow(op[1])
            size += op[1]
        elif op[0] == "shrink":
            n = min(op[1], size)
            signal = flow.shrink(n)
            size -= n
        elif op[0] == "limits":
            high, low = max(op[1], op[2]), min(op[1], op[2])
            signal = flow.set_limits(high, low)
            assert signal != RESUME
        else:
            signal = flow.check()
        assert flow.size == size
        if signal == PAUSE:
            assert size > flow.high
        elif signal == RESUME:
            assert size <= flow.low
        if signal is not None:
            heard.append(signal)
        assert flow.paused == (bool(heard) and heard[-1] == PAUSE)
    # strictly alternating, starting with a pause
    assert heard == [PAUSE, RESUME] * (len(heard) // 2) + [PAUSE] * (len(heard) % 2)
