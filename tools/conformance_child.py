"""One module of CPython's test_asyncio, in its own process, for tools/conformance.py.

Usage (the parent runs this; it is not meant for people):

    python tools/conformance_child.py --impl sansloop --mode loop \
        --module test_locks --results FILE [--test-timeout 30]

The child appends JSON lines to FILE:
- ``{"plan": [...ids...], "excluded": {id: reason}}`` once the tests are known;
- ``{"start": id}`` before each test, ``{"result": id, "status": ..., ...}`` after;
- ``{"done": true}`` at the end (missing when the process died);
- ``{"fatal": message}`` / ``{"module_skipped": reason}`` instead of a plan.

Ids already holding a result in FILE are not run again: after a crash or a
hard kill, the parent restarts the child and the run continues with the next
test.

Per-test timeout: a watchdog thread sends SIGUSR2 to the main thread when a
test overruns; the handler raises ``TestTimeout`` (a SystemExit, so asyncio's
callback and task wrappers let it through and unittest records it as an
error of that test). If the test is still stuck ``GRACE`` seconds later, the
watchdog dumps every thread's stack to stderr and ends the process.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import unittest
from typing import Any

import conformance_adapters as adapters
from conformance_exclusions import exclusion_reason, whole_module_reason
from conformance_impls import load_impl

GRACE = 10.0
DETAIL_LINES = 30


class TestTimeout(SystemExit):
    """Raised in the main thread when the running test overran its time."""


class Journal:
    """Append-only JSON-lines file shared by the main and watchdog threads."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())


class Watchdog(threading.Thread):
    def __init__(self, journal: Journal, timeout: float) -> None:
        super().__init__(name="conformance-watchdog", daemon=True)
        self.journal = journal
        self.timeout = timeout
        self.lock = threading.Lock()
        self.test_id: str | None = None
        self.deadline = 0.0
        self.fired = False
        self.main_ident = threading.main_thread().ident

    def arm(self, test_id: str) -> None:
        with self.lock:
            self.test_id = test_id
            self.deadline = time.monotonic() + self.timeout
            self.fired = False

    def disarm(self) -> bool:
        """Stop watching; True if the timeout fired for the current test."""
        with self.lock:
            fired = self.fired
            self.test_id = None
            return fired

    def run(self) -> None:
        while True:
            time.sleep(0.2)
            with self.lock:
                if self.test_id is None or time.monotonic() < self.deadline:
                    continue
                test_id = self.test_id
                if not self.fired:
                    self.fired = True
                    self.deadline = time.monotonic() + GRACE
                    signal.pthread_kill(self.main_ident, signal.SIGUSR2)
                    continue
            # still stuck after the grace period: leave a trace and die
            sys.stderr.write(f"\n*** conformance: {test_id} stuck; stacks:\n")
            faulthandler.dump_traceback(all_threads=True)
            self.journal.write({"killed": test_id})
            os._exit(3)


def _on_timeout(signum: int, frame: Any) -> None:
    raise TestTimeout("conformance runner: per-test timeout")


def _short_id(test: unittest.TestCase) -> str:
    """``Class.method`` for a test, whatever module it was defined in."""
    return f"{type(test).__name__}.{test._testMethodName}"


def _detail(exc_info: Any) -> str:
    text = "".join(traceback.format_exception(*exc_info))
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-DETAIL_LINES:])[-4000:]


class Result(unittest.TestResult):
    """Records one verdict per test and journals it."""

    def __init__(self, journal: Journal, watchdog: Watchdog, tracker: Any) -> None:
        super().__init__()
        self.journal = journal
        self.watchdog = watchdog
        self.tracker = tracker
        self._status = "passed"
        self._detail = ""
        self._started = 0.0
        self.last_id: str | None = None

    def startTest(self, test: unittest.TestCase) -> None:  # noqa: N802
        super().startTest(test)
        self._status, self._detail = "passed", ""
        if self.tracker is not None:
            self.tracker.reset()
        self.journal.write({"start": _short_id(test)})
        self._started = time.monotonic()
        self.watchdog.arm(_short_id(test))

    def _worse(self, status: str, detail: str) -> None:
        order = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
        if order[status] >= order[self._status]:
            self._status = status
        if detail and not self._detail:
            self._detail = detail

    def addFailure(self, test: Any, err: Any) -> None:  # noqa: N802
        self._worse("failed", _detail(err))

    def addError(self, test: Any, err: Any) -> None:  # noqa: N802
        if not isinstance(test, unittest.TestCase):
            # a class or module fixture failed (setUpClass, tearDownModule...)
            self.journal.write({"fixture_error": str(test), "detail": _detail(err)})
            return
        self._worse("error", _detail(err))

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:  # noqa: N802
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._worse("failed" if failed else "error", f"{subtest}: {_detail(err)}")

    def addSkip(self, test: Any, reason: str) -> None:  # noqa: N802
        self._worse("skipped", reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:  # noqa: N802
        pass  # CPython expects this test to fail: as expected, so counted as passed

    def addUnexpectedSuccess(self, test: Any) -> None:  # noqa: N802
        self._worse("failed", "unexpected success of an expectedFailure test")

    def stopTest(self, test: unittest.TestCase) -> None:  # noqa: N802
        timed_out = self.watchdog.disarm()
        status, detail = self._status, self._detail
        record: dict[str, Any] = {"result": _short_id(test)}
        if timed_out:
            status = "failed"
            detail = f"TIMEOUT: the test ran longer than {self.watchdog.timeout:g}s\n{detail}"
        if self.tracker is not None and status != "skipped":
            verdict = self.tracker.verdict()
            if verdict is not None:
                record["outcome"] = status
                status, detail = "excluded", verdict
        record.update(
            status=status,
            detail=detail,
            seconds=round(time.monotonic() - self._started, 3),
        )
        self.journal.write(record)
        self.last_id = _short_id(test)
        super().stopTest(test)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _describe(impl: Any, mode: str) -> dict[str, str]:
    """What exactly is under test, for the report (and for a sceptical reader)."""
    if mode == "class":
        return {
            "Future": _qualname(impl.future_class),
            "Task": _qualname(impl.task_class),
            "current_task": _qualname(impl.current_task),
            "all_tasks": _qualname(impl.all_tasks),
        }
    return {
        "loop": ", ".join(_qualname(t) for t in impl.loop_types),
        "loop_mode": impl.loop_mode,
    }


def _flatten(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    out: list[unittest.TestCase] = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


def _already_done(path: str) -> set[str]:
    done: set[str] = set()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "result" in record:
                    done.add(record["result"])
    return done


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True)
    parser.add_argument("--mode", choices=("class", "loop"), required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--test-timeout", type=float, default=30.0)
    parser.add_argument("--only", action="append", default=[], help="fnmatch on Class.method")
    args = parser.parse_args()

    journal = Journal(args.results)
    done = _already_done(args.results)
    faulthandler.enable()
    # A child started from a background job inherits SIGINT ignored; the
    # tests (asyncio.Runner's Ctrl-C handling) expect Python's usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    full_name = f"test.test_asyncio.{args.module}"
    try:
        module = importlib.import_module(full_name)
    except unittest.SkipTest as exc:
        journal.write({"module_skipped": str(exc)})
        journal.write({"done": True})
        return 0
    except Exception:
        journal.write({"fatal": "importing the test module failed:\n" + traceback.format_exc()})
        return 1

    loader = unittest.TestLoader()
    whole = whole_module_reason(args.mode, args.module)
    tracker = None
    static_excluded: dict[str, str] = {}
    try:
        if whole is not None:
            tests = _flatten(loader.loadTestsFromModule(module))
            impl = None
        else:
            impl = load_impl(args.impl)
            if args.mode == "class":
                if impl.class_mode_missing:
                    raise RuntimeError(f"class mode impossible: {impl.class_mode_missing}")
                classes, missing = adapters.class_mode_classes(module, impl)
                tests = []
                for cls in classes:
                    tests.extend(_flatten(loader.loadTestsFromTestCase(cls)))
                for cls_name, reason in missing.items():
                    base = getattr(module, cls_name)
                    for method in loader.getTestCaseNames(base):
                        static_excluded[f"{cls_name}.{method}"] = reason
                adapters.patch_task_functions(impl)
            else:
                tracker = adapters.LoopTracker(impl)
                new_loop = adapters.patch_loop_creation(impl, tracker)
                adapters.route_logging(impl)
                if impl.loop_mode == "full":
                    adapters.patch_task_functions(impl)
                _, replaced = adapters.loop_mode_bindings(module, impl, new_loop)
                tests = [
                    t
                    for t in _flatten(loader.loadTestsFromModule(module))
                    if type(t).__name__ not in replaced
                ]
    except Exception:
        journal.write({"fatal": "binding the implementation failed:\n" + traceback.format_exc()})
        return 1

    if args.only:
        from fnmatch import fnmatchcase

        tests = [t for t in tests if any(fnmatchcase(_short_id(t), p) for p in args.only)]

    plan = [_short_id(t) for t in tests]
    for test_id in plan:
        reason = whole or exclusion_reason(args.mode, args.module, test_id)
        if reason is not None:
            static_excluded[test_id] = reason
    if impl is not None:
        journal.write({"impl": _describe(impl, args.mode)})
    journal.write({"plan": plan, "excluded": static_excluded})

    to_run = [t for t in tests if _short_id(t) not in static_excluded and _short_id(t) not in done]
    if to_run:
        watchdog = Watchdog(journal, args.test_timeout)
        watchdog.start()
        signal.signal(signal.SIGUSR2, _on_timeout)
        result = Result(journal, watchdog, tracker)
        try:
            unittest.TestSuite(to_run).run(result)
        except BaseException:
            # escaped unittest (IsolatedAsyncioTestCase tears its runner down
            # after stopTest): a counted error, then the parent restarts us
            journal.write(
                {
                    "result": f"(after {result.last_id or 'start'}: escaped the test run)",
                    "status": "error",
                    "detail": traceback.format_exc()[-4000:],
                }
            )
            os._exit(4)
    journal.write({"done": True})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # do not wait for threads a test may have leaked


if __name__ == "__main__":
    sys.exit(main())
