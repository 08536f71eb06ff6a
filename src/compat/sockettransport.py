"""SocketTransport: asyncio's stream transport over a non-blocking socket.

``SocketTransport(loop, sock, protocol, waiter=None, extra=None, server=None)``
is an ``asyncio.Transport`` (stdlib's class, for isinstance) for TCP and Unix
stream sockets. It pairs two core machines with the socket:

- ``TransportLifecycle`` (core.transportstate) decides the lifecycle: every
  user call and I/O result is fed to it, and the actions it returns (watch or
  stop watching the fd, shut down the write side, call eof_received, discard
  the buffer, lose the connection) are performed here, in order. That is what
  makes ``connection_lost`` happen exactly once, ``close()`` flush and
  ``abort()`` discard.
- ``WriteFlowControl`` (core.flowcontrol) counts buffered bytes and says when
  the protocol must hear ``pause_writing()``/``resume_writing()``; write() and
  writelines() both go through it (writelines pauses too: CVE-2024-12254).

Construction (as asyncio's selector transport): the socket is made
non-blocking (TCP_NODELAY for TCP), the transport registers itself in
``loop._transports`` and with ``server._attach(self)``; then, via call_soon,
``protocol.connection_made(self)``, reading starts, and *waiter* (if any) gets
``None`` unless cancelled. Cleanup after connection_lost: the socket is closed,
the transport leaves ``loop._transports`` and ``server._detach(self)`` runs.

Receiving: an ``asyncio.BufferedProtocol`` receives in place
(``recv_into(protocol.get_buffer(-1))`` then ``buffer_updated(n)``); a plain
Protocol gets ``recv(max_size)`` (256 KiB): measured against ``recv_into`` a
reused buffer plus a copy out, it is 5-11% faster once glibc's mmap threshold
has risen, which this module makes happen at import (``_steady_allocator``;
stdlib's slowness at 256 KiB per receive is that threshold, not allocating).

Sending: write() tries ``send`` at once when nothing is buffered and buffers the
rest (a bytearray or memoryview is copied: the caller may reuse it); the writer
callback flushes with ``sendmsg`` over the buffered chunks.

Errors follow asyncio: OSErrors of the connection (reset, broken pipe) lose the
connection with the exception and are logged only in debug mode; other errors
(a protocol callback raised) go to the loop's exception handler first. Writes
after the connection was lost are dropped and counted; from the fifth on each
logs "socket.send() raised exception." (LOG_THRESHOLD_FOR_CONNLOST_WRITES).

Size: about 600 lines for one class. The decisions already live in the two
core machines; what is left here is the socket I/O, asyncio's error paths and
messages, and the private names asyncio's own helpers read (sendfile's empty
waiter, ``_protocol_paused``, ``_start_tls_compatible``). Splitting it would
scatter one object's hot paths across files.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import socket
import sys
import warnings
from asyncio import constants as _aio_constants
from typing import Any

from ..core.flowcontrol import WriteFlowControl
from ..core.transportstate import (
    CLOSING_STATES,
    LOST_STATES,
    READING_STATES,
    WRITE_EOF_STATES,
    Action,
    Input,
    State,
    TransportLifecycle,
)
from .errors import logger
from .transports import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    WriteBufferLimits,
    set_nodelay,
    signal_protocol,
    socket_extra,
)

__all__ = ["SocketTransport"]

#: Bytes asked of one receive (asyncio's max_size for socket transports).
MAX_RECV = 256 * 1024

_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
try:
    #: Chunks per sendmsg (the kernel's iovec limit).
    _IOV_MAX = min(socket.sysconf("SC_IOV_MAX"), 1024)  # type: ignore[attr-defined]
except (AttributeError, OSError, ValueError):
    _IOV_MAX = 16

_BYTES_LIKE = (bytes, bytearray, memoryview)

#: Writes smaller than this are copied into one growing chunk while data is
#: buffered (fewer chunks per sendmsg, no per-write deque entry); larger bytes
#: objects are queued as they are, without a copy.
COALESCE_BELOW = 16 * 1024


def _steady_allocator() -> None:
    """Free one large block once, so that 256 KiB receives come from the heap.

    glibc serves blocks above its mmap threshold (128 KiB at start) with
    mmap/munmap and raises the threshold the first time such a block is freed.
    Until then every ``recv(256 KiB)`` is an mmap, page faults and a munmap
    (4x slower bulk receiving, measured). Any long-running process frees a
    large block sooner or later; this makes "sooner" the import. Harmless with
    other allocators.
    """
    block = bytearray(1 << 20)
    del block


_steady_allocator()


def _owned(data: Any) -> Any:
    """Data the transport may keep: bytes as they are, others copied."""
    if type(data) is bytes:
        return data
    return bytes(data)


def _check_bytes(data: Any) -> None:
    if not isinstance(data, _BYTES_LIKE):
        raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


_WRITELINES_EOF_MESSAGE = (
    "Cannot call writelines() after write_eof()"
    if sys.version_info >= (3, 12)
    else "Cannot call write() after write_eof()"
)

_A = Action
_I = Input

#: _syscall's answers besides a count.
_WOULD_BLOCK = -1
_FAILED = -2
_TRY_AGAIN = (BlockingIOError, InterruptedError)
_NEVER_SWALLOWED = (SystemExit, KeyboardInterrupt)

# asyncio's messages for the fatal-error paths.
_READ_FAILED = "Fatal read error on socket transport"
_WRITE_FAILED = "Fatal write error on socket transport"
_DATA_RECEIVED_FAILED = "Fatal error: protocol.data_received() call failed."
_BUFFER_UPDATED_FAILED = "Fatal error: protocol.buffer_updated() call failed."
_GET_BUFFER_FAILED = "Fatal error: protocol.get_buffer() call failed."
_EOF_RECEIVED_FAILED = "Fatal error: protocol.eof_received() call failed."
#: States in which write() takes the slow path (refused or dropped).
_WRITE_ODD_STATES = WRITE_EOF_STATES | LOST_STATES


class SocketTransport(WriteBufferLimits, asyncio.Transport):
    """A stream transport over a connected non-blocking socket."""

    max_size = MAX_RECV
    _start_tls_compatible = True
    _sendfile_compatible = _aio_constants._SendfileMode.TRY_NATIVE
    # Read by __del__ even if __init__ failed early.
    _sock: socket.socket | None = None
    # The write buffer: this empty tuple until the first write the socket did
    # not take whole, then a deque (_queue()). An empty deque costs ~700 bytes
    # (its first 64-slot block), a third of an idle connection's memory.
    _buffer: Any = ()

    def __init__(
        self,
        loop: Any,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> None:
        super().__init__(socket_extra(sock, extra))
        self._loop = loop
        sock.setblocking(False)
        set_nodelay(sock)
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._life = TransportLifecycle()
        self._flow = WriteFlowControl()
        self._conn_lost = 0
        self._empty_waiter: Any = None
        self._server = server
        self._protocol: Any = None
        self._buffered_protocol = False
        self.set_protocol(protocol)
        if server is not None:
            server._attach(self)
        loop._transports[self._sock_fd] = self
        loop.call_soon(protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    # -- protocol ------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Receive into *protocol* from now on."""
        self._protocol = protocol
        self._buffered_protocol = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The current protocol."""
        return self._protocol  # type: ignore[no-any-return]

    # -- state ---------------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() was called or the connection was lost."""
        return self._life.state in CLOSING_STATES

    def is_reading(self) -> bool:
        """True while the transport receives (not paused, closing, or past EOF)."""
        return self._life.state in READING_STATES

    def pause_reading(self) -> None:
        """Stop receiving until resume_reading(); a no-op when not reading."""
        if self._life.state in READING_STATES:
            self._perform(self._life.feed(_I.PAUSE))
            if self._loop.get_debug():
                logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Receive again after pause_reading(); a no-op when not paused."""
        before = self._life.state
        self._perform(self._life.feed(_I.RESUME))
        if self._life.state is not before and self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _start_reading(self) -> None:
        if self._life.state in READING_STATES:
            self._loop._add_reader(self._sock_fd, self._read_ready)

    # -- flow control: WriteBufferLimits (transports.py) -----------------------

    # -- the two ways out of the happy path ----------------------------------

    def _syscall(self, op: Any, arg: Any, failure: str) -> Any:
        """``op(arg)`` on the socket: its result, or ``_WOULD_BLOCK``/``_FAILED``.

        A failure other than "try again" is fatal to the connection (see
        _fatal_error); SystemExit and KeyboardInterrupt are not ours to keep.
        """
        try:
            return op(arg)
        except _TRY_AGAIN:
            return _WOULD_BLOCK
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._fatal_error(exc, failure)
            return _FAILED

    def _tell(self, callback: Any, arg: Any, failure: str) -> bool:
        """Call a protocol method; False (and the connection is lost) if it raised."""
        try:
            callback(arg)
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._fatal_error(exc, failure)
            return False
        return True

    # -- receiving -----------------------------------------------------------

    def _read_ready(self) -> None:
        if self._life.state not in READING_STATES:
            return
        protocol = self._protocol
        if self._buffered_protocol:
            # BufferedProtocol: the bytes land in the protocol's own buffer.
            target = self._protocol_buffer(protocol)
            if target is None:
                return
            n = self._syscall(self._sock.recv_into, target, _READ_FAILED)  # type: ignore[union-attr]
            if n > 0:
                self._tell(protocol.buffer_updated, n, _BUFFER_UPDATED_FAILED)
            elif n == 0:
                self._on_eof()
            return
        # recv() of max_size: one copy (kernel to a fresh bytes object, shrunk
        # in place); receiving into a shared buffer and copying out is two and
        # measured slower once the allocator is steady (see _steady_allocator).
        # One try around the whole hot path; *stage* names what failed.
        stage = _READ_FAILED
        try:
            data = self._sock.recv(self.max_size)  # type: ignore[union-attr]
            if data:
                stage = _DATA_RECEIVED_FAILED
                protocol.data_received(data)
                return
        except BaseException as exc:
            if self._failed(exc, stage):
                raise
            return
        self._on_eof()

    def _failed(self, exc: BaseException, stage: str) -> bool:
        """Handle *exc* raised at *stage*; True if the caller must re-raise it."""
        if isinstance(exc, _NEVER_SWALLOWED):
            return True
        if stage is _READ_FAILED or stage is _WRITE_FAILED:
            if isinstance(exc, _TRY_AGAIN):
                return False
        self._fatal_error(exc, stage)
        return False

    def _protocol_buffer(self, protocol: Any) -> Any:
        """The protocol's buffer to receive into, or None (the connection failed)."""
        try:
            target = protocol.get_buffer(-1)
            empty = not len(target)
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._fatal_error(exc, _GET_BUFFER_FAILED)
            return None
        if empty:
            problem = RuntimeError("get_buffer() returned an empty buffer")
            self._fatal_error(problem, _GET_BUFFER_FAILED)
            return None
        return target

    def _on_eof(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        self._perform(self._life.feed(_I.EOF))

    def _eof_received(self) -> None:
        keep_open: Any = None
        try:
            keep_open = self._protocol.eof_received()
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._fatal_error(exc, _EOF_RECEIVED_FAILED)
            return
        if not keep_open:
            self.close()

    # -- sending -------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send *data* (buffered as needed; never blocks)."""
        if type(data) is not bytes:
            _check_bytes(data)
        state = self._life.state
        if state in _WRITE_ODD_STATES or self._empty_waiter is not None or not data:
            self._write_odd(data, state)
            return
        buffer = self._buffer
        if buffer:
            size = len(data) if type(data) is bytes else memoryview(data).nbytes
            if size <= COALESCE_BELOW:
                last = buffer[-1]
                if type(last) is bytearray:
                    last += data
                else:
                    buffer.append(bytearray(data))
            else:
                buffer.append(_owned(data))
        else:
            try:
                n = self._sock.send(data)  # type: ignore[union-attr]
            except BaseException as exc:
                if self._failed(exc, _WRITE_FAILED):
                    raise
                if self._life.state in LOST_STATES:
                    return
                n = 0
            if type(data) is bytes:
                if n == len(data):
                    return  # all sent: the common case costs no view
                view = memoryview(data)
            else:
                view = memoryview(data).cast("B")
            size = len(view) - n
            if not size:
                return
            # A bytes object cannot change under us: keep a view of its tail.
            self._queue().append(view[n:] if type(data) is bytes else bytes(view[n:]))
            self._perform(self._life.feed(_I.SHORT_WRITE if n else _I.EAGAIN))
        signal = self._flow.grow(size)
        if signal is not None:
            signal_protocol(self._loop, self, self._protocol, signal)

    def _write_odd(self, data: Any, state: State) -> None:
        # asyncio's order: write_eof, sendfile in progress, nothing to send, lost.
        if state in WRITE_EOF_STATES:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if data and state in LOST_STATES:
            self._count_lost_write()

    def writelines(self, list_of_data: Any) -> None:
        """Send each chunk in order; flow control sees every byte buffered."""
        if self._life.state in WRITE_EOF_STATES:
            raise RuntimeError(_WRITELINES_EOF_MESSAGE)
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        chunks = []
        for data in list_of_data:
            _check_bytes(data)
            if data:
                chunks.append(_owned(data))
        if not chunks:
            return
        if self._life.state in LOST_STATES:
            self._count_lost_write()
            return
        if not self._buffer:
            # Nothing queued: offer the chunks to the socket first, buffer the rest.
            sock: Any = self._sock
            if _HAS_SENDMSG:
                n = self._syscall(sock.sendmsg, chunks[:_IOV_MAX], _WRITE_FAILED)
            else:
                n = self._syscall(sock.send, chunks[0], _WRITE_FAILED)
            if n < 0:
                if n == _FAILED:
                    return
                n = 0
            total = sum(map(len, chunks))
            if n == total:
                return
            self._queue().extend(chunks)
            self._consume(n)
            self._perform(self._life.feed(_I.SHORT_WRITE if n else _I.EAGAIN))
            grown = total - n
        else:
            self._queue().extend(chunks)
            grown = sum(map(len, chunks))
        signal = self._flow.grow(grown)
        if signal is not None:
            signal_protocol(self._loop, self, self._protocol, signal)

    def _queue(self) -> collections.deque[Any]:
        """The write buffer as a deque, made on first need."""
        buffer = self._buffer
        if buffer.__class__ is tuple:
            buffer = self._buffer = collections.deque()
        return buffer  # type: ignore[no-any-return]

    def _count_lost_write(self) -> None:
        if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")
        self._conn_lost += 1

    def _flush(self) -> bool:
        """Send what the socket takes from the buffer; False after a fatal error."""
        buffer = self._buffer
        sock: Any = self._sock
        if _HAS_SENDMSG and len(buffer) > 1:
            n = self._syscall(sock.sendmsg, itertools.islice(buffer, _IOV_MAX), _WRITE_FAILED)
        else:
            n = self._syscall(sock.send, buffer[0], _WRITE_FAILED)
        if n == _WOULD_BLOCK:
            return True
        if n == _FAILED:
            return False
        self._consume(n)
        return self._sent(n)

    def _consume(self, n: int) -> None:
        """Drop the first *n* bytes of the buffer."""
        buffer = self._buffer
        while n:
            chunk = buffer[0]
            size = len(chunk)
            if size <= n:
                buffer.popleft()
                n -= size
            elif type(chunk) is bytearray:
                del chunk[:n]  # ours (coalesced small writes); cheap at the front
                break
            else:
                buffer[0] = memoryview(chunk)[n:]
                break

    def _sent(self, n: int) -> bool:
        signal = self._flow.shrink(n)
        if signal is not None:
            # resume_writing() may write, close or abort.
            signal_protocol(self._loop, self, self._protocol, signal)
        return self._life.state not in LOST_STATES

    def _write_ready(self) -> None:
        if self._life.state in LOST_STATES or not self._buffer:
            return
        if not self._flush():
            return
        if not self._buffer:
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_result(None)
            self._perform(self._life.feed(_I.DRAINED))

    def write_eof(self) -> None:
        """Shut down the write side once the buffer is sent."""
        self._perform(self._life.feed(_I.WRITE_EOF))

    def can_write_eof(self) -> bool:
        """Stream sockets can half-close."""
        return True

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Stop receiving, send what is buffered, then lose the connection."""
        self._perform(self._life.feed(_I.CLOSE))

    def abort(self) -> None:
        """Lose the connection now, discarding the buffer."""
        self._perform(self._life.feed(_I.ABORT))

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._perform(self._life.feed(_I.RESET), exc)
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            # A sendfile waiting for the buffer to drain fails with the cause.
            waiter.set_exception(exc)

    def _perform(self, actions: tuple[Action, ...], exc: BaseException | None = None) -> None:
        loop = self._loop
        for action in actions:
            if action is _A.STOP_READING:
                loop._remove_reader(self._sock_fd)
            elif action is _A.START_READING:
                loop._add_reader(self._sock_fd, self._read_ready)
            elif action is _A.WATCH_WRITABLE:
                loop._add_writer(self._sock_fd, self._write_ready)
            elif action is _A.STOP_WRITING:
                loop._remove_writer(self._sock_fd)
            elif action is _A.CHECK_DRAINED:
                if not self._buffer:
                    self._perform(self._life.feed(_I.DRAINED))
            elif action is _A.SHUTDOWN_WRITE:
                self._sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
            elif action is _A.EOF_RECEIVED:
                self._eof_received()
            elif action is _A.DISCARD:
                self._buffer = ()
                self._flow.clear()
            elif action is _A.LOSE:
                # As asyncio: the loss counts as the first lost write.
                self._conn_lost += 1
                loop.call_soon(self._call_connection_lost, exc)
            else:  # DELIVER is done inline by the read path
                raise AssertionError(f"unexpected action {action!r}")

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            sock = self._sock
            self._sock = None
            self._protocol = None
            if sock is not None:
                transports = self._loop._transports
                if transports.get(self._sock_fd) is self:
                    del transports[self._sock_fd]
                sock.close()
            server = self._server
            if server is not None:
                self._server = None
                server._detach(self)
            waiter = self._empty_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError("Connection is closed by peer"))

    # -- sendfile support (asyncio's private names, used by sendfile paths) ---

    def _make_empty_waiter(self) -> Any:
        """A future done once the write buffer is empty; write() refuses meanwhile."""
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        drained = self._loop.create_future()
        self._empty_waiter = drained
        if self.get_write_buffer_size() == 0:
            drained.set_result(None)
        return drained

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None

    # -- diagnostics ---------------------------------------------------------

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self.is_closing():
            info.append("closing")
        info.append(f"fd={getattr(self, '_sock_fd', -1)}")
        life = getattr(self, "_life", None)
        if life is not None and self._sock is not None:
            info.append("read=polling" if life.state in READING_STATES else "read=idle")
            state = "polling" if self._buffer else "idle"
            info.append(f"write=<{state}, bufsize={self._flow.size}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    def statistics(self) -> dict[str, Any]:
        """Lifecycle state, flow-control numbers and lost-write count."""
        stats: dict[str, Any] = {"state": self._life.state.value, "lost_writes": self._conn_lost}
        stats.update(self._flow.statistics())
        return stats
