"""Datagram endpoints: ``loop.create_datagram_endpoint`` and ``DatagramTransport``.

Contract
--------
``DatagramOps`` is a facet (mixin) of ``EventLoop`` giving it asyncio's
``create_datagram_endpoint(protocol_factory, local_addr=None, remote_addr=None,
*, family=0, proto=0, flags=0, reuse_port=None, allow_broadcast=None,
sock=None)`` with asyncio 3.11-3.13's validation, exceptions and messages
(``reuse_address`` no longer exists there: passing it is a TypeError, as on
asyncio). Sockets come from ``self._backend.socket``; names are resolved by
``self.getaddrinfo`` unless already numeric. What differs between versions
follows the running Python: ``sock=`` must be SOCK_DGRAM on 3.11/3.12 ("A UDP
Socket was expected"), and anything but SOCK_STREAM on 3.13 ("A datagram
socket was expected").

``DatagramTransport`` (an ``asyncio.DatagramTransport``, and an
``asyncio.Transport`` as asyncio's own is) pairs a non-blocking
datagram socket with ``sansloop.core.datagram.DatagramMachine``, which owns
the send queue, the flow-control accounting and the lifecycle; this class does
the socket calls and tells the protocol. As asyncio's selector transport:

* ``connection_made`` is scheduled first, reading starts after it, a waiter is
  woken after it; ``connection_lost`` is called exactly once, then the socket
  is closed and the transport leaves ``loop._transports``;
* ``sendto`` sends at once when nothing is queued, queues on EAGAIN (the
  writer flushes in order), and an ``OSError`` of a send or a receive goes to
  ``protocol.error_received(exc)`` without closing anything; any other
  exception is fatal (reported, then the transport aborts);
* ``close()`` stops reading and flushes the queue first; ``abort()`` discards it.

Deliberate differences (docs/compat.md): ``sendto(b"")`` sends an empty
datagram on every version (asyncio 3.13's behaviour; 3.11/3.12 drop it); each
queued datagram counts its length plus 8 in the write-buffer size on every
version (3.13 counts so, and 3.13.0 never un-counts the 8); datagrams sent once
the transport is lost are dropped and counted (a warning from the fifth on)
whether or not it is connected, where asyncio does so for connected ones only.
Receiving never asks for a 256 KiB block per datagram as asyncio does (above
glibc's initial mmap threshold, so in a process that never freed a large block
each receive is an mmap, a page fault and a munmap: ~13 us instead of ~1 us).
UDP (AF_INET/AF_INET6) uses ``recvfrom(65536)``, which holds any such datagram
and comes from the heap; other families (AF_UNIX datagrams may reach asyncio's
256 KiB ``max_size``) read into one reused 256 KiB buffer per thread
(``recvfrom_into``) and hand over a ``bytes`` copy. Measured on loopback with
512-byte datagrams in steady state, ``recvfrom(65536)`` took 1.1 us and
``recvfrom_into`` plus the copy 1.2-1.3 us, hence the split. Up to
``READ_BATCH`` datagrams are read per readiness event, stopping early when the
socket is drained or the protocol paused reading or closed the transport.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from ..core.datagram import (
    DROPPED,
    LOSE,
    PAUSE_PROTOCOL,
    RESUME_PROTOCOL,
    START_READING,
    START_WRITING,
    STOP_READING,
    STOP_WRITING,
    DatagramMachine,
)
from .errors import logger
from .sockets import numeric_addrinfo
from .transports import LOG_THRESHOLD_FOR_CONNLOST_WRITES, signal_protocol, socket_extra

__all__ = ["DatagramOps", "DatagramTransport", "READ_BATCH"]

#: Datagrams read per readiness event at most (fairness to other fds and timers).
READ_BATCH = 32

#: The receive size, asyncio's ``max_size``: what an AF_UNIX datagram may reach.
RECV_SIZE = 256 * 1024

#: The receive size for UDP over IPv4/IPv6: no such datagram is larger (65,507
#: and 65,527 payload bytes), and a block this size comes from the heap, where
#: asyncio's 256 KiB lies above glibc's initial mmap threshold.
IP_RECV_SIZE = 65536

_IP_FAMILIES = frozenset(
    getattr(socket, name) for name in ("AF_INET", "AF_INET6") if hasattr(socket, name)
)

_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_FATAL = (SystemExit, KeyboardInterrupt)

_per_thread = threading.local()


def _receive_buffer() -> memoryview:
    """This thread's reused receive buffer (callbacks of one loop run in one thread)."""
    view: memoryview | None = getattr(_per_thread, "view", None)
    if view is None:
        view = _per_thread.view = memoryview(bytearray(RECV_SIZE))
    return view


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


class DatagramTransport(asyncio.Transport, asyncio.DatagramTransport):
    """A datagram socket transport (UDP, AF_UNIX SOCK_DGRAM) on a sansloop loop.

    Both an ``asyncio.DatagramTransport`` and an ``asyncio.Transport``, as
    asyncio's own is (3.11/3.12: a Transport only, 3.13: both): code and
    CPython's tests check either. The stream methods (write, write_eof...) are
    the base classes' NotImplementedError, as on asyncio.
    """

    __slots__ = (
        "_loop",
        "_sock",
        "_sock_fd",
        "_protocol",
        "_machine",
        "_use_send",
        "_lost_exc",
        "_ip",
        "__weakref__",
    )

    max_size = RECV_SIZE

    def __init__(
        self,
        loop: Any,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: Any = None,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(socket_extra(sock, extra))
        self._extra: dict[str, Any]
        self._loop = loop
        self._sock: Any = sock
        self._sock_fd = sock.fileno()
        self._protocol: Any = protocol
        self._machine = DatagramMachine(address)
        # A connected socket (by us or before it was handed to us) uses send().
        # asyncio asks whether the peer name is truthy, which misses a connected
        # AF_UNIX peer without a name (a socketpair: ''); we ask whether it has one.
        self._use_send = self._extra["peername"] is not None
        self._lost_exc: BaseException | None = None
        # Which reader runs: UDP's or the general one (a flag, not a bound
        # method kept on self, which would make every transport a cycle).
        self._ip = sock.family in _IP_FAMILIES
        loop._transports[self._sock_fd] = self
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        parts = [type(self).__name__]
        machine = self._machine
        if self._sock is None:
            parts.append("closed")
        elif machine.is_closing():
            parts.append("closing")
        parts.append(f"fd={self._sock_fd}")
        if self._sock is not None:
            parts.append("read=polling" if machine.is_reading() else "read=idle")
            writing = "polling" if machine.queued() else "idle"
            parts.append(f"write=<{writing}, bufsize={machine.buffer_size()}>")
        return f"<{' '.join(parts)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # getattr: __init__ may have failed before the slot was set.
        sock = getattr(self, "_sock", None)
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()

    # -- BaseTransport --------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Send the following events to *protocol*."""
        self._protocol = protocol

    def get_protocol(self) -> Any:
        """The current protocol."""
        return self._protocol

    def is_closing(self) -> bool:
        """True once close() or abort() was called (or a fatal error happened)."""
        return self._machine.is_closing()

    def close(self) -> None:
        """Stop receiving; flush queued datagrams, then call connection_lost(None)."""
        self._act(self._machine.close())

    def abort(self) -> None:
        """Drop queued datagrams and close now; connection_lost(None) follows."""
        self._act(self._machine.abort())

    # -- reading ------------------------------------------------------------------

    def is_reading(self) -> bool:
        """True while datagrams are received (not paused, not closing)."""
        return self._machine.is_reading()

    def pause_reading(self) -> None:
        """Stop receiving until resume_reading(); datagrams queue in the kernel."""
        self._act(self._machine.pause_reading())

    def resume_reading(self) -> None:
        """Receive again after pause_reading()."""
        self._act(self._machine.resume_reading())

    def _start_reading(self) -> None:
        if self._machine.is_reading():
            self._loop._add_reader(self._sock_fd, self._readable_callback())

    def _readable_callback(self) -> Callable[[], None]:
        return self._read_ready_ip if self._ip else self._read_ready

    def _read_ready_ip(self) -> None:
        # UDP: recvfrom(64 KiB) makes the datagram's bytes directly (a heap
        # block shrunk to fit), cheaper than a copy out of a reused buffer.
        recv = self._sock.recvfrom
        machine = self._machine
        for _ in range(READ_BATCH):
            try:
                data, addr = recv(IP_RECV_SIZE)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except _FATAL:
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(data, addr)
            if not machine.reading:
                return

    def _read_ready(self) -> None:
        # Other families (AF_UNIX): datagrams up to max_size, read into one
        # reused buffer (a fresh 256 KiB block per read would be an mmap).
        view = _receive_buffer()
        recv = self._sock.recvfrom_into
        machine = self._machine
        for _ in range(READ_BATCH):
            try:
                nbytes, addr = recv(view)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except _FATAL:
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(bytes(view[:nbytes]), addr)
            if not machine.reading:
                return

    # -- writing ------------------------------------------------------------------

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send *data* to *addr* (to the connected peer if None); never blocks.

        Raises TypeError for data that is not bytes-like and ValueError for an
        address other than the connected peer's. An OSError of the send goes
        to ``protocol.error_received``.
        """
        machine = self._machine
        if machine.remote_address or data.__class__ is not bytes:
            addr = machine.target(data, addr)  # (an unconnected bytes send needs no check)
        if machine.direct:
            try:
                if self._use_send:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except _WOULD_BLOCK:
                pass
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except _FATAL:
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._act(machine.enqueue(data, addr))

    def _write_ready(self) -> None:
        machine = self._machine
        sock = self._sock
        use_send = self._use_send
        while machine.queued():
            data, addr = machine.head()
            try:
                if use_send:
                    sock.send(data)
                else:
                    sock.sendto(data, addr)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self._act(machine.pop())
                self._protocol.error_received(exc)
                continue
            except _FATAL:
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            self._act(machine.pop())

    def get_write_buffer_size(self) -> int:
        """Bytes queued (each datagram counts its length plus 8)."""
        return self._machine.buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """(low, high) water marks."""
        return self._machine.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks (asyncio's defaults: 64 KiB, high // 4)."""
        self._act(self._machine.set_write_buffer_limits(high, low))

    # -- carrying out the machine's actions -----------------------------------------

    def _act(self, actions: int) -> None:
        if not actions:
            return
        loop = self._loop
        fd = self._sock_fd
        # fd interest first, then the protocol (which may send or close again),
        # then connection_lost, which is only scheduled.
        if actions & STOP_READING:
            loop._remove_reader(fd)
        if actions & START_READING:
            loop._add_reader(fd, self._readable_callback())
        if actions & STOP_WRITING:
            loop._remove_writer(fd)
        if actions & START_WRITING:
            loop._add_writer(fd, self._write_ready)
        if actions & PAUSE_PROTOCOL:
            signal_protocol(loop, self, self._protocol, "pause_writing")
        if actions & RESUME_PROTOCOL:
            signal_protocol(loop, self, self._protocol, "resume_writing")
        if actions & LOSE:
            loop.call_soon(self._call_connection_lost, self._lost_exc)
        if actions & DROPPED and self._machine.dropped >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")

    def _fatal_error(self, exc: BaseException, message: str) -> None:
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
        self._lost_exc = exc
        self._act(self._machine.abort())

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            loop = self._loop
            if loop._transports.get(self._sock_fd) is self:
                del loop._transports[self._sock_fd]
            self._sock.close()
            self._sock = None
            self._protocol = None
            self._loop = None
            self._lost_exc = None

    def statistics(self) -> dict[str, Any]:
        """The machine's numbers: state, queued datagrams, buffered bytes, flags."""
        return self._machine.statistics()


def _set_reuseport(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from None


def _check_given_socket(sock: Any) -> None:
    if sys.version_info >= (3, 13):
        if sock.type == socket.SOCK_STREAM:
            raise ValueError(f"A datagram socket was expected, got {sock!r}")
    elif sock.type != socket.SOCK_DGRAM:
        raise ValueError(f"A UDP Socket was expected, got {sock!r}")


def _remove_stale_unix_socket(path: Any) -> None:
    """Unlink a socket file left at *path* by an earlier run; any other file stays.

    A path we may bind but not stat (directory permissions) is logged, not
    raised: the bind that follows gives the real error, if any.
    """
    try:
        is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
        if is_socket:
            os.unlink(path)
    except FileNotFoundError:
        return  # nothing there (or gone meanwhile): nothing to do
    except OSError as err:
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)


class DatagramOps:
    """create_datagram_endpoint."""

    _backend: Any
    _debug: bool

    def _make_datagram_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: Any = None,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> DatagramTransport:
        """The transport for a ready datagram socket (asyncio's hook of that name)."""
        return DatagramTransport(self, sock, protocol, address, waiter, extra)

    async def _datagram_address_pairs(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list[tuple[tuple[int, int], list[Any]]]:
        """((family, proto), [local, remote]) for each family both addresses resolve in."""
        by_family: dict[tuple[int, int], list[Any]] = {}
        for index, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            info = numeric_addrinfo(addr[0], addr[1], family, socket.SOCK_DGRAM, proto)
            if info is not None:
                infos: list[Any] = [info]
            else:
                infos = await self.getaddrinfo(  # type: ignore[attr-defined]
                    addr[0],
                    addr[1],
                    family=family,
                    type=socket.SOCK_DGRAM,
                    proto=proto,
                    flags=flags,
                )
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                by_family.setdefault((fam, pro), [None, None])[index] = address
        pairs = [
            (key, pair)
            for key, pair in by_family.items()
            if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
        ]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _open_datagram_socket(
        self,
        family: int,
        proto: int,
        local_address: Any,
        remote_address: Any,
        reuse_port: bool | None,
        allow_broadcast: bool | None,
    ) -> tuple[socket.socket, Any]:
        """A bound and/or connected non-blocking datagram socket, and its fixed peer.

        With *allow_broadcast* the remote address is remembered but not
        connected to (so the socket may also send to broadcast addresses).
        The socket is closed if any step fails.
        """
        sock = self._backend.socket(family, socket.SOCK_DGRAM, proto)
        try:
            sock.setblocking(False)
            if reuse_port:
                _set_reuseport(sock)
            if allow_broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if local_address:
                sock.bind(local_address)
            if remote_address and not allow_broadcast:
                await self.sock_connect(sock, remote_address)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise
        return sock, (remote_address or None)

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[DatagramTransport, asyncio.BaseProtocol]:
        """Create a datagram endpoint; return ``(transport, protocol)``."""
        r_addr: Any = None
        if sock is not None:
            _check_given_socket(sock)
            if (
                local_addr
                or remote_addr
                or family
                or proto
                or flags
                or reuse_port
                or allow_broadcast
            ):
                given = {
                    "local_addr": local_addr,
                    "remote_addr": remote_addr,
                    "family": family,
                    "proto": proto,
                    "flags": flags,
                    "reuse_port": reuse_port,
                    "allow_broadcast": allow_broadcast,
                }
                problems = ", ".join(f"{name}={value}" for name, value in given.items() if value)
                raise ValueError(
                    "socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})"
                )
            sock.setblocking(False)
        else:
            pairs: list[tuple[tuple[int, int], Any]]
            if not (local_addr or remote_addr):
                if family == 0:
                    raise ValueError("unexpected address family")
                pairs = [((family, proto), (None, None))]
            elif hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
                for addr in (local_addr, remote_addr):
                    if addr is not None and not isinstance(addr, str):
                        raise TypeError("string is expected")
                if local_addr and local_addr[0] not in (0, "\x00"):
                    _remove_stale_unix_socket(local_addr)
                pairs = [((family, proto), (local_addr, remote_addr))]
            else:
                pairs = await self._datagram_address_pairs(
                    local_addr, remote_addr, family, proto, flags
                )
            first_error: OSError | None = None
            for (fam, pro), (local_address, remote_address) in pairs:
                try:
                    sock, r_addr = await self._open_datagram_socket(
                        fam, pro, local_address, remote_address, reuse_port, allow_broadcast
                    )
                except OSError as exc:
                    # Try the next family; if none works, the first failure tells most.
                    first_error = first_error or exc
                    continue
                break
            else:
                assert first_error is not None
                raise first_error
        protocol = protocol_factory()
        waiter = self.create_future()  # type: ignore[attr-defined]
        transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        if self._debug:
            if local_addr:
                logger.info(
                    "Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                    local_addr,
                    remote_addr,
                    transport,
                    protocol,
                )
            else:
                logger.debug(
                    "Datagram endpoint remote_addr=%r created: (%r, %r)",
                    remote_addr,
                    transport,
                    protocol,
                )
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol
