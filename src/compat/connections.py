"""The loop's outgoing connections: create_connection, create_unix_connection, connect_accepted_socket.

Contract
--------
``ConnectionOps`` is a mixin of ``sansloop.compat.loop.EventLoop``. Its three
coroutines have asyncio's signatures (3.11, plus ``all_errors`` of 3.12 on
every version), validate their arguments in asyncio's order with asyncio's
exceptions and messages, and return ``(transport, protocol)`` once
``protocol.connection_made`` has run.

* Names are resolved through ``self.getaddrinfo`` (so through the backend: a
  simulated backend owns names); a numeric host skips the resolver, as in
  asyncio. Sockets come from ``self._backend.socket(family, type, proto)``;
  they are made non-blocking at once, and are close-on-exec because Python
  creates every socket non-inheritable (``SOCK_CLOEXEC``).
* Several addresses are tried in resolver order (reordered by
  ``interleave``; ``happy_eyeballs_delay`` alone implies ``interleave=1``).
  Without ``happy_eyeballs_delay`` they are tried one after another; with it,
  they race as ``sansloop.core.happyeyeballs.StaggeredRace`` decides (the
  machine says which attempt to start or cancel and when to wake up; this
  module only runs tasks and timers for it).
* When every address fails: one error is raised as is; several errors with
  the same text raise the first; otherwise ``OSError("Multiple exceptions:
  ...")``; with ``all_errors=True`` an ``ExceptionGroup("create_connection
  failed", errors)``.
* ``ssl``: an ``SSLContext`` (or ``True`` for ``ssl.create_default_context()``)
  makes the connection an ``SSLTransport`` (src/compat/tlstransport.py) over
  the socket transport; the coroutine returns once the handshake completed
  and ``connection_made`` ran, and raises the handshake's error otherwise.
  ``server_hostname`` defaults to *host* (``''`` turns the name check off, as
  asyncio); the timeouts are checked (asyncio's ValueError) before any
  socket is made.

Resource rule: on any failure or cancellation, at any step, every socket this
module created is closed, and a transport already made is closed (its socket
is released when its ``connection_lost`` runs on the loop). A socket passed
in by the caller (``sock=``) becomes the transport's once the transport
exists, as in asyncio; a failure before that leaves it to the caller.

What the mixin needs from the loop: ``_backend``, ``getaddrinfo``,
``sock_connect``, ``create_future``, ``create_task``, ``call_at``, ``time``,
``get_debug``, and ``SocketTransport`` (src/compat/sockettransport.py).
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from typing import Any

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _ssl = None  # type: ignore[assignment]

from ..core.happyeyeballs import StaggeredRace, interleave_addrinfos
from .errors import logger
from .sockets import numeric_addrinfo
from .tlstransport import check_tls_timeouts, client_context, make_tls_transport

__all__ = ["ConnectionOps"]


def _refuse_ssl_socket(sock: Any) -> None:
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _refuse_tls_options(**options: Any) -> None:
    """Without ssl, the first TLS-only option given is an error (asyncio's order)."""
    for name, value in options.items():
        if value is not None:
            raise ValueError(f"{name} is only meaningful with ssl")


class _TLSOptions:
    """The ssl arguments of one connection, checked; makes its SSLTransport."""

    __slots__ = ("context", "server_side", "server_hostname", "handshake", "shutdown")

    def __init__(
        self,
        context: Any,
        server_side: bool,
        server_hostname: str | None,
        handshake: float | None,
        shutdown: float | None,
    ) -> None:
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.handshake = handshake
        self.shutdown = shutdown

    @classmethod
    def of(
        cls,
        ssl: Any,
        server_side: bool,
        server_hostname: str | None,
        handshake: float | None,
        shutdown: float | None,
    ) -> _TLSOptions | None:
        if not ssl:
            return None
        if server_side:
            if not isinstance(ssl, _ssl.SSLContext):
                raise ValueError("Server side SSL needs a valid SSLContext")
            context = ssl
        else:
            context = client_context(ssl, server_hostname)
        return cls(context, server_side, server_hostname, handshake, shutdown)

    def transport(self, loop: Any, sock: socket.socket, protocol: Any, waiter: Any) -> Any:
        return make_tls_transport(
            loop,
            sock,
            protocol,
            self.context,
            waiter,
            server_side=self.server_side,
            server_hostname=self.server_hostname,
            ssl_handshake_timeout=self.handshake,
            ssl_shutdown_timeout=self.shutdown,
        )


def _close_quietly(sock: Any) -> None:
    if sock is not None:
        sock.close()


def _raise_connect_errors(errors: list[OSError], all_errors: bool) -> None:
    """Raise what asyncio raises when every address failed."""
    if all_errors:
        raise ExceptionGroup("create_connection failed", errors)
    if len(errors) == 1:
        raise errors[0]
    model = str(errors[0])
    if all(str(error) == model for error in errors):
        raise errors[0]
    joined = ", ".join(str(error) for error in errors)
    raise OSError(f"Multiple exceptions: {joined}")


class ConnectionOps:
    """``create_connection``, ``create_unix_connection`` and ``connect_accepted_socket``."""

    # -- create_connection --------------------------------------------------

    async def create_connection(
        self,
        protocol_factory: Callable[[], Any],
        host: str | bytes | None = None,
        port: int | str | bytes | None = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: tuple[Any, ...] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[Any, Any]:
        """Open a stream connection to *host*:*port* (or over *sock*)."""
        if ssl:
            if server_hostname is None:
                if not host:
                    raise ValueError("You must set server_hostname when using ssl without a host")
                server_hostname = host
            check_tls_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        else:
            _refuse_tls_options(
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        if sock is not None:
            _refuse_ssl_socket(sock)
        if interleave is None and happy_eyeballs_delay is not None:
            interleave = 1  # RFC 8305's default: alternate families one by one

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            owned = True
            sock = await self._connect_somewhere(
                host,
                port,
                family,
                proto,
                flags,
                local_addr,
                happy_eyeballs_delay,
                interleave,
                all_errors,
            )
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            owned = False
        tls = _TLSOptions.of(
            ssl, False, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        transport, protocol = await self._connection_transport(sock, protocol_factory, owned, tls)
        if self.get_debug():  # type: ignore[attr-defined]
            logger.debug(
                "%r connected to %s:%r: (%r, %r)",
                transport.get_extra_info("socket"),
                host,
                port,
                transport,
                protocol,
            )
        return transport, protocol

    async def _resolve_stream(
        self, address: Any, family: int, proto: int, flags: int
    ) -> list[tuple[Any, ...]]:
        host, port = address[:2]
        info = numeric_addrinfo(host, port, family, socket.SOCK_STREAM, proto, *address[2:])
        if info is not None:
            return [info]
        infos: list[tuple[Any, ...]] = await self.getaddrinfo(  # type: ignore[attr-defined]
            host, port, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        return infos

    async def _connect_somewhere(
        self,
        host: Any,
        port: Any,
        family: int,
        proto: int,
        flags: int,
        local_addr: Any,
        delay: float | None,
        interleave: int | None,
        all_errors: bool,
    ) -> socket.socket:
        """Resolve, then connect to one of the addresses; return the connected socket."""
        infos = await self._resolve_stream((host, port), family, proto, flags)
        local_infos = None
        if local_addr is not None:
            local_infos = await self._resolve_stream(local_addr, family, proto, flags)
        if interleave:
            infos = interleave_addrinfos(infos, interleave)
        errors: list[list[OSError]] = [[] for _ in infos]
        if delay is None:
            for info, mine in zip(infos, errors, strict=True):
                try:
                    return await self._connect_one(info, local_infos, mine)
                except OSError:
                    continue
        else:
            sock = await self._race(infos, local_infos, errors, delay)
            if sock is not None:
                return sock
        flat = [error for mine in errors for error in mine]
        try:
            _raise_connect_errors(flat, all_errors)
        finally:
            # the raised error's traceback holds this frame: drop the lists
            # that hold the errors, or frame and errors form a reference cycle
            flat.clear()
            errors.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect_one(
        self, info: tuple[Any, ...], local_infos: list[tuple[Any, ...]] | None, mine: list[OSError]
    ) -> socket.socket:
        """One attempt: a new socket, bound if asked, connected; closed on any failure."""
        family, type_, proto, _, address = info
        sock: socket.socket | None = None
        try:
            sock = self._backend.socket(family, type_, proto)  # type: ignore[attr-defined]
            sock.setblocking(False)
            if local_infos is not None:
                self._bind_local(sock, family, local_infos, mine)
            await self.sock_connect(sock, address)  # type: ignore[attr-defined]
            return sock
        except OSError as exc:
            mine.append(exc)
            _close_quietly(sock)
            raise
        except BaseException:
            _close_quietly(sock)
            raise

    @staticmethod
    def _bind_local(
        sock: socket.socket, family: int, local_infos: list[tuple[Any, ...]], mine: list[OSError]
    ) -> None:
        for local_family, _, _, _, local_address in local_infos:
            if local_family != family:
                continue
            try:
                sock.bind(local_address)
                return
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                mine.append(
                    OSError(
                        exc.errno,
                        f"error while attempting to bind on address {local_address!r}: {reason}",
                    )
                )
        if mine:
            raise mine.pop()
        raise OSError(f"no matching local address with {family=} found")

    async def _race(
        self,
        infos: list[tuple[Any, ...]],
        local_infos: list[tuple[Any, ...]] | None,
        errors: list[list[OSError]],
        delay: float,
    ) -> socket.socket | None:
        """Run the Happy Eyeballs race the core machine decides; the winner's socket or None."""
        race = StaggeredRace(len(infos), delay)
        attempts: dict[int, Any] = {}
        finished = self.create_future()  # type: ignore[attr-defined]
        timer: list[Any] = [None]

        def apply(decision: Any) -> None:
            for index in decision.start:
                task = self.create_task(  # type: ignore[attr-defined]
                    self._connect_one(infos[index], local_infos, errors[index])
                )
                attempts[index] = task
                task.add_done_callback(functools.partial(attempt_done, index))
            for index in decision.cancel:
                attempts[index].cancel()
            for index in decision.discard:
                attempts[index].result().close()
            if timer[0] is not None:
                timer[0].cancel()
                timer[0] = None
            if decision.wake_at is not None:
                timer[0] = self.call_at(decision.wake_at, wake)  # type: ignore[attr-defined]
            if decision.done and not finished.done():
                finished.set_result(None)

        def wake() -> None:
            timer[0] = None
            apply(race.wake(self.time()))  # type: ignore[attr-defined]

        def attempt_done(index: int, task: Any) -> None:
            now = self.time()  # type: ignore[attr-defined]
            if task.cancelled():
                apply(race.failed(index, None, now))
                return
            error = task.exception()
            if error is not None:
                apply(race.failed(index, error, now))
            else:
                apply(race.succeeded(index, now))

        apply(race.begin(self.time()))  # type: ignore[attr-defined]
        try:
            await finished
        except BaseException:
            apply(race.abort(self.time()))  # type: ignore[attr-defined]
            if race.winner is not None:  # it won, but we were cancelled meanwhile
                attempts[race.winner].result().close()
            raise
        if race.winner is not None:
            sock: socket.socket = attempts[race.winner].result()
            return sock
        for error in race.errors:
            if error is not None and not isinstance(error, OSError):
                raise error  # a bug or bad input, not a network failure: as asyncio would
        return None

    async def _connection_transport(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], Any],
        owned: bool,
        tls: _TLSOptions | None = None,
    ) -> tuple[Any, Any]:
        """Wrap a connected socket in a SocketTransport (an SSLTransport over one
        when *tls*); wait for connection_made (after the TLS handshake).

        *owned*: the socket is ours (we made it), so a failure before the
        transport exists closes it; a caller's socket is left to the caller.
        """
        from .sockettransport import SocketTransport

        try:
            sock.setblocking(False)
            protocol = protocol_factory()
            waiter = self.create_future()  # type: ignore[attr-defined]
            if tls is None:
                transport = SocketTransport(self, sock, protocol, waiter)
            else:
                transport = tls.transport(self, sock, protocol, waiter)
        except BaseException:
            if owned:
                sock.close()
            raise
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    # -- create_unix_connection --------------------------------------------

    async def create_unix_connection(
        self,
        protocol_factory: Callable[[], Any],
        path: str | bytes | os.PathLike[Any] | None = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        """Open a stream connection over a Unix domain socket at *path* (or *sock*)."""
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
            check_tls_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        else:
            _refuse_tls_options(
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        owned = path is not None
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = self._backend.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)  # type: ignore[attr-defined]
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)  # type: ignore[attr-defined]
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        tls = _TLSOptions.of(
            ssl, False, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        return await self._connection_transport(sock, protocol_factory, owned, tls)

    # -- connect_accepted_socket -------------------------------------------

    async def connect_accepted_socket(
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        """Wrap an already accepted (or otherwise connected) stream socket."""
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        if not ssl:
            _refuse_tls_options(
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        _refuse_ssl_socket(sock)
        if ssl:
            check_tls_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        tls = _TLSOptions.of(ssl, True, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        transport, protocol = await self._connection_transport(sock, protocol_factory, False, tls)
        if self.get_debug():  # type: ignore[attr-defined]
            logger.debug(
                "%r handled: (%r, %r)", transport.get_extra_info("socket"), transport, protocol
            )
        return transport, protocol
