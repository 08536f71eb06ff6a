"""Smoke test of benchmarks/scaling.py: each kind of point at a tiny size, in every mode.

Each point function must return its op count with positive timings, and the
summary must compute per-round ratios; the idle point really holds its idle
connections (the body raises if any dropped). No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

BENCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(
        f"sansloop_benchmarks_{name}", BENCH_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child = _load("child")
scaling = _load("scaling")
tcp_echo = sys.modules["tcp_echo"]
MODES = ("asyncio", "sansloop-loop", "sansloop-full")


@pytest.mark.parametrize("mode", MODES)
def test_timer_point(mode: str) -> None:
    aio, runner = child.runner_for(mode)
    result = runner(scaling.point_timers(aio, 500, 300))
    assert result["ops"] == 300 and result["cpu"] >= 0 and result["wall"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_idle_point(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_echo, "CLIENT", "python")  # no compiler needed
    aio, runner = child.runner_for(mode)
    result = runner(scaling.point_idle(aio, 20, 40))
    assert result["ops"] == 40 and result["wall"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_memory_point(mode: str) -> None:
    aio, runner = child.runner_for(mode)
    result = runner(scaling.point_memory(aio, 50, 200))
    assert set(result) == {"bytes_per_conn", "bytes_per_task"}


def test_summary_ratios_and_growth() -> None:
    records = [
        {"kind": "timers", "point": p, "impl": impl, "round": 0, "ops": 10, "cpu": cpu, "wall": 1.0}
        for p, impl, cpu in (
            (1000, "asyncio", 2.0),
            (1000, "sansloop-loop", 1.0),
            (10000, "asyncio", 2.0),
            (10000, "sansloop-loop", 4.0),
        )
    ]
    rows = scaling.summarise(records, ["asyncio", "sansloop-loop"])
    mine = {(r["point"], r["impl"]): r for r in rows}
    assert mine[(1000, "sansloop-loop")]["ratio_cpu"] == [2.0]
    assert mine[(10000, "sansloop-loop")]["ratio_cpu"] == [0.5]
    text = scaling.format_tables(rows)
    assert "| 10,000 | sansloop-loop |" in text and "4.00x |" in text  # growth vs own N=1e3
