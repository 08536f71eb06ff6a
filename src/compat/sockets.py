"""Low-level socket coroutines of the event loop, and name resolution.

Contract
--------
``SocketOps`` is a mixin of ``sansloop.compat.loop.EventLoop`` providing the
``loop.sock_*`` coroutines of ``asyncio.AbstractEventLoop`` (``sock_recv``,
``sock_recv_into``, ``sock_recvfrom``, ``sock_recvfrom_into``,
``sock_sendall``, ``sock_sendto``, ``sock_connect``, ``sock_accept``) and
``getaddrinfo`` / ``getnameinfo``, with the signatures, results, exceptions and
messages of asyncio 3.11-3.13 (whose behaviour did not change in that range).

Behaviour every ``sock_*`` coroutine shares, as asyncio does it:

* an ``ssl.SSLSocket`` is refused with ``TypeError("Socket cannot be of type
  SSLSocket")``;
* in debug mode only, a socket whose timeout is not 0 is refused with
  ``ValueError("the socket must be non-blocking")``; outside debug mode the
  call is made as asked, exactly like asyncio (a blocking socket then blocks);
* the operation is tried at once; only on ``BlockingIOError`` or
  ``InterruptedError`` does the coroutine wait, by registering a reader or a
  writer for the socket's fd and retrying when it fires;
* cancelling a waiting coroutine removes that fd interest (unless something
  else has replaced it since) and leaves the socket usable; nothing is lost
  except, for ``sock_sendall``, the unsent rest of the data.

``sock_connect`` resolves a host name for AF_INET/AF_INET6 sockets through
``getaddrinfo`` unless the host is already a numeric address, then waits for
a non-blocking connect to finish and reports ``SO_ERROR`` as ``OSError(err,
"Connect call failed <address>")`` (so a refusal is ``ConnectionRefusedError``).

What the mixin needs from the loop (and nothing else):
``_add_reader``/``_add_writer`` (``add_reader``/``add_writer`` that return the
registered Handle, so that cancellation can tell whether the interest is
still its own: a newer registration cancels the handle it replaces),
``remove_reader``/``remove_writer``, ``create_future``, ``run_in_executor``,
``get_debug``, ``time``, ``slow_callback_duration`` and ``_backend`` (which owns
name resolution: a simulated backend resolves simulated names). It never
creates an OS resource; it only calls methods of the sockets it is given.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from operator import methodcaller
from typing import Any

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

from .errors import logger

__all__ = ["SocketOps", "numeric_addrinfo"]

_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_FATAL = (SystemExit, KeyboardInterrupt)
#: The protocol a numeric address implies for each socket type it can skip for.
_PROTO_OF_TYPE: dict[int, int] = {
    socket.SOCK_STREAM: socket.IPPROTO_TCP,
    socket.SOCK_DGRAM: socket.IPPROTO_UDP,
}
_SKIPPABLE_PROTOS = (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP)
_IP_FAMILIES = (
    (socket.AF_INET, socket.AF_INET6) if hasattr(socket, "AF_INET6") else (socket.AF_INET,)
)


def _refuse_bad_socket(sock: Any, debug: bool) -> None:
    """Raise asyncio's errors for an SSL socket, or a blocking one in debug mode."""
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


def numeric_addrinfo(
    host: Any, port: Any, family: int, type: int, proto: int, *extra: Any
) -> tuple[Any, ...] | None:
    """Return the addrinfo entry for a host that is already a numeric IP, else None.

    This is the shortcut asyncio takes before calling ``getaddrinfo``: for a
    stream or datagram socket whose *host* parses as an IPv4/IPv6 literal (no
    zone index) and whose *port* is a number (or empty/None, meaning 0), the
    answer is known without asking a resolver. Anything else — service names,
    host names, unusual protocols or socket types — returns None so that the
    caller resolves it properly. *extra* is the IPv6 ``flowinfo, scopeid``.
    """
    if host is None or proto not in _SKIPPABLE_PROTOS:
        return None
    proto = _PROTO_OF_TYPE.get(type, -1)  # (asyncio also ignores a mismatched proto)
    if proto < 0:
        return None
    if port is None or port == "" or port == b"":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name such as "http": let getaddrinfo decide
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        return None  # inet_pton rejects a zone index ("fe80::1%eth0")
    candidates = _IP_FAMILIES if family == socket.AF_UNSPEC else (family,)
    for af in candidates:
        try:
            socket.inet_pton(af, host)
        except OSError:
            continue
        if af == socket.AF_INET:
            return af, type, proto, "", (host, port)
        flowinfo, scopeid = (tuple(extra) + (0, 0))[:2]
        return af, type, proto, "", (host, port, flowinfo, scopeid)
    return None


def _retry(fut: Any, call: methodcaller, sock: Any) -> None:
    """Readiness callback: try ``call(sock)`` again; settle *fut* unless it would block.

    The method is looked up on *sock* at each try, not bound once, as asyncio
    does (a wrapper or test double may swap it while we wait).
    """
    if fut.done():
        return  # cancelled while this callback was already queued
    try:
        result = call(sock)
    except _WOULD_BLOCK:
        return  # spurious wakeup: stay registered
    except _FATAL:
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _accept_ready(fut: Any, sock: Any) -> None:
    """Readiness callback of ``sock_accept``."""
    if fut.done():
        return
    try:
        conn, address = sock.accept()
        conn.setblocking(False)
    except _WOULD_BLOCK:
        return
    except _FATAL:
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result((conn, address))


class _SendAll:
    """Progress of one ``sock_sendall`` that could not finish at once."""

    __slots__ = ("fut", "sock", "view", "sent")

    def __init__(self, fut: Any, sock: Any, view: memoryview, sent: int) -> None:
        self.fut = fut
        self.sock = sock
        self.view = view
        self.sent = sent

    def on_writable(self) -> None:
        """Writer callback: send what fits; finish the future when all is out."""
        fut = self.fut
        if fut.done():
            return
        try:
            n = self.sock.send(self.view[self.sent :])
        except _WOULD_BLOCK:
            return
        except _FATAL:
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            return
        self.sent += n
        if self.sent >= len(self.view):
            fut.set_result(None)


def _connect_ready(fut: Any, sock: Any, address: Any) -> None:
    """Writer callback of a connect in progress: read its outcome from SO_ERROR."""
    if fut.done():
        return
    try:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except _WOULD_BLOCK:
        return
    except _FATAL:
        raise
    except BaseException as exc:
        fut.set_exception(exc)
        return
    if err:
        # OSError(errno, ...) picks the subclass: ConnectionRefusedError, ...
        fut.set_exception(OSError(err, f"Connect call failed {address}"))
    else:
        fut.set_result(None)


class SocketOps:
    """``loop.sock_*``, ``loop.getaddrinfo`` and ``loop.getnameinfo``."""

    # Provided by the EventLoop this is mixed into.
    _backend: Any
    slow_callback_duration: float
    _add_reader: Callable[..., Any]
    _add_writer: Callable[..., Any]
    _remove_reader: Callable[[Any], bool]
    _remove_writer: Callable[[Any], bool]
    _ensure_fd_no_transport: Callable[[Any], None]
    create_future: Callable[[], Any]
    run_in_executor: Callable[..., Any]
    get_debug: Callable[[], bool]
    time: Callable[[], float]

    # -- waiting for readiness ---------------------------------------------

    def _forget_reader(self, fd: int, handle: Any, fut: Any) -> None:
        # Done callback: drop the interest unless it was replaced meanwhile
        # (a replaced or removed handle is cancelled by the loop).
        if not handle.cancelled():
            self._remove_reader(fd)

    def _forget_writer(self, fd: int, handle: Any, fut: Any) -> None:
        if not handle.cancelled():
            self._remove_writer(fd)

    async def _wait_readable(self, sock: Any, callback: Callable[..., Any], *args: Any) -> Any:
        """Call ``callback(fut, *args)`` whenever *sock* is readable; await fut."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = self._add_reader(fd, callback, fut, *args)
        fut.add_done_callback(functools.partial(self._forget_reader, fd, handle))
        return await fut

    async def _wait_writable(self, sock: Any, callback: Callable[..., Any], *args: Any) -> Any:
        """Call ``callback(fut, *args)`` whenever *sock* is writable; await fut."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = self._add_writer(fd, callback, fut, *args)
        fut.add_done_callback(functools.partial(self._forget_writer, fd, handle))
        return await fut

    # -- receiving -----------------------------------------------------------

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to *n* bytes from *sock*; ``b""`` means end of stream."""
        _refuse_bad_socket(sock, self.get_debug())
        try:
            return sock.recv(n)
        except _WOULD_BLOCK:
            pass
        return await self._wait_readable(sock, _retry, methodcaller("recv", n), sock)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into the writable buffer *buf*; return the number of bytes."""
        _refuse_bad_socket(sock, self.get_debug())
        try:
            return sock.recv_into(buf)
        except _WOULD_BLOCK:
            pass
        return await self._wait_readable(sock, _retry, methodcaller("recv_into", buf), sock)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of at most *bufsize* bytes: ``(data, address)``."""
        _refuse_bad_socket(sock, self.get_debug())
        try:
            return sock.recvfrom(bufsize)
        except _WOULD_BLOCK:
            pass
        return await self._wait_readable(sock, _retry, methodcaller("recvfrom", bufsize), sock)

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: Any, nbytes: int = 0
    ) -> tuple[int, Any]:
        """Receive a datagram into *buf* (at most *nbytes*, 0: all of it).

        Returns ``(number of bytes, address)``. An *nbytes* larger than the
        buffer raises ``ValueError("nbytes is greater than the length of the
        buffer")``, from the socket itself.
        """
        _refuse_bad_socket(sock, self.get_debug())
        # nbytes == 0 tells the socket to use the whole buffer, which is what
        # asyncio means by it (and also right for buffers of wide items).
        try:
            return sock.recvfrom_into(buf, nbytes)
        except _WOULD_BLOCK:
            pass
        return await self._wait_readable(
            sock, _retry, methodcaller("recvfrom_into", buf, nbytes), sock
        )

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection on the listening *sock*: ``(conn, address)``.

        The new socket is non-blocking.
        """
        _refuse_bad_socket(sock, self.get_debug())
        try:
            conn, address = sock.accept()
        except _WOULD_BLOCK:
            return await self._wait_readable(sock, _accept_ready, sock)
        conn.setblocking(False)
        return conn, address

    # -- sending -------------------------------------------------------------

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of *data* on the connected *sock*.

        On error there is no telling how much was sent; on cancellation the
        rest is simply not sent.
        """
        _refuse_bad_socket(sock, self.get_debug())
        try:
            sent = sock.send(data)
        except _WOULD_BLOCK:
            sent = 0
        cls = type(data)
        total = len(data) if cls is bytes or cls is bytearray else memoryview(data).nbytes
        if sent == total:
            return
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")  # count bytes, not items
        progress = _SendAll(self.create_future(), sock, view, sent)
        fut = progress.fut
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = self._add_writer(fd, progress.on_writable)
        fut.add_done_callback(functools.partial(self._forget_writer, fd, handle))
        await fut

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Send the datagram *data* to *address*; return the number of bytes sent."""
        _refuse_bad_socket(sock, self.get_debug())
        try:
            return sock.sendto(data, address)
        except _WOULD_BLOCK:
            pass
        return await self._wait_writable(sock, _retry, methodcaller("sendto", data, address), sock)

    # -- connecting ----------------------------------------------------------

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect *sock* to *address*, resolving a host name first if needed."""
        _refuse_bad_socket(sock, self.get_debug())
        if sock.family in _IP_FAMILIES:
            host, port = address[:2]
            info = numeric_addrinfo(host, port, sock.family, sock.type, sock.proto, *address[2:])
            if info is None:
                infos = await self.getaddrinfo(
                    host, port, family=sock.family, type=sock.type, proto=sock.proto
                )
                if not infos:
                    raise OSError(f"getaddrinfo({host!r}) returned empty list")
                info = infos[0]
            address = info[4]
        try:
            sock.connect(address)
        except _WOULD_BLOCK:
            # EINPROGRESS (or EINTR, after which the connect goes on in the
            # background): writable means finished, SO_ERROR says how.
            await self._wait_writable(sock, _connect_ready, sock, address)

    # -- names ---------------------------------------------------------------

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Resolve *host*/*port* in the executor, through the loop's backend."""
        resolve = self._resolve_logged if self.get_debug() else self._backend.getaddrinfo
        return await self.run_in_executor(None, resolve, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """Reverse-resolve *sockaddr* in the executor, through the loop's backend."""
        return await self.run_in_executor(None, self._backend.getnameinfo, sockaddr, flags)

    def _resolve_logged(
        self, host: Any, port: Any, family: int, type: int, proto: int, flags: int
    ) -> list[tuple[Any, ...]]:
        """Debug-mode ``getaddrinfo``: log the query, its duration and answer.

        Runs in the executor. A resolution slower than
        ``slow_callback_duration`` is logged at INFO, others at DEBUG, with
        asyncio's wording.
        """
        parts = [f"{host}:{port!r}"]
        parts += [
            f"{name}={value!r}"
            for name, value in (
                ("family", family),
                ("type", type),
                ("proto", proto),
                ("flags", flags),
            )
            if value
        ]
        query = ", ".join(parts)
        logger.debug("Get address info %s", query)
        started = self.time()
        answer = self._backend.getaddrinfo(host, port, family, type, proto, flags)
        took = self.time() - started
        level_log = logger.info if took >= self.slow_callback_duration else logger.debug
        level_log(f"Getting address info {query} took {took * 1e3:.3f}ms: {answer!r}")
        return answer
