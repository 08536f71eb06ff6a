"""Signals under load: bursts of signals, with and without a thread flood.

Issue #4's figure: 20 bursts of 50 SIGUSR1 plus one SIGTERM each. The SIGUSR1
handler must run at least once per burst (a burst may coalesce into one
delivery, as the kernel allows) and the SIGTERM handler exactly once per
burst, 20 of 20. Then the same while 4 threads flood call_soon_threadsafe and
each burst lands during a 0.3 s busy callback: the case where stdlib 3.12/3.13
lose the signal, because they read signal numbers from the pipe the flood
fills (RELIABILITY.md S10). sansloop's wakeup channel is a flag, so nothing can
crowd a signal out.

The plain bursts run on stdlib asyncio too (the reference). The flood runs on
sansloop only: measured 2026-11-25, stdlib asyncio 3.11.7, 3.12.1 and 3.13.0
lost every signal of all 20 bursts in it, and waiting out 20 lost bursts
would cost CI 100 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import sansloop
import sansloop.compat

BURSTS = 20
PER_BURST = 50
BUSY_SECONDS = 0.3
FLOODERS = 4

LOOPS: dict[str, Callable[[], Any]] = {
    "asyncio": asyncio.new_event_loop,
    "loop": sansloop.new_event_loop,
    "full": sansloop.compat.new_event_loop,
}


def _bursts(loop: Any, *, flood: bool) -> list[tuple[int, int]]:
    """Run the bursts on *loop*; return (SIGUSR1 runs, SIGTERM runs) per burst."""
    usr1: list[int] = []
    term: list[int] = []
    pid = os.getpid()
    stop = threading.Event()
    flooded = [0] * FLOODERS

    def flooder(index: int) -> None:
        while not stop.is_set():
            try:
                loop.call_soon_threadsafe(int)
            except RuntimeError:  # the loop closed under us: we are done
                return
            flooded[index] += 1
            if flooded[index] % 256 == 0:
                time.sleep(0)  # hand the GIL over now and then

    def send_burst() -> None:
        for _ in range(PER_BURST):
            os.kill(pid, signal.SIGUSR1)
        os.kill(pid, signal.SIGTERM)

    def busy_burst() -> None:
        # The loop is blocked while flood handles (and, on stdlib, wakeup
        # bytes) pile up; the burst comes at the end, into the full pile.
        time.sleep(BUSY_SECONDS)
        send_burst()

    async def main() -> list[tuple[int, int]]:
        counts = []
        for _ in range(BURSTS):
            usr1_before, term_before = len(usr1), len(term)
            if flood:
                loop.call_soon(busy_burst)
            else:
                send_burst()
            deadline = loop.time() + 5.0
            while len(term) == term_before and loop.time() < deadline:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)  # a late SIGTERM would show as 2 below
            counts.append((len(usr1) - usr1_before, len(term) - term_before))
        return counts

    loop.add_signal_handler(signal.SIGUSR1, usr1.append, 1)
    loop.add_signal_handler(signal.SIGTERM, term.append, 1)
    threads = [threading.Thread(target=flooder, args=(i,)) for i in range(FLOODERS)]
    try:
        if flood:
            for thread in threads:
                thread.start()
        return loop.run_until_complete(main())  # type: ignore[no-any-return]
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.remove_signal_handler(signal.SIGTERM)
        if flood:
            assert min(flooded) > 0, "a flooder never got to call"


def _check(counts: list[tuple[int, int]]) -> None:
    assert len(counts) == BURSTS
    assert all(usr1 >= 1 for usr1, _ in counts), counts
    assert [term for _, term in counts] == [1] * BURSTS, counts


@pytest.mark.parametrize("kind", list(LOOPS))
def test_signal_bursts_each_seen(kind: str) -> None:
    loop = LOOPS[kind]()
    try:
        _check(_bursts(loop, flood=False))
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["loop", "full"])
def test_signal_bursts_during_a_threadsafe_flood_and_busy_callbacks(kind: str) -> None:
    loop = LOOPS[kind]()
    try:
        _check(_bursts(loop, flood=True))
    finally:
        loop.close()
