"""Child reaping in the backend, the acceptance figures, and the child-watcher names.

- ``Backend.watch_child`` on every readiness backend: pidfd mechanism (no
  thread per child) where the kernel has it, a waiter thread on a backend
  that offers no fd of its own; the callback exactly once with the right
  return code; a status collected by someone else reported as None; close()
  handing running children to waiter threads so they are still reaped.
- Acceptance (issue 4): 50 concurrent ``cat`` children each echo 8 MiB
  byte-exact; 1,000 spawns, half of them FileNotFoundError, leave no fd and
  no child (running or zombie).
- The 3.11-3.13 child-watcher names exist, route to the backend and warn
  as the running interpreter's do.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
import warnings
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.backends import Backend, get_backend
from sansloop.backends.children import ChildReaper, pidfd_supported
from sansloop.compat import childwatchers
from sansloop.compat import subprocess as compat_subprocess

MiB = 1024 * 1024
READINESS = ["epoll", "poll", "selectors"]
needs_pidfd = pytest.mark.skipif(not pidfd_supported(), reason="kernel without pidfd_open")


def no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def poll_until(backend: Backend, done: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        backend.poll(0.5)


# -- the backend's reaper ------------------------------------------------------------


@needs_pidfd
@pytest.mark.parametrize("name", READINESS)
def test_readiness_backends_reap_through_pidfds_inside_poll(name: str) -> None:
    backend = get_backend(name)
    threads_before = threading.active_count()
    got: list[tuple[int, int | None]] = []
    try:
        procs = [spawn(f"import sys; sys.exit({i})") for i in range(3)]
        killed = subprocess.Popen(["sleep", "30"])
        killed.kill()
        for proc in [*procs, killed]:
            backend.watch_child(proc.pid, lambda pid, rc: got.append((pid, rc)))
        assert threading.active_count() == threads_before  # no thread per child
        stats = backend.statistics()
        assert stats["mechanism"] == "pidfd"
        assert stats["registered_fds"] == 0  # pidfds are the backend's own, not the loop's
        poll_until(backend, lambda: len(got) == 4)
        # poll() reported none of them to the loop: the callbacks ran inside it.
        assert backend.poll(0) == []
        stats = backend.statistics()
    finally:
        backend.close()
    expected = {p.pid: i for i, p in enumerate(procs)} | {killed.pid: -9}
    assert dict(got) == expected
    assert len(got) == 4  # exactly once each
    assert stats["children_watched"] == 0 and stats["children_reaped"] == 4
    for proc in [*procs, killed]:
        proc.returncode = 0  # collected by the backend: keep Popen from warning
    assert no_child_left()


def test_waiter_thread_reaper_without_own_fds() -> None:
    reaper = ChildReaper()  # no add_fd: the thread mechanism
    assert reaper.mechanism == "thread"
    done = threading.Event()
    got: list[tuple[int, int | None]] = []

    def report(pid: int, rc: int | None) -> None:
        got.append((pid, rc))
        done.set()

    proc = spawn("import sys; sys.exit(5)")
    reaper.watch(proc.pid, report)
    assert done.wait(10)
    proc.returncode = 5
    assert got == [(proc.pid, 5)]
    assert reaper.statistics()["children_reaped"] == 1
    for thread in threading.enumerate():
        if thread.name.startswith("sansloop-waitpid-"):
            thread.join(5)
    assert no_child_left()


def test_custom_backend_defaults_to_the_waiter_thread() -> None:
    class Minimal(Backend):
        def register(self, fd: int, events: int) -> None: ...
        def modify(self, fd: int, events: int) -> None: ...
        def unregister(self, fd: int) -> None: ...
        def poll(self, timeout: float | None) -> list[tuple[int, int]]:
            return []

        def wakeup(self) -> None: ...
        def close(self) -> None: ...

    backend = Minimal()
    done = threading.Event()
    got: list[Any] = []
    proc = spawn("pass")
    backend.watch_child(proc.pid, lambda pid, rc: (got.append(rc), done.set()))
    assert done.wait(10)
    proc.returncode = 0
    assert got == [0]
    assert backend._child_statistics()["mechanism"] == "thread"
    for thread in threading.enumerate():
        if thread.name.startswith("sansloop-waitpid-"):
            thread.join(5)


@needs_pidfd
def test_status_taken_by_someone_else_is_reported_as_none() -> None:
    backend = get_backend("epoll")
    got: list[Any] = []
    try:
        proc = spawn("import sys; sys.exit(3)")
        backend.watch_child(proc.pid, lambda pid, rc: got.append(rc))
        assert proc.wait() == 3  # the caller collects it first
        poll_until(backend, lambda: bool(got))
        stats = backend.statistics()
    finally:
        backend.close()
    assert got == [None]
    assert stats["children_lost"] == 1
    # Gone before it was watched: reported at once, as None too.
    gone = spawn("pass")
    gone.wait()
    late: list[Any] = []
    reaper = ChildReaper(lambda fd, cb: None, lambda fd: None, use_pidfd=True)
    reaper.watch(gone.pid, lambda pid, rc: late.append(rc))
    assert late == [None]


@needs_pidfd
def test_close_hands_running_children_to_waiter_threads() -> None:
    backend = get_backend("epoll")
    got: list[Any] = []
    done = threading.Event()
    proc = subprocess.Popen(["sleep", "30"])
    backend.watch_child(proc.pid, lambda pid, rc: (got.append(rc), done.set()))
    backend.close()  # the loop goes away with a child still running
    proc.kill()
    assert done.wait(10)
    proc.returncode = -9
    assert got == [-9]
    for thread in threading.enumerate():
        if thread.name.startswith("sansloop-waitpid-"):
            thread.join(5)
    assert no_child_left()


def test_watching_twice_is_refused() -> None:
    reaper = ChildReaper(use_pidfd=False)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        reaper.watch(proc.pid, lambda pid, rc: None)
        with pytest.raises(RuntimeError, match="already watched"):
            reaper.watch(proc.pid, lambda pid, rc: None)
    finally:
        proc.kill()
        for thread in threading.enumerate():
            if thread.name == f"sansloop-waitpid-{proc.pid}":
                thread.join(5)
        proc.returncode = -9


@needs_pidfd
def test_a_loop_starts_no_thread_for_children() -> None:
    loop = sansloop.new_event_loop("epoll")

    async def main() -> int:
        before = threading.active_count()
        procs = [await asyncio.create_subprocess_exec("sleep", "30") for _ in range(5)]
        during = threading.active_count()
        for proc in procs:
            proc.kill()
        for proc in procs:
            await proc.wait()
        return during - before

    try:
        assert loop.run_until_complete(main()) == 0
        assert loop.statistics()["backend"]["children_reaped"] == 5
    finally:
        loop.close()


# -- acceptance figures -------------------------------------------------------------

ECHO = random.Random(8).randbytes(8 * MiB)


# The figure is taken in loop mode; full mode runs the same with 10 children
# to keep the tier fast (~2-4 s for the 50 on 2 shared CPUs).
@pytest.mark.parametrize(("factory", "children"), [("loop", 50), ("full", 10)])
def test_cats_each_echo_8_mib(factory: str, children: int) -> None:
    if factory == "loop":
        loop, sp = sansloop.new_event_loop(), asyncio.subprocess
    else:
        loop, sp = sansloop.compat.new_event_loop(), compat_subprocess

    async def one() -> bool:
        proc = await sp.create_subprocess_exec("cat", stdin=sp.PIPE, stdout=sp.PIPE)
        out, _ = await proc.communicate(ECHO)
        return out == ECHO and proc.returncode == 0

    async def main() -> list[bool]:
        return await asyncio.gather(*[one() for _ in range(children)])

    try:
        results = loop.run_until_complete(main())
    finally:
        loop.close()
    assert results == [True] * children
    assert no_child_left()


def test_thousand_spawns_half_missing_leave_no_fd_and_no_child() -> None:
    fds_before = sorted(os.listdir("/proc/self/fd"))
    loop = sansloop.new_event_loop()

    async def main() -> tuple[int, int]:
        missing = ran = 0
        for i in range(1000):
            try:
                proc = await asyncio.create_subprocess_exec(
                    "true" if i % 2 else "/nonexistent/sansloop-test",
                    stdin=asyncio.subprocess.PIPE if i % 4 < 2 else None,
                    stdout=asyncio.subprocess.PIPE,
                )
            except FileNotFoundError:
                missing += 1
                continue
            await proc.communicate()
            ran += 1 if proc.returncode == 0 else 0
        return missing, ran

    try:
        missing, ran = loop.run_until_complete(main())
        stats = loop.statistics()["backend"]
    finally:
        loop.close()
    assert (missing, ran) == (500, 500)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
    assert no_child_left()
    assert stats.get("children_watched", 0) == 0


# -- the child-watcher names ------------------------------------------------------------

has_watchers = pytest.mark.skipif(
    not hasattr(asyncio, "AbstractChildWatcher"), reason="asyncio 3.14 removed child watchers"
)
WATCHERS = [
    "ThreadedChildWatcher",
    "PidfdChildWatcher",
    "SafeChildWatcher",
    "FastChildWatcher",
    "MultiLoopChildWatcher",
]
DEPRECATED = {"SafeChildWatcher", "FastChildWatcher", "MultiLoopChildWatcher"}


@has_watchers
@pytest.mark.parametrize("name", WATCHERS)
def test_watcher_names_route_children_to_the_backend(name: str) -> None:
    cls = getattr(childwatchers, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watcher = cls()
    deprecated = [w for w in caught if w.category is DeprecationWarning]
    if sys.version_info >= (3, 12) and name in DEPRECATED:
        assert [str(w.message) for w in deprecated] == [
            f"{name!r} is deprecated as of Python 3.12 and will be removed in Python 3.14."
        ]
    else:
        assert deprecated == []
    assert isinstance(watcher, asyncio.AbstractChildWatcher)
    loop = sansloop.new_event_loop()

    async def main() -> list[Any]:
        got: list[Any] = []
        done = loop.create_future()
        watcher.attach_loop(loop)
        proc = subprocess.Popen(["sh", "-c", "exit 4"])
        with watcher:
            assert watcher.is_active()
            watcher.add_child_handler(
                proc.pid,
                lambda pid, rc, tag: (got.append((pid, rc, tag)), done.set_result(None)),
                "x",
            )
        await done
        proc.returncode = 4
        assert not watcher.remove_child_handler(proc.pid)
        return [*got, proc.pid]

    try:
        (pid, rc, tag), expected_pid = loop.run_until_complete(main())
    finally:
        watcher.close()
        loop.close()
    assert (pid, rc, tag) == (expected_pid, 4, "x")


@has_watchers
def test_watcher_identity_and_functions() -> None:
    assert childwatchers.AbstractChildWatcher is asyncio.AbstractChildWatcher
    assert childwatchers.get_child_watcher is asyncio.get_child_watcher
    assert childwatchers.set_child_watcher is asyncio.set_child_watcher


@has_watchers
def test_inactive_watcher_on_the_policy_refuses_before_spawning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: subclassing warns

        class Inactive(childwatchers.ThreadedChildWatcher):
            def is_active(self) -> bool:
                return False

    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        previous = policy._watcher  # type: ignore[attr-defined]
        policy._watcher = None  # type: ignore[attr-defined]  # keep the old one open
        asyncio.set_child_watcher(Inactive())
    loop = sansloop.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="get_child_watcher\\(\\) is not activated"):
            loop.run_until_complete(asyncio.create_subprocess_exec("true"))
    finally:
        loop.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(None)
            policy._watcher = previous  # type: ignore[attr-defined]
    assert no_child_left()


@needs_pidfd
def test_out_of_fds_falls_back_to_a_waiter_thread() -> None:
    """pidfd_open failing with EMFILE must not leave a running child unreaped."""
    import resource

    backend = get_backend("epoll")
    done = threading.Event()
    got: list[Any] = []
    proc = subprocess.Popen(["sh", "-c", "exit 6"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        try:
            while True:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass  # every fd taken: pidfd_open will meet EMFILE
        backend.watch_child(proc.pid, lambda pid, rc: (got.append(rc), done.set()))
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert done.wait(10)
        stats = backend.statistics()
    finally:
        backend.close()
    proc.returncode = 6
    assert got == [6]
    assert stats["thread_fallbacks"] == 1
    for thread in threading.enumerate():
        if thread.name.startswith("sansloop-waitpid-"):
            thread.join(5)
    assert no_child_left()


def test_a_backend_that_cannot_watch_leaves_no_child_and_no_fd() -> None:
    """If watch_child fails after the spawn, the child is killed and collected at once."""
    from sansloop.backends.epoll import EpollBackend

    class Refusing(EpollBackend):
        def watch_child(self, pid: int, callback: Any) -> None:
            raise RuntimeError("no children here")

    fds_before = sorted(os.listdir("/proc/self/fd"))
    loop = sansloop.new_event_loop(Refusing())
    try:
        with pytest.raises(RuntimeError, match="no children here"):
            loop.run_until_complete(
                asyncio.create_subprocess_exec(
                    "sleep", "30", stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            )
    finally:
        loop.close()
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
    assert no_child_left()
