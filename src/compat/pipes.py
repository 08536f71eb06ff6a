"""Pipes: loop.connect_read_pipe / loop.connect_write_pipe and their transports.

A facet (mixin) of ``EventLoop``: ``PipeOps`` adds

- ``connect_read_pipe(protocol_factory, pipe)`` -> ``(ReadPipeTransport, protocol)``
- ``connect_write_pipe(protocol_factory, pipe)`` -> ``(WritePipeTransport, protocol)``

and asyncio's private factories ``_make_read_pipe_transport`` /
``_make_write_pipe_transport`` (same arguments as asyncio's: pipe, protocol,
waiter=None, extra=None), for the subprocess transports.

*pipe* is a file-like object with ``fileno()`` (what asyncio accepts). Its fd
must be a pipe (FIFO), a socket or a character device such as a pty, else
ValueError with asyncio's message ("Pipe transport is for pipes/sockets only."
for reading, "Pipe transport is only for pipes, sockets and character devices"
for writing). The fd is made non-blocking, the transport registers in
``loop._transports`` (so ``loop.add_reader`` on it is refused while it is
open), ``connection_made`` is called soon, then reading starts, then the
waiter of connect_*_pipe is resolved. After ``connection_lost`` the pipe object
is closed and the transport leaves ``loop._transports``.

The bytes move through the backend (``Backend.read(fd, n)``,
``Backend.write(fd, data)``, ``Backend.set_blocking(fd, flag)``), so a
simulated backend can own pipes; this module makes no syscall of its own
besides ``os.fstat`` (the kind check).

Reading (as asyncio's Unix read-pipe transport): up to 256 KiB per readiness,
``data_received(bytes)``; at end of file the transport stops reading, then
``eof_received()`` and ``connection_lost(None)`` are called (eof_received's
answer is not consulted: a pipe cannot be half-open). pause_reading /
resume_reading / is_reading as asyncio. A read error loses the connection with
the exception (EIO, a pty whose other side closed, is logged in debug mode
only; anything else goes to the exception handler first).

Writing: write() tries the fd at once when nothing is buffered and buffers the
rest; every buffered byte goes through ``core.flowcontrol.WriteFlowControl``,
so the protocol hears ``pause_writing()`` above the high mark and
``resume_writing()`` at the low mark (writelines too). ``write_eof()``/
``close()`` flush the buffer then lose the connection (``connection_lost(None)``);
``abort()`` discards it. For a FIFO or socket, the transport also watches the
write end for *read* readiness, which is how the kernel says the reader went
away (as asyncio does): ``connection_lost(None)`` if nothing was buffered,
``connection_lost(BrokenPipeError())`` otherwise; a write that meets EPIPE
loses the connection with the BrokenPipeError. Writes after that are dropped
and counted; from the fifth on each logs asyncio's warning.

An unclosed transport warns (ResourceWarning "unclosed transport ...") when
collected and closes its pipe object.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import warnings
from typing import Any

from ..core.flowcontrol import WriteFlowControl
from .errors import logger
from .transports import LOG_THRESHOLD_FOR_CONNLOST_WRITES, WriteBufferLimits, signal_protocol

__all__ = ["PipeOps", "ReadPipeTransport", "WritePipeTransport"]

#: Bytes asked of one read (asyncio's max_size for pipe transports).
MAX_READ = 256 * 1024

_TRY_AGAIN = (BlockingIOError, InterruptedError)
_NEVER_SWALLOWED = (SystemExit, KeyboardInterrupt)
_BYTES_LIKE = (bytes, bytearray, memoryview)

_READ_KIND_MESSAGE = "Pipe transport is for pipes/sockets only."
_WRITE_KIND_MESSAGE = "Pipe transport is only for pipes, sockets and character devices"
_READ_FAILED = "Fatal read error on pipe transport"
_WRITE_FAILED = "Fatal write error on pipe transport"
_LOST_WRITE_WARNING = "pipe closed by peer or os.write(pipe, data) raised exception."


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _kind(fd: int) -> tuple[bool, bool, bool]:
    """``(is_fifo, is_socket, is_char_device)`` of *fd*."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode), stat.S_ISSOCK(mode), stat.S_ISCHR(mode)


class _PipeTransportBase:
    """What both pipe transports share: registration, repr, cleanup."""

    # Read by __del__ and __repr__ even if __init__ failed early.
    _pipe: Any = None
    _fileno: int | None = None
    _loop: Any = None
    _closing = False
    _lost = False
    _watching = False  # the fd interest the repr reports (read or write side)

    def _register(self, loop: Any, pipe: Any, protocol: Any) -> None:
        self._loop = loop
        self._backend = loop._backend
        self._pipe = pipe
        self._protocol = protocol
        loop._transports[self._fileno] = self

    def _refuse(self, message: str) -> None:
        # Nothing to clean up: the pipe stays the caller's (as asyncio).
        self._pipe = None
        self._fileno = None
        self._protocol = None
        raise ValueError(message)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Deliver to *protocol* from now on."""
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The current protocol."""
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        """True once closing started (close, write_eof, abort, EOF or an error)."""
        return self._closing

    def _schedule_connection_lost(self, exc: BaseException | None) -> None:
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        try:
            self._protocol.connection_lost(exc)  # type: ignore[attr-defined]
        finally:
            pipe = self._pipe
            self._pipe = None
            self._protocol = None
            transports = self._loop._transports
            if transports.get(self._fileno) is self:
                del transports[self._fileno]
            if pipe is not None:
                pipe.close()

    def _state_words(self) -> list[str]:
        return []

    @staticmethod
    def _expected_error(exc: BaseException) -> bool:
        """True for an error that only means "the other end is gone" (logged in debug only).

        For a reader, EIO: what a pty's reader gets once the other side is gone.
        """
        return isinstance(exc, OSError) and exc.errno == errno.EIO

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        if self._expected_error(exc):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,  # type: ignore[attr-defined]
                }
            )
        self._close(exc)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        loop = self._loop
        if self._pipe is not None and loop is not None and not loop.is_closed():
            info.append("polling" if self._watching else "idle")
            info.extend(self._state_words())
        elif self._pipe is not None:
            info.append("open")
        else:
            info.append("closed")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()


class ReadPipeTransport(_PipeTransportBase, asyncio.ReadTransport):
    """The read end of a pipe, a pty or a socket, as an asyncio.ReadTransport."""

    max_size = MAX_READ

    def __init__(
        self,
        loop: Any,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._fileno = pipe.fileno()
        self._paused = False
        is_fifo, is_socket, is_char = _kind(self._fileno)  # type: ignore[arg-type]
        if not (is_fifo or is_socket or is_char):
            self._refuse(_READ_KIND_MESSAGE)
        loop._backend.set_blocking(self._fileno, False)
        self._register(loop, pipe, protocol)
        loop.call_soon(protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    # -- reading -------------------------------------------------------------

    def is_reading(self) -> bool:
        """True unless paused or closing."""
        return not self._paused and not self._closing

    def _start_reading(self) -> None:
        if self.is_reading():
            self._loop._add_reader(self._fileno, self._read_ready)
            self._watching = True

    def pause_reading(self) -> None:
        """Stop reading until resume_reading(); a no-op when not reading."""
        if not self.is_reading():
            return
        self._paused = True
        self._loop._remove_reader(self._fileno)
        self._watching = False
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Read again after pause_reading(); a no-op when not paused or closing."""
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _read_ready(self) -> None:
        try:
            data = self._backend.read(self._fileno, self.max_size)
        except _TRY_AGAIN:
            return
        except OSError as exc:
            self._fatal_error(exc, _READ_FAILED)
            return
        if data:
            self._protocol.data_received(data)  # type: ignore[attr-defined]
            return
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._closing = True
        self._stop_watching()
        self._loop.call_soon(self._call_eof_received)
        self._schedule_connection_lost(None)

    def _call_eof_received(self) -> None:
        protocol = self._protocol
        if protocol is not None:
            protocol.eof_received()

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and lose the connection (connection_lost(None))."""
        if not self._closing:
            self._close(None)

    def _stop_watching(self) -> None:
        self._loop._remove_reader(self._fileno)
        self._watching = False

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        self._stop_watching()
        self._schedule_connection_lost(exc)


class WritePipeTransport(WriteBufferLimits, _PipeTransportBase, asyncio.WriteTransport):
    """The write end of a pipe, a pty or a socket, as an asyncio.WriteTransport."""

    def __init__(
        self,
        loop: Any,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._fileno = pipe.fileno()
        self._buffer = bytearray()
        self._flow = WriteFlowControl()
        self._conn_lost = 0
        is_fifo, is_socket, is_char = _kind(self._fileno)  # type: ignore[arg-type]
        if not (is_fifo or is_socket or is_char):
            self._refuse(_WRITE_KIND_MESSAGE)
        loop._backend.set_blocking(self._fileno, False)
        self._register(loop, pipe, protocol)
        loop.call_soon(protocol.connection_made, self)
        if is_fifo or is_socket:
            # The write end of a pipe or socket turns readable when the reader
            # goes away (a pty's would hand us the other side's input instead).
            loop.call_soon(self._watch_reader_gone)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _watch_reader_gone(self) -> None:
        if not self._closing:
            self._loop._add_reader(self._fileno, self._read_ready)

    def _read_ready(self) -> None:
        # The reader closed its end.
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._close(BrokenPipeError() if self._buffer else None)

    # -- flow control: WriteBufferLimits (transports.py) -----------------------

    def _state_words(self) -> list[str]:
        return [f"bufsize={self._flow.size}"]

    # -- writing -------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write *data* (buffered as needed; never blocks)."""
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if type(data) is not bytes:
            data = memoryview(data).cast("B")
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning(_LOST_WRITE_WARNING)
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                n = self._backend.write(self._fileno, data)
            except _TRY_AGAIN:
                n = 0
            except BaseException as exc:
                if isinstance(exc, _NEVER_SWALLOWED):
                    raise
                self._conn_lost += 1
                self._fatal_error(exc, _WRITE_FAILED)
                return
            if n == len(data):
                return
            data = memoryview(data)[n:]
            self._loop._add_writer(self._fileno, self._write_ready)
            self._watching = True
        self._buffer += data
        signal = self._flow.grow(len(data))
        if signal is not None:
            signal_protocol(self._loop, self, self._protocol, signal)

    def writelines(self, list_of_data: Any) -> None:
        """Write the chunks in order, as one write (flow control sees them all)."""
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        try:
            n = self._backend.write(self._fileno, buffer)
        except _TRY_AGAIN:
            return
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._discard()
            self._conn_lost += 1
            self._fatal_error(exc, _WRITE_FAILED)
            return
        del buffer[:n]
        signal = self._flow.shrink(n)
        if not buffer:
            self._loop._remove_writer(self._fileno)
            self._watching = False
        if signal is not None:
            # resume_writing() may write, close or abort.
            signal_protocol(self._loop, self, self._protocol, signal)
        if not self._buffer and self._closing and not self._lost:
            self._loop._remove_reader(self._fileno)
            self._call_connection_lost(None)

    def can_write_eof(self) -> bool:
        """True: write_eof() closes the pipe once the buffer is written."""
        return True

    def write_eof(self) -> None:
        """Close the write end once the buffer is written."""
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._loop._remove_reader(self._fileno)
            self._schedule_connection_lost(None)

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Write what is buffered, then close (as write_eof())."""
        if self._pipe is not None and not self._closing:
            self.write_eof()

    def abort(self) -> None:
        """Close now, discarding the buffer."""
        self._close(None)

    def _discard(self) -> None:
        if self._buffer:
            self._loop._remove_writer(self._fileno)
            self._watching = False
        self._buffer.clear()
        self._flow.clear()

    def _close(self, exc: BaseException | None = None) -> None:
        self._closing = True
        self._discard()
        self._loop._remove_reader(self._fileno)
        self._schedule_connection_lost(exc)

    @staticmethod
    def _expected_error(exc: BaseException) -> bool:
        # A writer's OSError (EPIPE, ECONNRESET...) is the reader going away.
        return isinstance(exc, OSError)


class PipeOps:
    """connect_read_pipe, connect_write_pipe and asyncio's private factories."""

    _debug: bool

    def _make_read_pipe_transport(
        self,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> ReadPipeTransport:
        """A ReadPipeTransport for *pipe* (asyncio's private factory name)."""
        return ReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(
        self,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> WritePipeTransport:
        """A WritePipeTransport for *pipe* (asyncio's private factory name)."""
        return WritePipeTransport(self, pipe, protocol, waiter, extra)

    async def connect_read_pipe(
        self, protocol_factory: Any, pipe: Any
    ) -> tuple[asyncio.ReadTransport, asyncio.BaseProtocol]:
        """Read from the file-like *pipe* into ``protocol_factory()``."""
        return await self._connect_pipe(
            self._make_read_pipe_transport, protocol_factory, pipe, "Read"
        )

    async def connect_write_pipe(
        self, protocol_factory: Any, pipe: Any
    ) -> tuple[asyncio.WriteTransport, asyncio.BaseProtocol]:
        """Write to the file-like *pipe* for ``protocol_factory()``."""
        return await self._connect_pipe(
            self._make_write_pipe_transport, protocol_factory, pipe, "Write"
        )

    async def _connect_pipe(self, make: Any, protocol_factory: Any, pipe: Any, side: str) -> Any:
        protocol = protocol_factory()
        waiter = self.create_future()  # type: ignore[attr-defined]
        transport = make(pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug("%s pipe %r connected: (%r, %r)", side, pipe.fileno(), transport, protocol)
        return transport, protocol
