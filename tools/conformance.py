"""Run CPython's own test_asyncio against sansloop and count what passes.

    python tools/conformance.py                      # everything, both modes
    python tools/conformance.py --quick              # CI's subset (< 60 s)
    python tools/conformance.py --module test_locks  # one module (repeatable)
    python tools/conformance.py --mode class --json  # machine-readable
    python tools/conformance.py --impl asyncio       # the harness against stock asyncio

The tests are the ones installed with the interpreter that runs them
(``test.test_asyncio``; ``--python`` picks another interpreter). Two modes:

- class mode: CPython's implementation-parametrized base classes (Future and
  Task tests) subclassed with sansloop's Future and Task;
- loop mode: every module with each event loop asyncio makes replaced by a
  sansloop loop; loop-parametrized mixins get a subclass bound to our loop.

Each module runs in its own process (tools/conformance_child.py) with a
per-test timeout and a per-module timeout; a hang or a crash is a counted
failure, and the run goes on with the next test. What is excluded, and why, is
listed in tools/conformance_exclusions.py and docs/conformance.md; in loop mode
a test that did not run on our loop is excluded with that reason, never counted
as passed.

Exit status: 0 when the run completed (whatever the counts), 2 on bad usage.
Thresholds are asserted by tests/test_conformance_quick.py, not here.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
CHILD = os.path.join(TOOLS, "conformance_child.py")
sys.path.insert(0, TOOLS)

from conformance_adapters import CLASS_MODE_MODULES  # noqa: E402

STATUSES = ("passed", "failed", "error", "skipped", "excluded")
MAX_RESTARTS = 50

#: CI's quick subset: (mode, module); measured to finish well under 60 s
QUICK = [
    ("class", "test_futures"),
    ("class", "test_tasks"),
    ("loop", "test_locks"),
    ("loop", "test_queues"),
    ("loop", "test_timeouts"),
    ("loop", "test_waitfor"),
    ("loop", "test_context"),
    ("loop", "test_pep492"),
    ("loop", "test_runners"),
    ("loop", "test_taskgroups"),
]

#: loop-mode modules where the acceptance target is "every non-excluded test passes"
LOOP_TARGETS = (
    "test_locks",
    "test_queues",
    "test_taskgroups",
    "test_timeouts",
    "test_waitfor",
    "test_pep492",
    "test_context",
    "test_runners",
)


@dataclass
class ModuleRun:
    mode: str
    module: str
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""
    seconds: float = 0.0
    restarts: int = 0
    fixture_errors: list[dict[str, str]] = field(default_factory=list)
    under_test: dict[str, str] = field(default_factory=dict)
    fatal_detail: str = ""

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for record in self.tests.values():
            counts[record["status"]] += 1
        counts["total"] = len(self.tests)
        if self.note.startswith("FATAL"):
            counts["error"] += 1
            counts["total"] += 1
        return counts


def _parse(path: str) -> list[dict[str, Any]]:
    records = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass  # a line cut short by a kill
    return records


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def run_module(
    mode: str, module: str, opts: argparse.Namespace, workdir: str, env: dict[str, str]
) -> ModuleRun:
    """Run one module in child processes until it is done, restarting after crashes."""
    run = ModuleRun(mode, module)
    results = os.path.join(workdir, f"{mode}-{module}.jsonl")
    log_path = os.path.join(workdir, f"{mode}-{module}.log")
    cwd = tempfile.mkdtemp(prefix=f"{mode}-{module}-", dir=workdir)
    started = time.monotonic()
    deadline = started + opts.module_timeout
    cmd = [
        opts.python,
        CHILD,
        "--impl",
        opts.impl,
        "--mode",
        mode,
        "--module",
        module,
        "--results",
        results,
        "--test-timeout",
        str(opts.test_timeout),
    ]
    for pattern in opts.only:
        cmd += ["--only", pattern]
    timed_out = False
    with open(log_path, "ab") as log:
        while True:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                timed_out = True
            records = _parse(results)
            if any("done" in r or "fatal" in r for r in records):
                break
            finished = {r["result"] for r in records if "result" in r}
            stuck = [r["start"] for r in records if "start" in r and r["start"] not in finished]
            if stuck:
                why = (
                    f"HANG: the module ran past its {opts.module_timeout:g}s timeout during this test"
                    if timed_out
                    else f"CRASH: the test process died (exit status {proc.returncode}) "
                    "during this test; see the log"
                )
                _append(results, {"result": stuck[-1], "status": "failed", "detail": why})
            elif (
                not timed_out
                and any("plan" in r for r in records)
                and not str(records[-1].get("result", "")).startswith("(after")
            ):
                last = [r["result"] for r in records if "result" in r][-1:] or ["start"]
                _append(
                    results,
                    {
                        "result": f"(after {last[0]}: process died, exit status {proc.returncode})",
                        "status": "error",
                        "detail": "CRASH between tests; see the log",
                    },
                )
            if timed_out or not any("plan" in r for r in records):
                break
            run.restarts += 1
            if run.restarts > MAX_RESTARTS:
                break

    records = _parse(results)
    plan: list[str] = []
    excluded: dict[str, str] = {}
    for r in records:
        if "plan" in r and not plan:
            plan, excluded = r["plan"], r["excluded"]
        elif "impl" in r:
            run.under_test = r["impl"]
        elif "fatal" in r:
            run.note = "FATAL: " + r["fatal"].strip().splitlines()[-1]
            run.fatal_detail = r["fatal"]
        elif "module_skipped" in r:
            run.note = "module skipped: " + r["module_skipped"]
        elif "fixture_error" in r:
            run.fixture_errors.append({"fixture": r["fixture_error"], "detail": r["detail"]})
    for test_id in plan + [t for t in excluded if t not in plan]:
        if test_id in excluded:
            run.tests[test_id] = {"status": "excluded", "detail": excluded[test_id]}
    for r in records:
        if "result" in r:
            entry = {"status": r["status"], "detail": r.get("detail", "")}
            if "outcome" in r:
                entry["outcome"] = r["outcome"]
            run.tests[r["result"]] = entry
    for test_id in plan:
        if test_id not in run.tests:
            if timed_out:
                why = "NOT RUN: the module timeout expired first"
            elif run.fixture_errors:
                why = (
                    "NOT RUN: a class or module fixture failed: "
                    + run.fixture_errors[-1]["fixture"]
                )
            else:
                why = "NOT RUN: the test process stopped before this test"
            run.tests[test_id] = {"status": "error", "detail": why}
    if timed_out and not run.note:
        run.note = f"module timeout ({opts.module_timeout:g}s)"
    if run.restarts and not run.note:
        run.note = f"{run.restarts} restart(s) after crash/hang"
    run.seconds = time.monotonic() - started
    return run


def list_modules(python: str, env: dict[str, str]) -> list[str]:
    code = (
        "import importlib.util, os\n"
        "spec = importlib.util.find_spec('test.test_asyncio')\n"
        "d = spec.submodule_search_locations[0]\n"
        "print('\\n'.join(sorted(f[:-3] for f in os.listdir(d)"
        " if f.startswith('test_') and f.endswith('.py'))))\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.split()


def child_env(opts: argparse.Namespace, workdir: str) -> dict[str, str]:
    """The environment of the children; makes sansloop importable for a foreign --python."""
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if opts.impl.startswith("sansloop"):
        probe = subprocess.run(
            [opts.python, "-c", "import sansloop"], capture_output=True, env=env, check=False
        )
        if probe.returncode != 0:
            shim = os.path.join(workdir, "shim")
            os.makedirs(shim, exist_ok=True)
            link = os.path.join(shim, "sansloop")
            if not os.path.exists(link):
                os.symlink(os.path.join(REPO, "src"), link)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [shim, env.get("PYTHONPATH")]))
    return env


def plan_runs(opts: argparse.Namespace, modules: list[str]) -> list[tuple[str, str]]:
    if opts.quick:
        return [(m, mod) for m, mod in QUICK if mod in modules]
    chosen = opts.module or modules
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        raise SystemExit(f"unknown module(s): {', '.join(unknown)}")
    runs = []
    if opts.mode in ("class", "both"):
        runs += [("class", m) for m in chosen if m in CLASS_MODE_MODULES]
    if opts.mode in ("loop", "both"):
        runs += [("loop", m) for m in chosen]
    return runs


def _pct(passed: int, counted: int) -> str:
    return f"{100.0 * passed / counted:5.1f}%" if counted else "    -"


def render_table(runs: list[ModuleRun]) -> str:
    header = f"{'mode':5} {'module':26} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7} {'excl':>5} {'total':>5} {'pass%':>6} {'secs':>6}  note"
    lines = [header, "-" * len(header)]
    totals: dict[str, dict[str, int]] = {}
    for run in runs:
        c = run.counts()
        counted = c["passed"] + c["failed"] + c["error"]
        lines.append(
            f"{run.mode:5} {run.module:26} {c['passed']:6} {c['failed']:6} {c['error']:6} "
            f"{c['skipped']:7} {c['excluded']:5} {c['total']:5} {_pct(c['passed'], counted):>6} "
            f"{run.seconds:6.1f}  {run.note}"
        )
        for key in (run.mode, "all"):
            t = totals.setdefault(key, dict.fromkeys((*STATUSES, "total"), 0))
            for k, v in c.items():
                t[k] += v
    lines.append("-" * len(header))
    for key, c in totals.items():
        counted = c["passed"] + c["failed"] + c["error"]
        label = "TOTAL" if key == "all" else f"total {key}"
        lines.append(
            f"{'':5} {label:26} {c['passed']:6} {c['failed']:6} {c['error']:6} "
            f"{c['skipped']:7} {c['excluded']:5} {c['total']:5} {_pct(c['passed'], counted):>6}"
        )
    lines.append(
        "pass% = passed / (passed + failed + errors); skipped and excluded are not counted."
    )
    return "\n".join(lines)


def acceptance(runs: list[ModuleRun]) -> dict[str, Any]:
    """The figures the project's acceptance targets are stated in."""
    out: dict[str, Any] = {}
    base = [r for r in runs if r.mode == "class" and r.module in ("test_futures", "test_tasks")]
    if base:
        passed = sum(r.counts()["passed"] for r in base)
        counted = sum(
            r.counts()["passed"] + r.counts()["failed"] + r.counts()["error"] for r in base
        )
        out["class_futures_tasks"] = {
            "passed": passed,
            "counted": counted,
            "ratio": round(passed / counted, 4) if counted else None,
            "target": ">= 0.95",
        }
    for r in runs:
        if r.mode == "loop" and r.module in LOOP_TARGETS:
            c = r.counts()
            out[f"loop_{r.module}"] = {
                "passed": c["passed"],
                "not_passed": c["failed"] + c["error"],
                "all_pass": c["failed"] + c["error"] == 0 and not r.note.startswith("FATAL"),
            }
    return out


_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\w+)')


def cause_of(detail: str) -> str:
    """A short name for why a test failed, to group failures by root cause."""
    lines = detail.strip().splitlines()
    last = lines[-1] if lines else ""
    if last.startswith(("TIMEOUT", "CRASH", "HANG", "NOT RUN")):
        return last.split(":")[0]
    if "TestTimeout" in last:
        return "TIMEOUT"
    if last.strip() == "NotImplementedError":
        frames = _FRAME.findall(detail)
        for path, func in reversed(frames):
            if path.endswith(os.path.join("asyncio", "events.py")):
                return f"NotImplementedError: loop.{func}()"
    return last[:120]


def causes(runs: list[ModuleRun]) -> list[tuple[int, str, list[str]]]:
    """(count, cause, example test ids), most frequent first."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        for test_id, rec in sorted(run.tests.items()):
            if rec["status"] in ("failed", "error"):
                key = cause_of(rec.get("detail", ""))
                groups.setdefault(key, []).append(f"[{run.mode}] {run.module}::{test_id}")
    return sorted(((len(v), k, v[:3]) for k, v in groups.items()), key=lambda t: (-t[0], t[1]))


def render_failures(runs: list[ModuleRun]) -> str:
    lines = []
    for run in runs:
        for test_id, rec in sorted(run.tests.items()):
            if rec["status"] in ("failed", "error"):
                detail = rec.get("detail", "").strip().splitlines()
                essence = detail[-1] if detail else ""
                lines.append(f"[{run.mode}] {run.module}::{test_id}: {rec['status']}: {essence}")
        for fx in run.fixture_errors:
            last = fx["detail"].strip().splitlines()[-1:] or [""]
            lines.append(f"[{run.mode}] {run.module}: fixture error in {fx['fixture']}: {last[0]}")
    lines.append("failures by cause:")
    for count, cause, examples in causes(runs):
        lines.append(f"  {count:4}  {cause}   e.g. {examples[0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--impl",
        default="sansloop",
        choices=("sansloop", "sansloop-full", "asyncio"),
        help="implementation under test (asyncio = check the harness itself)",
    )
    parser.add_argument("--mode", default="both", choices=("class", "loop", "both"))
    parser.add_argument("--module", action="append", help="run only this module (repeatable)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only tests whose Class.method matches this fnmatch pattern",
    )
    parser.add_argument("--quick", action="store_true", help="CI's quick subset")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--failures", action="store_true", help="also list failing tests")
    parser.add_argument("-j", "--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--test-timeout", type=float, default=30.0)
    parser.add_argument("--module-timeout", type=float, default=900.0)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--keep", metavar="DIR", help="keep journals and logs in DIR")
    opts = parser.parse_args(argv)

    workdir = opts.keep or tempfile.mkdtemp(prefix="sansloop-conformance-")
    os.makedirs(workdir, exist_ok=True)
    try:
        env = child_env(opts, workdir)
        runs_planned = plan_runs(opts, list_modules(opts.python, env))
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(opts.jobs) as pool:
            futures = [
                pool.submit(run_module, m, mod, opts, workdir, env) for m, mod in runs_planned
            ]
            runs = [f.result() for f in futures]
        elapsed = time.monotonic() - started
        version = subprocess.run(
            [opts.python, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.strip()
        if opts.json:
            doc = {
                "impl": opts.impl,
                "python": version,
                "seconds": round(elapsed, 1),
                "runs": [
                    {
                        "mode": r.mode,
                        "module": r.module,
                        "counts": r.counts(),
                        "note": r.note,
                        "seconds": round(r.seconds, 1),
                        "tests": r.tests,
                        "fixture_errors": r.fixture_errors,
                        "under_test": r.under_test,
                        "fatal_detail": r.fatal_detail,
                    }
                    for r in runs
                ],
                "acceptance": acceptance(runs),
                "causes": [{"count": n, "cause": c, "examples": ex} for n, c, ex in causes(runs)],
            }
            json.dump(doc, sys.stdout, indent=1)
            print()
        else:
            print(f"CPython {version} test_asyncio against {opts.impl} ({elapsed:.0f}s)")
            print(render_table(runs))
            acc = acceptance(runs)
            if acc:
                print("acceptance:", json.dumps(acc))
            if opts.failures:
                print(render_failures(runs))
                for r in runs:
                    if r.fatal_detail:
                        print(f"[{r.mode}] {r.module}: {r.fatal_detail}")
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
