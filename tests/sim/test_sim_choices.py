"""The choice source contract: ints in [0, n), 0 is the calm outcome, seeds replay."""

from __future__ import annotations

import pytest

from sansloop.backends.sim.choices import (
    ChoiceSource,
    RecordingChoices,
    ReplayChoices,
    SeededChoices,
    ZeroChoices,
    chance,
    pick_range,
)


def test_seeded_is_in_range_and_replays() -> None:
    a, b = SeededChoices(5), SeededChoices(5)
    xs = [a.choose(7, "x") for _ in range(200)]
    assert xs == [b.choose(7, "x") for _ in range(200)]
    assert set(xs) == set(range(7))


def test_different_seeds_differ() -> None:
    a, b = SeededChoices(1), SeededChoices(2)
    assert [a.choose(1000, "x") for _ in range(20)] != [b.choose(1000, "x") for _ in range(20)]


def test_n_of_one_consumes_nothing() -> None:
    a, b = SeededChoices(3), SeededChoices(3)
    a.choose(1, "only")
    assert a.choose(100, "x") == b.choose(100, "x")


@pytest.mark.parametrize("n", [0, -1])
def test_bad_n(n: int) -> None:
    with pytest.raises(ValueError):
        SeededChoices(0).choose(n, "x")
    with pytest.raises(ValueError):
        ZeroChoices().choose(n, "x")


def test_protocol_and_zero() -> None:
    for src in (
        SeededChoices(0),
        ZeroChoices(),
        RecordingChoices(ZeroChoices()),
        ReplayChoices([]),
    ):
        assert isinstance(src, ChoiceSource)
    z = ZeroChoices()
    assert not chance(z, 10, "drop")
    assert pick_range(z, 0.001, 0.5, "lat") == 0.001


def test_recording_and_replay_roundtrip() -> None:
    rec = RecordingChoices(SeededChoices(9))
    first = [rec.choose(n, "x") for n in (2, 5, 9, 3, 100)]
    assert rec.values() == first
    rep = ReplayChoices(rec.values())
    assert [rep.choose(n, "x") for n in (2, 5, 9, 3, 100)] == first
    assert rep.choose(50, "after") == 0
    assert rec.nonzero() == sum(1 for v in first if v)


def test_recording_rejects_out_of_range() -> None:
    class Bad:
        def choose(self, n: int, label: str) -> int:
            return n

    with pytest.raises(ValueError):
        RecordingChoices(Bad()).choose(3, "x")
