"""The Server object: a server's listening sockets, its accept loop, its connections.

Contract
--------
``Server`` is what ``loop.create_server()`` and ``loop.create_unix_server()``
return (``sansloop.compat.servers`` makes the sockets), a subclass of
``asyncio.AbstractServer`` with asyncio 3.13's API on every version:
``get_loop``, ``is_serving``, ``sockets`` (``asyncio.trsock.TransportSocket``
wrappers; ``()`` once closed), ``start_serving``, ``serve_forever``
(cancellable; closes and waits on cancellation), ``close``, ``close_clients``,
``abort_clients``, ``wait_closed`` and ``async with``.

The accept loop's decisions are ``sansloop.core.acceptpolicy``'s; this class
performs them: accept up to a batch per readiness, watch or unwatch the
listening fds, arm or cancel the backoff timer, report to the exception
handler, close the listeners, wake ``wait_closed()``.

- Accepted connections become ``SocketTransport(loop, conn, protocol_factory(),
  None, {'peername': addr}, server)`` (with an ssl context, an ``SSLTransport``
  over one, whose handshake runs before the protocol's ``connection_made``);
  the socket transport calls ``_attach(self)`` and, once its connection is
  lost, ``_detach(self)``. ``_attach()`` and
  ``_detach()`` without a transport (asyncio 3.11/3.12's private signature)
  count an anonymous connection. A transport collected without detaching
  still counts down (a weak reference's callback, deferred to the loop).
- A protocol factory that raises is reported to the exception handler in
  every mode (asyncio: debug mode only, and it leaves the socket open) and the
  connection is closed; one that closes the server drops its connection.
- ``wait_closed()`` has 3.12.1+ semantics: it returns once the server is
  closed *and* every connection it accepted is gone, in either order.
- Out of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM): one report per episode with
  asyncio's message ``socket.accept() out of system resource``; every
  listening fd is unwatched for ``ACCEPT_RETRY_DELAY`` (1 s), so the loop
  does not spin; close() during the backoff cancels the retry. (asyncio
  3.11-3.13 go on calling accept() after EMFILE for the rest of the batch,
  arming one retry timer per failure.)
- Unix socket files recorded at creation (``_unix_files``) are removed on
  close only if the path still names that socket (same device and inode, and
  a socket), checked before our socket is closed so that the inode cannot
  have been reused by then.
- ``_sockets`` (None once closed) and ``_waiters`` (None once released) are
  asyncio's attributes, which CPython's own tests read.
"""

from __future__ import annotations

import asyncio
import asyncio.trsock as _trsock
import os
import socket
import stat
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ..core import acceptpolicy as _ap
from ..core.acceptpolicy import AcceptPolicy
from .errors import logger

__all__ = ["Server"]

_ACCEPT_ONLY = (_ap.ACCEPT,)


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
        ssl_context: Any,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None = None,
        *,
        keep_alive: bool = False,
    ) -> None:
        # asyncio.Server's constructor signature (it is in asyncio's namespace).
        self._loop = loop
        self._listeners = list(sockets)
        self._protocol_factory = protocol_factory
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
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
            extra = {"peername": addr}
            if self._ssl_context is not None:
                from .tlstransport import make_tls_transport

                make_tls_transport(
                    loop,
                    conn,
                    protocol,
                    self._ssl_context,
                    None,
                    server_side=True,
                    server_hostname=None,
                    ssl_handshake_timeout=self._ssl_handshake_timeout,
                    ssl_shutdown_timeout=self._ssl_shutdown_timeout,
                    extra=extra,
                    server=self,
                )
            else:
                from .sockettransport import SocketTransport

                SocketTransport(loop, conn, protocol, None, extra, self)
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
