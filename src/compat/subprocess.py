"""asyncio.subprocess on sansloop's streams: create_subprocess_exec/shell and Process.

The module ``sansloop.compat.subprocess`` has asyncio.subprocess's names:
``PIPE``, ``STDOUT``, ``DEVNULL`` (the ``subprocess`` module's constants),
``create_subprocess_exec``, ``create_subprocess_shell``, ``Process`` and
``SubprocessStreamProtocol``. The streams are sansloop's ``StreamReader`` /
``StreamWriter`` (compat/streams.py); the transport is whatever the running
loop's ``subprocess_exec``/``subprocess_shell`` returns (sansloop's
SubprocessTransport on our loops; the stdlib's on a stock loop).

Contract, as asyncio's:

- stdout/stderr given as ``PIPE`` become ``StreamReader``s (``limit`` bytes
  of buffer before the pipe is paused), stdin a ``StreamWriter`` whose
  ``drain()`` follows the pipe's flow control; ``STDOUT`` merges stderr into
  stdout; ``DEVNULL`` and file objects/fds pass through to Popen.
- ``wait()`` returns the return code once the child has exited and its pipes
  are closed (``-N`` for signal N); ``returncode`` is None until then.
- ``communicate(input=None)`` feeds *input* (BrokenPipeError and
  ConnectionResetError from a child that stopped reading are ignored), closes
  stdin, reads stdout/stderr to EOF concurrently, waits, returns
  ``(stdout, stderr)`` (None for a stream that is not a pipe). 3.11 closes
  stdin only when *input* is given; 3.12+ always (follows the interpreter).
- ``send_signal``/``terminate``/``kill``: see the transport
  (ProcessLookupError once the process is finished and collected).
- The transport is closed once the child has exited and every pipe is
  closed, which is what frees the child's resources.
"""

from __future__ import annotations

import asyncio
import subprocess as _subprocess
import sys
from typing import Any

from .errors import logger
from .streams import _DEFAULT_LIMIT, FlowControlMixin, StreamReader, StreamWriter

__all__ = ["create_subprocess_exec", "create_subprocess_shell"]

PIPE = _subprocess.PIPE
STDOUT = _subprocess.STDOUT
DEVNULL = _subprocess.DEVNULL

#: 3.12 changed communicate(): stdin is drained and closed even without input.
_ALWAYS_CLOSE_STDIN = sys.version_info >= (3, 12)


class SubprocessStreamProtocol(FlowControlMixin, asyncio.SubprocessProtocol):
    """Turns the child's pipes into a StreamWriter (stdin) and StreamReaders."""

    def __init__(self, limit: int, loop: Any) -> None:
        super().__init__(loop=loop)
        self._limit = limit
        self.stdin: StreamWriter | None = None
        self.stdout: StreamReader | None = None
        self.stderr: StreamReader | None = None
        self._transport: Any = None
        self._process_exited = False
        self._pipe_fds: list[int] = []  # the output pipes not yet at EOF
        self._stdin_closed = self._loop.create_future()

    def __repr__(self) -> str:
        streams = {"stdin": self.stdin, "stdout": self.stdout, "stderr": self.stderr}
        shown = "".join(f" {name}={s!r}" for name, s in streams.items() if s is not None)
        return f"<{type(self).__name__}{shown}>"

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        readers = {}
        for fd in (1, 2):
            pipe = transport.get_pipe_transport(fd)
            if pipe is None:
                continue
            readers[fd] = StreamReader(limit=self._limit, loop=self._loop)
            readers[fd].set_transport(pipe)
            self._pipe_fds.append(fd)
        self.stdout, self.stderr = readers.get(1), readers.get(2)
        stdin = transport.get_pipe_transport(0)
        if stdin is not None:
            self.stdin = StreamWriter(stdin, protocol=self, reader=None, loop=self._loop)

    def _output(self, fd: int) -> StreamReader | None:
        return {1: self.stdout, 2: self.stderr}.get(fd)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        reader = self._output(fd)
        if reader is not None:
            reader.feed_data(data)

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        if fd == 0:
            self._stdin_lost(exc)
        else:
            self._output_lost(fd, exc)

    def _stdin_lost(self, exc: BaseException | None) -> None:
        writer = self.stdin
        if writer is not None:
            writer.close()
        self.connection_lost(exc)  # FlowControlMixin: wakes drain() waiters
        closed = self._stdin_closed
        if exc is not None:
            closed.set_exception(exc)
            # Nobody has to await wait_closed(): no "never retrieved" report.
            closed._log_traceback = False
        else:
            closed.set_result(None)

    def _output_lost(self, fd: int, exc: BaseException | None) -> None:
        reader = self._output(fd)
        if reader is not None and exc is None:
            reader.feed_eof()
        elif reader is not None:
            reader.set_exception(exc)  # type: ignore[arg-type]
        if fd in self._pipe_fds:
            self._pipe_fds.remove(fd)
        self._maybe_close_transport()

    def process_exited(self) -> None:
        self._process_exited = True
        self._maybe_close_transport()

    def _maybe_close_transport(self) -> None:
        # Done when the child is gone and every output pipe has hit EOF.
        transport = self._transport
        if transport is None or self._pipe_fds or not self._process_exited:
            return
        self._transport = None
        transport.close()

    def _get_close_waiter(self, stream: Any) -> Any:
        return self._stdin_closed if stream is self.stdin else None


class Process:
    """A child process started by create_subprocess_exec/shell."""

    def __init__(self, transport: Any, protocol: SubprocessStreamProtocol, loop: Any) -> None:
        self.pid: int = transport.get_pid()
        # The streams are the protocol's, made when the pipes connected.
        self.stdin, self.stdout, self.stderr = protocol.stdin, protocol.stdout, protocol.stderr
        self._transport, self._protocol, self._loop = transport, protocol, loop

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pid}>"

    @property
    def returncode(self) -> int | None:
        """The return code, or None until the process has exited."""
        return self._transport.get_returncode()  # type: ignore[no-any-return]

    async def wait(self) -> int:
        """Wait for the process to exit; its return code."""
        return await self._transport._wait()  # type: ignore[no-any-return]

    def send_signal(self, signal: int) -> None:
        """Send *signal* to the process (ProcessLookupError once it is collected)."""
        self._transport.send_signal(signal)

    def terminate(self) -> None:
        """SIGTERM the process."""
        self._transport.terminate()

    def kill(self) -> None:
        """SIGKILL the process."""
        self._transport.kill()

    def _trace(self, message: str, *args: Any) -> None:
        if self._loop.get_debug():
            logger.debug("%r communicate: " + message, self, *args)

    async def _write_all_then_close(self, data: bytes | None) -> None:
        writer = self.stdin
        assert writer is not None
        try:
            if data is not None:
                writer.write(data)
                self._trace("feed stdin (%s bytes)", len(data))
            await writer.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The child stopped reading: not communicate()'s failure.
            self._trace("stdin got %r", exc)
        self._trace("close stdin")
        writer.close()

    async def _read_all_then_close(self, fd: int) -> bytes:
        name = "stdout" if fd == 1 else "stderr"
        reader = getattr(self, name)
        self._trace("read %s", name)
        data: bytes = await reader.read()
        self._trace("close %s", name)
        self._transport.get_pipe_transport(fd).close()
        return data

    async def communicate(self, input: bytes | None = None) -> tuple[Any, Any]:
        """Feed *input*, read stdout/stderr to EOF, wait: ``(stdout, stderr)``."""
        from .tasks import gather

        async def skipped() -> None:
            return None

        if _ALWAYS_CLOSE_STDIN:
            feed = self.stdin is not None
        else:
            feed = input is not None
        jobs = [self._write_all_then_close(input) if feed else skipped()]
        for fd, stream in ((1, self.stdout), (2, self.stderr)):
            jobs.append(skipped() if stream is None else self._read_all_then_close(fd))
        results = await gather(*jobs)
        await self.wait()
        return results[1], results[2]


async def _start(
    how: str, what: Any, args: tuple[Any, ...], limit: int, kwds: dict[str, Any]
) -> Process:
    loop = asyncio.get_running_loop()

    def protocol_factory() -> SubprocessStreamProtocol:
        return SubprocessStreamProtocol(limit=limit, loop=loop)

    start = getattr(loop, how)
    transport, protocol = await start(protocol_factory, what, *args, **kwds)
    return Process(transport, protocol, loop)


async def create_subprocess_shell(
    cmd: str | bytes,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run *cmd* through the shell; a Process."""
    kwds.update(stdin=stdin, stdout=stdout, stderr=stderr)
    return await _start("subprocess_shell", cmd, (), limit, kwds)


async def create_subprocess_exec(
    program: Any,
    *args: Any,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run *program* with *args*; a Process."""
    kwds.update(stdin=stdin, stdout=stdout, stderr=stderr)
    return await _start("subprocess_exec", program, args, limit, kwds)
