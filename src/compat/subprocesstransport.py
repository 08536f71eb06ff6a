"""SubprocessTransport: a child process and its pipes as an asyncio.SubprocessTransport.

Contract (asyncio's, observed by running it):

- Made by ``loop.subprocess_exec``/``subprocess_shell`` (subprocess.py's
  ``SubprocessOps``). The child is started at once through the backend
  (``Backend.spawn_child``, ``subprocess.Popen`` semantics; close_fds is
  Popen's default, and every fd sansloop itself opens is close-on-exec, so the
  child inherits only what the caller passes). If starting fails, the
  transport is closed and the exception propagates; nothing leaks.
- Right after the spawn the backend is asked to watch the child
  (``Backend.watch_child``): how it learns of the exit (pidfd or a waiter
  thread) and who reaps is the backend's decision. The exit is delivered one
  loop iteration late (as asyncio does), so the pipes' last reads of that tick
  are queued first.
- Then the child's stdin/stdout/stderr that are ``PIPE`` are connected as the
  loop's pipe transports (compat/pipes.py: flow control, EOF, broken pipe),
  in that order, each wrapped in a small pipe protocol that forwards to the
  subprocess protocol as ``pipe_data_received(fd, data)``,
  ``pipe_connection_lost(fd, exc)``, ``pause_writing``/``resume_writing``
  (stdin's flow control is the subprocess protocol's). Until the pipes are
  connected and ``connection_made`` is queued, those calls (and
  ``process_exited``) are held back and replayed in order.
- ``process_exited()`` is called once the child is reaped;
  ``connection_lost(None)`` once the child is reaped *and* every pipe is
  disconnected; then ``_wait()`` (what ``Process.wait()`` awaits) resolves
  with the return code and the transport lets go of the child and protocol.
- ``close()`` closes the pipe transports and, if the child is still running
  (neither we nor its Popen object has seen it exit), kills it (SIGKILL),
  logging "Close running child process: kill ..." in debug mode. It does not
  wait. A transport collected unclosed warns ``ResourceWarning`` and closes.
- ``send_signal``/``terminate``/``kill`` raise ProcessLookupError once the
  transport has let go of the child (after connection_lost); before that a
  child that already exited is not signalled (no error), as in asyncio.
- Return code: the exit code, or ``-N`` for signal N. If the status was
  collected by someone else (the caller's own ``Popen.wait()``), the Popen's
  return code is used; if nobody has it, 255 with asyncio's warning.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess as _subprocess
import sys
import warnings
from collections import deque
from typing import Any

from .errors import logger

__all__ = [
    "SubprocessOps",
    "SubprocessTransport",
    "ReadSubprocessPipeProto",
    "WriteSubprocessPipeProto",
]

PIPE = _subprocess.PIPE

_NEVER_SWALLOWED = (SystemExit, KeyboardInterrupt)

#: asyncio's answer when a child's status was collected by someone else.
_UNKNOWN_RETURNCODE = 255


class WriteSubprocessPipeProto(asyncio.BaseProtocol):
    """The protocol under the child's stdin pipe transport."""

    def __init__(self, proc: SubprocessTransport, fd: int) -> None:
        self.proc: SubprocessTransport | None = proc
        self.fd = fd
        self.pipe: Any = None
        self.disconnected = False

    def connection_made(self, transport: Any) -> None:
        self.pipe = transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        proc, self.proc = self.proc, None
        if proc is not None:
            proc._pipe_connection_lost(self.fd, exc)

    def pause_writing(self) -> None:
        if self.proc is not None:
            self.proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        if self.proc is not None:
            self.proc._protocol.resume_writing()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"


class ReadSubprocessPipeProto(WriteSubprocessPipeProto, asyncio.Protocol):
    """The protocol under the child's stdout or stderr pipe transport."""

    def data_received(self, data: bytes) -> None:
        if self.proc is not None:
            self.proc._pipe_data_received(self.fd, data)


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process started through the loop's backend, with its pipes."""

    # Read by __del__ and __repr__ even if __init__ failed early.
    _closed = True
    _proc: Any = None
    _pid: int | None = None
    _returncode: int | None = None
    _pipes: dict[int, Any] = {}
    #: A policy child watcher also handed this child (see subprocess_exec).
    _legacy_watcher: Any = None

    def __init__(
        self,
        loop: Any,
        protocol: asyncio.SubprocessProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(extra)
        self._closed = False
        self._loop = loop
        self._protocol: Any = protocol
        self._exit_waiters: list[Any] | None = []
        # Calls to the protocol held back until connection_made is queued.
        self._pending_calls: deque[tuple[Any, tuple[Any, ...]]] | None = deque()
        # fd -> its pipe protocol (None until connected), for the PIPE ones.
        self._pipes = {fd: None for fd, how in enumerate((stdin, stdout, stderr)) if how == PIPE}
        self._finished = False
        try:
            # Bytes only, as asyncio: text mode was refused before we got here.
            popen_options = dict(kwargs, shell=shell, bufsize=bufsize, universal_newlines=False)
            popen_options.update(stdin=stdin, stdout=stdout, stderr=stderr)
            self._proc = loop.backend.spawn_child(args, **popen_options)
        except BaseException:
            self.close()
            raise
        self._pid = self._proc.pid
        self._extra["subprocess"] = self._proc
        try:
            loop.backend.watch_child(self._pid, self._child_reaped)
        except BaseException:
            # Nobody would reap it: leave no running child and no pipe behind.
            self._proc.kill()
            self._proc.wait()
            for end in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if end is not None:
                    end.close()
            self._closed = True
            raise
        if loop.get_debug():
            program = args if isinstance(args, (bytes, str)) else args[0]
            logger.debug("process %r created: pid %s", program, self._pid)
        loop.create_task(self._connect_pipes(waiter))

    def __repr__(self) -> str:
        words = [type(self).__name__, "closed" if self._closed else ""]
        if self._pid is not None:
            words.append(f"pid={self._pid}")
        words.append(self._life_word())
        words += self._pipe_words()
        return "<{}>".format(" ".join(word for word in words if word))

    def _life_word(self) -> str:
        if self._returncode is not None:
            return f"returncode={self._returncode}"
        return "not started" if self._pid is None else "running"

    def _pipe_words(self) -> list[str]:
        by_fd = {fd: proto.pipe for fd, proto in self._pipes.items() if proto is not None}
        names = ["stdin", "stdout", "stderr"]
        if 1 in by_fd and self._pipes.get(2) is self._pipes.get(1):
            names[1] = "stdout=stderr"  # one pipe for both
            by_fd.pop(2)
        return [f"{names[fd]}={pipe}" for fd, pipe in sorted(by_fd.items())]

    # -- the BaseTransport / SubprocessTransport API -------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Deliver to *protocol* from now on."""
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The current protocol."""
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        """True once close() was called."""
        return self._closed

    def get_pid(self) -> int | None:
        """The child's process id."""
        return self._pid

    def get_returncode(self) -> int | None:
        """The child's return code, or None while it runs (or is not yet reaped)."""
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        """The pipe transport of the child's fd 0, 1 or 2, or None if not a pipe."""
        if fd in self._pipes:
            return self._pipes[fd].pipe
        return None

    def _check_proc(self) -> None:
        if self._proc is None:
            raise ProcessLookupError()

    def send_signal(self, signal: int) -> None:
        """Send *signal* to the child (nothing if it already exited)."""
        self._check_proc()
        self._proc.send_signal(signal)

    def terminate(self) -> None:
        """SIGTERM the child (nothing if it already exited)."""
        self._check_proc()
        self._proc.terminate()

    def kill(self) -> None:
        """SIGKILL the child (nothing if it already exited)."""
        self._check_proc()
        self._proc.kill()

    def close(self) -> None:
        """Close the pipes; kill the child if it is still running. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for proto in self._pipes.values():
            if proto is not None:
                proto.pipe.close()
        proc = self._proc
        # Still running: we have not seen it exit, and neither has its Popen
        # (poll() answers from a status the caller may have collected).
        if proc is not None and self._returncode is None and proc.poll() is None:
            if self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                proc.kill()
            except (ProcessLookupError, PermissionError):
                pass  # gone meanwhile, or a setuid child we may not signal
            # _proc stays: the pipes may still be connecting, and the exit
            # is still to be delivered.

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()

    async def _wait(self) -> int:
        """The return code, once the child has exited and the pipes are closed."""
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)  # type: ignore[union-attr]
        return await waiter  # type: ignore[no-any-return]

    # -- pipes -------------------------------------------------------------

    async def _connect_pipes(self, waiter: Any) -> None:
        failure: BaseException | None = None
        try:
            await self._connect_each_pipe()
        except _NEVER_SWALLOWED:
            raise
        except BaseException as exc:
            failure = exc
        else:
            self._start_delivering()
        if waiter is None or waiter.cancelled():
            return
        if failure is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(failure)

    async def _connect_each_pipe(self) -> None:
        """stdin, then stdout, then stderr: each that is a pipe becomes a pipe transport."""
        loop = self._loop
        proc = self._proc
        ends = ((0, proc.stdin, WriteSubprocessPipeProto, loop.connect_write_pipe),)
        ends += tuple(
            (fd, end, ReadSubprocessPipeProto, loop.connect_read_pipe)
            for fd, end in ((1, proc.stdout), (2, proc.stderr))
        )
        for fd, end, proto_class, connect in ends:
            if end is None:
                continue
            _, proto = await connect(functools.partial(proto_class, self, fd), end)
            self._pipes[fd] = proto

    def _start_delivering(self) -> None:
        """connection_made first, then what the pipes and the child said meanwhile."""
        held, self._pending_calls = self._pending_calls, None
        schedule = self._loop.call_soon
        schedule(self._protocol.connection_made, self)
        while held:
            callback, args = held.popleft()
            schedule(callback, *args)

    def _call(self, callback: Any, *args: Any) -> None:
        held = self._pending_calls
        if held is None:
            self._loop.call_soon(callback, *args)
        else:
            held.append((callback, args))

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    # -- the child's exit --------------------------------------------------

    def _child_reaped(self, pid: int, returncode: int | None) -> None:
        # The backend calls this from any thread (or from inside its poll):
        # hand over, and skip one iteration as asyncio does.
        proc = self._proc
        if returncode is not None and proc is not None and proc.returncode is None:
            # Tell the Popen at once, whatever the thread: a Popen that thinks
            # its child still runs calls waitpid() on that pid again when it
            # is polled or collected (subprocess._cleanup), and once the pid
            # is reused (pid_max may be 32768) it takes another child's status.
            proc.returncode = returncode
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(loop.call_soon, self._process_exited, returncode)
        except RuntimeError:
            pass  # the loop was closed meanwhile; the child is reaped anyway

    def _process_exited(self, returncode: int | None) -> None:
        if self._returncode is not None:
            return  # a second report (the backend and a legacy watcher both saw it)
        proc = self._proc
        stolen = returncode is None and proc is not None and proc.returncode is None
        if stolen and self._legacy_watcher is not None:
            # The backend found the status taken, and a watcher that reaps with
            # waitpid(-1) is still due to report this child: it took it (as on
            # asyncio, that watcher's report is the one to wait for).
            return
        watcher, self._legacy_watcher = self._legacy_watcher, None
        if watcher is not None:
            watcher.remove_child_handler(self._pid)  # it need not report now
        if returncode is None:
            # Someone else collected the status (the caller's Popen.wait()).
            returncode = proc.returncode if proc is not None else None
            if returncode is None:
                logger.warning(
                    "Unknown child process pid %d, will report returncode 255", self._pid
                )
                returncode = _UNKNOWN_RETURNCODE
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        if proc is not None:
            # Tell the Popen too: it would otherwise think the child is running
            # (and warn when collected) or invent a 0 on its own waitpid.
            proc.returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()

    def _try_finish(self) -> None:
        if self._finished or self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            waiters, self._exit_waiters = self._exit_waiters, None
            for waiter in waiters or ():
                if not waiter.cancelled():
                    waiter.set_result(self._returncode)
            self._loop = None
            self._proc = None
            self._protocol = None


# -- the loop's facet --------------------------------------------------------


_STDIO_NAMES = {PIPE: "<pipe>", _subprocess.STDOUT: "<stdout>"}


def _stdio_summary(stdin: Any, stdout: Any, stderr: Any) -> str:
    """``stdin=<pipe> stdout=stderr=<pipe>``: how the debug log shows the child's stdio."""
    merged = stdout is not None and stderr == _subprocess.STDOUT
    shown = [("stdin", stdin)]
    shown += [("stdout=stderr", stdout)] if merged else [("stdout", stdout), ("stderr", stderr)]
    return " ".join(
        f"{label}={_STDIO_NAMES.get(value, repr(value))}"
        for label, value in shown
        if value is not None
    )


def _refuse_text_mode(wants_shell: bool, options: tuple[Any, ...]) -> None:
    """ValueError for what asyncio refuses: the pipes carry bytes, unbuffered.

    The rules are checked in asyncio's order, so the same first complaint wins;
    *options* is ``(universal_newlines, shell, bufsize, text, encoding, errors)``.
    """
    rules: tuple[tuple[Any, str], ...] = (
        (lambda v: bool(v), "universal_newlines must be False"),
        (lambda v: bool(v) != wants_shell, f"shell must be {wants_shell}"),
        (lambda v: v != 0, "bufsize must be 0"),
        (lambda v: bool(v), "text must be False"),
        (lambda v: v is not None, "encoding must be None"),
        (lambda v: v is not None, "errors must be None"),
    )
    for (wrong, complaint), value in zip(rules, options, strict=True):
        if wrong(value):
            raise ValueError(complaint)


def _policy_watcher() -> Any:
    """The child watcher of asyncio 3.11-3.13's policy, or None (3.14+, other policies)."""
    get_watcher = getattr(asyncio.get_event_loop_policy(), "get_child_watcher", None)
    if get_watcher is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return get_watcher()


def _reaps_strangers(watcher: Any) -> bool:
    """True unless *watcher* is known to reap only the children handed to it.

    Children are always watched by the backend. A watcher that calls
    ``waitpid(-1)`` (asyncio's FastChildWatcher, or one of the user's own)
    would collect a child's status before the backend, so such a watcher is
    also handed the child, as asyncio does, and whichever reports first wins.
    """
    from . import childwatchers

    return not isinstance(watcher, childwatchers.PER_PID_WATCHERS)


class SubprocessOps:
    """loop.subprocess_exec / loop.subprocess_shell (a facet of EventLoop)."""

    _debug: bool

    async def subprocess_exec(
        self,
        protocol_factory: Any,
        program: Any,
        *args: Any,
        stdin: Any = PIPE,
        stdout: Any = PIPE,
        stderr: Any = PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, asyncio.BaseProtocol]:
        """Run *program* with *args* (no shell); ``(transport, protocol)``."""
        options = (universal_newlines, shell, bufsize, text, encoding, errors)
        _refuse_text_mode(False, options)
        # Only the program is logged, never its arguments: they may hold secrets.
        return await self._spawn_logged(
            f"execute program {program!r}",
            protocol_factory,
            (program, *args),
            False,
            (stdin, stdout, stderr),
            bufsize,
            kwargs,
        )

    async def subprocess_shell(
        self,
        protocol_factory: Any,
        cmd: Any,
        *,
        stdin: Any = PIPE,
        stdout: Any = PIPE,
        stderr: Any = PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, asyncio.BaseProtocol]:
        """Run *cmd* (str or bytes) through the shell; ``(transport, protocol)``."""
        if not isinstance(cmd, (str, bytes)):
            raise ValueError("cmd must be a string")
        options = (universal_newlines, shell, bufsize, text, encoding, errors)
        _refuse_text_mode(True, options)
        return await self._spawn_logged(
            f"run shell command {cmd!r}",
            protocol_factory,
            cmd,
            True,
            (stdin, stdout, stderr),
            bufsize,
            kwargs,
        )

    async def _spawn_logged(
        self,
        what: str,
        protocol_factory: Any,
        args: Any,
        shell: bool,
        stdio: tuple[Any, Any, Any],
        bufsize: int,
        kwargs: dict[str, Any],
    ) -> tuple[SubprocessTransport, asyncio.BaseProtocol]:
        protocol = protocol_factory()
        debug = self._debug
        if debug:
            logger.debug(" ".join(filter(None, (what, _stdio_summary(*stdio)))))
        transport = await self._make_subprocess_transport(
            protocol, args, shell, *stdio, bufsize, **kwargs
        )
        if debug:
            logger.info("%s: %r", what, transport)
        return transport, protocol

    async def _make_subprocess_transport(
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SubprocessTransport:
        """Start the child and connect its pipes (asyncio's private factory name).

        On Python 3.11-3.13 the policy's child watcher is consulted as asyncio
        does: an inactive one refuses with RuntimeError before the child is
        started. It reaps nothing unless it is one that would steal the
        status (see ``_reaps_strangers``): the backend watches every child.
        """
        watcher = _policy_watcher()
        if watcher is None:
            return await self._start_subprocess(
                protocol, args, shell, stdin, stdout, stderr, bufsize, extra, None, kwargs
            )
        with watcher as entered:
            # 3.11 asks the object __enter__ returned, 3.12+ the watcher itself.
            asked = entered if sys.version_info < (3, 12) else watcher
            if not asked.is_active():
                raise RuntimeError(
                    "asyncio.get_child_watcher() is not activated, "
                    "subprocess support is not installed."
                )
            return await self._start_subprocess(
                protocol, args, shell, stdin, stdout, stderr, bufsize, extra, watcher, kwargs
            )

    async def _start_subprocess(
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict[str, Any] | None,
        watcher: Any,
        kwargs: dict[str, Any],
    ) -> SubprocessTransport:
        waiter = self.create_future()  # type: ignore[attr-defined]
        transport = SubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter, extra, **kwargs
        )
        if watcher is not None and _reaps_strangers(watcher):
            watcher.add_child_handler(transport.get_pid(), transport._child_reaped)
            transport._legacy_watcher = watcher
        try:
            await waiter
        except _NEVER_SWALLOWED:
            raise
        except BaseException:
            # Cancelled or a pipe failed: kill the child and wait for it, so
            # that nothing is left behind.
            transport.close()
            await transport._wait()
            raise
        return transport
