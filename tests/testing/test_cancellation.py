"""sansloop.testing.cancellation: a cancellation lands at each await point, on every loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import sansloop
from sansloop import sim
from sansloop.testing import CancelAt, cancel_at, cancellation_points


def _run_stdlib(main: Any) -> Any:
    return asyncio.run(main())


def _run_loop_mode(main: Any) -> Any:
    return sansloop.run(main())


def _run_sim(main: Any) -> Any:
    return sim.run(main, seed=3).value


RUNNERS = {"full": None, "stdlib": _run_stdlib, "loop": _run_loop_mode, "sim": _run_sim}


class Account:
    """Moves units between two balances across await points (a leak if cancelled badly)."""

    def __init__(self) -> None:
        self.a = 10
        self.b = 0
        self.lock = asyncio.Lock()

    async def move(self, n: int, *, careful: bool) -> None:
        async with self.lock:
            self.a -= n
            try:
                await asyncio.sleep(0)
                await asyncio.sleep(0.001)
            except asyncio.CancelledError:
                if careful:
                    self.a += n  # give it back
                raise
            self.b += n
        await asyncio.sleep(0)


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_every_point_of_a_careful_coroutine_keeps_the_invariant(runner: str) -> None:
    async def scenario(mark: Any) -> None:
        account = Account()
        try:
            await mark(account.move(3, careful=True))
        except asyncio.CancelledError:
            pass
        assert account.a + account.b == 10
        assert not account.lock.locked()

    report = cancellation_points(scenario, run=RUNNERS[runner])
    assert report.points == 3
    assert [o.outcome for o in report.outcomes] == ["cancelled"] * 3
    assert [p.function for p in report.locations] == ["move"] * 3
    assert [p.lineno for p in report.locations] == sorted({p.lineno for p in report.locations})
    assert str(report) == "3 await points: 3 cancelled"


def test_a_careless_coroutine_fails_at_the_point_that_leaks() -> None:
    async def scenario(mark: Any) -> None:
        account = Account()
        try:
            await mark(account.move(3, careful=False))
        except asyncio.CancelledError:
            pass
        assert account.a + account.b == 10, "units lost"

    with pytest.raises(AssertionError, match="units lost") as info:
        cancellation_points(scenario)
    notes = "\n".join(info.value.__notes__)
    assert "cancelled at await point 1 (" in notes
    assert "in move" in notes


def test_an_absorbed_cancellation_is_reported() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        await asyncio.sleep(0)
        return "finished"

    async def scenario(mark: Any) -> None:
        try:
            await mark(stubborn())
        except asyncio.CancelledError:
            pass

    report = cancellation_points(scenario)
    assert [o.outcome for o in report.outcomes] == ["absorbed", "cancelled"]


def test_cancel_at_lands_on_the_awaited_future_and_counts_points() -> None:
    seen: list[Any] = []

    async def waiter(fut: asyncio.Future[int]) -> int:
        await asyncio.sleep(0)
        try:
            return await fut
        except asyncio.CancelledError:
            seen.append(fut.cancelled())
            raise

    async def main() -> None:
        fut = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(cancel_at(waiter(fut), 2))
        with pytest.raises(asyncio.CancelledError):
            await task
        marker = CancelAt(waiter(asyncio.get_running_loop().create_future()), None)
        other = asyncio.create_task(_await(marker))
        await asyncio.sleep(0)
        other.cancel()
        with pytest.raises(asyncio.CancelledError):
            await other
        assert marker.points >= 1 and not marker.delivered

    sansloop.compat.run(main())
    assert seen == [True]


async def _await(marker: CancelAt) -> Any:
    return await marker


def test_bad_input() -> None:
    async def coro() -> None:
        pass

    c = coro()
    with pytest.raises(ValueError, match="k must be a positive int"):
        CancelAt(c, 0)
    c.close()
    with pytest.raises(TypeError, match="a coroutine was expected"):
        CancelAt(42, 1)  # type: ignore[arg-type]

    async def no_mark(mark: Any) -> None:
        pass

    with pytest.raises(RuntimeError, match="never called mark"):
        cancellation_points(no_mark)
