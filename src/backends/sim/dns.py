"""Name resolution from a table: getaddrinfo/getnameinfo without a resolver.

The table maps a name to addresses. It starts with ``localhost`` (127.0.0.1
and ::1) and every simulated host's name (its addresses); ``add(name, *ips)``
adds more (an alias, a name with several addresses, a name that is not a
host). Lookups are case-insensitive. An unknown name raises
``socket.gaierror(EAI_NONAME, 'Name or service not known')``.

``getaddrinfo`` follows glibc's answers for numeric and table names: one
entry per address (in table order, IPv4 before IPv6 unless the table says
otherwise) and per socket type (SOCK_STREAM/IPPROTO_TCP then
SOCK_DGRAM/IPPROTO_UDP when *type* is 0); ``host=None`` gives the wildcard
addresses with AI_PASSIVE and the loopback ones without; a port given as a
service name is looked up in a small table (http, https, ...) -- the real
services database would be a file read. IPv6 sockaddrs are 4-tuples.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

__all__ = ["DnsTable"]

_SERVICES = {"http": 80, "https": 443, "ssh": 22, "smtp": 25, "domain": 53, "ftp": 21}
_TYPES = ((socket.SOCK_STREAM, socket.IPPROTO_TCP), (socket.SOCK_DGRAM, socket.IPPROTO_UDP))


class DnsTable:
    """name -> addresses, and the two resolver calls over it."""

    def __init__(self) -> None:
        self._names: dict[str, list[str]] = {"localhost": ["127.0.0.1", "::1"]}
        #: calls answered (for statistics)
        self.lookups = 0

    def add(self, name: str, *addresses: str) -> None:
        """Make *name* resolve to *addresses* (appended after any it had)."""
        for a in addresses:
            ipaddress.ip_address(a)
        self._names.setdefault(name.lower().rstrip("."), []).extend(addresses)

    def remove(self, name: str) -> None:
        """Forget *name* (it no longer resolves)."""
        self._names.pop(name.lower().rstrip("."), None)

    def addresses(self, name: str, v6: bool | None = None) -> list[str]:
        """The addresses of *name* (only v6 or only v4 when *v6* is a bool)."""
        found = self._names.get(name.lower().rstrip("."), [])
        if v6 is None:
            return list(found)
        return [a for a in found if (":" in a) == v6]

    @staticmethod
    def _port(port: Any) -> int:
        if port is None:
            return 0
        if isinstance(port, bytes):
            port = port.decode()
        if isinstance(port, int) and not isinstance(port, bool):
            return port
        if isinstance(port, str):
            if port.isdigit():
                return int(port)
            if port in _SERVICES:
                return _SERVICES[port]
            raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
        raise TypeError("getaddrinfo() argument 2 must be integer or string")

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """``socket.getaddrinfo`` over the table."""
        self.lookups += 1
        if isinstance(host, bytes):
            host = host.decode("idna")
        portnum = self._port(port)
        if host is None:
            if flags & socket.AI_PASSIVE:
                ips = ["0.0.0.0", "::"]
            else:
                ips = ["127.0.0.1", "::1"]
        else:
            try:
                ips = [str(ipaddress.ip_address(host.split("%")[0]))]
            except ValueError:
                if flags & socket.AI_NUMERICHOST:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
                ips = self.addresses(host)
                if not ips:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        out: list[tuple[Any, ...]] = []
        for ip in ips:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            if family not in (0, socket.AF_UNSPEC, fam):
                continue
            sockaddr: tuple[Any, ...] = (
                (ip, portnum, 0, 0) if fam == socket.AF_INET6 else (ip, portnum)
            )
            for stype, sproto in _TYPES:
                if type and type != stype:
                    continue
                if proto and proto != sproto:
                    continue
                canon = (
                    host if (flags & socket.AI_CANONNAME and host is not None and not out) else ""
                )
                out.append(
                    (socket.AddressFamily(fam), socket.SocketKind(stype), sproto, canon, sockaddr)
                )
        if not out:
            if family not in (0, socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
                raise socket.gaierror(socket.EAI_FAMILY, "ai_family not supported")
            raise socket.gaierror(
                socket.EAI_ADDRFAMILY, "Address family for hostname not supported"
            )
        return out

    def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """``socket.getnameinfo`` over the table (the first name of an address)."""
        self.lookups += 1
        if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
            raise TypeError("getnameinfo() argument 1 must be a tuple")
        ip, port = str(sockaddr[0]), int(sockaddr[1])
        name = ip
        if not flags & socket.NI_NUMERICHOST:
            for candidate, addrs in self._names.items():
                if ip in addrs:
                    name = candidate
                    break
            else:
                if flags & socket.NI_NAMEREQD:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        service = str(port)
        if not flags & socket.NI_NUMERICSERV:
            for svc, num in _SERVICES.items():
                if num == port:
                    service = svc
                    break
        return name, service
