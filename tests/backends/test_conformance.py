"""Run the backend conformance suite against every backend available here.

Each readiness backend runs with its default wakeup channel, and the fallback
channels (self-pipe, socketpair) run under the poll backend so they are
covered on Linux too.
"""

from __future__ import annotations

import selectors

import pytest

from sansloop.backends import available_backends, get_backend
from sansloop.backends.conformance import BackendConformance, run
from sansloop.backends.poll import PollBackend
from sansloop.backends.selectors import SelectorsBackend
from sansloop.backends.wakeup import Wakeup

# Every name the platform lists must load: kqueue is listed on BSD/macOS and
# has no backend module yet, so this fails there until it does.
LOADABLE = available_backends()


def test_every_listed_backend_loads() -> None:
    for name in LOADABLE:
        backend = get_backend(name)
        try:
            assert backend.name == name
        finally:
            backend.close()


for _name in LOADABLE:
    globals()[f"TestConformance_{_name}"] = type(
        f"TestConformance_{_name}",
        (BackendConformance,),
        {"factory": staticmethod(lambda _name=_name: get_backend(_name))},
    )


class TestConformance_poll_with_pipe_wakeup(BackendConformance):
    factory = staticmethod(lambda: PollBackend(wakeup=Wakeup("pipe")))


class TestConformance_poll_with_socket_wakeup(BackendConformance):
    factory = staticmethod(lambda: PollBackend(wakeup=Wakeup("socket")))


class TestConformance_selectors_over_select(BackendConformance):
    """The Windows configuration: select.select and a socketpair wakeup."""

    factory = staticmethod(lambda: SelectorsBackend(selectors.SelectSelector()))


class TestConformance_selectors_over_poll(BackendConformance):
    factory = staticmethod(lambda: SelectorsBackend(selectors.PollSelector()))


# -- the suite must be able to fail: broken backends it has to catch ---------


class _LostWakeups(PollBackend):
    def wakeup(self) -> None:
        pass


class _RoundsDown(PollBackend):
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is not None and 0 < timeout < 1:
            timeout = int(timeout * 1e3) / 1e3  # truncate to whole ms: fires early
        return super().poll(timeout)


class _LeaksWakeupFd(PollBackend):
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        pending = self._wakeup.pending
        ready = super().poll(timeout)
        return ready + [(self._wakeup_fd, 1)] if pending else ready


class _EdgeTriggered(PollBackend):
    """Reports a readable fd once, until it is modified: edge, not level."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[int] = set()

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        ready = [(fd, ev) for fd, ev in super().poll(timeout) if fd not in self._seen]
        self._seen.update(fd for fd, ev in ready if ev & 1)
        return ready


class _UnregisterIgnoresUnknown(PollBackend):
    def unregister(self, fd: int) -> None:
        if fd in self._interest:
            super().unregister(fd)


def _failures(factory: object) -> set[str]:
    return {name for name, error in run(factory) if error is not None}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("broken", "caught_by"),
    [
        (
            _LostWakeups,
            {
                "test_wakeup_before_poll",
                "test_wakeup_is_consumed",
                "test_wakeup_from_thread_unblocks_poll_none",
                "test_wakeup_flood_from_threads",
            },
        ),
        (_RoundsDown, {"test_short_timeouts_never_early"}),
        (_LeaksWakeupFd, {"test_wakeup_before_poll", "test_wakeup_is_consumed"}),
        (_EdgeTriggered, {"test_level_triggered", "test_unregister_stops_reports"}),
        (_UnregisterIgnoresUnknown, {"test_unregister_unknown_raises_keyerror"}),
    ],
)
def test_suite_catches_broken_backends(broken: type, caught_by: set[str]) -> None:
    failed = _failures(broken)
    assert caught_by <= failed
    assert "test_read_readiness" not in failed


@pytest.mark.parametrize("name", LOADABLE)
def test_run_reports_all_checks_passing(name: str) -> None:
    results = run(lambda: get_backend(name))
    assert len(results) >= 30
    assert [(check, error) for check, error in results if error is not None] == []
