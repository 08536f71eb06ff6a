"""sansloop.testing.strategies: hypothesis draws every decision of a simulated run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sansloop import sim
from sansloop.testing import HypothesisChoices, fault_plans, schedules, worlds


async def _echo_twice() -> list[bytes]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 9000)
    got = []
    try:
        for word in (b"a\n", b"b\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", 9000)
            writer.write(word)
            got.append(await reader.readline())
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    return got


def test_zero_draws_give_the_calm_run() -> None:
    source = HypothesisChoices(lambda strategy: 0)
    result = sim.run(_echo_twice, choices=source)
    assert result.value == [b"a\n", b"b\n"]
    assert source.record and source.unusual() == []
    calm = sim.run(_echo_twice, choices=sim.ZeroChoices())
    assert calm.digest == result.digest


def test_unwanted_labels_are_not_drawn() -> None:
    drawn: list[Any] = []

    def draw(strategy: Any) -> int:
        drawn.append(strategy)
        return 1

    source = HypothesisChoices(draw, wanted=lambda label: label == "tcp.segment")
    assert source.choose(5, "tcp.latency") == 0
    assert source.choose(2, "tcp.segment") == 1
    assert source.choose(1, "tcp.segment") == 0  # one way only: no draw
    assert len(drawn) == 1
    assert source.unusual() == [(1, "tcp.segment", 1)]
    with pytest.raises(ValueError):
        source.choose(0, "x")


@settings(max_examples=15, deadline=None, database=None)
@given(worlds())
def test_a_correct_program_passes_in_every_world(world: Any) -> None:
    result = world.run(_echo_twice)
    assert result.value == [b"a\n", b"b\n"]
    assert world.token == result.token
    replayed = sim.replay(result.token, _echo_twice)
    assert replayed.digest == result.digest


@settings(max_examples=10, deadline=None, database=None)
@given(schedules())
def test_schedules_never_draw_a_fault(source: HypothesisChoices) -> None:
    result = sim.run(_echo_twice, choices=source, tcp_reset_one_in=2)
    source.check()
    assert result.value == [b"a\n", b"b\n"]
    assert not [label for label, _, v in source.record if label.startswith("tcp.reset") and v]


@settings(max_examples=20, deadline=None, database=None)
@given(fault_plans(["a", "b"], horizon=10, max_faults=2))
def test_fault_plans_stay_in_bounds(plan: sim.FaultPlan) -> None:
    assert len([a for a in plan if a[1] not in ("heal", "restart")]) <= 2
    assert all(0 <= a[0] <= 15 for a in plan)


def test_a_failure_shrinks_to_few_unusual_decisions() -> None:
    """A program that fails as soon as anything is late shrinks to a few late decisions."""
    seen: list[Any] = []

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await _echo_twice()
        return loop.time() - start

    calm = sim.run(timed, choices=sim.ZeroChoices(), latency=(0.0, 0.004)).value

    async def strict() -> None:
        assert await timed() <= calm, "slow"

    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(worlds(latency=(0.0, 0.004)))
    def test(world: Any) -> None:
        seen.append(world)
        world.run(strict)

    with pytest.raises(AssertionError, match="slow") as info:
        test()
    notes = info.value.__notes__
    assert any("sansloop replay token: " in n for n in notes)
    # of the ~18 decisions, the shrunk world keeps only a few unusual ones
    assert 1 <= seen[-1].unusual <= 3, seen[-1].choices.describe()


@settings(max_examples=5, deadline=None, database=None)
@given(st.data())
def test_data_draw_works_as_the_draw(data: Any) -> None:
    source = HypothesisChoices(data.draw)
    assert 0 <= source.choose(3, "poll.order") < 3


def test_worlds_with_faults_draw_a_plan_and_shrink_it() -> None:
    """A program that fails when any fault is planned shrinks to a one-fault plan."""
    plans: list[Any] = []

    async def main(backend: Any) -> int:
        plans.append(backend.faults)
        return len(backend.faults)

    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(worlds(faults=True, hosts={"db": "10.0.0.2"}, horizon=10))
    def test(world: Any) -> None:
        assert world.run(main).value == 0, "a fault was planned"

    with pytest.raises(AssertionError, match="a fault was planned"):
        test()
    assert len(plans[-1]) in (1, 2)  # one fault (a partition or crash also heals)


@settings(max_examples=10, deadline=None, database=None)
@given(worlds(schedule=False))
def test_a_world_without_schedule_or_faults_is_calm(world: Any) -> None:
    world.run(_echo_twice)
    assert world.unusual == 0
