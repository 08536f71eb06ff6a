"""The pytest plugin: --sansloop-seed, the sansloop_sim and sim_loop fixtures, the replay line."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import asyncio

def test_runner(sansloop_sim):
    async def main():
        await asyncio.sleep(3600)
        return "woke"
    result = sansloop_sim.run(main)
    assert result.value == "woke" and result.elapsed >= 3600
    print("SEED", sansloop_sim.seed, result.digest)

def test_loop(sim_loop):
    async def main():
        await asyncio.sleep(60)
        return sim_loop.time()
    assert sim_loop.run_until_complete(main()) >= 60

def test_fails(sansloop_sim):
    assert sansloop_sim.seed < 0
"""


def test_seed_option_header_and_replay_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sim=TESTS)
    result = pytester.runpytest("-p", "no:asyncio", "--sansloop-seed=1234", "-s")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*simulated worlds seeded with --sansloop-seed=1234*",
            "*SEED 1234 *",
            "*sansloop*",
            "*pytest --sansloop-seed=1234 'test_sim.py::test_fails'*",
        ]
    )


def test_same_seed_same_world(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sim=TESTS)
    digests = []
    for _ in range(2):
        result = pytester.runpytest("-p", "no:asyncio", "--sansloop-seed=7", "-s", "-k", "runner")
        result.assert_outcomes(passed=1)
        digests.append([line for line in result.outlines if "SEED" in line])
    assert digests[0] == digests[1] and digests[0]


def test_default_seed_is_random_and_shown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sim=TESTS)
    result = pytester.runpytest("-p", "no:asyncio", "-k", "loop")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*simulated worlds seeded with --sansloop-seed=*"])
