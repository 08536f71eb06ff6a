"""SSLTransport: asyncio's TLS transport, driven by the core ``TLSMachine``.

Contract
--------
``SSLTransport`` (named as asyncio names its own: code in the field, and
CPython's tests, look for "ssl" in a transport's class name) is the transport an application protocol sees on a TLS
connection (``create_connection(ssl=...)``, a TLS server's connections,
``loop.start_tls()``). It is an ``asyncio.Transport`` with asyncio's
``_SSLProtocolTransport`` behaviour:

- ``connection_made()`` runs once the handshake completed (not for
  ``start_tls``, whose protocol is already connected); the *waiter* then gets
  ``None``. A failed handshake sets the waiter's exception (a certificate
  error, ``ConnectionResetError`` when the peer hung up,
  ``ConnectionAbortedError("SSL handshake is taking longer than T seconds:
  aborting the connection")`` on the timer) and the protocol hears nothing.
- Received plaintext goes to ``data_received()`` (the chunks one network read
  decrypted to, joined) or, for an ``asyncio.BufferedProtocol``, into
  ``get_buffer()``/``buffer_updated()``. The peer's ``close_notify`` and a
  truncation (FIN without ``close_notify``) both call ``eof_received()`` as in
  asyncio, whose true return value has no effect and is warned about; a
  truncation is visible as ``get_extra_info("ssl_truncated")`` (sansloop's
  extension, RELIABILITY S4).
- ``write()``/``writelines()`` encrypt at once; ciphertext goes to the lower
  transport unless that one asked us to pause, in which case it waits in the
  machine. ``get_write_buffer_size()`` is plaintext waiting for the handshake
  plus ciphertext not yet handed down: that backlog drives the app's
  ``pause_writing()``/``resume_writing()`` (asyncio's SSL defaults: 512 KiB
  high water, a quarter of it low).
- ``close()`` sends ``close_notify`` and waits at most ``ssl_shutdown_timeout``
  for the peer's before the connection is dropped (``connection_lost`` then
  gets ``TimeoutError("SSL shutdown timed out")``); during the handshake it
  aborts, as asyncio does. ``abort()`` drops at once. ``write_eof()`` is
  ``NotImplementedError`` (TLS has no half-close), ``can_write_eof()`` False.
- An SSL error after the handshake (a corrupt record, an alert) drops the
  connection; ``connection_lost`` gets the error. As asyncio: OSErrors
  (SSLError is one) are logged in debug mode only, others go to the loop's
  exception handler.
- ``get_extra_info``: ``sslcontext``, ``ssl_object``, and after the
  handshake ``peercert``, ``cipher``, ``compression``; every other key
  (``socket``, ``peername``, ``sockname``) is the lower transport's.

Why layered (a protocol under the app protocol, as asyncio's sslproto) and
not a second socket transport: ``loop.start_tls()`` must wrap a transport that
already exists, and layering lets one class serve both it and
``ssl=``; the socket I/O, its error paths and its write buffer stay in
``SocketTransport`` (measured: the per-record OpenSSL work dominates, the one
extra Python call per network read does not show). The lower protocol is a
small adapter (``_Link``) so that the transport's and the protocol's method
names never meet on one object.

The decisions about TLS are the machine's (``sansloop.core.tls``); this
module maps its events to asyncio's callbacks and runs its two timers.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import warnings
from asyncio import constants as _aio_constants
from typing import Any, Final

from ..core.flowcontrol import WriteFlowControl
from ..core.tls import (
    Closed,
    CloseNotifyReceived,
    DataReceived,
    Failed,
    HandshakeComplete,
    HandshakeFailed,
    State,
    TLSMachine,
    Truncated,
)
from .errors import logger
from .transports import LOG_THRESHOLD_FOR_CONNLOST_WRITES, signal_protocol

__all__ = [
    "SSL_HANDSHAKE_TIMEOUT",
    "SSL_SHUTDOWN_TIMEOUT",
    "SSLTransport",
    "check_tls_timeouts",
    "client_context",
]

#: asyncio.constants.SSL_HANDSHAKE_TIMEOUT: seconds a handshake may take.
SSL_HANDSHAKE_TIMEOUT: Final = 60.0
#: asyncio.constants.SSL_SHUTDOWN_TIMEOUT: seconds we wait for the peer's close_notify.
SSL_SHUTDOWN_TIMEOUT: Final = 30.0
#: asyncio.constants.FLOW_CONTROL_HIGH_WATER_SSL_WRITE (512 KiB): the app's write high water.
HIGH_WATER_SSL_WRITE: Final = 512 * 1024

_BYTES_LIKE = (bytes, bytearray, memoryview)
#: Machine states that still take plaintext.
_WRITABLE = frozenset({State.UNWRAPPED, State.HANDSHAKING, State.WRAPPED})
_NEVER_SWALLOWED = (SystemExit, KeyboardInterrupt)

# Where the app protocol is (asyncio's AppProtocolState, as data).
_APP_INIT = 0  # connection_made not called yet
_APP_CONNECTED = 1
_APP_EOF = 2  # eof_received called
_APP_LOST = 3  # connection_lost called (or never owed)


def check_tls_timeouts(handshake: float | None, shutdown: float | None) -> None:
    """asyncio's ValueError for a timeout that is not a positive number."""
    for name, value in (("ssl_handshake_timeout", handshake), ("ssl_shutdown_timeout", shutdown)):
        if value is not None and value <= 0:
            raise ValueError(f"{name} should be a positive number, got {value}")


def client_context(ssl_arg: Any, server_hostname: str | None) -> ssl.SSLContext:
    """The context for ``ssl=``: the caller's, or a default one for ``ssl=True``.

    Like asyncio, the default context of a client given no server name checks
    the chain but not the name.
    """
    if isinstance(ssl_arg, ssl.SSLContext):
        return ssl_arg
    context = ssl.create_default_context()
    if not server_hostname:
        context.check_hostname = False
    return context


class _Link(asyncio.Protocol):
    """The lower transport's protocol: hands every callback to the TLS transport."""

    __slots__ = ("_tls",)

    def __init__(self, tls: SSLTransport) -> None:
        self._tls = tls

    def connection_made(self, transport: Any) -> None:
        self._tls._lower_made(transport)

    def data_received(self, data: bytes) -> None:
        self._tls._lower_data(data)

    def eof_received(self) -> bool | None:
        # True while decrypted data waits for a paused app: we close later.
        return self._tls._lower_eof()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._tls._lower_lost(exc)

    def pause_writing(self) -> None:
        self._tls._lower_paused = True

    def resume_writing(self) -> None:
        tls = self._tls
        tls._lower_paused = False
        tls._push()

    def __repr__(self) -> str:
        return f"<TLS link of {self._tls!r}>"


class SSLTransport(asyncio.Transport):
    """The app-facing transport of one TLS connection (see the module docstring)."""

    _start_tls_compatible = True
    _sendfile_compatible = _aio_constants._SendfileMode.FALLBACK

    def __init__(
        self,
        loop: Any,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        call_connection_made: bool = True,
    ) -> None:
        super().__init__()
        # Set first: __del__ reads it even if the machine refuses the context.
        self._closed = True
        check_tls_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        if ssl_handshake_timeout is None:
            ssl_handshake_timeout = SSL_HANDSHAKE_TIMEOUT
        if ssl_shutdown_timeout is None:
            ssl_shutdown_timeout = SSL_SHUTDOWN_TIMEOUT
        # asyncio's server_hostname='': the chain is verified, the name is not
        # (asyncio's documented opt-out). None with a context that checks
        # names is refused by the machine (asyncio would skip the check).
        skip_name_check = server_hostname == "" and not server_side
        if server_side or not server_hostname:
            server_hostname = None
        self._machine = TLSMachine(
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=ssl_handshake_timeout,
            shutdown_timeout=ssl_shutdown_timeout,
            skip_name_check=skip_name_check,
        )
        self._closed = False
        self._loop = loop
        self._waiter = waiter
        self._handshake_timeout = ssl_handshake_timeout
        self._shutdown_timeout = ssl_shutdown_timeout
        self._link = _Link(self)
        self._lower: Any = None
        self._lower_paused = False
        self._timer: Any = None
        self._flow = WriteFlowControl(HIGH_WATER_SSL_WRITE)
        self._app_state = _APP_INIT if call_connection_made else _APP_CONNECTED
        self._protocol: Any = None
        self._buffered = False
        self.set_protocol(protocol)
        self._reading_paused = False
        self._held: collections.deque[bytes] = collections.deque()
        self._handshaking = True
        self._fatal_exc: BaseException | None = None
        self._truncated = False
        self._eof_pending = False
        self._close_pending = False
        self._conn_lost = 0
        self._handshake_started = 0.0

    # -- the lower transport's callbacks (through _Link) ---------------------

    def _lower_made(self, transport: Any) -> None:
        self._lower = transport
        if self._closed:
            # closed or aborted (a cancelled create_connection) before the
            # socket transport was even connected: no handshake, drop it
            transport.abort()
            return
        loop = self._loop
        if loop.get_debug():
            logger.debug("%r starts SSL handshake", self)
            self._handshake_started = loop.time()
        self._timer = loop.call_later(self._handshake_timeout, self._on_handshake_timer)
        self._handle(self._machine.start_handshake())

    def _lower_data(self, data: bytes) -> None:
        self._handle(self._machine.receive_ciphertext(data))

    def _lower_eof(self) -> bool:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        self._handle(self._machine.peer_eof())
        if self._held:
            self._close_pending = True
            return True
        return False

    def _lower_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        self._closed = True
        self._held.clear()
        self._flow.clear()
        self._lower = None
        if self._fatal_exc is not None:
            exc = self._fatal_exc
        if self._handshaking:
            self._handshaking = False
            if self._app_state == _APP_INIT:
                self._app_state = _APP_LOST
        if self._waiter is not None:
            # lost during the handshake, or connection_made() raised
            self._wake_waiter(
                exc
                if exc is not None
                else ConnectionResetError("Connection lost during TLS handshake")
            )
        try:
            if self._app_state in (_APP_CONNECTED, _APP_EOF):
                self._app_state = _APP_LOST
                self._protocol.connection_lost(exc)
        finally:
            # No cycle outlives the connection: the context is freed by
            # reference counting alone once the app drops the transport.
            self._protocol = None
            self._link._tls = None  # type: ignore[assignment]
            self._fatal_exc = None

    # -- the machine's events ------------------------------------------------

    def _handle(self, events: list[Any]) -> None:
        """Act on the machine's events in order, then push out its ciphertext."""
        data: list[bytes] | None = None
        for event in events:
            kind = type(event)
            if kind is DataReceived:
                if data is None:
                    data = [event.data]
                else:
                    data.append(event.data)
                continue
            if data is not None:
                self._deliver(data)
                data = None
            if kind is HandshakeComplete:
                self._handshake_done(event)
            elif kind is CloseNotifyReceived:
                self._eof_to_app()
            elif kind is Closed:
                self._cancel_timer()
                if event.peer_close_notify:
                    self._eof_to_app()
                lower = self._lower
                if lower is not None:
                    self._push()
                    if self._held:
                        self._close_pending = True  # after the app has it all
                    else:
                        lower.close()
            elif kind is Truncated:
                self._truncated = True
                self._push()
                self._eof_to_app()
                # the lower transport closes itself after its eof_received()
            elif kind is HandshakeFailed:
                exc = event.exc
                if isinstance(exc, ssl.SSLEOFError):
                    # asyncio's word for a peer that hung up mid-handshake
                    reset = ConnectionResetError()
                    reset.__cause__ = exc
                    exc = reset
                if isinstance(exc, ssl.CertificateError):
                    message = "SSL handshake failed on verifying the certificate"
                else:
                    message = "SSL handshake failed"
                self._fatal(exc, message)
                self._handshaking = False
                if self._app_state == _APP_INIT:
                    self._app_state = _APP_LOST
                self._wake_waiter(exc)
            elif kind is Failed:
                self._fatal(event.exc)
        if data is not None:
            self._deliver(data)
        self._push()

    def _handshake_done(self, event: HandshakeComplete) -> None:
        self._cancel_timer()
        self._handshaking = False
        loop = self._loop
        if loop.get_debug():
            elapsed = loop.time() - self._handshake_started
            logger.debug("%r: SSL handshake took %.1f ms", self, elapsed * 1e3)
        if self._app_state == _APP_INIT:
            self._app_state = _APP_CONNECTED
            self._protocol.connection_made(self)
        self._wake_waiter(None)

    def _wake_waiter(self, exc: BaseException | None) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        self._waiter = None
        if not waiter.cancelled():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def _deliver(self, chunks: list[bytes]) -> None:
        """Give decrypted bytes to the app, or hold them while reading is paused."""
        if self._app_state != _APP_CONNECTED or self._closed:
            return  # after close() nothing more is received
        if self._reading_paused or self._held:
            self._held.extend(chunks)
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            if self._buffered:
                self._fill(data)
            else:
                self._protocol.data_received(data)
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._fatal(exc, "Fatal error on SSL protocol")

    def _fill(self, data: bytes) -> None:
        """Copy *data* into a BufferedProtocol's buffers, as many as it takes."""
        view = memoryview(data)
        protocol = self._protocol
        while view:
            buf = protocol.get_buffer(len(view))
            size = len(buf)
            if not size:
                raise RuntimeError("get_buffer() returned an empty buffer")
            n = min(size, len(view))
            buf[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
            if self._reading_paused and view:
                self._held.append(bytes(view))
                return

    def _eof_to_app(self) -> None:
        if self._app_state != _APP_CONNECTED:
            return
        if self._held:
            self._eof_pending = True  # it follows the held data (_release_held)
            return
        self._app_state = _APP_EOF
        try:
            keep_open = self._protocol.eof_received()
        except BaseException as exc:
            if isinstance(exc, _NEVER_SWALLOWED):
                raise
            self._fatal(exc, "Error calling eof_received()")
            return
        if keep_open:
            logger.warning("returning true from eof_received() has no effect when using ssl")

    def _fatal(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        """Drop the connection; connection_lost() will get *exc*."""
        if self._fatal_exc is None:
            self._fatal_exc = exc
        self._closed = True
        self._cancel_timer()
        lower = self._lower
        if lower is not None:
            lower.abort()
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        elif not isinstance(exc, asyncio.CancelledError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": lower,
                    "protocol": self._link,
                }
            )

    # -- timers --------------------------------------------------------------

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def _on_handshake_timer(self) -> None:
        self._timer = None
        self._handle(self._machine.handshake_timeout())

    def _on_shutdown_timer(self) -> None:
        self._timer = None
        self._handle(self._machine.shutdown_timeout())

    # -- sending -------------------------------------------------------------

    def _push(self) -> None:
        """Hand ciphertext down unless the lower transport is paused; update flow control."""
        machine = self._machine
        lower = self._lower
        if machine.buffered_ciphertext:
            if machine.state is State.FAILED or self._fatal_exc is not None:
                # What OpenSSL made while failing (an alert), or after we
                # dropped the connection, is not sent (asyncio neither).
                machine.data_to_send()
            elif lower is not None and not self._lower_paused:
                lower.write(machine.data_to_send())
        flow = self._flow
        size = machine.buffered_plaintext + machine.buffered_ciphertext
        if size == flow.size:
            return
        if self._lower is None or self._fatal_exc is not None:
            flow.clear()
            return
        signal = flow.grow(size - flow.size) if size > flow.size else flow.shrink(flow.size - size)
        if signal is not None and self._app_state in (_APP_CONNECTED, _APP_EOF):
            signal_protocol(self._loop, self, self._protocol, signal)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send *data* (queued until the handshake completes)."""
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"data: expecting a bytes-like instance, got {type(data).__name__}")
        if not data:
            return
        if self._closed or self._machine.state not in _WRITABLE:
            self._count_lost_write()
            return
        self._handle(self._machine.send_plaintext(data))

    def writelines(self, list_of_data: Any) -> None:
        """Send each chunk in order."""
        chunks = list(list_of_data)
        for data in chunks:
            if not isinstance(data, _BYTES_LIKE):
                raise TypeError(f"data: expecting a bytes-like instance, got {type(data).__name__}")
        data = b"".join(chunks)
        if data:
            self.write(data)

    def _count_lost_write(self) -> None:
        if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("SSL connection is closed")
        self._conn_lost += 1

    def write_eof(self) -> None:
        """TLS has no half-close (asyncio: NotImplementedError)."""
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        """False: see write_eof()."""
        return False

    def get_write_buffer_size(self) -> int:
        """Plaintext waiting for the handshake plus ciphertext not yet handed down."""
        return self._flow.size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)`` water marks."""
        return self._flow.get_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks (defaults: 512 KiB and high // 4, as asyncio's SSL transport)."""
        if high is None and low is None:
            high = HIGH_WATER_SSL_WRITE
        signal = self._flow.set_limits(high, low)
        if signal is None:
            signal = self._flow.check()
        if signal is not None and self._app_state in (_APP_CONNECTED, _APP_EOF):
            signal_protocol(self._loop, self, self._protocol, signal)

    @property
    def _protocol_paused(self) -> bool:
        # asyncio's sendfile fallback reads this name.
        return self._flow.paused

    # -- receiving -----------------------------------------------------------

    def is_reading(self) -> bool:
        """True unless pause_reading() was called (as asyncio: closing does not change it)."""
        return not self._reading_paused

    def pause_reading(self) -> None:
        """Deliver nothing until resume_reading(); the network is not read meanwhile."""
        if self._reading_paused or self._closed:
            return
        self._reading_paused = True
        lower = self._lower
        if lower is not None:
            lower.pause_reading()

    def resume_reading(self) -> None:
        """Deliver again, starting with what arrived while paused."""
        if not self._reading_paused:
            return
        self._reading_paused = False
        self._loop.call_soon(self._release_held)

    def _release_held(self) -> None:
        if self._reading_paused:
            return
        held = self._held
        if held:
            chunks = list(held)
            held.clear()
            self._deliver(chunks)
            if self._held:
                return  # paused again meanwhile
        if self._eof_pending:
            self._eof_pending = False
            self._eof_to_app()
        lower = self._lower
        if lower is None:
            return
        if self._close_pending:
            self._close_pending = False
            lower.close()
        elif not self._reading_paused:
            lower.resume_reading()

    # -- protocol ------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Deliver to *protocol* from now on."""
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The app protocol."""
        return self._protocol  # type: ignore[no-any-return]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """TLS keys from the machine, ``ssl_truncated``, the rest from the lower transport."""
        info = self._machine.extra_info()
        if name in info:
            return info[name]
        if name == "ssl_truncated":
            return self._truncated
        lower = self._lower
        if lower is not None:
            return lower.get_extra_info(name, default)
        return default

    # -- closing -------------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() was called or the connection was lost."""
        return self._closed

    def close(self) -> None:
        """Send close_notify and wait (at most ssl_shutdown_timeout) for the peer's."""
        if self._closed:
            return
        self._closed = True
        self._held.clear()
        if self._handshaking:
            self.abort()
            return
        if self._close_pending:  # the TLS session already ended
            self._close_pending = False
            if self._lower is not None:
                self._lower.close()
            return
        self._cancel_timer()
        if self._lower is not None:
            self._timer = self._loop.call_later(self._shutdown_timeout, self._on_shutdown_timer)
        self._handle(self._machine.start_shutdown())

    def abort(self) -> None:
        """Drop the connection now; connection_lost() gets None."""
        self._closed = True
        self._cancel_timer()
        self._held.clear()
        lower = self._lower
        if lower is not None:
            lower.abort()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        machine = getattr(self, "_machine", None)
        tls = machine.state.value if machine is not None else "?"
        return f"<SSLTransport {state} tls={tls}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            self._closed = True
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)

    def statistics(self) -> dict[str, Any]:
        """The machine's numbers, the app's flow control and the paused flags."""
        stats: dict[str, Any] = dict(self._machine.statistics())
        stats["write_buffer"] = self._flow.statistics()
        stats["reading_paused"] = self._reading_paused
        stats["lower_paused"] = self._lower_paused
        stats["held"] = sum(map(len, self._held))
        return stats


def make_tls_transport(
    loop: Any,
    sock: Any,
    protocol: asyncio.BaseProtocol,
    sslcontext: ssl.SSLContext,
    waiter: Any,
    *,
    server_side: bool,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    extra: dict[str, Any] | None = None,
    server: Any = None,
) -> SSLTransport:
    """A SSLTransport over a new SocketTransport of *sock*; the handshake starts on the loop."""
    from .sockettransport import SocketTransport

    tls = SSLTransport(
        loop,
        protocol,
        sslcontext,
        waiter,
        server_side=server_side,
        server_hostname=server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    SocketTransport(loop, sock, tls._link, None, extra, server)
    return tls
