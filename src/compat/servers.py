"""The loop's servers: create_server, create_unix_server and the Server object.

Contract
--------
``ServerOps`` is a mixin of ``sansloop.compat.loop.EventLoop`` giving
``create_server`` and ``create_unix_server`` with asyncio 3.13's signatures,
arguments, validation order and messages, on every Python version (so
``keep_alive``, ``cleanup_socket``, ``close_clients()`` and ``abort_clients()``
exist on 3.11 too). ``Server`` is the object they return, a subclass of
``asyncio.AbstractServer``.

The decisions of the accept loop (batching, backing off when out of fds,
closing, connection accounting) are ``sansloop.core.acceptpolicy``'s; this
module performs what the policy asks: accept, watch or unwatch the listening
fds, arm a timer, report to the exception handler, close the listeners and
wake ``wait_closed()``.

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
  own socket); ``keep_alive`` sets SO_KEEPALIVE on the listening socket (as
  3.13) and on every accepted one (where it is not inherited).
* ``wait_closed()`` has 3.12.1+ semantics on every version: it returns once
  the server is closed *and* every connection it accepted is gone, whichever
  happens last (3.11's returns at once after close()).
* Accepted connections become ``SocketTransport(loop, conn, protocol_factory(),
  extra={'peername': addr}, server=server)``. A protocol factory that raises
  is reported to the exception handler in every mode (asyncio: debug mode
  only) and the connection is closed.
* Out of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM): reported once per episode with
  asyncio's message ``socket.accept() out of system resource``, every
  listening fd unwatched for ``ACCEPT_RETRY_DELAY`` (1 s): no spinning.
* ``create_unix_server``: a stale socket file at the path is replaced; any
  other file there is left alone and the bind error raised (``Address ... is
  already in use``). With ``cleanup_socket`` (the default; for a ``sock=``
  socket from 3.13 on, as asyncio) close() removes the
  socket file only if the path still names *our* socket: same device and
  inode, and a socket; the check is made before our socket is closed, so the
  inode cannot have been reused (3.13 checks the inode after closing).
* ``ssl``: TLS arrives with the TLS issue (#4); a truthy ``ssl`` raises
  NotImplementedError after the arguments are validated.
* Bad input: a non-socket ``sock`` is TypeError (asyncio: AttributeError), a
  host that is neither str, bytes, None nor an iterable of them is TypeError.

The file-system calls of ``create_unix_server`` (stat, unlink) are made here:
the backend interface has no file-system methods; a simulated backend's
sockets would have to carry a real path to meet them.
"""

from __future__ import annotations

import asyncio
import asyncio.trsock as _trsock
import collections.abc
import errno
import os
import socket
import stat
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ..core import acceptpolicy as _ap
from ..core.acceptpolicy import AcceptPolicy
from .errors import logger
from .sockets import numeric_addrinfo

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _ssl = None  # type: ignore[assignment]

__all__ = ["Server", "ServerOps"]

_TLS_LATER = "TLS support arrives with the TLS issue (#4)"
_ACCEPT_ONLY = (_ap.ACCEPT,)
#: 3.13 removes the file of a socket given through sock= too; before, nothing did.
_GIVEN_SOCKET_CLEANED_UP = sys.version_info >= (3, 13)
_HAS_IPV6 = hasattr(socket, "AF_INET6") and hasattr(socket, "IPPROTO_IPV6")


def _check_ssl_args(ssl: Any, handshake_timeout: Any, shutdown_timeout: Any) -> None:
    """asyncio's checks of the ssl arguments, in its order."""
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    if handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


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


def _is_filesystem_path(path: Any) -> bool:
    """A non-empty str/bytes Unix socket address that is not in the abstract namespace."""
    return isinstance(path, (str, bytes)) and len(path) > 0 and path[0] not in (0, "\x00")


def _socket_identity(path: str | bytes) -> tuple[int, int] | None:
    """(device, inode) of the socket file at *path*, or None if it is not one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return None
    return st.st_dev, st.st_ino


class Server(asyncio.AbstractServer):
    """A listening server: its sockets, its accept loop and its connections."""

    def __init__(
        self,
        loop: Any,
        sockets: Iterable[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int = _ap.DEFAULT_BACKLOG,
        *,
        keep_alive: bool = False,
    ) -> None:
        self._loop = loop
        self._listeners = list(sockets)
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._keep_alive = bool(keep_alive)
        # asyncio accepts up to `backlog` per readiness; at least one.
        self._policy = AcceptPolicy(batch=max(1, backlog))
        # id(transport) -> weak reference: close_clients()/abort_clients() reach
        # the live ones, and one collected without detaching still counts down.
        self._clients: dict[int, weakref.ref[Any]] = {}
        self._anonymous = 0  # connections attached without a transport
        # wait_closed() futures; None once released (as asyncio, whose tests look)
        self._waiters: list[Any] | None = []
        self._serving_forever_fut: Any = None
        self._retry_timer: Any = None
        # listening socket -> (path, device, inode) of the file to clean up
        self._unix_files: dict[socket.socket, tuple[Any, int, int]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    @property
    def _sockets(self) -> list[socket.socket] | None:
        # asyncio's attribute (its tests and some frameworks read it): the
        # listening sockets, None once closed.
        return None if self._policy.closed else self._listeners

    # -- connection accounting (called by SocketTransport) ----------------

    def _attach(self, transport: Any = None) -> None:
        """A transport of this server was made: count it until it detaches.

        Without a transport (asyncio 3.11/3.12's private signature, which
        their transports and tests use) the connection is counted anonymously.
        """
        self._perform(self._policy.attach())
        if transport is None:
            self._anonymous += 1
            return
        key = id(transport)
        loop = self._loop
        server_ref = weakref.ref(self)

        def collected(ref: weakref.ref[Any]) -> None:
            # Runs inside the garbage collector, maybe in another thread: defer.
            server = server_ref()
            if server is not None and not loop.is_closed():
                loop.call_soon_threadsafe(server._forget, key, ref)

        self._clients[key] = weakref.ref(transport, collected)

    def _detach(self, transport: Any = None) -> None:
        """A transport of this server lost its connection."""
        if transport is None:
            if self._anonymous > 0:
                self._anonymous -= 1
                self._perform(self._policy.detach())
            return
        ref = self._clients.get(id(transport))
        if ref is not None and ref() is transport:
            self._forget(id(transport), ref)

    def _forget(self, key: int, ref: weakref.ref[Any]) -> None:
        if self._clients.get(key) is ref:
            del self._clients[key]
            self._perform(self._policy.detach())

    # -- what the policy asks ---------------------------------------------------

    def _perform(
        self, actions: tuple[Any, ...], sock: Any = None, exc: BaseException | None = None
    ) -> None:
        loop = self._loop
        for action in actions:
            if action is _ap.WATCH:
                for listener in self._listeners:
                    loop._add_reader(listener.fileno(), self._on_readable, listener)
            elif action is _ap.UNWATCH:
                for listener in self._listeners:
                    loop._remove_reader(listener.fileno())
            elif action is _ap.ARM_TIMER:
                self._retry_timer = loop.call_later(
                    self._policy.retry_delay, self._on_backoff_expired
                )
            elif action is _ap.CANCEL_TIMER:
                if self._retry_timer is not None:
                    self._retry_timer.cancel()
                    self._retry_timer = None
            elif action is _ap.REPORT:
                self._report(sock, exc)
            elif action is _ap.CLOSE_LISTENERS:
                self._close_listeners()
            elif action is _ap.RELEASE_WAITERS:
                waiters, self._waiters = self._waiters or [], None
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            else:  # pragma: no cover - a policy action this driver does not know
                raise AssertionError(f"unknown accept policy action {action!r}")

    def _report(self, sock: Any, exc: BaseException | None) -> None:
        if _ap.classify_accept_error(exc) is _ap.OUT_OF_RESOURCES:  # type: ignore[arg-type]
            message = "socket.accept() out of system resource"
        else:
            message = "socket.accept() failed"
        context: dict[str, Any] = {"message": message, "exception": exc}
        if sock is not None:
            context["socket"] = _trsock.TransportSocket(sock)
        self._loop.call_exception_handler(context)

    def _close_listeners(self) -> None:
        for listener in self._listeners:
            recorded = self._unix_files.pop(listener, None)
            if recorded is not None:
                # Before closing ours: while it is open its inode cannot be reused.
                path, device, inode = recorded
                try:
                    if _socket_identity(path) == (device, inode):
                        os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)
            listener.close()

    def _on_backoff_expired(self) -> None:
        self._retry_timer = None
        self._perform(self._policy.backoff_expired())

    # -- the accept loop --------------------------------------------------------

    def _on_readable(self, sock: socket.socket) -> None:
        policy = self._policy
        actions = policy.readable()
        while actions == _ACCEPT_ONLY:
            try:
                conn, addr = sock.accept()
            except OSError as exc:
                actions = policy.accept_failed(exc)
                if actions != _ACCEPT_ONLY:
                    self._perform(actions, sock, exc)
                    return
                continue
            self._serve(conn, addr)
            actions = policy.accepted()
        self._perform(actions, sock)

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        loop = self._loop
        if loop.get_debug():
            logger.debug("%r got a new connection from %r: %r", self, addr, conn)
        protocol = None
        try:
            conn.setblocking(False)
            if self._keep_alive:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            protocol = self._protocol_factory()
            if self._policy.closed:
                # The factory closed the server: the connection is not taken.
                conn.close()
                return
            from .sockettransport import SocketTransport

            SocketTransport(loop, conn, protocol, None, {"peername": addr}, self)
        except (SystemExit, KeyboardInterrupt):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            context: dict[str, Any] = {
                "message": "Error on transport creation for incoming connection",
                "exception": exc,
            }
            if protocol is not None:
                context["protocol"] = protocol
            loop.call_exception_handler(context)

    def _start(self) -> None:
        """Listen and watch (asyncio's ``_start_serving``); idempotent."""
        policy = self._policy
        if policy.closed:
            raise RuntimeError(f"server {self!r} is closed")
        if policy.state is _ap.IDLE:
            # listen() first: if it fails the policy is still IDLE.
            for listener in self._listeners:
                listener.listen(self._backlog)
        self._perform(policy.start())

    # -- asyncio.AbstractServer ----------------------------------------------

    def get_loop(self) -> Any:
        """The loop this server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """True while the server accepts connections (or backs off to do so)."""
        return self._policy.serving

    @property
    def sockets(self) -> tuple[_trsock.TransportSocket, ...]:
        """The listening sockets (wrapped as asyncio does); () once closed."""
        if self._policy.closed:
            return ()
        return tuple(_trsock.TransportSocket(s) for s in self._listeners)

    def close(self) -> None:
        """Stop listening and close the listening sockets; connections stay open."""
        if self._policy.closed:
            return
        self._perform(self._policy.close())
        forever = self._serving_forever_fut
        if forever is not None and not forever.done():
            forever.cancel()
            self._serving_forever_fut = None

    def close_clients(self) -> None:
        """close() every connection this server accepted (3.13)."""
        for transport in self._live_clients():
            transport.close()

    def abort_clients(self) -> None:
        """abort() every connection this server accepted (3.13)."""
        for transport in self._live_clients():
            transport.abort()

    def _live_clients(self) -> list[Any]:
        clients = (ref() for ref in list(self._clients.values()))
        return [transport for transport in clients if transport is not None]

    async def start_serving(self) -> None:
        """Start accepting connections (once); return after a loop iteration."""
        self._start()
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        """Accept connections until cancelled; then close and wait for the connections."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._policy.closed:
            raise RuntimeError(f"server {self!r} is closed")
        self._start()
        forever = self._serving_forever_fut = self._loop.create_future()
        try:
            await forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise  # noqa: B012 - the cancellation goes on whatever happened
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection it accepted is gone."""
        if self._policy.state is _ap.CLOSED:
            return
        waiter = self._loop.create_future()
        assert self._waiters is not None  # None only once CLOSED
        self._waiters.append(waiter)
        await waiter

    def statistics(self) -> dict[str, Any]:
        """The accept policy's figures: state, active connections, accepts, backoffs, errors."""
        stats = self._policy.statistics()
        stats["listeners"] = 0 if self._policy.closed else len(self._listeners)
        return stats


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
        if ssl:
            raise NotImplementedError(_TLS_LATER)
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
            if keep_alive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sockets = [sock]
            owned = False
        return await self._new_server(
            sockets, owned, protocol_factory, backlog, bool(keep_alive), start_serving
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
    ) -> Server:
        try:
            for listener in sockets:
                listener.setblocking(False)
            server = Server(self, sockets, protocol_factory, backlog, keep_alive=keep_alive)
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
        cleanup_socket: bool | None = None,
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
        if ssl:
            raise NotImplementedError(_TLS_LATER)
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
        return await self._new_server(
            [sock], owned, protocol_factory, backlog, False, start_serving, unix_file
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
