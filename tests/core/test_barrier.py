"""Barrier: behaviour against asyncio, and the state table walked pair by pair."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sansloop.core import barriers
from sansloop.core.barriers import BarrierState


async def turn(n: int = 1) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def extra(barrier: object) -> str:
    text = repr(barrier)
    assert text.startswith("<") and " object at 0x" in text and text.endswith("]>"), text
    return text[text.index(" [") + 2 : -2]


def test_parties_must_be_positive(sync_impl):
    for bad in (0, -3):
        with pytest.raises(ValueError, match=r"^parties must be > 0$"):
            sync_impl.Barrier(bad)


def test_trip_returns_arrival_indices_and_repr_follows(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(3)
        assert extra(barrier) == "filling, waiters:0/3"
        assert (barrier.parties, barrier.n_waiting, barrier.broken) == (3, 0, False)
        first = [asyncio.create_task(barrier.wait()) for _ in range(2)]
        await turn()
        assert barrier.n_waiting == 2
        assert extra(barrier) == "filling, waiters:2/3"
        last = await barrier.wait()
        assert last == 2
        assert extra(barrier) == "draining, waiters:0/3"
        assert await asyncio.gather(*first) == [0, 1]
        assert extra(barrier) == "filling, waiters:0/3"

    run(main())


def test_single_party_barrier_never_blocks(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(1)
        assert [await barrier.wait() for _ in range(3)] == [0, 0, 0]

    run(main())


def test_barrier_is_reusable_across_cycles(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(4)
        rounds = []

        async def runner(name):
            mine = []
            for _ in range(3):
                mine.append(await barrier.wait())
            rounds.append((name, mine))

        await asyncio.gather(*(runner(n) for n in range(4)))
        # every cycle hands out each index exactly once
        for cycle in range(3):
            assert sorted(mine[cycle] for _, mine in rounds) == [0, 1, 2, 3]
        assert barrier.n_waiting == 0 and not barrier.broken

    run(main())


def test_async_with_gives_the_index(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(2)

        async def enter():
            async with barrier as index:
                return index

        assert sorted(await asyncio.gather(enter(), enter())) == [0, 1]

    run(main())


def test_newcomer_during_draining_waits_for_the_next_cycle(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(2)
        early = asyncio.create_task(barrier.wait())
        await turn()
        tripper = asyncio.create_task(barrier.wait())
        newcomer = asyncio.create_task(barrier.wait())
        # `tripper` trips the barrier; `early` has not left yet, so the barrier
        # drains and `newcomer` must wait at the gate.
        assert sorted(await asyncio.gather(early, tripper)) == [0, 1]
        await turn(2)
        assert not newcomer.done()
        assert barrier.n_waiting == 1
        assert await barrier.wait() == 1
        assert await newcomer == 0

    run(main())


def test_abort_breaks_waiters_and_later_arrivals(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(3)
        waiters = [asyncio.create_task(barrier.wait()) for _ in range(2)]
        await turn()
        await barrier.abort()
        assert barrier.broken
        assert extra(barrier) == "broken"
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert [type(r) for r in results] == [asyncio.BrokenBarrierError] * 2
        assert [str(r) for r in results] == ["Abort or reset of barrier"] * 2
        with pytest.raises(asyncio.BrokenBarrierError, match=r"^Barrier aborted$"):
            await barrier.wait()
        assert barrier.n_waiting == 0
        await barrier.reset()
        assert not barrier.broken
        assert extra(barrier) == "filling, waiters:0/3"

    run(main())


def test_reset_breaks_current_waiters_then_refills(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(2)
        waiter = asyncio.create_task(barrier.wait())
        await turn()
        await barrier.reset()
        assert extra(barrier) == "resetting, waiters:0/2"
        with pytest.raises(asyncio.BrokenBarrierError, match="Abort or reset"):
            await waiter
        assert extra(barrier) == "filling, waiters:0/2"
        assert sorted(await asyncio.gather(barrier.wait(), barrier.wait())) == [0, 1]

    run(main())


def test_reset_of_an_empty_barrier_is_a_no_op(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(2)
        await barrier.reset()
        assert extra(barrier) == "filling, waiters:0/2"

    run(main())


def test_cancelled_waiter_leaves_the_count(sync_impl, run):
    async def main():
        barrier = sync_impl.Barrier(2)
        waiter = asyncio.create_task(barrier.wait())
        await turn()
        assert barrier.n_waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert barrier.n_waiting == 0
        assert sorted(await asyncio.gather(barrier.wait(), barrier.wait())) == [0, 1]

    run(main())


def test_statistics(run):
    async def main():
        barrier = barriers.Barrier(2)
        waiter = asyncio.create_task(barrier.wait())
        await turn()
        assert barrier.statistics() == barriers.BarrierStatistics(
            parties=2, n_waiting=1, state=BarrierState.FILLING, broken=False
        )
        await barrier.abort()
        with pytest.raises(asyncio.BrokenBarrierError):
            await waiter
        assert barrier.statistics() == barriers.BarrierStatistics(2, 0, BarrierState.BROKEN, True)

    run(main())


def test_state_values_are_asyncio_s_repr_words():
    assert [s.value for s in BarrierState] == ["filling", "draining", "resetting", "broken"]


def test_state_table_covers_every_reachable_pair():
    table = barriers._NEXT_STATE
    inputs = list(barriers._Input)
    expected_missing = {
        (state, barriers._Input.TRIP) for state in BarrierState if state is not BarrierState.FILLING
    }
    missing = {pair for pair in itertools.product(BarrierState, inputs) if pair not in table}
    assert missing == expected_missing
    # aborting always breaks; resetting an empty barrier always refills
    for state in BarrierState:
        assert table[state, barriers._Input.ABORT] is BarrierState.BROKEN
        assert table[state, barriers._Input.RESET_IDLE] is BarrierState.FILLING
        assert table[state, barriers._Input.RESET_BUSY] is BarrierState.RESETTING
    assert table[BarrierState.BROKEN, barriers._Input.EMPTIED] is BarrierState.BROKEN
