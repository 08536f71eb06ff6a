"""Smoke test of the benchmarks: every body, tiny size, in every mode.

Each benchmark body runs once with a tiny size on stdlib asyncio, on sansloop in
loop mode (stdlib Task/Future on our loop) and in full mode (``sansloop.compat``
as the body's ``asyncio``), and must return the op count a correct run returns
(the bodies also check their own results: ordering, counts, mutual exclusion).
No timing is asserted here; ``benchmarks/run.py`` measures.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

BENCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"sansloop_benchmarks_{name}", BENCH_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child = _load("child")
micro = sys.modules["micro"]  # child.py imports the bodies as ``micro``
run = _load("run")

MODES = ("asyncio", "sansloop-loop", "sansloop-full")
SMALL = 200


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(micro.BENCHMARKS))
def test_body_returns_expected_ops(name: str, mode: str) -> None:
    bench = micro.BENCHMARKS[name]
    aio, runner = child.runner_for(mode)
    assert runner(bench.body(aio, SMALL)) == bench.ops(SMALL)


@pytest.mark.parametrize("mode", MODES)
def test_measure_reports_figures(mode: str) -> None:
    bench = micro.BENCHMARKS["task_gather"]
    aio, runner = child.runner_for(mode)
    result = runner(child.measure(aio, bench, SMALL))
    assert result["ops"] == SMALL
    assert result["wall"] > 0 and result["cpu"] >= 0


def test_full_mode_body_uses_sansloop_objects() -> None:
    """In full mode the body's tasks and futures are sansloop's, not the stdlib's."""
    import asyncio

    aio, runner = child.runner_for("sansloop-full")
    seen: list[type] = []

    async def probe() -> None:
        seen.append(type(aio.create_task(aio.sleep(0))))
        seen.append(type(aio.get_running_loop().create_future()))
        await aio.sleep(0)

    runner(probe())
    assert asyncio.Task not in seen and asyncio.Future not in seen


def test_rotations_put_each_impl_first_once() -> None:
    impls = ["a", "b", "c"]
    orders = [run.rotations(impls, r) for r in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]


def test_summary_ratios_are_per_round() -> None:
    records = [
        # round 0: x twice as fast as asyncio; round 1: x equal; round 2: x half as fast
        {"round": 0, "bench": "b", "impl": "asyncio", "ops": 100, "wall": 1.0, "cpu": 1.0},
        {"round": 0, "bench": "b", "impl": "x", "ops": 100, "wall": 0.5, "cpu": 0.5},
        {"round": 1, "bench": "b", "impl": "asyncio", "ops": 100, "wall": 2.0, "cpu": 1.0},
        {"round": 1, "bench": "b", "impl": "x", "ops": 100, "wall": 2.0, "cpu": 1.0},
        {"round": 2, "bench": "b", "impl": "asyncio", "ops": 100, "wall": 1.0, "cpu": 1.0},
        {"round": 2, "bench": "b", "impl": "x", "error": "boom"},
    ]
    rows = {r["impl"]: r for r in run.summarise(records, ["asyncio", "x"], ["b"])}
    assert rows["x"]["ratio_wall"] == [2.0, 1.0]
    assert rows["x"]["ratio_cpu"] == [2.0, 1.0]
    assert rows["x"]["errors"] == ["boom"]
    assert rows["x"]["runs"] == 2
    assert rows["asyncio"]["ops_per_s"] == 100.0


def test_runner_quick_end_to_end() -> None:
    """run.py --quick runs children in fresh processes and prints one row per implementation."""
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / "run.py"),
            "--quick",
            "--only",
            "call_soon",
            "--impls",
            ",".join(MODES),
            "--no-save",
        ],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| call_soon |")]
    assert [row.split("|")[2].strip() for row in rows] == list(MODES)
    assert not any("failed" in row for row in rows)
    assert "GC disabled in the timed region" in proc.stdout
