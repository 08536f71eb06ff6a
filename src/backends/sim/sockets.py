"""Simulated sockets: the socket API compat uses, over the simulated world.

A :class:`SimSocket` *is a* ``socket.socket`` (so asyncio's and compat's
``isinstance(sock, socket.socket)`` checks accept it) but it never owns a real
descriptor: it is made with ``socket.socket.__new__`` alone, which leaves the
C-level fd at -1, and every method compat calls is overridden here or in the
TCP/UDP subclasses. A C method that is not overridden fails with EBADF rather
than touch a real file. ``fileno()`` is a simulated fd from the world's table
(>= 2**20, so an ``os.*`` call given one fails instead of hitting a real fd).

Semantics follow Linux: non-blocking operations that cannot proceed raise
BlockingIOError (EAGAIN, or EINPROGRESS for connect); errors are OSError with
the errno Linux gives (ECONNREFUSED, ECONNRESET, EPIPE, ENOTCONN, EADDRINUSE,
...), so ``OSError`` maps them to the usual subclasses. A socket in blocking
mode that would block raises :class:`~.errors.SimulationError`: nothing moves
the simulated world while a call blocks, so it would wait forever.

This module holds what every kind shares (addresses, options, blocking mode,
fd and close bookkeeping); ``tcp.py`` (stream, also AF_UNIX) and ``udp.py``
(datagram) hold the protocols.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Any

from .errors import SimulationError

if TYPE_CHECKING:
    from .world import Host, World

__all__ = ["SimSocket", "oserror"]

_SOCK_FLAGS = getattr(socket, "SOCK_NONBLOCK", 0) | getattr(socket, "SOCK_CLOEXEC", 0)
DEFAULT_RCVBUF = 131072
DEFAULT_SNDBUF = 16384


def oserror(code: int, detail: str | None = None) -> OSError:
    """``OSError(code, strerror)``, which Python maps to the matching subclass."""
    return OSError(code, detail or os.strerror(code))


class SimSocket(socket.socket):
    """Base of the simulated socket kinds; see the module docstring."""

    def __init__(self, world: World, host: Host, family: int, type: int, proto: int) -> None:
        # socket.socket.__init__ is deliberately not called (it would open a
        # real socket); the slots it sets are set here.
        self._closed = False
        self._io_refs = 0
        self.world = world
        self.host = host
        self.sim_family = socket.AddressFamily(family)
        self.sim_type = socket.SocketKind(type & ~_SOCK_FLAGS)
        self.sim_proto = proto
        self.sim_timeout: float | None = 0.0 if type & getattr(socket, "SOCK_NONBLOCK", 0) else None
        self.options: dict[tuple[int, int], Any] = {}
        self.local: Any = None
        self.peer: Any = None
        self.fd = world.new_fd(self)
        self.incarnation = host.incarnation
        world.record("socket", self.fd, host.name, int(family), int(self.sim_type))

    @classmethod
    def make(cls, world: World, host: Host, family: int, type: int, proto: int) -> Any:
        """A new simulated socket of this kind, with no real fd behind it."""
        self = socket.socket.__new__(cls)
        cls.__init__(self, world, host, family, type, proto)
        return self

    # -- identity ------------------------------------------------------------

    @property
    def family(self) -> socket.AddressFamily:
        return self.sim_family

    @property
    def type(self) -> socket.SocketKind:
        return self.sim_type

    @property
    def proto(self) -> int:
        return self.sim_proto

    def fileno(self) -> int:
        return -1 if self._closed else self.fd

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.fd}"
        return (
            f"<sim socket {state}, family={self.sim_family.name}, type={self.sim_type.name}, "
            f"proto={self.sim_proto}, host={self.host.name}, laddr={self.local!r}, "
            f"raddr={self.peer!r}>"
        )

    def __getstate__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    def dup(self) -> SimSocket:
        raise SimulationError("dup() of a simulated socket is not supported")

    def detach(self) -> int:
        raise SimulationError("detach() of a simulated socket is not supported")

    # -- blocking mode ---------------------------------------------------------

    def setblocking(self, flag: bool) -> None:
        self.sim_timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self.sim_timeout != 0.0

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self.sim_timeout = value

    def gettimeout(self) -> float | None:
        return self.sim_timeout

    def _would_block(self, what: str, code: int = errno.EAGAIN) -> OSError:
        """The error for an operation that cannot proceed now."""
        if self.sim_timeout != 0.0:
            raise SimulationError(
                f"blocking {what}() on simulated socket fd={self.fd} would wait forever: "
                "nothing moves the simulated world while a call blocks; use a "
                "non-blocking socket (the event loop's methods do)"
            )
        return BlockingIOError(code, os.strerror(code))

    # -- options ---------------------------------------------------------------

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        self._check_open()
        self.options[(level, optname)] = value

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        self._check_open()
        if level == socket.SOL_SOCKET:
            if optname == socket.SO_ERROR:
                return self._take_error()
            if optname == socket.SO_TYPE:
                return int(self.sim_type)
            if optname == socket.SO_RCVBUF:
                return self.options.get((level, optname), DEFAULT_RCVBUF)
            if optname == socket.SO_SNDBUF:
                return self.options.get((level, optname), DEFAULT_SNDBUF)
        value = self.options.get((level, optname), 0)
        if buflen is not None:
            return bytes(buflen) if isinstance(value, int) else value
        return value

    def _take_error(self) -> int:
        """Pending error (SO_ERROR), cleared by reading it. Subclasses keep one."""
        return 0

    # -- addresses -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise oserror(errno.EBADF)

    def _parse(self, address: Any) -> tuple[str, int] | Any:
        """Check *address* for this family; ``(ip, port)`` for IP, the path for Unix."""
        fam = self.sim_family
        if fam == socket.AF_UNIX:
            if isinstance(address, (bytes, bytearray)):
                return bytes(address)
            if isinstance(address, str):
                return address
            raise TypeError(
                f"a bytes-like object or str is required, not '{type(address).__name__}'"
            )
        if not isinstance(address, tuple):
            raise TypeError(f"{fam.name} address must be tuple, not {type(address).__name__}")
        if fam == socket.AF_INET and len(address) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
        if fam == socket.AF_INET6 and not 2 <= len(address) <= 4:
            raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
        host, port = address[0], address[1]
        if isinstance(host, bytes):
            host = host.decode("idna")
        if not isinstance(host, str):
            raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")
        if not isinstance(port, int) or isinstance(port, bool):
            raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
        if not 0 <= port <= 65535:
            raise OverflowError(
                f"{'bind' if self.local is None else 'connect'}(): port must be 0-65535."
            )
        return self._numeric(host), port

    def _numeric(self, host: str) -> str:
        """*host* as a numeric address of this socket's family (names via the DNS table)."""
        v6 = self.sim_family == socket.AF_INET6
        if host == "":
            return "::" if v6 else "0.0.0.0"
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            resolver = getattr(self.world, "dns", None)
            found = resolver.addresses(host, v6) if resolver is not None else []
            if not found:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            return str(found[0])
        if (ip.version == 6) != v6:
            raise socket.gaierror(
                socket.EAI_ADDRFAMILY, "Address family for hostname not supported"
            )
        return str(ip)

    def _sockaddr(self, ip: str, port: int) -> tuple[Any, ...]:
        """The address tuple this family returns (v6 has flowinfo and scope id)."""
        if self.sim_family == socket.AF_INET6:
            return (ip, port, 0, 0)
        return (ip, port)

    def getsockname(self) -> Any:
        self._check_open()
        if self.local is not None:
            return self.local
        if self.sim_family == socket.AF_UNIX:
            return ""
        return self._sockaddr("::" if self.sim_family == socket.AF_INET6 else "0.0.0.0", 0)

    def getpeername(self) -> Any:
        self._check_open()
        if self.peer is None:
            raise oserror(errno.ENOTCONN)
        return self.peer

    # -- binding -----------------------------------------------------------------

    def _proto_key(self) -> str:
        return "tcp" if self.sim_type == socket.SOCK_STREAM else "udp"

    def bind(self, address: Any) -> None:
        self._check_open()
        if self.local is not None:
            raise oserror(errno.EINVAL)
        parsed = self._parse(address)
        if self.sim_family == socket.AF_UNIX:
            self._bind_unix(parsed)
            return
        ip, port = parsed
        world, host = self.world, self.host
        if not world.owns(host, ip):
            raise oserror(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        proto = self._proto_key()
        if port == 0:
            port = world.ephemeral_port(host, proto, ip)
        elif world.port_in_use(host, proto, ip, port) and not self._may_share(proto, ip, port):
            raise oserror(errno.EADDRINUSE)
        host.ports.setdefault((proto, ip, port), []).append(self)
        self.local = self._sockaddr(ip, port)
        world.record("bind", self.fd, host.name, proto, ip, port)

    def _may_share(self, proto: str, ip: str, port: int) -> bool:
        """SO_REUSEPORT on both sides lets two sockets bind one address."""
        option = getattr(socket, "SO_REUSEPORT", None)
        if option is None or not self.options.get((socket.SOL_SOCKET, option)):
            return False
        socks = self.host.ports.get((proto, ip, port), [])
        return bool(socks) and all(s.options.get((socket.SOL_SOCKET, option)) for s in socks)

    def _bind_unix(self, path: Any) -> None:
        kind = "stream" if self.sim_type == socket.SOCK_STREAM else "dgram"
        if path in ("", b""):
            self.local = ""  # autobind is not simulated: stays unnamed
            return
        if (kind, path) in self.host.unix:
            raise oserror(errno.EADDRINUSE)
        self.host.unix[(kind, path)] = self
        self.local = path
        self.world.record("bind", self.fd, self.host.name, "unix", str(path))

    def _autobind(self, remote_ip: str) -> None:
        """Give an unbound IP socket a local address suited to reach *remote_ip*."""
        if self.local is not None or self.sim_family == socket.AF_UNIX:
            return
        from .world import is_loopback

        v6 = self.sim_family == socket.AF_INET6
        if is_loopback(remote_ip):
            ip = "::1" if v6 else "127.0.0.1"
        else:
            ip = self.host.first_address(v6)
        self.bind((ip, 0))

    def _unbind(self) -> None:
        local = self.local
        if local is None or local == "":
            return
        if self.sim_family == socket.AF_UNIX:
            kind = "stream" if self.sim_type == socket.SOCK_STREAM else "dgram"
            if self.host.unix.get((kind, local)) is self:
                del self.host.unix[(kind, local)]
            return
        key = (self._proto_key(), local[0], local[1])
        socks = self.host.ports.get(key)
        if socks and self in socks:
            socks.remove(self)
            if not socks:
                del self.host.ports[key]

    # -- closing -----------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.world.fds.pop(self.fd, None)
        self.world.record("close", self.fd)
        self._on_close()
        self._unbind()

    def _on_close(self) -> None:
        """Protocol-specific teardown (FIN/RST, dropping queues)."""

    def _real_close(self, *args: Any) -> None:  # socket.socket's internal hook
        self.close()

    # -- readiness -------------------------------------------------------------

    def ready_mask(self) -> int:
        """The EVENT_READ | EVENT_WRITE bits this socket is ready for now."""
        return 0

    # -- not simulated ---------------------------------------------------------

    def makefile(self, *args: Any, **kwargs: Any) -> Any:
        raise SimulationError("makefile() of a simulated socket is not supported")

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        raise SimulationError("socket.sendfile() of a simulated socket is not supported")
