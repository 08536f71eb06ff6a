"""The ``sansloop`` command line (``python -m sansloop``).

Subcommands:

``run [--backend NAME] [--debug] SCRIPT [ARGS...]``
    Runs an unmodified asyncio program on sansloop in loop mode: sansloop's
    event loop policy is installed first, so ``asyncio.run()`` and
    ``asyncio.new_event_loop()`` inside the script give sansloop loops (with
    stdlib futures and tasks, as uvloop does). The script runs as
    ``__main__`` with ``sys.argv`` set to ``[SCRIPT, *ARGS]`` and its directory
    first on ``sys.path``, as ``python SCRIPT ARGS...`` would.

``repl [--backend NAME] [--debug] [--mode loop|full]``
    An asyncio REPL on a sansloop loop, like ``python -m asyncio``: top-level
    ``await`` works (:mod:`sansloop.repl`).

``info``
    Prints the sansloop version, the default backend, the backends this
    platform offers and the Python version.

``bench [--full] [--rounds N] [--only NAME]``
    The side-by-side comparison with stdlib asyncio (and uvloop when it is
    importable), printed as a table. The benchmarks live in the source
    checkout's ``benchmarks/`` (not in the installed package): this runs
    ``benchmarks/run.py --quick --no-save`` (its ``main()``, loaded from the
    checkout; it starts a child process per measurement), or exits 2
    saying so when there is no checkout next to the package.

``replay TOKEN TARGET``
    Re-runs a simulated run exactly, from the replay token that
    ``sansloop.sim.run`` printed when it failed, through ``sansloop.sim.replay``.
    TARGET names the coroutine function that run ran: ``path/to/file.py:func``
    or ``package.module:func``. Exit status 0 when the replay completes, 1 when
    it raises (the failure reproduced: its traceback is printed) or diverges
    from the recorded trace; 2 on a bad TARGET or token, or when the simulation
    is not part of this installation.

The contract of :func:`main`: it returns the process exit status (0 on
success; 2 on a usage error or when the script cannot be opened, as
``python`` itself does); the script's own ``SystemExit`` and exceptions
propagate unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import runpy
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

PROG = "sansloop"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sansloop`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="sansloop: asyncio rebuilt as a sans-IO core with pluggable I/O backends.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run an unmodified asyncio program on sansloop (loop mode)",
        description=(
            "Run SCRIPT as __main__ with sansloop's event loop policy installed, so that "
            "asyncio.run() and asyncio.new_event_loop() in it give sansloop loops."
        ),
    )
    _add_backend_and_debug(run, "every loop the script creates")
    run.add_argument("script", metavar="SCRIPT", help="path of the Python script to run")
    run.add_argument(
        "args", metavar="ARGS", nargs=argparse.REMAINDER, help="arguments passed to the script"
    )

    repl = commands.add_parser(
        "repl",
        help="an asyncio REPL on a sansloop loop (top-level await), like python -m asyncio",
        description=(
            "Start an interactive Python console whose statements run on a sansloop loop: "
            "'await' works at top level, tasks keep running between prompts, Ctrl-C cancels "
            "the running statement, Ctrl-D or exit() leaves."
        ),
    )
    _add_backend_and_debug(repl, "the REPL's loop")
    repl.add_argument(
        "--mode",
        choices=("loop", "full"),
        default="loop",
        help="loop: 'asyncio' is the stdlib module on a sansloop loop (default); "
        "full: 'asyncio' is sansloop.compat, every object is sansloop's",
    )

    commands.add_parser(
        "info",
        help="print the version, the backends and the Python version",
        description="Print the sansloop version, the default and available backends, "
        "and the Python version.",
    )

    bench = commands.add_parser(
        "bench",
        help="quick speed comparison with stdlib asyncio (and uvloop if installed), as a table",
        description=(
            "Compare sansloop (loop and full mode) with stdlib asyncio, and uvloop when it is "
            "importable, each benchmark in a fresh process, and print a table of ops/s and "
            "ratios to asyncio. Runs benchmarks/run.py from the source checkout (--quick: tiny "
            "sizes, one round, about 10 s; its figures are indicative only). See "
            "docs/performance.md for how to measure properly."
        ),
    )
    bench.add_argument(
        "--full",
        action="store_true",
        help="full sizes and 5 rounds instead of the quick run (minutes)",
    )
    bench.add_argument("--rounds", type=int, metavar="N", help="number of rounds")
    bench.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this benchmark (repeatable; names: see benchmarks/run.py --help)",
    )

    replay = commands.add_parser(
        "replay",
        help="re-run a failing simulated run from its replay token",
        description=(
            "Re-run, exactly, a run of the deterministic simulation from the replay token "
            "printed when it failed (sansloop.sim.replay)."
        ),
    )
    replay.add_argument("token", metavar="TOKEN", help="the replay token of the failing run")
    replay.add_argument(
        "target",
        metavar="TARGET",
        help="the coroutine function the run ran: path/to/file.py:func or package.module:func "
        "(run with sansloop.sim.run's default options)",
    )
    return parser


def _add_backend_and_debug(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--backend",
        metavar="NAME",
        default=None,
        help=f"I/O backend for {what} (default: the platform's best; see 'sansloop info')",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"turn on asyncio debug mode on {what} (like PYTHONASYNCIODEBUG=1)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sansloop`` and the ``sansloop`` script."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.command == "info":
        return _info()
    if options.command == "repl":
        return _repl(parser, options)
    if options.command == "bench":
        return _bench(options)
    if options.command == "replay":
        return _replay(options.token, options.target)
    return _run(parser, options)


def _check_backend(parser: argparse.ArgumentParser, name: str | None) -> None:
    """A usage error (exit 2) unless backend *name* can be made here."""
    from .backends import get_backend

    if name is not None:
        try:
            get_backend(name).close()
        except (ValueError, ImportError, OSError) as exc:
            parser.error(f"backend {name!r} cannot be used here: {exc}")


def _repl(parser: argparse.ArgumentParser, options: Any) -> int:
    from .repl import run_repl

    _check_backend(parser, options.backend)
    return run_repl(options.backend, debug=options.debug, mode=options.mode)


#: Where ``bench`` finds the benchmarks: the source checkout next to the package
#: (``src/`` is the package, so its parent is the checkout).
BENCH_RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def _bench(options: Any) -> int:
    if not BENCH_RUNNER.is_file():
        print(
            f"{PROG} bench: the benchmarks are not installed with the package; they live in "
            f"the source checkout's benchmarks/ (looked for {BENCH_RUNNER}). Run it from "
            "an editable install of a checkout (pip install -e .).",
            file=sys.stderr,
        )
        return 2
    argv = ["--no-save"]
    if not options.full:
        argv.append("--quick")
    if options.rounds is not None:
        argv += ["--rounds", str(options.rounds)]
    for name in options.only:
        argv += ["--only", name]
    # run.py is the perf tooling's entry (it starts one child process per run);
    # loaded from the checkout and called in this process.
    spec = importlib.util.spec_from_file_location("sansloop_bench_run", BENCH_RUNNER)
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    status = runner.main(argv)
    return status if isinstance(status, int) else 0


def _load_target(target: str) -> Any:
    """The function TARGET names (``file.py:func`` or ``module:func``)."""
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ValueError(f"TARGET must be path/to/file.py:func or module:func, not {target!r}")
    if where.endswith(".py") or os.sep in where:
        if not os.path.exists(where):
            raise ValueError(f"no such file: {where!r}")
        sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
        namespace = runpy.run_path(where, run_name="__sansloop_replay__")
    else:
        namespace = runpy.run_module(where, run_name="__sansloop_replay__", alter_sys=False)
    if name not in namespace:
        raise ValueError(f"{where!r} has no {name!r}")
    return namespace[name]


def _replay(token: str, target: str) -> int:
    try:
        from . import sim  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        sim = None
    if getattr(sim, "replay", None) is None:
        print(
            f"{PROG} replay: the deterministic simulation (sansloop.sim.replay) is not "
            f"available in this installation of sansloop, so token {token!r} cannot be "
            "replayed.",
            file=sys.stderr,
        )
        return 2
    try:
        sim.decode_token(token)
        main = _load_target(target)
    except (ValueError, ImportError) as exc:
        print(f"{PROG} replay: {exc}", file=sys.stderr)
        return 2
    try:
        result = sim.replay(token, main)
    except sim.SimulationError as exc:
        print(f"{PROG} replay: {exc}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - the replayed failure: show it as Python would
        traceback.print_exc()
        print(f"{PROG} replay: the replayed run raised (above)", file=sys.stderr)
        return 1
    print(f"replayed: {result.value!r}")
    print(f"virtual time: {result.elapsed:.6f} s")
    print(f"trace digest: {result.digest}")
    return 0


def _info() -> int:
    from . import __version__
    from .backends import available_backends, default_backend, get_backend

    usable = []
    for name in available_backends():
        try:
            backend = get_backend(name)
        except (ImportError, ValueError, OSError):
            continue
        backend.close()
        usable.append(name)
    try:
        default = default_backend()
    except RuntimeError as exc:
        default_name = f"none ({exc})"
    else:
        default_name = default.name
        default.close()
    print(f"sansloop {__version__}")
    print(f"default backend: {default_name}")
    print(f"available backends: {', '.join(usable) if usable else 'none'}")
    print(f"python: {platform.python_implementation()} {platform.python_version()}")
    print(f"platform: {sys.platform}")
    return 0


class _CliPolicy:
    """Builds the policy ``run`` installs: a backend by name, debug on or off."""

    def __init__(self, backend_name: str | None, debug: bool) -> None:
        self.backend_name = backend_name
        self.debug = debug

    def make(self) -> asyncio.AbstractEventLoopPolicy:
        from .backends import get_backend
        from .compat.policy import EventLoopPolicy

        name = self.backend_name
        debug = self.debug
        factory = (lambda: get_backend(name)) if name is not None else None

        class Policy(EventLoopPolicy):
            def new_event_loop(self) -> asyncio.AbstractEventLoop:
                loop = super().new_event_loop()
                if debug:
                    loop.set_debug(True)
                return loop

        return Policy(factory)


def _run(parser: argparse.ArgumentParser, options: Any) -> int:
    _check_backend(parser, options.backend)
    script = options.script
    if not os.path.exists(script):
        print(
            f"{PROG}: can't open file {script!r}: [Errno 2] No such file or directory",
            file=sys.stderr,
        )
        return 2
    policy = _CliPolicy(options.backend, options.debug).make()
    saved_argv = sys.argv[:]
    saved_path = sys.path[:]
    saved_policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)
    sys.argv = [script, *options.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        asyncio.set_event_loop_policy(saved_policy)
    return 0
