"""Simulated stream sockets (TCP over AF_INET/AF_INET6, and AF_UNIX streams).

A connection is two :class:`Pipe` objects, one per direction. A pipe is a FIFO
of segments (DATA, FIN, RST) each stamped with its delivery time; a segment is
never delivered before the one ahead of it, so bytes keep their order whatever
latencies are drawn. What the choice source decides (0 = the ordinary outcome):

- ``tcp.latency``         each segment's one-way latency within the link's range;
- ``tcp.segment``/``.at`` whether a send is cut in two, and where;
- ``tcp.send.short``/``.at`` whether send() accepts only a prefix (off by default);
- ``tcp.reset``/``.dir``/``.offset`` whether a new connection is reset after N
  bytes of one direction (RST at an offset; off by default).

Lifecycle, as on Linux:
- connect() raises BlockingIOError(EINPROGRESS); a SYN travels the link. No
  listener: an RST comes back and SO_ERROR is ECONNREFUSED. Accept queue full
  (more than ``backlog`` unaccepted), a partition or a crashed host: the SYN is
  lost and retried after 1, 2, 4, ... 64 s; then ETIMEDOUT (127 s in all).
  The server side joins the accept queue when the SYN arrives; the client is
  connected (writable, SO_ERROR 0) when the SYN-ACK arrives.
- AF_UNIX connect() completes at once (ENOENT when no socket is bound at the
  path, ECONNREFUSED when it does not listen), and data is in the peer's
  buffer when send() returns, as in the kernel (no latency, no segmentation
  visible to the reader, no partition or reset at an offset).
- send() takes at most the window (``NetConfig.tcp_window`` minus what is in
  flight or unread at the peer), else BlockingIOError.
- shutdown(SHUT_WR) sends FIN: the peer's recv() returns b"" after the data.
- close() sends FIN, or RST when unread data is left (Linux does). A segment
  reaching a closed socket or one of a crashed host's old incarnation is
  answered with RST; the receiver of an RST gets ECONNRESET once (from
  recv/send), then recv() returns b"" and send() EPIPE.
- A partition stalls a pipe (TCP retransmits); the heal resumes it in order.
  A crashed host drops what reaches it; its own sockets report ECONNABORTED.
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

__all__ = ["Pipe", "TcpSocket", "connected_pair"]

DATA, FIN, RST = 0, 1, 2
_KIND_NAMES = ("data", "fin", "rst")
#: Seconds before each SYN retransmission; ETIMEDOUT after the last.
SYN_RETRIES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Retransmission delay after a partition heals.
RESUME_DELAY = 0.2
SOMAXCONN = 4096


class Pipe:
    """One direction of a connection: segments in flight from *src* to *dst*."""

    __slots__ = (
        "world", "src", "dst", "reverse", "queue", "last_at", "scheduled",
        "in_flight", "sent", "reset_at", "dead", "stalled", "fin_sent",
    )  # fmt: skip

    def __init__(self, world: World, src: TcpSocket, dst: TcpSocket) -> None:
        self.world = world
        self.src = src
        self.dst = dst
        self.reverse: Pipe | None = None
        self.queue: deque[tuple[float, int, bytes]] = deque()
        self.last_at = 0.0
        self.scheduled = False
        self.in_flight = 0
        self.sent = 0
        #: reset the connection once this many bytes have been sent (None: never)
        self.reset_at: int | None = None
        self.dead = False
        self.stalled = False
        self.fin_sent = False

    def push(self, kind: int, payload: bytes = b"", *, force: bool = False) -> None:
        """Put one segment on the wire with a drawn latency, after the ones ahead.

        A dead pipe (reset, or its sender's host crashed) carries nothing more,
        except a *force*d RST: the answer of a host that lost the connection.
        """
        if self.dead and not force:
            return
        world = self.world
        if self.src.sim_family == socket.AF_UNIX:
            # the kernel copies into the peer's buffer during send(): no latency
            world.record(
                "seg", self.src.fd, self.dst.fd, _KIND_NAMES[kind], len(payload), crc32(payload)
            )
            if kind == FIN:
                self.fin_sent = True
            self.dst.deliver(kind, payload, self)
            return
        at = world.now + world.link_latency(self.src.host, self.dst.host, "tcp.latency")
        if at < self.last_at:
            at = self.last_at
        self.last_at = at
        self.queue.append((at, kind, payload))
        if kind == DATA:
            self.in_flight += len(payload)
        elif kind == FIN:
            self.fin_sent = True
        world.record(
            "seg", self.src.fd, self.dst.fd, _KIND_NAMES[kind], len(payload), crc32(payload)
        )
        if not self.scheduled and not self.stalled:
            self.scheduled = True
            world.at(at, self._pump)

    def send_data(self, chunk: bytes) -> None:
        """Queue *chunk*, cut at the MSS and maybe at a drawn byte; reset if due."""
        if self.reset_at is not None and self.sent + len(chunk) >= self.reset_at:
            keep = self.reset_at - self.sent
            if keep > 0:
                self._segment(chunk[:keep])
            self.sent += max(keep, 0)
            self.reset()
            return
        self.sent += len(chunk)
        self._segment(chunk)

    def _segment(self, chunk: bytes) -> None:
        world = self.world
        config = world.config
        mss = config.tcp_mss
        for start in range(0, len(chunk), mss):
            piece = chunk[start : start + mss]
            if len(piece) > 1 and chance(world.choices, config.tcp_segment_one_in, "tcp.segment"):
                cut = world.choices.choose(len(piece) - 1, "tcp.segment.at") + 1
                self.push(DATA, piece[:cut])
                self.push(DATA, piece[cut:])
            else:
                self.push(DATA, piece)

    def reset(self) -> None:
        """RST both ways (after what is already in flight); the connection is dead."""
        self.world.record("reset", self.src.fd, self.dst.fd)
        self.push(RST)
        self.dead = True
        reverse = self.reverse
        if reverse is not None and not reverse.dead:
            reverse.push(RST)
            reverse.dead = True

    def _pump(self) -> None:
        self.scheduled = False
        world = self.world
        queue = self.queue
        now = world.now
        while queue and queue[0][0] <= now:
            if world.is_blocked(self.src.host, self.dst.host):
                self.stalled = True
                world.stalled.append(self)
                world.record("stall", self.src.fd, self.dst.fd)
                return
            _, kind, payload = queue.popleft()
            if kind == DATA:
                self.in_flight -= len(payload)
            self.dst.deliver(kind, payload, self)
        if queue:
            self.scheduled = True
            world.at(queue[0][0], self._pump)

    def resume(self) -> None:
        """The partition healed: retransmit what was held, in order."""
        self.stalled = False
        if self.queue and not self.scheduled:
            self.scheduled = True
            world = self.world
            at = world.now + RESUME_DELAY
            # every held segment is due by then; keep later ones after it
            self.last_at = max(self.last_at, at)
            world.at(at, self._pump)


class TcpSocket(SimSocket):
    """A simulated SOCK_STREAM socket; see the module docstring."""

    def __init__(self, world: World, host: Host, family: int, type: int, proto: int) -> None:
        if family != socket.AF_UNIX and proto == 0:
            proto = socket.IPPROTO_TCP
        super().__init__(world, host, family, type, proto)
        self.state = "new"  # new listening connecting connected failed closed
        self.rbuf = bytearray()
        self.reof = False
        self.rd_shut = False
        self.wr_shut = False
        #: error reported once by recv/send (ECONNRESET, ECONNABORTED)
        self.error = 0
        #: an error was reported: recv gives b"", send EPIPE from now on
        self.broken = False
        self.so_error = 0
        self.out: Pipe | None = None
        self.backlog = 0
        self.accept_q: deque[TcpSocket] = deque()
        self.syn_attempt = 0
        self.target: tuple[Host | None, str, int] | None = None

    # -- listening and accepting -----------------------------------------------

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.state not in ("new", "listening"):
            raise oserror(errno.EINVAL)
        if self.local is None:
            if self.sim_family == socket.AF_UNIX:
                raise oserror(errno.EINVAL)
            self._autobind("0.0.0.0" if self.sim_family == socket.AF_INET else "::")
        self.backlog = max(0, min(int(backlog), SOMAXCONN))
        self.state = "listening"
        self.world.record("listen", self.fd, self.backlog)

    def accept(self) -> tuple[socket.socket, Any]:
        self._check_open()
        if self.state != "listening":
            raise oserror(errno.EINVAL)
        if not self.accept_q:
            raise self._would_block("accept")
        conn = self.accept_q.popleft()
        conn.sim_timeout = None
        self.world.record("accept", self.fd, conn.fd)
        return conn, conn.peer

    def _accept_connection(self, client: TcpSocket, ip: str, port: int) -> TcpSocket:
        """Make the server side of a new connection and queue it for accept()."""
        world = self.world
        conn = TcpSocket.make(world, self.host, self.sim_family, socket.SOCK_STREAM, self.sim_proto)
        conn.local = self.local if self.sim_family == socket.AF_UNIX else conn._sockaddr(ip, port)
        conn.peer = client.local if client.local is not None else ""
        conn.state = "connected"
        up = Pipe(world, client, conn)
        down = Pipe(world, conn, client)
        up.reverse, down.reverse = down, up
        conn.out = down
        client.out = up  # used once the client is connected
        config = world.config
        if chance(world.choices, config.tcp_reset_one_in, "tcp.reset"):
            pipe = (up, down)[world.choices.choose(2, "tcp.reset.dir")]
            pipe.reset_at = world.choices.choose(
                config.tcp_reset_max_offset + 1, "tcp.reset.offset"
            )
            world.record("reset.planned", pipe.src.fd, pipe.dst.fd, pipe.reset_at)
        self.accept_q.append(conn)
        return conn  # type: ignore[no-any-return]

    # -- connecting ------------------------------------------------------------

    def connect(self, address: Any) -> None:
        self._check_open()
        if self.state == "connected":
            raise oserror(errno.EISCONN)
        if self.state == "connecting":
            raise self._would_block("connect", errno.EALREADY)
        if self.state == "listening":
            raise oserror(errno.EINVAL)
        parsed = self._parse(address)
        if self.sim_family == socket.AF_UNIX:
            self._connect_unix(parsed)
            return
        ip, port = parsed
        self._autobind(ip)
        self.peer = self._sockaddr(ip, port)
        self.state = "connecting"
        self.so_error = 0
        self.target = (self.world.route(self.host, ip), ip, port)
        self.world.record("connect", self.fd, ip, port)
        self._send_syn(0)
        raise self._would_block("connect", errno.EINPROGRESS)

    def connect_ex(self, address: Any) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or 0
        return 0

    def _connect_unix(self, path: Any) -> None:
        listener = self.host.unix.get(("stream", path))
        if listener is None:
            raise oserror(errno.ENOENT)
        if not isinstance(listener, TcpSocket) or listener.state != "listening":
            raise oserror(errno.ECONNREFUSED)
        if len(listener.accept_q) > listener.backlog:
            raise self._would_block("connect")
        self.peer = path
        listener._accept_connection(self, "", 0)
        self.state = "connected"
        self.world.record("connect.unix", self.fd, str(path))

    def _send_syn(self, attempt: int) -> None:
        assert self.target is not None
        world = self.world
        self.syn_attempt = attempt
        dst = self.target[0]
        if dst is not None:
            lat = world.link_latency(self.host, dst, "tcp.latency")
            world.at(world.now + lat, self._syn_arrives, attempt)
        world.at(world.now + SYN_RETRIES[attempt], self._syn_timeout, attempt)

    def _syn_timeout(self, attempt: int) -> None:
        if self.state != "connecting" or self.syn_attempt != attempt:
            return
        if attempt + 1 < len(SYN_RETRIES):
            self.world.record("syn.retry", self.fd, attempt + 1)
            self._send_syn(attempt + 1)
        else:
            self._connect_failed(errno.ETIMEDOUT)

    def _syn_arrives(self, attempt: int) -> None:
        if self.state != "connecting" or self.syn_attempt != attempt or self._closed:
            return
        assert self.target is not None
        world = self.world
        dst, ip, port = self.target
        assert dst is not None
        me = self.host
        if not dst.up or not me.up or world.is_blocked(me, dst) or world.is_blocked(dst, me):
            world.record("syn.lost", self.fd)
            return
        listener = world.lookup(dst, "tcp", ip, port)
        if listener is None or listener.state != "listening":
            lat = world.link_latency(dst, me, "tcp.latency")
            world.at(world.now + lat, self._refused, attempt)
            return
        if len(listener.accept_q) > listener.backlog:
            world.record("syn.backlog", self.fd, listener.fd)
            return
        conn = listener._accept_connection(self, ip, port)
        world.record("syn.accepted", self.fd, listener.fd, conn.fd)
        lat = world.link_latency(dst, me, "tcp.latency")
        world.at(world.now + lat, self._established, attempt, conn)

    def _refused(self, attempt: int) -> None:
        if self.state == "connecting" and self.syn_attempt == attempt:
            self._connect_failed(errno.ECONNREFUSED)

    def _established(self, attempt: int, conn: TcpSocket) -> None:
        if self.state != "connecting" or self.syn_attempt != attempt:
            if conn.out is not None:
                conn.out.reverse = None
                conn.deliver(RST, b"", None)
            return
        self.state = "connected"
        self.world.record("established", self.fd, conn.fd)

    def _connect_failed(self, code: int) -> None:
        self.state = "failed"
        self.so_error = code
        self.world.record("connect.failed", self.fd, errno.errorcode.get(code, str(code)))

    def _take_error(self) -> int:
        code, self.so_error = self.so_error, 0
        return code

    # -- data ------------------------------------------------------------------

    def _send_check(self) -> Pipe:
        self._check_open()
        if self.error:
            code, self.error = self.error, 0
            self.broken = True
            raise oserror(code)
        if self.state == "connecting":
            raise self._would_block("send")
        if self.state != "connected" or self.wr_shut or self.broken or self.out is None:
            raise oserror(errno.EPIPE)
        return self.out

    def _window(self, out: Pipe) -> int:
        peer = out.dst
        unread = 0 if peer._closed else len(peer.rbuf)
        return self.world.config.tcp_window - out.in_flight - unread

    def send(self, data: Any, flags: int = 0) -> int:
        out = self._send_check()
        view = memoryview(data).cast("B")
        size = view.nbytes
        if size == 0:
            return 0
        free = self._window(out)
        if free <= 0:
            raise self._would_block("send")
        take = min(size, free)
        world = self.world
        if take > 1 and chance(
            world.choices, world.config.tcp_short_write_one_in, "tcp.send.short"
        ):
            take = world.choices.choose(take - 1, "tcp.send.short.at") + 1
        out.send_data(bytes(view[:take]))
        return take

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view.nbytes:
            sent = self.send(view)
            view = view[sent:]

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        if ancdata:
            raise OSError(errno.EOPNOTSUPP, "ancillary data is not simulated")
        return self.send(b"".join(bytes(memoryview(b).cast("B")) for b in buffers), flags)

    def sendto(self, data: Any, *args: Any) -> int:
        return self.send(data)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._check_open()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        rbuf = self.rbuf
        if rbuf and not self.rd_shut:
            if bufsize == 0:
                return b""
            data = bytes(rbuf[:bufsize])
            if not flags & socket.MSG_PEEK:
                del rbuf[:bufsize]
            return data
        if self.error:
            code, self.error = self.error, 0
            self.broken = True
            raise oserror(code)
        if self.reof or self.rd_shut or self.broken or bufsize == 0:
            return b""
        if self.state in ("connecting", "connected"):
            raise self._would_block("recv")
        raise oserror(errno.ENOTCONN)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes == 0 or nbytes > view.nbytes:
            nbytes = view.nbytes
        data = self.recv(nbytes, flags)
        view[: len(data)] = data
        return len(data)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return self.recv(bufsize, flags), None

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        return self.recv_into(buffer, nbytes, flags), None

    def deliver(self, kind: int, payload: bytes, pipe: Pipe | None) -> None:
        """A segment arrives (called by the pipe at its delivery time)."""
        world = self.world
        host = self.host
        if not host.up:
            world.record("drop.down", self.fd, _KIND_NAMES[kind], len(payload))
            return
        if self._closed or self.incarnation != host.incarnation:
            if kind != RST and pipe is not None and pipe.reverse is not None:
                pipe.reverse.push(RST, force=True)
                pipe.reverse.dead = True
                pipe.dead = True
            return
        world.record("dlv", self.fd, _KIND_NAMES[kind], len(payload))
        if kind == DATA:
            self.rbuf += payload
        elif kind == FIN:
            self.reof = True
        else:
            if not self.broken:
                self.error = errno.ECONNRESET
            if self.out is not None:
                self.out.dead = True

    # -- shutdown and close ----------------------------------------------------

    def shutdown(self, how: int) -> None:
        self._check_open()
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise oserror(errno.EINVAL)
        if self.state != "connected":
            raise oserror(errno.ENOTCONN)
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self.rd_shut = True
        if how in (socket.SHUT_WR, socket.SHUT_RDWR) and not self.wr_shut:
            self.wr_shut = True
            if self.out is not None and not self.out.fin_sent:
                self.out.push(FIN)
        self.world.record("shutdown", self.fd, how)

    def _on_close(self) -> None:
        state = self.state
        self.state = "closed"
        if state == "listening":
            pending, self.accept_q = self.accept_q, deque()
            for conn in pending:  # never accepted: their clients get RST
                if conn.out is not None:
                    conn.out.push(RST)
                    conn.out.dead = True
                conn.broken = True
                conn.close()
        elif state == "connected" and self.out is not None and not self.broken:
            out = self.out
            if self.rbuf or self.error:
                out.push(RST)
                out.dead = True
            elif not out.fin_sent:
                out.push(FIN)

    def crash(self) -> None:
        """The host crashed: this socket reports ECONNABORTED, sends nothing more."""
        if self._closed:
            return
        if self.state == "connecting":
            self._connect_failed(errno.ECONNABORTED)
        elif self.state == "connected":
            self.error = errno.ECONNABORTED
            if self.out is not None:
                self.out.dead = True
        elif self.state == "listening":
            self.accept_q.clear()

    # -- readiness -------------------------------------------------------------

    def ready_mask(self) -> int:
        state = self.state
        if state == "connected":
            mask = 0
            if self.rbuf or self.reof or self.error or self.rd_shut or self.broken:
                mask = EVENT_READ
            if (
                self.error
                or self.wr_shut
                or self.broken
                or self.out is None
                or self._window(self.out) > 0
            ):
                mask |= EVENT_WRITE
            return mask
        if state == "listening":
            return EVENT_READ if self.accept_q else 0
        if state == "failed":
            return EVENT_READ | EVENT_WRITE
        return 0


def connected_pair(world: World, host: Host, family: int) -> tuple[TcpSocket, TcpSocket]:
    """Two connected stream sockets on *host* (``socket.socketpair``'s answer)."""
    a: TcpSocket = TcpSocket.make(world, host, family, socket.SOCK_STREAM, 0)
    b: TcpSocket = TcpSocket.make(world, host, family, socket.SOCK_STREAM, 0)
    if family == socket.AF_UNIX:
        a.local = a.peer = b.local = b.peer = ""
    else:
        a._autobind("::1" if family == socket.AF_INET6 else "127.0.0.1")
        b._autobind("::1" if family == socket.AF_INET6 else "127.0.0.1")
        a.peer, b.peer = b.local, a.local
    ab, ba = Pipe(world, a, b), Pipe(world, b, a)
    ab.reverse, ba.reverse = ba, ab
    a.out, b.out = ab, ba
    a.state = b.state = "connected"
    world.record("socketpair", a.fd, b.fd)
    return a, b
