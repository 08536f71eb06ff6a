"""sansloop.core.happyeyeballs: interleaving and the staggered race machine.

The interleaving is checked against asyncio's own reordering (run, not
copied); the race by hand-written scenarios, by every (state, input) pair,
and by hypothesis against a closed-form reference model of RFC 8305's chain.
"""

from __future__ import annotations

import asyncio.base_events
import heapq
import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sansloop.core import happyeyeballs as he
from sansloop.core.happyeyeballs import RaceMisuseError, StaggeredRace, interleave_addrinfos

A4, A6 = 2, 10


def infos(families: list[int]) -> list[tuple[object, ...]]:
    return [(family, 1, 6, "", (f"h{n}", n)) for n, family in enumerate(families)]


# -- interleaving -------------------------------------------------------------


def test_interleave_alternates_families_keeping_their_order() -> None:
    got = interleave_addrinfos(infos([A6, A6, A6, A4, A4]))
    assert [i[4][1] for i in got] == [0, 3, 1, 4, 2]


def test_interleave_count_two_leads_with_two_of_the_first_family() -> None:
    got = interleave_addrinfos(infos([A4, A6, A6, A4, A4, A6]), 2)
    assert [i[4][1] for i in got] == [0, 3, 1, 4, 2, 5]


def test_interleave_empty_and_single() -> None:
    assert interleave_addrinfos([], 3) == []
    assert interleave_addrinfos(infos([A4]), 5) == infos([A4])


@settings(max_examples=300, deadline=None)
@given(
    families=st.lists(st.sampled_from([A4, A6, 1]), max_size=12),
    count=st.integers(min_value=-2, max_value=8),
)
def test_interleave_matches_asyncio(families: list[int], count: int) -> None:
    assume(families or count <= 1)  # asyncio raises IndexError on [] with count > 1
    given_infos = infos(families)
    expected = asyncio.base_events._interleave_addrinfos(given_infos, count)
    assert interleave_addrinfos(given_infos, count) == expected


# -- the race, by hand ----------------------------------------------------------


def test_first_attempt_wins_before_the_delay() -> None:
    race = StaggeredRace(3, 0.25)
    d = race.begin(10.0)
    assert (d.start, d.wake_at, d.done) == ((0,), 10.25, False)
    d = race.succeeded(0, 10.1)
    assert (d.start, d.cancel, d.wake_at, d.done) == ((), (), None, True)
    assert race.winner == 0 and race.errors == [] and race.started == 1
    assert [race.state(i) for i in range(3)] == ["won", "skipped", "skipped"]


def test_delay_starts_the_next_attempt_and_the_winner_cancels_the_rest() -> None:
    race = StaggeredRace(3, 0.25)
    race.begin(0.0)
    d = race.wake(0.25)
    assert (d.start, d.wake_at) == ((1,), 0.5)
    d = race.succeeded(1, 0.3)
    assert (d.cancel, d.done, d.wake_at) == ((0,), False, None)
    d = race.failed(0, "cancelled", 0.31)
    assert d.done and race.winner == 1
    assert race.errors == []  # a cancellation is not an error
    assert race.state(2) == "skipped"


def test_failure_starts_the_next_attempt_at_once() -> None:
    race = StaggeredRace(3, 10.0)
    race.begin(0.0)
    d = race.failed(0, "e0", 1.0)
    assert (d.start, d.wake_at) == ((1,), 11.0)
    d = race.failed(1, "e1", 2.0)
    assert (d.start, d.wake_at) == ((2,), None)
    d = race.failed(2, "e2", 3.0)
    assert d.done and race.winner is None and race.errors == ["e0", "e1", "e2"]


def test_failure_of_an_older_attempt_does_not_start_another() -> None:
    race = StaggeredRace(3, 1.0)
    race.begin(0.0)
    race.wake(1.0)  # attempt 1 starts; 2 due at 2.0
    d = race.failed(0, "e0", 1.5)
    assert (d.start, d.wake_at) == ((), 2.0)


def test_early_wake_is_harmless_and_repeats_the_deadline() -> None:
    race = StaggeredRace(2, 1.0)
    race.begin(0.0)
    d = race.wake(0.5)
    assert (d.start, d.wake_at) == ((), 1.0)


def test_zero_delay_starts_everything_at_once() -> None:
    race = StaggeredRace(4, 0)
    d = race.begin(5.0)
    assert d.start == (0, 1, 2, 3) and d.wake_at is None


def test_no_delay_is_sequential() -> None:
    race = StaggeredRace(2, None)
    d = race.begin(0.0)
    assert (d.start, d.wake_at) == ((0,), None)
    d = race.failed(0, "e", 100.0)
    assert d.start == (1,)


def test_late_success_is_discarded() -> None:
    race = StaggeredRace(2, 0)
    race.begin(0.0)
    d = race.succeeded(1, 1.0)
    assert d.cancel == (0,)
    d = race.succeeded(0, 1.0)
    assert d.discard == (0,) and d.done and race.winner == 1


def test_abort_cancels_running_and_waits_for_their_reports() -> None:
    race = StaggeredRace(3, 1.0)
    race.begin(0.0)
    race.wake(1.0)
    d = race.abort(1.5)
    assert (d.cancel, d.done, d.wake_at) == ((0, 1), False, None)
    race.failed(0, "c", 1.6)
    d = race.succeeded(1, 1.6)
    assert d.discard == (1,) and d.done and race.winner is None and race.errors == []


def test_empty_race_is_done_at_once() -> None:
    race = StaggeredRace(0, 1.0)
    assert race.done
    d = race.begin(0.0)
    assert d.done and d.start == ()


def test_statistics_count_states() -> None:
    race = StaggeredRace(3, 1.0)
    race.begin(0.0)
    stats = race.statistics()
    assert stats["states"] == {"running": 1, "waiting": 2} and stats["wake_at"] == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.failed(0, "e", 0.0),
        lambda r: r.wake(0.0),
        lambda r: r.succeeded(0, 0.0),
    ],
)
def test_inputs_before_begin_are_misuse(call: object) -> None:
    with pytest.raises(RaceMisuseError, match="not begun"):
        call(StaggeredRace(2, 1.0))  # type: ignore[operator]


def test_misuse_is_reported_with_the_state() -> None:
    race = StaggeredRace(2, 1.0)
    race.begin(0.0)
    with pytest.raises(RaceMisuseError, match="attempt 1 cannot 'fail' while 'waiting'"):
        race.failed(1, "e", 0.0)
    with pytest.raises(RaceMisuseError, match="no attempt 7"):
        race.succeeded(7, 0.0)
    with pytest.raises(RaceMisuseError, match="already begun"):
        race.begin(0.0)
    with pytest.raises(ValueError):
        StaggeredRace(-1, 1.0)


STATES = [
    he.WAITING,
    he.RUNNING,
    he.FAILED,
    he.WON,
    he.CANCELLING,
    he.CANCELLED,
    he.LOST,
    he.SKIPPED,
]
INPUTS = [he.START, he.FAIL, he.SUCCEED, he.CANCEL]
LEGAL = {
    (he.WAITING, he.START): he.RUNNING,
    (he.WAITING, he.CANCEL): he.SKIPPED,
    (he.RUNNING, he.FAIL): he.FAILED,
    (he.RUNNING, he.SUCCEED): he.WON,
    (he.RUNNING, he.CANCEL): he.CANCELLING,
    (he.CANCELLING, he.FAIL): he.CANCELLED,
    (he.CANCELLING, he.SUCCEED): he.LOST,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(STATES, INPUTS)))
def test_every_state_input_pair(state: str, event: str) -> None:
    race = StaggeredRace(1, 1.0)
    race.begin(0.0)
    race._states[0] = state
    if (state, event) in LEGAL:
        assert race._move(0, event) == LEGAL[(state, event)]
    else:
        with pytest.raises(RaceMisuseError):
            race._move(0, event)


# -- the race against a reference model -------------------------------------------


def reference(outcomes: list[tuple[bool, int]], delay: int) -> tuple[list[int], int | None, float]:
    """Closed form: start times of the attempts that start, winner, win time."""
    starts = [0]
    for i in range(len(outcomes) - 1):
        ok, duration = outcomes[i]
        due = starts[i] + delay
        if not ok and starts[i] + duration < due:
            due = starts[i] + duration
        starts.append(due)
    finishes = [
        (s + d, i) for i, (s, (ok, d)) in enumerate(zip(starts, outcomes, strict=False)) if ok
    ]
    if not finishes:
        return starts, None, float("inf")
    win_at, winner = min(finishes)
    return [s for s in starts if s < win_at], winner, win_at


cancelled: dict[int, float] = {}


def simulate(
    outcomes: list[tuple[bool, int]], delay: int
) -> tuple[dict[int, float], StaggeredRace]:
    """Drive the machine with an event queue: attempts end after their duration."""
    race = StaggeredRace(len(outcomes), delay)
    events: list[tuple[float, int, str, int]] = []
    seq = itertools.count()
    starts: dict[int, float] = {}
    cancelled.clear()
    wake_at: list[float | None] = [None]

    def apply(d: he.Decision, now: float) -> None:
        for i in d.start:
            starts[i] = now
            ok, duration = outcomes[i]
            heapq.heappush(events, (now + duration, next(seq), "ok" if ok else "fail", i))
        for i in d.cancel:
            cancelled[i] = now
            heapq.heappush(events, (now, next(seq), "cancelled", i))
        wake_at[0] = d.wake_at
        if d.wake_at is not None:
            heapq.heappush(events, (d.wake_at, next(seq), "wake", -1))

    apply(race.begin(0), 0)
    steps = 0
    while events and not race.done:
        steps += 1
        assert steps < 10_000
        now, _, kind, i = heapq.heappop(events)
        if kind == "wake":
            if wake_at[0] == now:
                apply(race.wake(now), now)
        elif i in starts and race.state(i) in (he.RUNNING, he.CANCELLING):
            if kind == "cancelled":
                apply(race.failed(i, "cancelled", now), now)
            elif kind == "ok":
                apply(race.succeeded(i, now), now)
            else:
                apply(race.failed(i, f"e{i}", now), now)
    assert race.done
    return starts, race


@settings(max_examples=500, deadline=None)
@given(
    outcomes=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=1, max_value=1000)), min_size=1, max_size=8
    ),
    delay=st.integers(min_value=1, max_value=600),
)
def test_race_matches_the_reference_model(outcomes: list[tuple[bool, int]], delay: int) -> None:
    ref_starts, ref_winner, win_at = reference(outcomes, delay)
    # ties between two endings, or an ending and a deadline, are scheduling-order details
    ends = [s + d for s, (_, d) in zip(ref_starts, outcomes, strict=False)]
    times = ends + [s + delay for s in ref_starts]
    assume(len(set(times)) == len(times))
    starts, race = simulate(outcomes, delay)
    assert race.winner == ref_winner
    assert [starts[i] for i in sorted(starts)] == ref_starts
    expected_errors = [
        f"e{i}"
        for i, s in enumerate(ref_starts)
        if not outcomes[i][0] and s + outcomes[i][1] < win_at
    ]
    assert race.errors == expected_errors
    still_running = {i for i, end in enumerate(ends) if end > win_at and i != ref_winner}
    assert cancelled == dict.fromkeys(still_running, win_at)
    for i in range(len(outcomes)):
        assert race.state(i) in (he.FAILED, he.WON, he.CANCELLED, he.LOST, he.SKIPPED)
