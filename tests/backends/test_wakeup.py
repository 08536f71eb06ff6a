"""The wakeup channel: a flag over one fd, for each kind this platform has."""

from __future__ import annotations

import os
import select
import threading

import pytest

from sansloop.backends.wakeup import KINDS, Wakeup, best_kind

AVAILABLE = [k for k in KINDS if k != "eventfd" or hasattr(os, "eventfd")]


def readable(w: Wakeup) -> bool:
    return bool(select.select([w.fileno()], [], [], 0)[0])


@pytest.fixture(params=AVAILABLE)
def wakeup(request: pytest.FixtureRequest) -> Wakeup:
    w = Wakeup(request.param)
    yield w
    w.close()


def test_default_kind_is_the_best_one() -> None:
    expected = "eventfd" if hasattr(os, "eventfd") else "pipe" if os.name == "posix" else "socket"
    assert best_kind() == expected
    w = Wakeup()
    try:
        assert w.kind == expected
    finally:
        w.close()
    with pytest.raises(ValueError, match="unknown wakeup kind"):
        Wakeup("carrier-pigeon")


def test_wakeup_makes_fd_readable_and_drain_clears(wakeup: Wakeup) -> None:
    assert not readable(wakeup) and not wakeup.pending
    wakeup.wakeup()
    assert readable(wakeup) and wakeup.pending
    wakeup.drain()
    assert not readable(wakeup) and not wakeup.pending
    assert wakeup.writes == 1


def test_a_flood_costs_one_write(wakeup: Wakeup) -> None:
    for _ in range(100_000):
        wakeup.wakeup()
    assert wakeup.writes == 1
    wakeup.drain()
    wakeup.wakeup()
    assert wakeup.writes == 2


def test_threaded_flood_costs_at_most_one_write_per_thread(wakeup: Wakeup) -> None:
    barrier = threading.Barrier(8)

    def flood() -> None:
        barrier.wait(10)
        for _ in range(1250):
            wakeup.wakeup()

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert 1 <= wakeup.writes <= 8
    wakeup.drain()
    assert not readable(wakeup)


def test_never_blocks_or_raises_when_fd_is_full(wakeup: Wakeup) -> None:
    # Clearing the flag without draining (what a racing drain can do once)
    # would make a naive self-pipe fill up; a full fd must not block or raise.
    for _ in range(200_000):
        wakeup.wakeup()
        wakeup.pending = False
    assert readable(wakeup)
    assert wakeup.writes >= 1
    wakeup.drain()
    assert not readable(wakeup)


def test_fds_are_cloexec_and_nonblocking(wakeup: Wakeup) -> None:
    fds = {wakeup.fileno(), wakeup._wfd}
    for fd in fds:
        assert not os.get_inheritable(fd)
        assert not os.get_blocking(fd)


def test_close_is_idempotent_and_later_wakeups_are_noops(wakeup: Wakeup) -> None:
    wakeup.close()
    wakeup.close()
    assert wakeup.closed and wakeup.fileno() == -1
    wakeup.wakeup()
    assert wakeup.writes == 0
    assert "closed" in repr(wakeup)


def test_close_closes_both_fds(wakeup: Wakeup) -> None:
    fds = {wakeup.fileno(), wakeup._wfd}
    wakeup.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_statistics(wakeup: Wakeup) -> None:
    wakeup.wakeup()
    assert wakeup.statistics() == {"kind": wakeup.kind, "pending": True, "writes": 1}
