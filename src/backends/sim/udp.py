"""Simulated datagram sockets (UDP over AF_INET/AF_INET6, and AF_UNIX datagrams).

Each datagram travels alone: its latency is drawn per datagram, so two
datagrams may arrive in the other order (reordering needs no extra rule).
What the choice source decides (0 = the ordinary outcome):

- ``udp.loss``    the datagram is lost (``NetConfig.udp_loss_one_in``);
- ``udp.dup``     it arrives twice (``NetConfig.udp_dup_one_in``);
- ``udp.latency`` each copy's latency within the link's range.

A datagram to a port nobody has bound is answered, for a *connected* sender,
by ECONNREFUSED on its next recv/send (Linux's ICMP port unreachable); an
unconnected sender hears nothing. Partitions and crashed hosts drop
datagrams. A receiver keeps at most ``NetConfig.udp_queue`` datagrams and
drops the rest. recv/recvfrom of a datagram larger than the buffer returns
the start of it and drops the rest, as on Linux.
"""

from __future__ import annotations

import errno
import socket
from collections import deque
from typing import TYPE_CHECKING, Any
from zlib import crc32

from ..base import EVENT_READ, EVENT_WRITE
from .choices import chance
from .sockets import SimSocket, oserror

if TYPE_CHECKING:
    from .world import Host, World

__all__ = ["UdpSocket"]

#: Largest UDP payload over IPv4 (65535 - 8 - 20).
MAX_DATAGRAM = 65507


class UdpSocket(SimSocket):
    """A simulated SOCK_DGRAM socket; see the module docstring."""

    def __init__(self, world: World, host: Host, family: int, type: int, proto: int) -> None:
        if family != socket.AF_UNIX and proto == 0:
            proto = socket.IPPROTO_UDP
        super().__init__(world, host, family, type, proto)
        self.queue: deque[tuple[bytes, Any]] = deque()
        self.error = 0

    # -- addressing ------------------------------------------------------------

    def connect(self, address: Any) -> None:
        self._check_open()
        parsed = self._parse(address)
        if self.sim_family == socket.AF_UNIX:
            if ("dgram", parsed) not in self.host.unix:
                raise oserror(errno.ENOENT if parsed else errno.EINVAL)
            self.peer = parsed
        else:
            ip, port = parsed
            self._autobind(ip)
            self.peer = self._sockaddr(ip, port)
        self.world.record("connect.udp", self.fd, str(self.peer))

    def connect_ex(self, address: Any) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or 0
        return 0

    def _take_error(self) -> int:
        code, self.error = self.error, 0
        return code

    # -- sending ---------------------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        self._check_open()
        if self.peer is None:
            raise oserror(errno.EDESTADDRREQ)
        return self._send(data, self.peer)

    def sendto(self, data: Any, flags_or_address: Any, address: Any = None) -> int:
        self._check_open()
        target = flags_or_address if address is None else address
        if target is None:
            return self.send(data)
        if self.peer is not None and self.sim_family != socket.AF_UNIX:
            raise oserror(errno.EISCONN)
        return self._send(data, target)

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        if ancdata:
            raise OSError(errno.EOPNOTSUPP, "ancillary data is not simulated")
        data = b"".join(bytes(memoryview(b).cast("B")) for b in buffers)
        return self.send(data) if address is None else self.sendto(data, address)

    def _send(self, data: Any, address: Any) -> int:
        if self.error:
            code, self.error = self.error, 0
            raise oserror(code)
        payload = bytes(memoryview(data).cast("B"))
        if len(payload) > MAX_DATAGRAM:
            raise oserror(errno.EMSGSIZE)
        world = self.world
        config = world.config
        parsed = self._parse(address)
        if self.sim_family == socket.AF_UNIX:
            dst_host: Host | None = self.host
            key: Any = parsed
        else:
            ip, port = parsed
            if port == 0:
                raise oserror(errno.EINVAL)
            self._autobind(ip)
            dst_host = world.route(self.host, ip)
            key = (ip, port)
        source = self.local if self.local is not None else ""
        world.record("dgram", self.fd, str(key), len(payload), crc32(payload))
        if chance(world.choices, config.udp_loss_one_in, "udp.loss"):
            world.record("dgram.lost", self.fd)
            return len(payload)
        copies = 2 if chance(world.choices, config.udp_dup_one_in, "udp.dup") else 1
        for _ in range(copies):
            if dst_host is None:
                break
            lat = world.link_latency(self.host, dst_host, "udp.latency")
            world.at(world.now + lat, self._arrive, dst_host, key, payload, source)
        return len(payload)

    def _arrive(self, dst_host: Host, key: Any, payload: bytes, source: Any) -> None:
        world = self.world
        if not dst_host.up or world.is_blocked(self.host, dst_host):
            world.record("dgram.dropped", self.fd)
            return
        if self.sim_family == socket.AF_UNIX:
            target = dst_host.unix.get(("dgram", key))
        else:
            target = world.lookup(dst_host, "udp", key[0], key[1])
        if target is None or target._closed:
            world.record("dgram.unreachable", self.fd)
            if self.peer is not None and not self._closed and self.sim_family != socket.AF_UNIX:
                lat = world.link_latency(dst_host, self.host, "udp.latency")
                world.at(world.now + lat, self._refused)
            return
        target.receive(payload, source)

    def _refused(self) -> None:
        if not self._closed:
            self.error = errno.ECONNREFUSED

    def receive(self, payload: bytes, source: Any) -> None:
        """A datagram arrives for this socket."""
        world = self.world
        if self.peer is not None and source != self.peer and self.sim_family != socket.AF_UNIX:
            world.record("dgram.filtered", self.fd)
            return
        if len(self.queue) >= world.config.udp_queue:
            world.record("dgram.overflow", self.fd)
            return
        world.record("dgram.dlv", self.fd, len(payload))
        self.queue.append((payload, source))

    # -- receiving -------------------------------------------------------------

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        self._check_open()
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        if self.queue:
            payload, source = self.queue[0] if flags & socket.MSG_PEEK else self.queue.popleft()
            return payload[:bufsize], source
        if self.error:
            code, self.error = self.error, 0
            raise oserror(code)
        raise self._would_block("recvfrom")

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self.recvfrom(bufsize, flags)[0]

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        if nbytes == 0 or nbytes > view.nbytes:
            nbytes = view.nbytes
        data, source = self.recvfrom(nbytes, flags)
        view[: len(data)] = data
        return len(data), source

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return self.recvfrom_into(buffer, nbytes, flags)[0]

    def shutdown(self, how: int) -> None:
        self._check_open()
        if self.peer is None:
            raise oserror(errno.ENOTCONN)

    # -- lifecycle ---------------------------------------------------------------

    def _on_close(self) -> None:
        self.queue.clear()

    def crash(self) -> None:
        """The host crashed: queued datagrams are gone."""
        self.queue.clear()

    def ready_mask(self) -> int:
        if self._closed:
            return 0
        mask = EVENT_WRITE
        if self.queue or self.error:
            mask |= EVENT_READ
        return mask
