"""Child reaping: learn that a child process exited, collect its status, once.

Contract
--------
``ChildReaper.watch(pid, callback)`` promises that ``callback(pid, returncode)``
is called exactly once, after child *pid* has exited and its status has been
collected (the process is reaped: no zombie is left). *returncode* is
``os.waitstatus_to_exitcode``'s answer (the exit code, or ``-signal`` for a
child killed by a signal), or ``None`` when someone else collected the status
first (a ``Popen.poll()``/``wait()`` of the caller's, another reaper with
``waitpid(-1)``). The callback may be called from any thread, from inside the
backend's ``poll()``, or from inside ``watch()`` itself: it must only hand the
result over (the loop passes a ``call_soon_threadsafe``).

Facts
-----
- ``os.pidfd_open(pid)`` (Linux 5.3+, Python 3.9+) gives an fd that turns
  readable when the process exits, and stays readable (level-triggered) until
  it is closed. It works on a zombie: a child that exited before we looked is
  reported at once. On a pid nobody has (already reaped) it fails with ESRCH.
  It is CLOEXEC, so no child inherits it.
- A readable pidfd means "exited", not "reaped": we then call
  ``waitpid(pid, WNOHANG)`` in the thread that polls, which cannot block.
  ChildProcessError there means another party reaped it first.
- Without pidfd (old kernels, non-Linux, a backend that cannot watch an fd of
  its own) a daemon thread per child blocks in ``waitpid(pid, 0)``: correct
  everywhere, one thread per running child. This is the only place sansloop
  starts threads for children, and only where pidfd is unavailable.
- If ``pidfd_open`` fails for another reason (EMFILE: out of fds), that one
  child gets a waiter thread: a child that runs must be reaped.
- ``waitpid(-1)`` is never used: it would steal the status of children that
  are not ours (a ``subprocess.run`` elsewhere in the program).
- SIGCHLD is not used: it is process-wide, coalesced, and needs the main
  thread.

The choice of mechanism is made once, by the backend that owns the reaper:
pidfd when the backend offers a way to watch an fd of its own
(``add_fd``/``remove_fd``) and the kernel has ``pidfd_open``; a waiter thread
otherwise. On ``close()`` children still running are handed to waiter threads,
so they are reaped even after the loop is gone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["ChildCallback", "ChildReaper", "pidfd_supported"]

#: ``callback(pid, returncode_or_None)``
ChildCallback = Callable[[int, "int | None"], object]

_pidfd_works: bool | None = None


def pidfd_supported() -> bool:
    """True if this kernel and Python have a working ``os.pidfd_open``."""
    global _pidfd_works
    if _pidfd_works is None:
        opener = getattr(os, "pidfd_open", None)
        if opener is None:
            _pidfd_works = False
        else:
            try:
                os.close(opener(os.getpid()))
            except OSError:  # ENOSYS on old kernels, EPERM under some sandboxes
                _pidfd_works = False
            else:
                _pidfd_works = True
    return _pidfd_works


def reap(pid: int, block: bool) -> int | None:
    """Collect *pid*'s status: its return code, or None if it is not ours to collect."""
    try:
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:  # WNOHANG and still running: cannot happen after a pidfd said "exited"
        raise RuntimeError(f"child {pid} reported exited but waitpid() says it runs")
    return os.waitstatus_to_exitcode(status)


class ChildReaper:
    """Watches children for one backend; see the module docstring."""

    def __init__(
        self,
        add_fd: Callable[[int, Callable[[], None]], None] | None = None,
        remove_fd: Callable[[int], None] | None = None,
        *,
        use_pidfd: bool | None = None,
    ) -> None:
        if use_pidfd is None:
            use_pidfd = add_fd is not None and pidfd_supported()
        if use_pidfd and (add_fd is None or remove_fd is None):
            raise ValueError("pidfd mode needs add_fd and remove_fd")
        self.mechanism = "pidfd" if use_pidfd else "thread"
        self._add_fd = add_fd
        self._remove_fd = remove_fd
        self._pidfds: dict[int, tuple[int, ChildCallback]] = {}  # pid -> (pidfd, callback)
        self._threads: dict[int, threading.Thread] = {}  # pid -> its waiter
        self._lock = threading.Lock()  # guards _threads (waiters remove themselves)
        self._reaped = 0
        self._lost = 0
        self._fallbacks = 0  # children given a thread because pidfd failed
        self._closed = False

    def watch(self, pid: int, callback: ChildCallback) -> None:
        """Call ``callback(pid, returncode)`` once *pid* has exited and been reaped."""
        if self._closed:
            raise RuntimeError("the child reaper is closed")
        if pid in self._pidfds or pid in self._threads:
            raise RuntimeError(f"child {pid} is already watched")
        if self.mechanism == "thread":
            self._start_waiter(pid, callback)
            return
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            # Gone already: reaped by someone else (or never ours).
            self._deliver(pid, reap(pid, block=False), callback)
            return
        except OSError:
            # No fd to spare (EMFILE/ENFILE) or no memory: the child runs
            # anyway and must still be reaped, so it gets a waiter thread.
            self._fallbacks += 1
            self._start_waiter(pid, callback)
            return
        self._pidfds[pid] = (pidfd, callback)
        try:
            self._add_fd(pidfd, lambda: self._pidfd_ready(pid))  # type: ignore[misc]
        except OSError:
            del self._pidfds[pid]
            os.close(pidfd)
            self._fallbacks += 1
            self._start_waiter(pid, callback)

    def _pidfd_ready(self, pid: int) -> None:
        pidfd, callback = self._pidfds.pop(pid)
        self._remove_fd(pidfd)  # type: ignore[misc]
        os.close(pidfd)
        self._deliver(pid, reap(pid, block=False), callback)

    def _deliver(self, pid: int, returncode: int | None, callback: ChildCallback) -> None:
        if returncode is None:
            self._lost += 1
        else:
            self._reaped += 1
        callback(pid, returncode)

    def _start_waiter(self, pid: int, callback: ChildCallback) -> None:
        thread = threading.Thread(
            target=self._wait, args=(pid, callback), name=f"sansloop-waitpid-{pid}", daemon=True
        )
        with self._lock:
            self._threads[pid] = thread
        thread.start()

    def _wait(self, pid: int, callback: ChildCallback) -> None:
        returncode = reap(pid, block=True)
        with self._lock:
            self._threads.pop(pid, None)
        self._deliver(pid, returncode, callback)

    def watched(self) -> list[int]:
        """The pids still waited for."""
        with self._lock:
            return sorted([*self._pidfds, *self._threads])

    def statistics(self) -> dict[str, object]:
        """Mechanism, children watched, reaped, lost to another reaper, thread fallbacks."""
        with self._lock:
            waiting = len(self._pidfds) + len(self._threads)
        return {
            "mechanism": self.mechanism,
            "children_watched": waiting,
            "children_reaped": self._reaped,
            "children_lost": self._lost,
            "thread_fallbacks": self._fallbacks,
        }

    def close(self) -> None:
        """Stop polling pidfds; children still running are reaped by waiter threads.

        Idempotent. Called by the backend's close(), while the backend can
        still unregister its fds.
        """
        if self._closed:
            return
        self._closed = True
        pending, self._pidfds = self._pidfds, {}
        for pid, (pidfd, callback) in sorted(pending.items()):
            self._remove_fd(pidfd)  # type: ignore[misc]
            os.close(pidfd)
            self._start_waiter(pid, callback)
