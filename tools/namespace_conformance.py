"""Run CPython's own tests of the task API against ``sansloop.compat`` as ``asyncio``.

    python tools/namespace_conformance.py test_timeouts [test_taskgroups ...]
    python tools/namespace_conformance.py --json test_waitfor
    python tools/namespace_conformance.py --impl asyncio test_timeouts   # the harness on stock asyncio

"Namespace mode", next to tools/conformance.py's class and loop modes: each
test module of ``test.test_asyncio`` (as installed with the interpreter that
runs this) is imported with its module-level ``asyncio`` replaced by
``sansloop.compat`` -- and ``tasks``, ``taskgroups``, ``timeouts``,
``runners``, where the test imported those, by the stdlib module overlaid
with the names sansloop's compat module of that name exports -- and
``unittest.IsolatedAsyncioTestCase`` runs each test through
``sansloop.compat.Runner``. So the test's ``asyncio.wait_for``,
``asyncio.TaskGroup``, ``asyncio.timeout``, ``asyncio.run``... are ours, and
so is the loop (a full-mode sansloop loop) wherever the test lets the Runner
make it.

Each module runs in a fresh process (a test that breaks the interpreter's
global state cannot spoil the next module). Prints one line per module with
its counts and the ids of the tests that failed or errored; ``--json`` prints
one JSON object per module instead. Exit status 0 when every module ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

#: the compat modules that stand in for asyncio's submodules of the same name
SWAPPED_SUBMODULES = ("tasks", "taskgroups", "timeouts", "runners")


def _overlay(sub: str) -> Any:
    """asyncio.<sub> with the names sansloop.compat.<sub> exports replaced by ours.

    Tests also reach for private helpers of the stdlib module (``_PyTask``,
    ``_CTask``...); those stay the stdlib's.
    """
    import importlib
    import types

    stdlib = importlib.import_module(f"asyncio.{sub}")
    ours = importlib.import_module(f"sansloop.compat.{sub}")
    overlay = types.ModuleType(f"sansloop-overlay.{sub}")
    overlay.__dict__.update(vars(stdlib))
    overlay.__dict__.update({name: getattr(ours, name) for name in ours.__all__})
    return overlay


def run_module(name: str, impl: str) -> dict[str, Any]:
    """Run test.test_asyncio.<name> in this process; its counts and failures."""
    import importlib
    import io
    import unittest
    import unittest.async_case

    module = importlib.import_module(f"test.test_asyncio.{name}")
    if impl == "sansloop":
        import sansloop.compat as compat

        unittest.async_case.asyncio = compat  # type: ignore[attr-defined]
        if hasattr(module, "asyncio"):
            module.asyncio = compat  # type: ignore[attr-defined]
        for sub in SWAPPED_SUBMODULES:
            if hasattr(module, sub):
                setattr(module, sub, _overlay(sub))
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    return {
        "module": name,
        "impl": impl,
        "python": ".".join(map(str, sys.version_info[:2])),
        "run": result.testsRun,
        "skipped": len(result.skipped),
        "failed": sorted(test.id() for test, _ in result.failures),
        "errors": sorted(test.id() for test, _ in result.errors),
    }


def run_in_child(name: str, impl: str, timeout: float) -> dict[str, Any]:
    """run_module() in a fresh interpreter; a crash or hang is reported, not raised."""
    command = [sys.executable, "-W", "ignore", __file__, "--child", "--impl", impl, name]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
        )
    except subprocess.TimeoutExpired:
        return {"module": name, "impl": impl, "crashed": f"timed out after {timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"module": name, "impl": impl, "crashed": "\n".join(tail)}
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="test_asyncio module names")
    parser.add_argument("--impl", choices=("sansloop", "asyncio"), default="sansloop")
    parser.add_argument("--json", action="store_true", help="one JSON object per module")
    parser.add_argument("--timeout", type=float, default=300.0, help="per module, seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_module(args.modules[0], args.impl)))
        return 0
    for name in args.modules:
        report = run_in_child(name, args.impl, args.timeout)
        if args.json:
            print(json.dumps(report))
        elif "crashed" in report:
            print(f"{name}: CRASHED: {report['crashed']}")
        else:
            bad = report["failed"] + report["errors"]
            passed = report["run"] - report["skipped"] - len(bad)
            print(f"{name}: {passed}/{report['run']} passed, {report['skipped']} skipped")
            for test_id in bad:
                print(f"    not passed: {test_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
