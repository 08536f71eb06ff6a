"""The ``sansloop`` command line (``python -m sansloop``).

Two subcommands:

``run [--backend NAME] [--debug] SCRIPT [ARGS...]``
    Runs an unmodified asyncio program on sansloop in loop mode: sansloop's
    event loop policy is installed first, so ``asyncio.run()`` and
    ``asyncio.new_event_loop()`` inside the script give sansloop loops (with
    stdlib futures and tasks, as uvloop does). The script runs as
    ``__main__`` with ``sys.argv`` set to ``[SCRIPT, *ARGS]`` and its directory
    first on ``sys.path``, as ``python SCRIPT ARGS...`` would.

``info``
    Prints the sansloop version, the default backend, the backends this
    platform offers and the Python version.

The contract of :func:`main`: it returns the process exit status (0 on
success; 2 on a usage error or when the script cannot be opened, as
``python`` itself does); the script's own ``SystemExit`` and exceptions
propagate unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import runpy
import sys
from collections.abc import Sequence
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
    run.add_argument(
        "--backend",
        metavar="NAME",
        default=None,
        help="I/O backend for every loop the script creates (default: the platform's best; "
        "see 'sansloop info')",
    )
    run.add_argument(
        "--debug",
        action="store_true",
        help="turn on asyncio debug mode on every loop the script creates "
        "(like PYTHONASYNCIODEBUG=1)",
    )
    run.add_argument("script", metavar="SCRIPT", help="path of the Python script to run")
    run.add_argument(
        "args", metavar="ARGS", nargs=argparse.REMAINDER, help="arguments passed to the script"
    )

    commands.add_parser(
        "info",
        help="print the version, the backends and the Python version",
        description="Print the sansloop version, the default and available backends, "
        "and the Python version.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sansloop`` and the ``sansloop`` script."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.command == "info":
        return _info()
    return _run(parser, options)


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
    from .backends import get_backend

    if options.backend is not None:
        try:
            get_backend(options.backend).close()
        except (ValueError, ImportError, OSError) as exc:
            parser.error(f"backend {options.backend!r} cannot be used here: {exc}")
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
