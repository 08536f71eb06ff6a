"""ChaosBackend: any real backend, with the kernel's rarer answers made common.

``ChaosBackend(inner, seed=0, rates=FaultRates(...))`` is a Backend that does
what *inner* (epoll, poll, selectors, or any other backend whose ``socket()``
returns real ``socket.socket`` objects) does, except that, from one seeded
``random.Random``, it makes system calls fail the way kernels let them fail.
Run your own test suite on a loop built with it
(``sansloop.new_event_loop(backend=ChaosBackend(sansloop.get_backend("epoll"),
seed=s, rates=...))``): code that is correct against the kernel's contract
passes under every seed; code that assumed the kernel is kind does not.

Where the faults are made
    Stream sockets made by ``socket()`` (and the connections they accept) are
    :class:`ChaosSocket` objects, a subclass of ``socket.socket``: the loop's
    transports call ``recv``/``recv_into``/``send``/``sendmsg``/``accept``/
    ``connect`` on them, and those are the syscalls that fail. Pipes fail in
    ``read``/``write``; readiness is perturbed in ``poll``. Datagram sockets,
    name resolution, the clock, the executor and signals pass straight
    through. Sockets made elsewhere (``socket.socketpair()`` in a test, a
    socket handed to ``create_connection(sock=...)``) are untouched unless
    wrapped with :meth:`ChaosBackend.adopt`.

The faults, each the kernel's own (all but ``reset`` only on non-blocking
fds: a blocking call never sees EAGAIN, and Python retries EINTR itself,
PEP 475; a reset reaches blocking sockets too, as a real RST does)
    ``eagain``       recv/send/sendmsg/accept/read/write raise BlockingIOError
                     (EAGAIN) without touching the fd; connect is started and
                     then reported "in progress" (EINPROGRESS), which it may be.
    ``eintr``        the same calls raise InterruptedError (EINTR); an
                     interrupted connect goes on in the background, as on Linux.
    ``short_write``  send/sendmsg/write accept 1..n-1 of n bytes.
    ``short_read``   recv/recv_into/read ask the kernel for 1..n of n bytes.
    ``spurious``     poll reports a registered socket that is not ready, with
                     the events it is registered for; the next recv/send/accept
                     on it raises BlockingIOError (ready, then EAGAIN). Each
                     registered ChaosSocket absent from a poll's real answer is
                     a candidate once per poll. Other fds are not: the write
                     end of a pipe is watched for reading only to learn that
                     the reader has gone (asyncio's design, which sansloop
                     keeps), and Linux never reports it readable otherwise.
    ``reset``        per connection (drawn once, when the socket is made or
                     accepted): ECONNRESET at a byte offset drawn from
                     ``[0, reset_within)``, counted over the bytes received and
                     sent. The call that would cross the offset moves only the
                     bytes before it; the next one raises ConnectionResetError;
                     after that, send raises BrokenPipeError (EPIPE) and recv
                     returns b"" (Linux's order). Once the reset is reported
                     the socket gets SO_LINGER 0, so that closing it sends
                     the peer a real RST.
    ``emfile``       accept raises OSError(EMFILE) and leaves the connection
                     pending in the backlog, as a process out of fds does.

Determinism: every decision is one draw from one ``random.Random(seed)``, taken
in the order the loop makes its calls (the candidates of a poll in ascending
fd order). Given the same sequence of calls, a seed makes the same faults. The
kernel's own timing (how many bytes a loopback recv finds) is not under the
seed, so a run over real sockets replays its faults exactly only as far as
the kernel behaves the same; ``faults`` keeps the record to compare.

The record: ``faults`` is a list of :class:`Fault` (sequence number, kind,
call, fd, detail); ``counts`` counts them by kind; ``resets`` lists the
connections whose reset was reported (fd, local and peer address, offset). ``statistics()`` adds
the counts to the inner backend's.

Not faulted: blocking sockets, datagram sockets, ``sendfile`` (the loop's
fallback path is tested by making it fail outright elsewhere), Unix-socket
file descriptors passing. Resets on Unix stream sockets are the same local
ECONNRESET; the peer sees the close (with unread data: its own ECONNRESET).
"""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .base import EVENT_READ, EVENT_WRITE, Backend

__all__ = ["ChaosBackend", "ChaosSocket", "Fault", "FaultRates", "Reset"]


@dataclass(frozen=True)
class FaultRates:
    """Probabilities of each fault, per call (``reset``: per connection).

    Each is a float in [0, 1]; ``eagain + eintr (+ emfile on accept)`` must
    not exceed 1. ``reset_within`` bounds the byte offset of a reset.
    """

    eagain: float = 0.0
    eintr: float = 0.0
    short_write: float = 0.0
    short_read: float = 0.0
    spurious: float = 0.0
    reset: float = 0.0
    emfile: float = 0.0
    reset_within: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in ("eagain", "eintr", "short_write", "short_read", "spurious", "reset", "emfile"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], not {value!r}")
        if self.eagain + self.eintr + self.emfile > 1.0:
            raise ValueError("eagain + eintr + emfile must not exceed 1")
        if not isinstance(self.reset_within, int) or self.reset_within < 1:
            raise ValueError(f"reset_within must be a positive int, not {self.reset_within!r}")


class Fault(NamedTuple):
    """One injected fault: its sequence number, kind, the call, the fd, a detail."""

    seq: int
    kind: str
    call: str
    fd: int
    detail: Any = None


class Reset(NamedTuple):
    """A connection given ECONNRESET: fd, local and peer addresses, byte offset."""

    fd: int
    sockname: Any
    peername: Any
    offset: int


_LINGER_ZERO = struct.pack("ii", 1, 0)

# A socket's reset progress: not armed, armed (counting), reset pending (the
# next call raises ECONNRESET), reset reported (EPIPE / EOF from now on).
_NO_RESET, _ARMED, _PENDING, _REPORTED = 0, 1, 2, 3


def _connection_reset() -> ConnectionResetError:
    return ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))


def _broken_pipe() -> BrokenPipeError:
    return BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def _would_block() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))


def _interrupted() -> InterruptedError:
    return InterruptedError(errno.EINTR, os.strerror(errno.EINTR))


def _name(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except OSError:
        return None


def _byte_view(data: Any) -> memoryview:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class ChaosSocket(socket.socket):
    """A ``socket.socket`` whose I/O calls consult a :class:`ChaosBackend` first.

    Made by ``ChaosBackend.socket()`` and by ``accept()`` on a ChaosSocket;
    ``ChaosBackend.adopt(sock)`` converts an existing socket. Everything not
    listed in the module docstring behaves as ``socket.socket``.
    """

    __slots__ = ("_chaos", "_reset_state", "_reset_left", "_reset_offset", "_reset_names")

    _chaos: ChaosBackend
    _reset_state: int
    _reset_left: int
    _reset_offset: int
    _reset_names: tuple[Any, Any]

    # -- faults ------------------------------------------------------------

    def _draw(self, call: str, spurious_event: int, emfile: bool = False) -> None:
        """Raise the EAGAIN/EINTR/EMFILE this call is given, if any."""
        chaos = self._chaos
        if self.gettimeout() != 0.0:
            return
        fd = self.fileno()
        if chaos._spurious_marks.get(fd, 0) & spurious_event:
            chaos._spurious_marks[fd] &= ~spurious_event
            chaos._note("spurious_eagain", call, fd)
            raise _would_block()
        rates = chaos.rates
        roll = chaos._random()
        if roll < rates.eagain:
            chaos._note("eagain", call, fd)
            raise _would_block()
        roll -= rates.eagain
        if roll < rates.eintr:
            chaos._note("eintr", call, fd)
            raise _interrupted()
        if emfile and roll - rates.eintr < rates.emfile:
            chaos._note("emfile", call, fd)
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    def _before_transfer(self, call: str) -> None:
        """Raise the reset (or its aftermath) due at this call."""
        state = self._reset_state
        if state == _PENDING:
            self._reset_state = _REPORTED
            self._chaos._reported_reset(self, call)
            raise _connection_reset()
        if state == _REPORTED and call.startswith("send"):
            self._chaos._note("epipe", call, self.fileno())
            raise _broken_pipe()

    def _limit(self, n: int) -> int:
        """The bytes a call may move before the reset offset (n if not armed)."""
        if self._reset_state == _ARMED and n > self._reset_left:
            return self._reset_left
        return n

    def _moved(self, n: int) -> None:
        if self._reset_state == _ARMED:
            self._reset_left -= n
            if self._reset_left <= 0:
                self._arm_now()

    def _arm_now(self) -> None:
        """The offset is reached: the next call reports ECONNRESET."""
        self._reset_state = _PENDING

    def _short(self, n: int, rate: float, kind: str, call: str) -> int:
        """*n*, or at rate *rate* a count in 1..n-1 (non-blocking sockets)."""
        if n > 1 and rate and self.gettimeout() == 0.0:
            chaos = self._chaos
            if chaos._random() < rate:
                k = chaos._rng.randint(1, n - 1)
                chaos._note(kind, call, self.fileno(), (k, n))
                return k
        return n

    # -- receiving -----------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """``socket.recv``, possibly failing or short, as the kernel may."""
        self._before_transfer("recv")
        if self._reset_state == _REPORTED:
            return b""
        self._draw("recv", EVENT_READ)
        n = self._limit(bufsize)
        n = self._short(n, self._chaos.rates.short_read, "short_read", "recv")
        data = super().recv(n, flags)
        self._moved(len(data))
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        """``socket.recv_into``, possibly failing or short, as the kernel may."""
        self._before_transfer("recv_into")
        if self._reset_state == _REPORTED:
            return 0
        self._draw("recv_into", EVENT_READ)
        size = nbytes or _byte_view(buffer).nbytes
        n = self._limit(size)
        n = self._short(n, self._chaos.rates.short_read, "short_read", "recv_into")
        got = super().recv_into(buffer, n, flags)
        self._moved(got)
        return got

    # -- sending -------------------------------------------------------------

    def send(self, data: Any, flags: int = 0, /) -> int:
        """``socket.send``, possibly failing or short, as the kernel may."""
        self._before_transfer("send")
        self._draw("send", EVENT_WRITE)
        view = _byte_view(data)
        size = view.nbytes
        n = self._limit(size)
        n = self._short(n, self._chaos.rates.short_write, "short_write", "send")
        if n < size:
            sent = super().send(view[:n], flags)
        else:
            sent = super().send(data, flags)
        self._moved(sent)
        return sent

    def sendmsg(  # type: ignore[override]
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        """``socket.sendmsg``, possibly failing or short, as the kernel may."""
        self._before_transfer("sendmsg")
        self._draw("sendmsg", EVENT_WRITE)
        views = [_byte_view(b) for b in buffers]
        size = sum(v.nbytes for v in views)
        n = self._limit(size)
        n = self._short(n, self._chaos.rates.short_write, "short_write", "sendmsg")
        if n < size:
            trimmed: list[memoryview] = []
            left = n
            for view in views:
                if left <= 0:
                    break
                trimmed.append(view[:left])
                left -= view.nbytes
            views = trimmed
        if address is None:
            sent = super().sendmsg(views, ancdata, flags)
        else:
            sent = super().sendmsg(views, ancdata, flags, address)
        self._moved(sent)
        return sent

    def _real_close(self, *args: Any, **kwargs: Any) -> None:
        self._chaos._socket_fds.discard(self.fileno())
        super()._real_close(*args, **kwargs)  # type: ignore[misc]

    def detach(self) -> int:
        """``socket.detach``; the fd is no longer faulted."""
        fd = super().detach()
        self._chaos._socket_fds.discard(fd)
        return fd

    # -- connections -----------------------------------------------------------

    def accept(self) -> tuple[socket.socket, Any]:
        """``socket.accept``; the connection is a ChaosSocket of the same backend."""
        self._draw("accept", EVENT_READ, emfile=True)
        conn, address = super().accept()
        chaos = self._chaos
        chaos_conn = chaos._convert(conn)
        if isinstance(chaos_conn, ChaosSocket):
            chaos._maybe_arm_reset(chaos_conn, "accept")
            if chaos_conn._reset_offset >= 0:
                chaos_conn._reset_names = (_name(chaos_conn.getsockname), address)
        return chaos_conn, address

    def connect(self, address: Any, /) -> None:
        """``socket.connect``; a non-blocking one may be reported in progress."""
        if self.gettimeout() != 0.0:
            super().connect(address)
            return
        chaos = self._chaos
        rates = chaos.rates
        if self._reset_offset == -1:
            chaos._maybe_arm_reset(self, "connect")
        roll = chaos._random()
        try:
            super().connect(address)
        finally:  # also when in progress (BlockingIOError propagates)
            if self._reset_offset >= 0:
                self._reset_names = (_name(self.getsockname), address)
        if roll < rates.eagain:
            chaos._note("einprogress", "connect", self.fileno())
            raise BlockingIOError(errno.EINPROGRESS, os.strerror(errno.EINPROGRESS))
        if roll - rates.eagain < rates.eintr:
            chaos._note("eintr", "connect", self.fileno())
            raise _interrupted()


class ChaosBackend(Backend):
    """A fault-injecting wrapper around a real backend (see the module docstring)."""

    def __init__(
        self,
        inner: Backend,
        *,
        seed: int = 0,
        rates: FaultRates | None = None,
        record: bool = True,
    ) -> None:
        if not isinstance(inner, Backend):
            raise TypeError(f"inner must be a Backend, not {type(inner).__name__}")
        self.inner = inner
        self.seed = seed
        self.rates = rates if rates is not None else FaultRates()
        self.name = f"chaos({inner.name})"
        self._rng = random.Random(seed)
        self._random: Callable[[], float] = self._rng.random
        self._record = record
        self._seq = 0
        self.faults: list[Fault] = []
        self.counts: Counter[str] = Counter()
        self.resets: list[Reset] = []
        self._registered: dict[int, int] = {}
        self._spurious_marks: dict[int, int] = {}
        # fds of open ChaosSockets: the candidates for spurious readiness.
        self._socket_fds: set[int] = set()
        # The clock is the inner backend's own (no frame added per reading).
        self.time = inner.time  # type: ignore[method-assign]
        self.clock_resolution = inner.clock_resolution

    def __repr__(self) -> str:
        return f"<ChaosBackend seed={self.seed} inner={self.inner!r}>"

    def _note(self, kind: str, call: str, fd: int, detail: Any = None) -> None:
        self._seq += 1
        self.counts[kind] += 1
        if self._record:
            self.faults.append(Fault(self._seq, kind, call, fd, detail))

    # -- sockets -------------------------------------------------------------

    def _convert(self, sock: socket.socket) -> socket.socket:
        """A ChaosSocket owning *sock*'s fd (*sock* is detached), stream sockets only."""
        if type(sock) is not socket.socket or sock.type != socket.SOCK_STREAM:
            return sock
        timeout = sock.gettimeout()
        chaos_sock = ChaosSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        chaos_sock.settimeout(timeout)
        chaos_sock._chaos = self
        chaos_sock._reset_state = _NO_RESET
        chaos_sock._reset_left = 0
        chaos_sock._reset_offset = -1
        chaos_sock._reset_names = (None, None)
        self._socket_fds.add(chaos_sock.fileno())
        return chaos_sock

    def _maybe_arm_reset(self, sock: ChaosSocket, call: str) -> None:
        """Decide, once per connection, whether and where *sock* is reset."""
        sock._reset_offset = -2  # decided: no reset unless armed below
        if self.rates.reset and self._random() < self.rates.reset:
            offset = self._rng.randrange(self.rates.reset_within)
            sock._reset_state = _ARMED if offset else _PENDING
            sock._reset_left = offset
            sock._reset_offset = offset
            self._note("reset_armed", call, sock.fileno(), offset)

    def _reported_reset(self, sock: ChaosSocket, call: str) -> None:
        """*sock* reports ECONNRESET now: record it and make its close an RST."""
        fd = sock.fileno()
        names = sock._reset_names
        self.resets.append(Reset(fd, names[0], names[1], sock._reset_offset))
        self._note("econnreset", call, fd)
        try:
            # Closing it sends the peer a real RST, as a reset socket does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError:  # pragma: no cover - a socket type without SO_LINGER
            pass

    def adopt(self, sock: socket.socket) -> socket.socket:
        """Return a ChaosSocket that takes over *sock* (which is detached).

        For sockets made outside the backend (``socketpair()``, a socket the
        caller connected itself). Non-stream and non-``socket.socket`` objects
        are returned unchanged.
        """
        return self._convert(sock)

    def socket(
        self,
        family: int = socket.AF_INET,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        """The inner backend's socket, as a ChaosSocket when it is a stream socket."""
        return self._convert(self.inner.socket(family, type, proto))

    def reset_peer_names(self) -> set[Any]:
        """Every address (local and peer) of a connection given a reset."""
        names: set[Any] = set()
        for reset in self.resets:
            names.add(reset.sockname)
            names.add(reset.peername)
        names.discard(None)
        return names

    # -- readiness -------------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        """As the inner backend; the registration is remembered for ``spurious``."""
        self.inner.register(fd, events)
        self._registered[fd] = events

    def modify(self, fd: int, events: int) -> None:
        """As the inner backend."""
        self.inner.modify(fd, events)
        self._registered[fd] = events
        self._spurious_marks.pop(fd, None)

    def unregister(self, fd: int) -> None:
        """As the inner backend."""
        self.inner.unregister(fd)
        self._registered.pop(fd, None)
        self._spurious_marks.pop(fd, None)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """The inner backend's events plus, at rate ``spurious``, some that are not."""
        events = self.inner.poll(timeout)
        marks = self._spurious_marks
        marks.clear()
        rate = self.rates.spurious
        if rate and self._registered:
            reported = {fd for fd, _ in events}
            draw = self._random
            sockets = self._socket_fds
            for fd in sorted(self._registered):
                if fd in sockets and fd not in reported and draw() < rate:
                    mask = self._registered[fd]
                    events.append((fd, mask))
                    marks[fd] = mask
                    self._note("spurious", "poll", fd, mask)
        return events

    def wakeup(self) -> None:
        """As the inner backend (thread-safe)."""
        self.inner.wakeup()

    def close(self) -> None:
        """Close the inner backend; idempotent."""
        self.inner.close()
        self._registered.clear()
        self._spurious_marks.clear()

    # -- pipes -----------------------------------------------------------------

    def _fd_nonblocking(self, fd: int) -> bool:
        try:
            return not os.get_blocking(fd)
        except OSError:
            return False

    def _draw_fd(self, call: str, fd: int, event: int) -> None:
        if self._spurious_marks.get(fd, 0) & event:
            self._spurious_marks[fd] &= ~event
            self._note("spurious_eagain", call, fd)
            raise _would_block()
        rates = self.rates
        roll = self._random()
        if roll < rates.eagain:
            self._note("eagain", call, fd)
            raise _would_block()
        if roll - rates.eagain < rates.eintr:
            self._note("eintr", call, fd)
            raise _interrupted()

    def read(self, fd: int, n: int) -> bytes:
        """The inner read, possibly failing or short, on a non-blocking fd."""
        if n > 0 and self._fd_nonblocking(fd):
            self._draw_fd("read", fd, EVENT_READ)
            if n > 1 and self._random() < self.rates.short_read:
                k = self._rng.randint(1, n - 1)
                self._note("short_read", "read", fd, (k, n))
                n = k
        return self.inner.read(fd, n)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        """The inner write, possibly failing or short, on a non-blocking fd."""
        view = _byte_view(data)
        size = view.nbytes
        if size > 0 and self._fd_nonblocking(fd):
            self._draw_fd("write", fd, EVENT_WRITE)
            if size > 1 and self._random() < self.rates.short_write:
                k = self._rng.randint(1, size - 1)
                self._note("short_write", "write", fd, (k, size))
                return self.inner.write(fd, view[:k])
        return self.inner.write(fd, data)

    def set_blocking(self, fd: int, blocking: bool) -> None:
        """As the inner backend."""
        self.inner.set_blocking(fd, blocking)

    # -- everything else passes through ---------------------------------------

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """As the inner backend."""
        return self.inner.getaddrinfo(host, port, family, type, proto, flags)

    def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """As the inner backend."""
        return self.inner.getnameinfo(sockaddr, flags)

    def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        """As the inner backend."""
        return self.inner.sendfile(out_fd, in_fd, offset, count)

    def default_executor(self) -> Any:
        """As the inner backend."""
        return self.inner.default_executor()

    def shutdown_executor(self, executor: Any, done: Callable[[], object]) -> None:
        """As the inner backend."""
        self.inner.shutdown_executor(executor, done)

    def signal_channel(self) -> Any:
        """As the inner backend."""
        return self.inner.signal_channel()

    def spawn_child(self, args: Any, **kwargs: Any) -> Any:
        """As the inner backend."""
        return self.inner.spawn_child(args, **kwargs)

    def watch_child(self, pid: int, callback: Callable[[int, int | None], object]) -> None:
        """As the inner backend."""
        self.inner.watch_child(pid, callback)

    def statistics(self) -> dict[str, Any]:
        """The inner backend's counts plus ``faults`` (by kind) and ``resets``."""
        stats = dict(self.inner.statistics())
        stats["faults"] = dict(sorted(self.counts.items()))
        stats["resets"] = len(self.resets)
        return stats
