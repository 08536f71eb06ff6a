"""The sansloop pytest plugin: simulated loops seeded from ``--sansloop-seed``.

Contract
--------
Registered under the ``pytest11`` entry point, so installing sansloop makes
it available (disable it with ``-p no:sansloop``). It adds:

- the option ``--sansloop-seed=N``: the seed of every simulated world the
  fixtures make in this session. Without it a random seed is chosen once per
  session. The seed is shown in pytest's header, and in a section of each
  failing test's report that used a fixture, with the command that replays it;
- the fixture ``sansloop_sim``: a :class:`SimRunner` for the test, whose
  ``run(main, **options)`` is ``sansloop.sim.run(main, seed=<the seed>, ...)``
  and whose ``backend(**options)`` makes a seeded ``SimBackend``;
- the fixture ``sim_loop``: an event loop (loop mode: stdlib tasks on
  sansloop) on a seeded ``SimBackend``, closed after the test. Drive it with
  ``sim_loop.run_until_complete(...)``; ``sim_loop.time()`` is virtual.

Importing this module imports neither hypothesis nor the simulation; the
fixtures import the simulation when used.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["SimRunner"]

_SEED_KEY = pytest.StashKey[int]()
_USED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sansloop", "sansloop simulated worlds")
    group.addoption(
        "--sansloop-seed",
        action="store",
        type=int,
        default=None,
        metavar="N",
        help="seed of the simulated worlds of the sansloop_sim / sim_loop fixtures "
        "(default: random, printed in the header and on failure)",
    )


def pytest_configure(config: pytest.Config) -> None:
    seed = config.getoption("sansloop_seed", None)
    if seed is None:
        # The one choice made without a seed: which seed. Printed so it replays.
        seed = random.SystemRandom().randrange(1 << 32)
    config.stash[_SEED_KEY] = seed


def pytest_report_header(config: pytest.Config) -> str:
    return f"sansloop: simulated worlds seeded with --sansloop-seed={config.stash[_SEED_KEY]}"


def session_seed(config: pytest.Config) -> int:
    """The seed of this session's simulated worlds."""
    return config.stash[_SEED_KEY]


class SimRunner:
    """Runs coroutine functions in simulated worlds seeded with :attr:`seed`."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        #: the results of the runs made, in order
        self.results: list[Any] = []

    def run(self, main: Any, **options: Any) -> Any:
        """``sansloop.sim.run(main, seed=self.seed, **options)`` (a SimResult)."""
        from sansloop import sim

        options.setdefault("seed", self.seed)
        result = sim.run(main, **options)
        self.results.append(result)
        return result

    def backend(self, **options: Any) -> Any:
        """A ``SimBackend`` seeded with :attr:`seed` (close it, or hand it to a loop)."""
        from sansloop.sim import SimBackend

        options.setdefault("seed", self.seed)
        return SimBackend(**options)

    def __repr__(self) -> str:
        return f"<SimRunner seed={self.seed}>"


@pytest.fixture
def sansloop_sim(request: pytest.FixtureRequest) -> SimRunner:
    """A runner of simulated worlds seeded from ``--sansloop-seed``."""
    request.node.stash[_USED_KEY] = session_seed(request.config)
    return SimRunner(session_seed(request.config))


@pytest.fixture
def sim_loop(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A loop-mode sansloop loop on a ``SimBackend`` seeded from ``--sansloop-seed``."""
    import sansloop
    from sansloop.sim import SimBackend

    seed = session_seed(request.config)
    request.node.stash[_USED_KEY] = seed
    loop = sansloop.new_event_loop(backend=SimBackend(seed=seed))
    try:
        yield loop
    finally:
        try:
            if not loop.is_closed():
                _cancel_leftovers(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _cancel_leftovers(loop: Any) -> None:
    import asyncio

    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    seed = item.stash.get(_USED_KEY, None)
    if seed is not None and report.failed:
        report.sections.append(
            (
                "sansloop",
                f"simulated worlds seeded with {seed}; replay with:\n"
                f"    pytest --sansloop-seed={seed} '{item.nodeid}'",
            )
        )
    return report
