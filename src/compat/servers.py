"""The loop's servers: create_server and create_unix_server.

Contract
--------
``ServerOps`` is a mixin of ``sansloop.compat.loop.EventLoop`` giving
``create_server`` and ``create_unix_server`` with asyncio 3.13's signatures,
arguments, validation order and messages, on every Python version (so
``keep_alive`` and ``cleanup_socket`` exist on 3.11 too). They make, bind and
hand the listening sockets to a ``Server`` (``sansloop.compat.serverobject``,
re-exported here), which runs the accept loop and the connections.

Behaviour, as asyncio unless said otherwise:

* ``host`` may be a str, None or ``''`` (all interfaces), or an iterable of
  hosts; every address they resolve to is bound once (duplicates dropped, in
  resolution order). Numeric addresses skip the resolver; others go through
  ``loop.getaddrinfo`` (the backend's resolver). Sockets come from
  ``backend.socket()``; an address whose family cannot be made is skipped, an
  address the host does not have (EADDRNOTAVAIL) too, and no address at all
  is ``OSError("could not bind on any address out of [...]")``.
* SO_REUSEADDR by default on Unix; ``reuse_port`` (ValueError where the
  platform lacks SO_REUSEPORT); IPV6_V6ONLY on AF_INET6 (each family gets its
  own socket); ``keep_alive`` sets SO_KEEPALIVE on the sockets made here (as
  3.13) and on every accepted one (where it is not inherited).
* The sockets are listening and watched before the coroutine returns (unless
  ``start_serving=False``); if listen() fails, sockets made here are closed
  and a socket given through ``sock=`` is left open, the error raised.
* ``create_unix_server``: a stale socket file at the path is replaced; any
  other file there is left alone and the bind error raised (``Address ... is
  already in use``). ``cleanup_socket`` (default: yes; for a ``sock=``
  socket only from 3.13 on, as asyncio) has close() remove the socket file
  if it is still ours (see serverobject).
* ``ssl``: an ``SSLContext`` makes every accepted connection a
  ``SSLTransport`` (src/compat/tlstransport.py): the protocol hears
  ``connection_made`` once the handshake completed; a failed or timed-out
  handshake closes the connection (logged in debug mode, as asyncio).
* Bad input: a non-socket ``sock`` is TypeError (asyncio: AttributeError), a
  host that is neither str, bytes, None nor an iterable of them is TypeError.

The file-system calls of ``create_unix_server`` (stat, unlink) are made in
compat: the backend interface has no file-system methods.
"""

from __future__ import annotations

import asyncio
import collections.abc
import errno
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..core import acceptpolicy as _ap
from .errors import logger
from .serverobject import Server, _is_filesystem_path, _socket_identity
from .sockets import numeric_addrinfo
from .tlstransport import check_tls_timeouts

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _ssl = None  # type: ignore[assignment]

__all__ = ["Server", "ServerOps"]

#: 3.13 removes the file of a socket given through sock= too; before, nothing did.
_GIVEN_SOCKET_CLEANED_UP = sys.version_info >= (3, 13)
#: create_unix_server's default: asyncio 3.13's True there; before, None picks
#: the behaviour of the running version (see _GIVEN_SOCKET_CLEANED_UP).
_CLEANUP_SOCKET_DEFAULT = True if _GIVEN_SOCKET_CLEANED_UP else None
_HAS_IPV6 = hasattr(socket, "AF_INET6") and hasattr(socket, "IPPROTO_IPV6")


def _check_ssl_args(ssl: Any, handshake_timeout: Any, shutdown_timeout: Any) -> None:
    """asyncio's checks of the ssl arguments, in its order."""
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    if handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
    if ssl:
        check_tls_timeouts(handshake_timeout, shutdown_timeout)


def _check_socket(sock: Any) -> None:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"A socket object was expected, got {sock!r}")
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _hosts_of(host: Any) -> list[Any]:
    """The hosts to bind: '' and None mean every interface (None to the resolver)."""
    if host == "":
        return [None]
    if host is None or isinstance(host, (str, bytes)):
        return [host]
    if isinstance(host, collections.abc.Iterable):
        hosts = list(host)
        for one in hosts:
            if one is not None and not isinstance(one, (str, bytes)):
                raise TypeError(f"host must be a str, bytes or None, got {one!r}")
        return hosts
    raise TypeError(f"host must be a str, bytes, None or an iterable of them, got {host!r}")


def _set_reuse_port(sock: socket.socket) -> None:
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from None


class ServerOps:
    """create_server and create_unix_server."""

    _backend: Any

    async def create_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = _ap.DEFAULT_BACKLOG,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        """A TCP server listening on *host*/*port* (or on *sock*)."""
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            hosts = _hosts_of(host)
            infos = await self._server_addresses(hosts, port, family, flags)
            sockets = self._bind_all(infos, reuse_address, reuse_port, keep_alive)
            owned = True
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]  # (keep_alive reaches its accepted sockets only)
            owned = False
        tls = (ssl, ssl_handshake_timeout, ssl_shutdown_timeout) if ssl else None
        return await self._new_server(
            sockets, owned, protocol_factory, backlog, bool(keep_alive), start_serving, tls=tls
        )

    async def _new_server(
        self,
        sockets: list[socket.socket],
        owned: bool,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
        keep_alive: bool,
        start_serving: bool,
        unix_file: tuple[Any, int, int] | None = None,
        *,
        tls: tuple[Any, float | None, float | None] | None = None,
    ) -> Server:
        try:
            for listener in sockets:
                listener.setblocking(False)
            context, handshake, shutdown = tls if tls is not None else (None, None, None)
            server = Server(
                self,
                sockets,
                protocol_factory,
                context,
                backlog,
                handshake,
                shutdown,
                keep_alive=keep_alive,
            )
            if unix_file is not None:
                server._unix_files[sockets[0]] = unix_file
            if start_serving:
                server._start()
        except BaseException:
            if owned:
                for listener in sockets:
                    listener.close()
            raise
        if start_serving:
            await asyncio.sleep(0)  # as asyncio: one iteration before returning
        if self.get_debug():  # type: ignore[attr-defined]
            logger.info("%r is serving", server)
        return server

    async def _server_addresses(
        self, hosts: list[Any], port: Any, family: int, flags: int
    ) -> list[tuple[Any, ...]]:
        """Every address of every host, each once, in resolution order."""
        from .gathering import gather

        lookups = [self._server_lookup(host, port, family, flags) for host in hosts]
        found = await gather(*lookups)
        unique: dict[tuple[Any, ...], None] = {}
        for infos in found:
            for info in infos:
                unique[tuple(info)] = None
        return list(unique)

    async def _server_lookup(
        self, host: Any, port: Any, family: int, flags: int
    ) -> list[tuple[Any, ...]]:
        info = numeric_addrinfo(host, port, family, socket.SOCK_STREAM, 0)
        if info is not None:
            return [info]
        infos: list[tuple[Any, ...]] = await self.getaddrinfo(  # type: ignore[attr-defined]
            host, port, family=family, type=socket.SOCK_STREAM, flags=flags
        )
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    def _bind_all(
        self,
        infos: list[tuple[Any, ...]],
        reuse_address: bool | None,
        reuse_port: bool | None,
        keep_alive: bool | None,
    ) -> list[socket.socket]:
        sockets: list[socket.socket] = []
        done = False
        try:
            for af, socktype, proto, _canonname, address in infos:
                try:
                    sock = self._backend.socket(af, socktype, proto)
                except OSError:
                    # A family/type/protocol this host cannot make: try the others.
                    if self.get_debug():  # type: ignore[attr-defined]
                        logger.warning(
                            "create_server() failed to create socket.socket(%r, %r, %r)",
                            af,
                            socktype,
                            proto,
                            exc_info=True,
                        )
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    _set_reuse_port(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if _HAS_IPV6 and af == socket.AF_INET6:
                    # One socket per family: no dual-stack listening.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    sock.bind(address)
                except OSError as err:
                    if err.errno == errno.EADDRNOTAVAIL:
                        # This host lacks the address (say, IPv6 disabled): skip it.
                        sockets.pop().close()
                        if self.get_debug():  # type: ignore[attr-defined]
                            logger.warning("create_server() cannot bind on %r: %s", address, err)
                        continue
                    reason = str(err).lower()
                    raise OSError(
                        err.errno,
                        f"error while attempting to bind on address {address!r}: {reason}",
                    ) from None
            if not sockets:
                raise OSError(
                    f"could not bind on any address out of {[info[4] for info in infos]!r}"
                )
            done = True
        finally:
            if not done:
                for sock in sockets:
                    sock.close()
        return sockets

    async def create_unix_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = _ap.DEFAULT_BACKLOG,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool | None = _CLEANUP_SOCKET_DEFAULT,
    ) -> Server:
        """A Unix-socket server listening on *path* (or on *sock*).

        *cleanup_socket* (3.13; None means the running Python's default): remove
        the socket file on close() if it is still ours. The default is yes,
        except for a socket handed in through *sock* before 3.13, whose file
        3.11's own tests expect to be left to the caller.
        """
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_socket(sock)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = self._bind_unix(path)
            owned = True
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            owned = False
        if cleanup_socket is None:
            cleanup_socket = owned or _GIVEN_SOCKET_CLEANED_UP
        unix_file = None
        if cleanup_socket:
            name = sock.getsockname()
            if _is_filesystem_path(name):
                identity = _socket_identity(name)
                if identity is not None:
                    unix_file = (name, *identity)
        tls = (ssl, ssl_handshake_timeout, ssl_shutdown_timeout) if ssl else None
        return await self._new_server(
            [sock], owned, protocol_factory, backlog, False, start_serving, unix_file, tls=tls
        )

    def _bind_unix(self, path: str | bytes) -> socket.socket:
        sock = self._backend.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if _is_filesystem_path(path):
                # A socket file left by a dead server is replaced; any other
                # kind of file is left for bind() to refuse.
                try:
                    if _socket_identity(path) is not None:
                        os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    # The directory may allow creating a socket but not removing one.
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
        except BaseException:
            sock.close()
            raise
        return sock
