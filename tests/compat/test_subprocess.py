"""Subprocesses side by side on asyncio and sansloop: asyncio.subprocess and loop.subprocess_*.

Every behaviour test runs on stdlib asyncio's own loop (the reference), on
sansloop in loop mode over each readiness backend (stdlib asyncio.subprocess
on our loop and transports) and in full mode (sansloop.compat.subprocess:
our Process, streams, futures and tasks). Real children, real pipes: `cat`
echoes, exit codes and signals, timeouts that kill, close() killing a running
child, bad arguments with asyncio's messages, fds not leaked into children,
and after each test no zombie (the suite's leak ledger checks fds and
children too).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.backends.children import ChildReaper
from sansloop.backends.epoll import EpollBackend
from sansloop.compat import subprocess as compat_subprocess

MiB = 1024 * 1024
DATA = random.Random(7).randbytes(3 * MiB + 123)
PY = sys.executable


class ThreadReapingEpoll(EpollBackend):
    """epoll, but children reaped by waiter threads (the non-pidfd mechanism)."""

    def _make_child_reaper(self) -> ChildReaper:
        return ChildReaper(use_pidfd=False)


FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "loop-epoll": lambda: sansloop.new_event_loop("epoll"),
    "loop-poll": lambda: sansloop.new_event_loop("poll"),
    "loop-selectors": lambda: sansloop.new_event_loop("selectors"),
    "loop-thread-reaper": lambda: sansloop.new_event_loop(ThreadReapingEpoll()),
    "full-epoll": sansloop.compat.new_event_loop,
}


class Env:
    """A loop plus the subprocess module that goes with it (full mode: ours)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = FACTORIES[name]()
        self.sp: Any = compat_subprocess if name.startswith("full") else asyncio.subprocess

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, timeout)

        return self.loop.run_until_complete(bounded())


def _env(name: str) -> Iterator[Env]:
    made = Env(name)
    try:
        yield made
    finally:
        made.loop.run_until_complete(made.loop.shutdown_asyncgens())
        made.loop.close()


#: Most tests run on the reference, loop mode on epoll and full mode; the
#: other readiness backends (their own pidfd handling) and the waiter-thread
#: reaper run the tests that move bytes, signal and close (``every_backend``):
#: the rest of the transport is the same code on all of them.
@pytest.fixture(params=["asyncio", "loop-epoll", "full-epoll"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    yield from _env(request.param)


@pytest.fixture(params=list(FACTORIES))
def every_backend(request: pytest.FixtureRequest) -> Iterator[Env]:
    yield from _env(request.param)


def no_child_left() -> bool:
    """True if this process has no child at all (running or zombie)."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


# -- streams: bytes in, bytes out ------------------------------------------------


def test_cat_echoes_byte_exact_with_communicate(every_backend: Env) -> None:
    env = every_backend
    sp = env.sp

    async def main() -> tuple[bytes, Any, int]:
        proc = await sp.create_subprocess_exec("cat", stdin=sp.PIPE, stdout=sp.PIPE)
        out, err = await proc.communicate(DATA)
        return out, err, proc.returncode

    out, err, code = env.run(main())
    assert out == DATA
    assert err is None
    assert code == 0


def test_streaming_with_drain_flow_control(every_backend: Env) -> None:
    env = every_backend
    """stdin.drain() pauses while cat is not read; a concurrent reader gets every byte."""
    sp = env.sp
    chunk = 64 * 1024

    async def main() -> tuple[bytes, int, int]:
        proc = await sp.create_subprocess_exec("cat", stdin=sp.PIPE, stdout=sp.PIPE)
        # Nobody reads yet: writing far more than the pipes hold must pause.
        proc.stdin.write(DATA[: 2 * MiB])
        buffered = proc.stdin.transport.get_write_buffer_size()

        async def feed() -> None:
            await proc.stdin.drain()
            for start in range(2 * MiB, len(DATA), chunk):
                proc.stdin.write(DATA[start : start + chunk])
                await proc.stdin.drain()
            proc.stdin.close()

        feeder = asyncio.ensure_future(feed())
        received = await proc.stdout.read()
        await feeder
        return received, await proc.wait(), buffered

    received, code, buffered = env.run(main())
    assert buffered > 0  # the kernel pipe could not take 2 MiB at once
    assert received == DATA
    assert code == 0


def test_readline_and_stderr_to_stdout(env: Env) -> None:
    sp = env.sp

    async def main() -> tuple[list[bytes], int]:
        proc = await sp.create_subprocess_shell(
            "echo one; echo two >&2; echo three", stdout=sp.PIPE, stderr=sp.STDOUT
        )
        lines = [await proc.stdout.readline() for _ in range(4)]
        return lines, await proc.wait()

    lines, code = env.run(main())
    assert lines == [b"one\n", b"two\n", b"three\n", b""]
    assert code == 0


def test_devnull_and_no_pipes(env: Env) -> None:
    sp = env.sp

    async def main() -> tuple[Any, Any, Any, tuple[Any, Any], int]:
        proc = await sp.create_subprocess_exec(
            PY, "-c", "import sys; print(len(sys.stdin.read()))", stdin=sp.DEVNULL
        )
        streams = (proc.stdin, proc.stdout, proc.stderr)
        return *streams, await proc.communicate(), await proc.wait()  # type: ignore[return-value]

    stdin, stdout, stderr, result, code = env.run(main())
    assert (stdin, stdout, stderr) == (None, None, None)
    assert result == (None, None)
    assert code == 0


# -- exit codes, signals, timeouts -----------------------------------------------


def test_exit_codes_and_signals(every_backend: Env) -> None:
    env = every_backend
    sp = env.sp

    async def main() -> list[int]:
        codes = []
        proc = await sp.create_subprocess_shell("exit 7")
        codes.append(await proc.wait())
        for act in ("kill", "terminate", "send_signal"):
            proc = await sp.create_subprocess_exec("sleep", "30")
            if act == "send_signal":
                proc.send_signal(signal.SIGUSR1)
            else:
                getattr(proc, act)()
            codes.append(await proc.wait())
        return codes

    assert env.run(main()) == [7, -signal.SIGKILL, -signal.SIGTERM, -signal.SIGUSR1]


def test_returncode_pid_and_process_lookup_error(env: Env) -> None:
    sp = env.sp

    async def main() -> tuple[Any, Any, int, Any]:
        proc = await sp.create_subprocess_exec("sleep", "30")
        running = proc.returncode
        assert isinstance(proc.pid, int) and proc.pid > 0
        proc.kill()
        proc.kill()  # the child may be gone but not collected yet: no error
        code = await proc.wait()
        errors = []
        for act in (proc.kill, proc.terminate, lambda: proc.send_signal(signal.SIGTERM)):
            try:
                act()
            except ProcessLookupError as exc:
                errors.append(type(exc))
        return running, proc.returncode, code, errors

    running, after, code, errors = env.run(main())
    assert running is None
    assert after == code == -signal.SIGKILL
    assert errors == [ProcessLookupError] * 3


def test_hanging_child_killed_by_timeout_and_reaped(every_backend: Env) -> None:
    env = every_backend
    sp = env.sp

    async def main() -> tuple[bool, int]:
        proc = await sp.create_subprocess_exec("sleep", "60")
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), 0.2)
        except TimeoutError:
            timed_out = True
            proc.kill()
        return timed_out, await proc.wait()

    timed_out, code = env.run(main())
    assert timed_out
    assert code == -signal.SIGKILL
    assert no_child_left()


def test_missing_program_raises_and_leaks_nothing(env: Env) -> None:
    sp = env.sp
    fds = sorted(os.listdir("/proc/self/fd"))

    async def main() -> list[type]:
        raised = []
        for stdin in (None, sp.PIPE):
            try:
                await sp.create_subprocess_exec(
                    "/nonexistent/program", stdin=stdin, stdout=sp.PIPE, stderr=sp.PIPE
                )
            except FileNotFoundError as exc:
                raised.append(type(exc))
        return raised

    assert env.run(main()) == [FileNotFoundError] * 2
    assert sorted(os.listdir("/proc/self/fd")) == fds
    assert no_child_left()


def inheritable_fds() -> set[int]:
    """The fds of this process a child would keep with close_fds=False."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                found.add(int(name))
        except OSError:
            continue  # the listing's own fd, closed by now
    return found


def test_child_inherits_only_its_stdio(env: Env) -> None:
    """close_fds and CLOEXEC: no fd of the loop, its pipes or its pidfds reaches a child."""
    sp = env.sp
    code = "import os; print(' '.join(sorted(os.listdir('/proc/self/fd'), key=int)))"
    keep_r, keep_w = os.pipe()  # non-inheritable (PEP 446): must not show up either
    try:

        async def main() -> tuple[bytes, bytes, set[int]]:
            # Another child running meanwhile: its pipes and pidfd exist now.
            other = await sp.create_subprocess_exec("cat", stdin=sp.PIPE, stdout=sp.PIPE)
            allowed = inheritable_fds()
            outs = []
            for close_fds in (True, False):
                proc = await sp.create_subprocess_exec(
                    PY, "-c", code, stdin=sp.PIPE, stdout=sp.PIPE, close_fds=close_fds
                )
                out, _ = await proc.communicate(b"")
                outs.append(out)
            await other.communicate(b"")
            return outs[0], outs[1], allowed

        closed, kept, allowed = env.run(main())
    finally:
        os.close(keep_r)
        os.close(keep_w)
    closed_fds = [int(fd) for fd in closed.split()]
    assert closed_fds[:3] == [0, 1, 2] and len(closed_fds) == 4  # + the listing's own fd
    kept_fds = {int(fd) for fd in kept.split()} - {0, 1, 2}
    # Beyond its listing's fd, only what this process had marked inheritable.
    assert len(kept_fds - allowed) <= 1
    assert keep_r not in kept_fds and keep_w not in kept_fds


# -- the transport API (loop.subprocess_exec) ------------------------------------


class Recorder(asyncio.SubprocessProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[Any] = []
        self.data: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.data[fd] += data

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self) -> None:
        self.events.append("exited")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))
        self.lost.set_result(None)


def test_transport_api_and_callback_order(env: Env) -> None:
    loop = env.loop

    async def main() -> tuple[Any, ...]:
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), PY, "-c", "import sys; sys.stdout.write(sys.stdin.read())"
        )
        pipes = [transport.get_pipe_transport(fd) for fd in (0, 1, 2, 3)]
        pid = transport.get_pid()
        pipes[0].write(b"hello")
        pipes[0].close()
        await proto.lost
        code = transport.get_returncode()
        transport.close()
        return proto, pipes, pid, code, transport.get_extra_info("subprocess")

    proto, pipes, pid, code, popen = env.run(main())
    assert all(p is not None for p in pipes[:3]) and pipes[3] is None
    assert isinstance(pid, int)
    assert popen.pid == pid and popen.returncode == 0
    assert code == 0
    assert bytes(proto.data[1]) == b"hello"
    assert proto.events[0] == "made"
    assert proto.events[-1] == ("lost", None)
    assert sorted(e for e in proto.events if isinstance(e, tuple) and e[0] == "pipe_lost") == [
        ("pipe_lost", 0, None),
        ("pipe_lost", 1, None),
        ("pipe_lost", 2, None),
    ]
    assert "exited" in proto.events


def test_close_kills_a_running_child(every_backend: Env) -> None:
    env = every_backend
    loop = env.loop

    async def main() -> tuple[Any, Any, bool]:
        transport, proto = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, "sleep", "60", stdin=None, stdout=None, stderr=None
        )
        before = transport.get_returncode()
        transport.close()
        closing = transport.is_closing()
        code = await transport._wait()
        return before, code, closing

    before, code, closing = env.run(main())
    assert before is None
    assert code == -signal.SIGKILL
    assert closing
    assert no_child_left()


def test_unclosed_transport_warns(env: Env) -> None:
    """A transport dropped without close() warns once nothing holds it (the child is gone)."""
    loop = env.loop

    async def main() -> list[Any]:
        transport, proto = await loop.subprocess_exec(lambda: Recorder(loop), "true")
        await proto.lost
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del transport
            gc.collect()
        return [(w.category, str(w.message)) for w in caught]

    caught = env.run(main())
    assert len(caught) == 1
    assert caught[0][0] is ResourceWarning
    assert caught[0][1].startswith("unclosed transport <")
    assert no_child_left()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"universal_newlines": True}, "universal_newlines must be False"),
        ({"bufsize": 1}, "bufsize must be 0"),
        ({"text": True}, "text must be False"),
        ({"encoding": "utf-8"}, "encoding must be None"),
        ({"errors": "strict"}, "errors must be None"),
    ],
)
def test_text_mode_arguments_refused(env: Env, kwargs: dict[str, Any], message: str) -> None:
    loop = env.loop

    async def main() -> list[str]:
        messages = []
        for call in (
            lambda: loop.subprocess_exec(asyncio.SubprocessProtocol, "true", **kwargs),
            lambda: loop.subprocess_shell(asyncio.SubprocessProtocol, "true", **kwargs),
        ):
            with pytest.raises(ValueError) as info:
                await call()
            messages.append(str(info.value))
        return messages

    assert env.run(main()) == [message, message]
    assert no_child_left()


def test_shell_argument_checks(env: Env) -> None:
    loop = env.loop
    proto = asyncio.SubprocessProtocol

    async def main() -> list[str]:
        calls = [
            lambda: loop.subprocess_exec(proto, "true", shell=True),
            lambda: loop.subprocess_shell(proto, "true", shell=False),
            lambda: loop.subprocess_shell(proto, ["echo", "x"]),
            lambda: loop.subprocess_shell(proto, None),
        ]
        messages = []
        for call in calls:
            with pytest.raises(ValueError) as info:
                await call()
            messages.append(str(info.value))
        return messages

    assert env.run(main()) == [
        "shell must be False",
        "shell must be True",
        "cmd must be a string",
        "cmd must be a string",
    ]


def test_shell_accepts_bytes(env: Env) -> None:
    sp = env.sp

    async def main() -> bytes:
        proc = await sp.create_subprocess_shell(b"printf abc", stdout=sp.PIPE)
        out, _ = await proc.communicate()
        return out

    assert env.run(main()) == b"abc"


def test_cancelled_creation_leaves_no_child(env: Env) -> None:
    sp = env.sp

    async def main() -> bool:
        task = asyncio.ensure_future(sp.create_subprocess_exec("sleep", "60", stdout=sp.PIPE))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        proc = task.result()  # creation won the race: clean up
        proc.kill()
        await proc.wait()
        return False

    env.run(main())
    assert no_child_left()


def test_many_concurrent_children(env: Env) -> None:
    sp = env.sp

    async def one(i: int) -> bytes:
        proc = await sp.create_subprocess_exec("echo", str(i), stdout=sp.PIPE)
        out, _ = await proc.communicate()
        return out

    async def main() -> list[bytes]:
        return await asyncio.gather(*[one(i) for i in range(10)])

    assert env.run(main()) == [f"{i}\n".encode() for i in range(10)]


def test_subprocess_module_names() -> None:
    for name in ("PIPE", "STDOUT", "DEVNULL"):
        assert getattr(compat_subprocess, name) == getattr(subprocess, name)
    assert compat_subprocess.__all__ == ["create_subprocess_exec", "create_subprocess_shell"]
    assert sansloop.compat.subprocess is compat_subprocess


def test_debug_mode_logs_as_asyncio(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    loop = env.loop
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0  # only the subprocess records matter here

    async def main() -> None:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol,
            "sleep",
            "60",
            stdin=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        transport.close()
        await transport._wait()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        env.run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert "execute program 'sleep' stdin=<pipe> stdout=stderr=<pipe>" in messages
    assert any(m.startswith("process 'sleep' created: pid ") for m in messages)
    assert any(m.startswith("execute program 'sleep': <") for m in messages)
    warned = [
        r
        for r in caplog.records
        if r.getMessage().startswith("Close running child process: kill <")
    ]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert any(" exited with return code -9" in m for m in messages)
