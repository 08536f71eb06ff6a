"""Smoke test of benchmarks/udp_echo.py: each body, tiny size, in every mode.

The bodies check their own results (every datagram back, intact, once); here
they must also return the op count. No timing is asserted (``run.py`` measures).
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
        sys.path.insert(0, str(BENCH_DIR))  # the bodies import ``micro`` as run.py does
    spec = importlib.util.spec_from_file_location(
        f"sansloop_benchmarks_{name}", BENCH_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


child = _load("child")
udp_echo = _load("udp_echo")


@pytest.mark.parametrize("mode", ["asyncio", "sansloop-loop", "sansloop-full"])
@pytest.mark.parametrize("name", sorted(udp_echo.BENCHMARKS))
def test_udp_echo_body_returns_expected_ops(name: str, mode: str) -> None:
    bench = udp_echo.BENCHMARKS[name]
    aio, runner = child.runner_for(mode)
    assert runner(bench.body(aio, bench.quick)) == bench.ops(bench.quick)
