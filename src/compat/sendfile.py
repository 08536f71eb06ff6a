"""The loop's file transfer: ``sock_sendfile`` and ``sendfile``.

Contract
--------
``SendfileOps`` is a mixin of ``sansloop.compat.loop.EventLoop`` providing
``loop.sock_sendfile(sock, file, offset=0, count=None, *, fallback=True)`` and
``loop.sendfile(transport, file, offset=0, count=None, *, fallback=True)``
with asyncio's signatures, results, exceptions and messages (3.11-3.13).

``sock_sendfile`` sends *count* bytes (None: up to the end) of the binary
*file*, from *offset*, on the connected non-blocking stream *sock*, and
returns the number sent:

* checks, as asyncio: a blocking socket in debug mode ("the socket must be
  non-blocking"), an ``ssl.SSLSocket`` (TypeError), a text file ("file should
  be opened in binary mode"), a socket that is not SOCK_STREAM, a *count* that
  is not a positive int ("count must be a positive integer (got ...)") and an
  *offset* that is not a non-negative int;
* zero-copy first: the backend's ``sendfile(out_fd, in_fd, offset, count)``
  (``os.sendfile`` by default: a syscall, so it belongs to the backend), tried
  at once and then whenever the socket is writable, until *count* bytes or
  the end of the file. It is not available (``SendfileNotAvailableError``)
  when the backend has no such call, the file has no ``fileno()``, or the
  very first call fails (a file that is not a regular file, a socket the
  kernel cannot send files on). With ``fallback=False`` that error is raised;
  otherwise the file is read (in the executor, as asyncio does) and sent
  with ``sock_sendall``, ``asyncio.constants.SENDFILE_FALLBACK_READBUFFER_SIZE``
  bytes at a time;
* the file position is left just after the last byte sent, on success, on
  error and on cancellation, so ``file.tell()`` tells how much went out.
  Cancelling stops watching the socket and leaves it usable.

``sendfile`` does the same on a transport, by its ``_sendfile_compatible``
mode (asyncio's ``constants._SendfileMode``):

* a closing transport: ``RuntimeError("Transport is closing")``; a transport
  without the attribute (datagram, pipe): ``RuntimeError("sendfile is not
  supported for transport ...")``; a FALLBACK transport (TLS) with
  ``fallback=False``: ``RuntimeError("fallback is disabled and native
  sendfile is not supported for transport ...")``;
* TRY_NATIVE (sansloop's ``SocketTransport``): zero-copy on the transport's
  socket. The transport's write buffer is flushed first and ``write()`` is
  refused ("sendfile is in progress") until the transfer ends; reading is
  paused meanwhile and resumed after. The transport provides the hooks
  asyncio's selector transport has: ``_make_empty_waiter()`` (a future done
  when the buffer is empty; it also makes ``write()`` refuse),
  ``_reset_empty_waiter()``, ``_sock`` and ``_sock_fd``. If zero-copy is not
  available, ``fallback=False`` raises ``SendfileNotAvailableError``;
* the fallback writes the file through ``transport.write()`` (so through the
  transport's write flow control) and obeys it: a stand-in protocol is set
  on the transport for the duration, hears ``pause_writing()`` /
  ``resume_writing()``, and the next chunk waits while writing is paused.
  The user's protocol gets ``connection_lost`` if the connection is lost
  meanwhile, and is brought back in step at the end: if the pause state
  changed during the transfer it hears the one call that makes its view right
  (asyncio resumes it only if it was paused at the start, which can resume a
  still-paused protocol). Whether writing was paused at the start is read
  from the transport's ``_protocol_paused`` (asyncio's flow-control mixin and
  sansloop's transports have it), else from its buffer size and limits.

The zero-copy steps keep asyncio's private names, ``_sock_sendfile_native``
and ``_sendfile_native`` (raising ``SendfileNotAvailableError`` when they
cannot work), because code and CPython's own tests replace
``loop._sendfile_native`` on an instance to force the fallback.

Deliberate differences from asyncio (3.11-3.13), each a fix:

* a file that is not a regular file (a pipe) is sent by the fallback, or
  refused with ``SendfileNotAvailableError`` when ``fallback=False``; asyncio
  takes its ``st_size`` of 0 for an empty file and returns 0, sending nothing;
* the file position is updated on cancellation too (asyncio leaves it where
  it was, though bytes went out), and never on an unseekable file (asyncio's
  ``seek`` raises there after a fallback send);
* the transport fallback tells the user's protocol exactly the pause/resume
  call that puts it back in step (see above).

What the mixin needs from the loop: ``_backend`` (``sendfile``),
``_transports``, ``create_future``, ``run_in_executor``, ``get_debug``,
``sock_sendall``, ``_add_writer``/``_forget_writer``/``_ensure_fd_no_transport``
(the socket ops' readiness plumbing) and ``call_exception_handler``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import io
import socket
from asyncio import constants as _aio_constants
from asyncio.exceptions import SendfileNotAvailableError
from typing import Any

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

__all__ = ["SendfileOps"]

_Mode = _aio_constants._SendfileMode
_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_FATAL = (SystemExit, KeyboardInterrupt)

#: Most bytes asked of one zero-copy call when no count limits it (Linux
#: sends at most 0x7ffff000 per call; macOS reads 0 as "to the end").
_ZERO_COPY_CHUNK = 0x7FFFF000
#: Bytes per write of the transport fallback: a chunk never exceeds asyncio's
#: default high-water mark, so flow control, not the chunk, bounds the buffer.
_TRANSPORT_CHUNK = 64 * 1024


def _check_file_args(file: Any, offset: Any, count: Any) -> None:
    """asyncio's checks of the file, offset and count, with its messages."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def _leave_file_at(file: Any, position: int, sent: int) -> None:
    """Put the file position after the last byte sent (where it can be put)."""
    if sent > 0 and hasattr(file, "seek"):
        seekable = getattr(file, "seekable", None)
        if seekable is None or seekable():
            file.seek(position)


class _ZeroCopy:
    """Progress of one zero-copy transfer; ``step`` runs whenever the socket is writable."""

    __slots__ = ("fut", "send", "out_fd", "in_fd", "offset", "count", "sent", "waited")

    def __init__(
        self, fut: Any, send: Any, out_fd: int, in_fd: int, offset: int, count: int | None
    ) -> None:
        self.fut = fut
        self.send = send
        self.out_fd = out_fd
        self.in_fd = in_fd
        self.offset = offset
        self.count = count
        self.sent = 0
        self.waited = False  # True once a call has waited for writability

    def step(self) -> bool:
        """One call; True when the future is settled (finished or failed)."""
        fut = self.fut
        if fut.done():
            return True
        count = self.count
        want = _ZERO_COPY_CHUNK if count is None else min(count - self.sent, _ZERO_COPY_CHUNK)
        if want <= 0:
            fut.set_result(self.sent)
            return True
        try:
            n = self.send(self.out_fd, self.in_fd, self.offset + self.sent, want)
        except _WOULD_BLOCK:
            return False
        except NotImplementedError as exc:
            if self.sent == 0:
                exc = SendfileNotAvailableError(str(exc) or "sendfile is not available")
            # else: bytes went out; a fallback from the start would repeat them
            fut.set_exception(exc)
            return True
        except OSError as exc:
            if self.sent == 0:
                # Mostly: the file is not a regular (mmap-able) file, or the
                # kernel cannot send files on this socket. Read and send instead.
                error: BaseException = SendfileNotAvailableError("os.sendfile call failed")
                error.__cause__ = exc
            elif self.waited and exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                # The peer went away in the middle: the same error on every OS.
                error = ConnectionError(errno.ENOTCONN, "socket is not connected")
                error.__cause__ = exc
            else:
                error = exc
            fut.set_exception(error)
            return True
        except _FATAL:
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            return True
        if n == 0:  # end of file
            fut.set_result(self.sent)
            return True
        self.sent += n
        if count is not None and self.sent >= count:
            fut.set_result(self.sent)
            return True
        return False

    def on_writable(self) -> None:
        self.waited = True
        self.step()


class _FlowFollower(asyncio.Protocol):
    """Stands in for the user's protocol on a transport while the fallback writes.

    It hears pause_writing()/resume_writing() and makes ``drain()`` wait while
    writing is paused; connection_lost goes on to the user's protocol.
    """

    def __init__(self, loop: Any, transport: Any) -> None:
        self._loop = loop
        self._transport = transport
        self._user = transport.get_protocol()
        self._was_reading = transport.is_reading()
        paused = getattr(transport, "_protocol_paused", None)
        if not isinstance(paused, bool):
            high = transport.get_write_buffer_limits()[1]
            paused = transport.get_write_buffer_size() > high
        self._user_paused = paused  # what the user's protocol was last told
        self._ready: Any = loop.create_future() if paused else None
        self._lost = False
        transport.pause_reading()
        transport.set_protocol(self)

    async def drain(self) -> None:
        """Return once the transport takes more; ConnectionError if it cannot."""
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        ready = self._ready
        if ready is not None:
            await ready

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raise RuntimeError("Invalid state: connection should have been established already.")

    def pause_writing(self) -> None:
        if self._ready is None:
            self._ready = self._loop.create_future()

    def resume_writing(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("Invalid state: reading should be paused")

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.set_exception(exc or ConnectionError("Connection is closed by peer"))
        self._user.connection_lost(exc)

    def restore(self) -> None:
        """Give the transport back to the user's protocol, its flow state in step."""
        transport, user = self._transport, self._user
        paused_now = self._ready is not None
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.cancel()
        if self._lost:
            return  # connection_lost was delivered; nothing more to tell
        transport.set_protocol(user)
        if self._was_reading:
            transport.resume_reading()
        if paused_now != self._user_paused:
            name = "pause_writing" if paused_now else "resume_writing"
            try:
                getattr(user, name)()
            except _FATAL:
                raise
            except BaseException as exc:
                self._loop.call_exception_handler(
                    {
                        "message": f"protocol.{name}() failed",
                        "exception": exc,
                        "transport": transport,
                        "protocol": user,
                    }
                )


class SendfileOps:
    """``loop.sock_sendfile`` and ``loop.sendfile``."""

    # Provided by the EventLoop this is mixed into.
    _backend: Any
    _transports: Any
    create_future: Any
    run_in_executor: Any
    get_debug: Any
    sock_sendall: Any
    call_exception_handler: Any
    _add_writer: Any
    _forget_writer: Any
    _ensure_fd_no_transport: Any

    # -- sockets -------------------------------------------------------------

    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send *file* (from *offset*, *count* bytes or to the end) on *sock*.

        Zero-copy where the backend can, else (if *fallback*) read and send.
        Returns the number of bytes sent; the file position ends after them.
        """
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        if ssl is not None and isinstance(sock, ssl.SSLSocket):
            raise TypeError("Socket cannot be of type SSLSocket")
        _check_file_args(file, offset, count)
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(
        self, sock: Any, file: Any, offset: int, count: int | None
    ) -> int:
        send = getattr(self._backend, "sendfile", None)
        if send is None:
            raise SendfileNotAvailableError(f"backend {self._backend!r} has no sendfile()")
        try:
            in_fd = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise SendfileNotAvailableError("not a regular file") from None
        out_fd = sock.fileno()
        progress = _ZeroCopy(self.create_future(), send, out_fd, in_fd, offset, count)
        try:
            if not progress.step():
                self._ensure_fd_no_transport(out_fd)
                handle = self._add_writer(out_fd, progress.on_writable)
                progress.fut.add_done_callback(
                    functools.partial(self._forget_writer, out_fd, handle)
                )
            return await progress.fut  # type: ignore[no-any-return]
        finally:
            _leave_file_at(file, offset + progress.sent, progress.sent)

    async def _sock_sendfile_fallback(
        self, sock: Any, file: Any, offset: int, count: int | None
    ) -> int:
        if offset:
            file.seek(offset)
        chunk = _aio_constants.SENDFILE_FALLBACK_READBUFFER_SIZE
        blocksize = min(count, chunk) if count else chunk
        buf = bytearray(blocksize)
        sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - sent, blocksize)
                    if blocksize <= 0:
                        return sent
                view = memoryview(buf)[:blocksize]
                n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    return sent  # end of file
                await self.sock_sendall(sock, view[:n])
                sent += n
        finally:
            _leave_file_at(file, offset + sent, sent)

    # -- transports ------------------------------------------------------------

    async def sendfile(
        self,
        transport: asyncio.WriteTransport,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send *file* on *transport*: zero-copy on sansloop's socket transports.

        Otherwise (if *fallback*) it is read and written through the
        transport's flow control. Returns the number of bytes sent.
        """
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, "_sendfile_compatible", _Mode.UNSUPPORTED)
        if mode is _Mode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is _Mode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(
                "fallback is disabled and native sendfile is not supported "
                f"for transport {transport!r}"
            )
        _check_file_args(file, offset, count)
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(
        self, transport: Any, file: Any, offset: int, count: int | None
    ) -> int:
        sock = getattr(transport, "_sock", None)
        if sock is None or not hasattr(transport, "_make_empty_waiter"):
            raise SendfileNotAvailableError("sendfile syscall is not supported")
        fd = transport._sock_fd
        was_reading = transport.is_reading()
        # Done once the buffer is flushed; from now on write() refuses. It
        # raises if another sendfile is running: then there is nothing to undo.
        flushed = transport._make_empty_waiter()
        try:
            if self._transports.get(fd) is transport:
                del self._transports[fd]  # the socket is ours until the transfer ends
            transport.pause_reading()
            await flushed
            return await self.sock_sendfile(sock, file, offset, count, fallback=False)
        finally:
            transport._reset_empty_waiter()
            if fd not in self._transports:
                self._transports[fd] = transport
            if was_reading:
                transport.resume_reading()

    async def _sendfile_fallback(
        self, transport: Any, file: Any, offset: int, count: int | None
    ) -> int:
        if offset:
            file.seek(offset)
        blocksize = min(count, _TRANSPORT_CHUNK) if count else _TRANSPORT_CHUNK
        buf = bytearray(blocksize)
        sent = 0
        follower = _FlowFollower(self, transport)
        try:
            while True:
                if count:
                    blocksize = min(count - sent, blocksize)
                    if blocksize <= 0:
                        return sent
                view = memoryview(buf)[:blocksize]
                n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    return sent  # end of file
                await follower.drain()
                transport.write(bytes(view[:n]))  # a copy: buf is reused
                sent += n
        finally:
            _leave_file_at(file, offset + sent, sent)
            follower.restore()
