"""asyncio's streams API on sansloop's stream buffer machine.

``StreamReader``, ``StreamWriter``, ``StreamReaderProtocol``, ``open_connection``,
``start_server``, ``open_unix_connection`` and ``start_unix_server`` with
asyncio's names, signatures (``limit=2**16``), exceptions, messages and reprs.
They run on any asyncio-shaped loop (stdlib's, ours in loop or full mode): the
only loop methods used are ``create_future``, ``create_task``,
``call_exception_handler``, ``get_debug``, ``is_closed``, and the connection
methods of the helper functions.

``StreamReader`` is a thin driver of ``sansloop.core.streambuffer.StreamBuffer``:
the machine decides (data, NEED_DATA, an exception; wake, pause, resume); the
reader parks one future while the machine says NEED_DATA and performs the
transport's ``pause_reading``/``resume_reading``. The machine's one deliberate
difference from asyncio -- a waiting ``readexactly(n)`` keeps reading until *n*
bytes are in instead of toggling the transport per chunk -- is in
docs/compat.md.

``StreamReaderProtocol`` adapts a Protocol to the reader; for servers it makes
the ``StreamWriter`` and runs ``client_connected_cb`` (a coroutine becomes a
task; its failure goes to the loop's exception handler and closes the
transport; its cancellation closes the transport, as in Python 3.13).
``StreamWriter.drain()`` waits on the protocol's ``_drain_helper()``; any
number of tasks may drain at once, and all are released together.

Since 3.11.5, a ``StreamWriter`` collected while its transport is open closes
it and warns ``ResourceWarning: unclosed <StreamWriter ...>`` (``loop is
closed`` if the loop is); so does ours.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import warnings
import weakref
from asyncio import events
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.streambuffer import DEFAULT_LIMIT, NEED_DATA, PAUSE, RESUME, WAKE, StreamBuffer
from . import coroutines
from .tasks import sleep

__all__ = [
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
]
if hasattr(socket, "AF_UNIX"):
    __all__ += ["open_unix_connection", "start_unix_server"]

_DEFAULT_LIMIT = DEFAULT_LIMIT

# Up to 3.12 a server protocol keeps its StreamWriter alive until the
# connection is lost; 3.13 lets the client callback own it, so a writer the
# callback drops unclosed is collected at once and warns (follow the version).
_PROTOCOL_HOLDS_WRITER = sys.version_info < (3, 13)

ClientConnectedCallback = Callable[["StreamReader", "StreamWriter"], Awaitable[None] | None]


def _default_loop() -> Any:
    """The loop a StreamReader/protocol made without ``loop=`` binds to (asyncio's rule)."""
    getter = getattr(events, "_get_event_loop", None)
    if getter is not None and sys.version_info < (3, 12):
        return getter()
    return events.get_event_loop()


# -- the helper functions ----------------------------------------------------


async def open_connection(
    host: Any = None, port: Any = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
) -> tuple[StreamReader, StreamWriter]:
    """``loop.create_connection()`` returning a ``(StreamReader, StreamWriter)`` pair.

    Every keyword but *limit* (the reader's buffer limit) goes to
    ``create_connection``.
    """
    loop = events.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    return reader, StreamWriter(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: Any = None,
    port: Any = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Any:
    """``loop.create_server()`` calling ``client_connected_cb(reader, writer)`` per client.

    A coroutine function's coroutine runs as a task. Returns the Server.
    """
    loop = events.get_running_loop()

    def factory() -> StreamReaderProtocol:
        return StreamReaderProtocol(
            StreamReader(limit=limit, loop=loop), client_connected_cb, loop=loop
        )

    return await loop.create_server(factory, host, port, **kwds)


if hasattr(socket, "AF_UNIX"):

    async def open_unix_connection(
        path: Any = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
    ) -> tuple[StreamReader, StreamWriter]:
        """``open_connection`` over a Unix socket (``loop.create_unix_connection``)."""
        loop = events.get_running_loop()
        reader = StreamReader(limit=limit, loop=loop)
        protocol = StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
        return reader, StreamWriter(transport, protocol, reader, loop)

    async def start_unix_server(
        client_connected_cb: ClientConnectedCallback,
        path: Any = None,
        *,
        limit: int = _DEFAULT_LIMIT,
        **kwds: Any,
    ) -> Any:
        """``start_server`` over a Unix socket (``loop.create_unix_server``)."""
        loop = events.get_running_loop()

        def factory() -> StreamReaderProtocol:
            return StreamReaderProtocol(
                StreamReader(limit=limit, loop=loop), client_connected_cb, loop=loop
            )

        return await loop.create_unix_server(factory, path, **kwds)


# -- protocol side -------------------------------------------------------------


class FlowControlMixin(asyncio.Protocol):
    """The write-side half of a stream protocol: what ``StreamWriter.drain()`` waits on.

    ``pause_writing``/``resume_writing`` (called by the transport, strictly
    alternating) open and close the gate; ``connection_lost`` releases every
    drainer (with the error, if any). A subclass overriding these must call
    them.
    """

    def __init__(self, loop: Any = None) -> None:
        self._loop = _default_loop() if loop is None else loop
        self._paused = False
        self._drain_waiters: list[Any] = []
        self._connection_lost = False

    def _log_flow(self, what: str) -> None:
        if self._loop.get_debug():
            from .errors import logger

            logger.debug("%r %s writing", self, what)

    def _release_drainers(self, exc: BaseException | None) -> None:
        pending = [w for w in self._drain_waiters if not w.done()]
        for waiter in pending:
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(None)

    def pause_writing(self) -> None:
        """The transport's write buffer went over its high-water mark."""
        assert not self._paused
        self._paused = True
        self._log_flow("pauses")

    def resume_writing(self) -> None:
        """The transport's write buffer drained to its low-water mark: release drainers."""
        assert self._paused
        self._paused = False
        self._log_flow("resumes")
        self._release_drainers(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Release drainers (only parked while paused): they return, or raise *exc*."""
        self._connection_lost = True
        if self._paused:
            self._release_drainers(exc)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        if self._paused:
            gate = self._loop.create_future()
            self._drain_waiters.append(gate)
            try:
                await gate
            finally:
                self._drain_waiters.remove(gate)

    def _get_close_waiter(self, stream: Any) -> Any:
        raise NotImplementedError


class StreamReaderProtocol(FlowControlMixin, asyncio.Protocol):
    """Adapts the Protocol callbacks to a StreamReader (and, for servers, a StreamWriter).

    The reader is held weakly, as asyncio does, except for servers until the
    connection is made (nobody else holds it yet).
    """

    _source_traceback: Any = None

    def __init__(
        self,
        stream_reader: StreamReader | None,
        client_connected_cb: ClientConnectedCallback | None = None,
        loop: Any = None,
    ) -> None:
        super().__init__(loop=loop)
        self._client_connected_cb = client_connected_cb
        self._stream_reader_wr: Any = None
        self._stream_writer: StreamWriter | None = None
        self._transport: Any = None
        self._task: Any = None
        self._over_ssl = False
        self._reject_connection = False
        self._closed = self._loop.create_future()
        if stream_reader is None:
            return
        self._stream_reader_wr = weakref.ref(stream_reader)
        self._source_traceback = stream_reader._source_traceback
        if client_connected_cb is not None:
            # A server's reader has no other owner until the callback gets it.
            self._strong_reader: StreamReader | None = stream_reader

    @property
    def _stream_reader(self) -> StreamReader | None:
        ref = self._stream_reader_wr
        return None if ref is None else ref()

    def _replace_writer(self, writer: StreamWriter) -> None:
        self._stream_writer = writer
        self._replace_transport(writer.transport)

    def _replace_transport(self, transport: Any) -> None:
        self._transport = transport
        self._over_ssl = transport.get_extra_info("sslcontext") is not None

    def connection_made(self, transport: Any) -> None:
        """Give the reader its transport; for a server, make the writer and run the callback."""
        if self._reject_connection:
            self._refuse(transport)
            return
        reader = self._stream_reader
        if reader is not None:
            reader.set_transport(transport)
        self._replace_transport(transport)
        if self._client_connected_cb is not None:
            self._serve_client(transport, reader)
            self._strong_reader = None

    def _refuse(self, transport: Any) -> None:
        # The reader was collected before the connection was made: the stream
        # was dropped unclosed. Say so and drop the connection.
        message = (
            "An open stream was garbage collected prior to establishing network "
            'connection; call "stream.close()" explicitly.'
        )
        context: dict[str, Any] = {"message": message}
        if self._source_traceback:
            context["source_traceback"] = self._source_traceback
        self._loop.call_exception_handler(context)
        transport.abort()

    def _serve_client(self, transport: Any, reader: StreamReader | None) -> None:
        loop = self._loop
        writer = StreamWriter(transport, self, reader, loop)
        if _PROTOCOL_HOLDS_WRITER:
            self._stream_writer = writer
        outcome = self._client_connected_cb(reader, writer)  # type: ignore[misc, arg-type]
        if not coroutines.iscoroutine(outcome):
            return

        def client_done(task: Any) -> None:
            # Cancelled (3.13 behaviour) or failed: the connection goes too.
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                context = {
                    "message": "Unhandled exception in client_connected_cb",
                    "exception": failure,
                    "transport": transport,
                }
                loop.call_exception_handler(context)
            if task.cancelled() or failure is not None:
                transport.close()

        self._task = loop.create_task(outcome)
        self._task.add_done_callback(client_done)

    def connection_lost(self, exc: BaseException | None) -> None:
        """EOF (or *exc*) to the reader, resolve wait_closed(), release drainers."""
        reader = self._stream_reader
        closed = self._closed
        if exc is None:
            if reader is not None:
                reader.feed_eof()
            if not closed.done():
                closed.set_result(None)
        else:
            if reader is not None:
                reader.set_exception(exc)
            if not closed.done():
                closed.set_exception(exc)
        super().connection_lost(exc)
        self._stream_reader_wr = self._stream_writer = None
        self._task = self._transport = None

    def data_received(self, data: bytes) -> None:
        """Bytes to the reader."""
        ref = self._stream_reader_wr
        if ref is not None:
            reader = ref()
            if reader is not None:
                reader.feed_data(data)

    def eof_received(self) -> bool:
        """EOF to the reader; keep the transport open for writing (not over TLS)."""
        reader = self._stream_reader
        if reader is not None:
            reader.feed_eof()
        return not self._over_ssl

    def _get_close_waiter(self, stream: Any) -> Any:
        return self._closed

    def __del__(self) -> None:
        # A connection lost with an error resolves _closed with it; nobody may
        # have awaited wait_closed(): mark it retrieved, as asyncio does.
        try:
            closed = self._closed
        except AttributeError:
            return
        if closed.done() and not closed.cancelled():
            closed.exception()


# -- writer ----------------------------------------------------------------------


class StreamWriter:
    """Wraps a transport: write/writelines/write_eof/close plus ``drain()`` for flow control."""

    def __init__(
        self, transport: Any, protocol: Any, reader: StreamReader | None, loop: Any
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        assert reader is None or isinstance(reader, (StreamReader, asyncio.StreamReader))
        self._reader = reader
        self._loop = loop
        self._complete_fut = loop.create_future()
        self._complete_fut.set_result(None)

    def __repr__(self) -> str:
        info = [type(self).__name__, f"transport={self._transport!r}"]
        if self._reader is not None:
            info.append(f"reader={self._reader!r}")
        return f"<{' '.join(info)}>"

    @property
    def transport(self) -> Any:
        """The transport written to."""
        return self._transport

    def write(self, data: Any) -> None:
        """Write *data* to the transport (buffered; use ``drain()`` for flow control)."""
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        """Write an iterable of bytes-like objects."""
        self._transport.writelines(data)

    def write_eof(self) -> Any:
        """Close the write end after the buffered data is flushed."""
        return self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the transport supports ``write_eof()``."""
        return bool(self._transport.can_write_eof())

    def close(self) -> Any:
        """Close the transport (buffered data is flushed first)."""
        return self._transport.close()

    def is_closing(self) -> bool:
        """Whether the transport is closing or closed."""
        return bool(self._transport.is_closing())

    async def wait_closed(self) -> None:
        """Wait until the connection is lost; raise its error, if any."""
        await self._protocol._get_close_waiter(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra info (``'peername'``, ``'sockname'``, ``'socket'``, ...)."""
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark.

        Raises the reader's exception if the connection failed, and
        ConnectionResetError once the connection is lost.
        """
        reader = self._reader
        if reader is not None:
            exc = reader.exception()
            if exc is not None:
                raise exc
        if self._transport.is_closing():
            # Let connection_lost() run, so that a write/drain loop on a
            # closing transport sees the error rather than spinning.
            await sleep(0)
        await self._protocol._drain_helper()

    async def start_tls(
        self,
        sslcontext: Any,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        """Upgrade the connection to TLS in place (``loop.start_tls``)."""
        protocol = self._protocol
        server_side = protocol._client_connected_cb is not None
        await self.drain()
        kwargs: dict[str, Any] = {
            "server_side": server_side,
            "server_hostname": server_hostname,
            "ssl_handshake_timeout": ssl_handshake_timeout,
        }
        if ssl_shutdown_timeout is not None:
            kwargs["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        new_transport = await self._loop.start_tls(self._transport, protocol, sslcontext, **kwargs)
        self._transport = new_transport
        if hasattr(protocol, "_replace_writer"):
            protocol._replace_writer(self)
        else:
            protocol._replace_transport(new_transport)

    def __del__(self, warnings: Any = warnings) -> None:
        # Collected while its transport is open: close it and say so (3.11.5+).
        transport = getattr(self, "_transport", None)
        if transport is None or transport.is_closing():
            return
        loop_closed = self._loop.is_closed()
        if not loop_closed:
            self.close()
        message = "loop is closed" if loop_closed else f"unclosed {self!r}"
        warnings.warn(message, ResourceWarning)


# -- reader ----------------------------------------------------------------------


class StreamReader:
    """asyncio's StreamReader, driving a ``StreamBuffer`` machine."""

    _source_traceback: Any = None

    def __init__(self, limit: int = _DEFAULT_LIMIT, loop: Any = None) -> None:
        self._machine = StreamBuffer(limit)  # ValueError('Limit cannot be <= 0')
        self._limit = limit
        self._loop = _default_loop() if loop is None else loop
        self._waiter: Any = None
        self._transport: Any = None
        if self._loop.get_debug():
            from asyncio import format_helpers

            self._source_traceback = format_helpers.extract_stack(sys._getframe(1))

    # asyncio's attribute names, read from the machine.
    @property
    def _buffer(self) -> bytearray:
        return self._machine.buffer

    @property
    def _eof(self) -> bool:
        return self._machine.eof

    @property
    def _exception(self) -> BaseException | None:
        return self._machine.exception

    @property
    def _paused(self) -> bool:
        return self._machine.paused

    def __repr__(self) -> str:
        # asyncio's field order; a field shows only when it says something.
        m = self._machine
        fields = (
            (m.buffer, lambda: f"{len(m.buffer)} bytes"),
            (m.eof, lambda: "eof"),
            (self._limit != _DEFAULT_LIMIT, lambda: f"limit={self._limit}"),
            (self._waiter, lambda: f"waiter={self._waiter!r}"),
            (m.exception, lambda: f"exception={m.exception!r}"),
            (self._transport, lambda: f"transport={self._transport!r}"),
            (m.paused, lambda: "paused"),
        )
        shown = " ".join(text() for present, text in fields if present)
        return f"<StreamReader {shown}>" if shown else "<StreamReader>"

    def exception(self) -> BaseException | None:
        """The exception set on the stream, or None."""
        return self._machine.exception

    def set_exception(self, exc: BaseException) -> None:
        """Make every later read raise *exc* (a waiting read raises it now)."""
        self._machine.set_exception(exc)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)

    def _wakeup_waiter(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def set_transport(self, transport: Any) -> None:
        """Attach the transport whose reading this reader pauses and resumes."""
        assert self._transport is None, "Transport already set"
        self._transport = transport
        self._machine.controllable = transport is not None

    def _apply(self, actions: int) -> None:
        if actions & WAKE:
            self._wakeup_waiter()
        if actions & PAUSE:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                # The transport cannot pause: buffer everything from now on.
                self._transport = None
                self._machine.controllable = False
        elif actions & RESUME:
            self._transport.resume_reading()

    def _maybe_resume_transport(self) -> None:
        actions = self._machine.flow()
        if actions:
            self._apply(actions)

    def feed_eof(self) -> None:
        """The peer closed its end: reads return what is left, then EOF."""
        self._machine.feed_eof()
        self._wakeup_waiter()

    def at_eof(self) -> bool:
        """True if the buffer is empty and ``feed_eof`` was called."""
        return self._machine.at_eof()

    def feed_data(self, data: Any) -> None:
        """Bytes from the transport."""
        actions = self._machine.feed_data(data)
        if actions == WAKE:  # the common case, inlined
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        elif actions:
            self._apply(actions)

    async def _wait_for_data(self, func_name: str) -> None:
        # The machine has just answered NEED_DATA for func_name: it refuses
        # a second parked reader, so self._waiter is free here.
        machine = self._machine
        try:
            actions = machine.flow()
            if actions:
                self._apply(actions)
            self._waiter = waiter = self._loop.create_future()
            await waiter
        finally:
            self._waiter = None
            machine.stop_waiting()

    async def readline(self) -> bytes:
        """A line ending with b'\\n'; the partial line at EOF; ValueError past the limit."""
        machine = self._machine
        while True:
            try:
                data = machine.readline()
            except BaseException:
                self._maybe_resume_transport()
                raise
            if data is not NEED_DATA:
                if machine.paused:
                    self._maybe_resume_transport()
                return data  # type: ignore[return-value]
            await self._wait_for_data("readuntil")

    async def readuntil(self, separator: Any = b"\n") -> bytes:
        """Bytes through *separator* (or the shortest match of a tuple of separators).

        LimitOverrunError when no separator starts within the limit (the data
        stays buffered); IncompleteReadError at EOF without one.
        """
        machine = self._machine
        while True:
            try:
                data = machine.readuntil(separator)
            except BaseException:
                self._maybe_resume_transport()
                raise
            if data is not NEED_DATA:
                if machine.paused:
                    self._maybe_resume_transport()
                return data  # type: ignore[return-value]
            await self._wait_for_data("readuntil")

    async def read(self, n: int = -1) -> bytes:
        """Up to *n* bytes as soon as any are available; *n* < 0: everything until EOF."""
        machine = self._machine
        if n < 0:
            if machine.exception is not None:
                raise machine.exception
            # Drain in chunks of the limit, so the buffer never has to hold it all.
            blocks = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    return b"".join(blocks)
                blocks.append(block)
        while True:
            data = machine.read(n)
            if data is not NEED_DATA:
                if machine.paused:
                    self._maybe_resume_transport()
                return data  # type: ignore[return-value]
            await self._wait_for_data("read")

    async def readexactly(self, n: int) -> bytes:
        """Exactly *n* bytes; IncompleteReadError(partial, n) at EOF before that."""
        machine = self._machine
        while True:
            try:
                data = machine.readexactly(n)
            except BaseException:
                self._maybe_resume_transport()
                raise
            if data is not NEED_DATA:
                if machine.paused:
                    self._maybe_resume_transport()
                return data  # type: ignore[return-value]
            await self._wait_for_data("readexactly")

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line
