"""Run one benchmark once, in one implementation, and print one JSON line.

Usage: ``python benchmarks/child.py BENCH IMPL [--size N] [--profile TOP]``

Benchmarks: ``micro.py``, ``udp_echo.py``, ``tcp_echo.py`` and ``http_bench.py``.

Implementations
---------------
``asyncio``        stdlib asyncio, its default loop.
``sansloop-loop``  loop mode: stdlib asyncio's Task/Future on ``sansloop.new_event_loop``
                   (``asyncio.run(..., loop_factory=...)``; ``asyncio.Runner`` on 3.11).
``sansloop-full``  full mode: the body gets ``sansloop.compat`` as its ``asyncio`` and
                   runs under ``sansloop.compat.run``.
``uvloop``         stdlib asyncio on ``uvloop.new_event_loop`` (if importable).

Method
------
Inside one running loop: a warm-up run of the body at the full size (so the
allocator has already faulted in the memory the timed run needs: a cold process
pays page faults that have nothing to do with the loop), then
``gc.collect()``, GC disabled, the timed run (``time.perf_counter`` for wall,
``time.process_time`` for this process's CPU), GC re-enabled. Only the timed run
is reported. The JSON line holds: ``bench``, ``impl``, ``size``, ``ops``, ``wall``
and ``cpu`` (seconds, timed region), ``page_faults`` (minor faults in it), ``process_cpu`` (the whole process, startup
included), ``gc_disabled`` (always true), ``python``; for the echo benchmarks with
a load client in another process (``tcp_echo.py``), ``client``: that client's own
report of its timed run (its CPU seconds among it). On a failure the line holds ``error``
instead of the figures and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_bench import BENCHMARKS as HTTP  # noqa: E402
from micro import BENCHMARKS, Benchmark  # noqa: E402
from tcp_echo import BENCHMARKS as TCP  # noqa: E402
from udp_echo import BENCHMARKS as UDP  # noqa: E402

BENCHMARKS = {**BENCHMARKS, **UDP, **TCP, **HTTP}

IMPLS = ("asyncio", "sansloop-loop", "sansloop-full", "uvloop")


def _run_with_loop_factory(coro: Coroutine[Any, Any, Any], factory: Callable[[], Any]) -> Any:
    if sys.version_info >= (3, 12):
        return asyncio.run(coro, loop_factory=factory)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def runner_for(impl: str) -> tuple[Any, Callable[[Coroutine[Any, Any, Any]], Any]]:
    """The module a body should use as ``asyncio`` and the function that runs main."""
    if impl == "asyncio":
        return asyncio, asyncio.run
    if impl == "sansloop-loop":
        import sansloop

        factory = sansloop.new_event_loop  # resolved now: fail before a coroutine exists
        return asyncio, lambda coro: _run_with_loop_factory(coro, factory)
    if impl == "sansloop-full":
        import sansloop.compat

        return sansloop.compat, sansloop.compat.run
    if impl == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
        return asyncio, lambda coro: _run_with_loop_factory(coro, factory)
    raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLS}")


async def measure(aio: Any, bench: Benchmark, size: int, profiler: Any = None) -> dict[str, Any]:
    """Warm up, then time one run of *bench* with GC disabled (profiled if asked)."""
    warm = size
    got = await bench.body(aio, warm)
    if got != bench.ops(warm):
        raise AssertionError(f"warm-up returned {got} ops, expected {bench.ops(warm)}")
    # a body with a load client in another process leaves its report here
    client = getattr(sys.modules.get(bench.body.__module__), "CLIENT_REPORT", None)
    if client is not None:
        client.clear()
    gc.collect()
    gc.disable()
    try:
        if profiler is not None:
            profiler.enable()
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        ops = await bench.body(aio, size)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
        if profiler is not None:
            profiler.disable()
    finally:
        gc.enable()
    if ops != bench.ops(size):
        raise AssertionError(f"run returned {ops} ops, expected {bench.ops(size)}")
    result = {"ops": ops, "wall": wall, "cpu": cpu, "page_faults": faults}
    if client:
        result["client"] = dict(client)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=sorted(BENCHMARKS))
    parser.add_argument("impl", choices=IMPLS)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="profile the timed run with cProfile and print its top N functions to stderr",
    )
    args = parser.parse_args(argv)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    bench = BENCHMARKS[args.bench]
    size = args.size if args.size is not None else bench.size
    try:
        aio, run = runner_for(args.impl)
        result = run(measure(aio, bench, size, profiler))
    except BaseException as exc:  # report any failure as data, then fail
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        at = (
            f" (at {os.path.basename(where.tb_frame.f_code.co_filename)}:{where.tb_lineno})"
            if where is not None
            else ""
        )
        print(
            json.dumps(
                {
                    "bench": bench.name,
                    "impl": args.impl,
                    "error": f"{type(exc).__name__}: {exc}{at}",
                }
            )
        )
        traceback.print_exc()
        return 1
    result.update(
        bench=bench.name,
        impl=args.impl,
        size=size,
        process_cpu=time.process_time(),
        gc_disabled=True,
        python=sys.version.split()[0],
    )
    print(json.dumps(result))
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
