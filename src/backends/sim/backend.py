"""SimBackend: the Backend interface over a simulated world.

Facts about this "mechanism", and the choices they force:

- **Time is virtual.** ``time()`` is the world's clock. ``poll(timeout)`` first
  runs the world events that are due, then, while no registered fd is ready
  and the loop has not been woken, jumps the clock to the next world event
  (a segment arriving, a job finishing, a fault) and runs it -- or, when the
  next one is later than ``now + timeout``, jumps to ``now + timeout`` and
  returns nothing, which is how the loop's timers fire. An
  ``asyncio.sleep(3600)`` is one jump. With ``timeout=None`` and nothing in the
  world's queue, nothing can ever happen: :class:`~.errors.Deadlock`.
- **Readiness is level-triggered and computed**, not stored: each poll asks
  every registered socket for its ``ready_mask()``, in registration order.
  When several fds are ready, the choice source picks the rotation of that
  list (``poll.order``; 0 = registration order) -- the "which ready I/O event
  runs first" schedule that fuzzers steer.
- **A poll that reports fds costs** ``NetConfig.poll_cost`` (1 us) of virtual
  time, so a loop that spins on an always-ready fd (a writer that never
  unregisters) still lets the segments in flight arrive.
- **wakeup()** is a flag: the executor completing a job calls the loop's
  ``call_soon_threadsafe``, which calls it; the poll in progress returns.
- **Only simulated fds exist.** Registering a real fd (>= 0 but not one of
  the world's) is refused with NondeterminismError: nothing here could poll it.
- **One world per backend**, one loop per backend. Hosts are chosen with
  ``on_host(name)`` (a context variable: tasks made inside inherit it).

Randomness: every decision goes through ``self.choices`` (see choices.py);
``SimBackend(seed=7)`` uses ``SeededChoices(7)``; ``choices=`` overrides it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import errno
import random
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .._readiness import check_known, check_new, closed_error
from ..base import Backend
from . import guard
from .choices import ChoiceSource, SeededChoices
from .dns import DnsTable
from .errors import Deadlock, NondeterminismError, SimulationError, TimeLimitExceeded
from .executor import SimExecutor
from .faults import FaultPlan
from .signals import SimSignalChannel
from .sockets import oserror
from .tcp import TcpSocket, connected_pair
from .trace import Trace
from .udp import UdpSocket
from .world import FIRST_FD, Host, NetConfig, World

__all__ = ["SimBackend"]

_SOCK_FLAGS = getattr(socket, "SOCK_NONBLOCK", 0) | getattr(socket, "SOCK_CLOEXEC", 0)
_AF_UNIX, _SOCK_STREAM = socket.AF_UNIX, socket.SOCK_STREAM
_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)


class SimBackend(Backend):
    """A deterministic simulated world behind the Backend interface.

    ``SimBackend(seed=0, *, choices=None, hosts=None, dns=None, faults=None,
    guard=True, trace=True, **net)``:

    - *seed*: seeds the default choice source; *choices*: any ChoiceSource
      (hypothesis-driven, replayed, ...) used instead;
    - *hosts*: ``{"name": ["10.0.0.1", ...]}`` (or a single address string)
      added next to ``localhost``;
    - *dns*: extra ``{"name": [addresses]}`` entries;
    - *faults*: a :class:`FaultPlan`, or a callable ``(choices, hosts) ->
      FaultPlan`` drawn from this world's choice source once the hosts exist
      (``FaultPlan.random`` fits: the seed then decides the faults, and a
      hypothesis-driven source shrinks them); ``self.faults`` is the plan;
    - *guard*: report real clock/socket/thread use inside the run;
    - *trace*: record the trace (its digest is then meaningful);
    - *time_limit*: virtual seconds after which ``poll`` raises
      TimeLimitExceeded (None: no limit);
    - *net*: fields of :class:`NetConfig` (latency=(lo, hi), tcp_reset_one_in=...).
    """

    name = "sim"
    clock_resolution = 1e-9

    def __init__(
        self,
        seed: int | str | bytes = 0,
        *,
        choices: ChoiceSource | None = None,
        hosts: Mapping[str, Sequence[str] | str] | None = None,
        dns: Mapping[str, Sequence[str] | str] | None = None,
        faults: FaultPlan | Callable[[ChoiceSource, list[str]], FaultPlan] | None = None,
        guard: bool = True,
        trace: bool = True,
        time_limit: float | None = None,
        **net: Any,
    ) -> None:
        self.seed = seed
        self.choices: ChoiceSource = choices if choices is not None else SeededChoices(seed)
        self.config = NetConfig(**net)
        self.trace = Trace(enabled=trace)
        self.world = World(self.choices, self.trace, self.config)
        self.dns = DnsTable()
        self.world.dns = self.dns  # type: ignore[attr-defined]
        for name, addrs in (hosts or {}).items():
            self.add_host(name, *([addrs] if isinstance(addrs, str) else addrs))
        for name, addrs in (dns or {}).items():
            self.dns.add(name, *([addrs] if isinstance(addrs, str) else addrs))
        self.world.crash_listeners.append(self._crash_sockets)
        if faults is not None and not isinstance(faults, FaultPlan):
            faults = faults(self.choices, self.hosts)
            if not isinstance(faults, FaultPlan):
                raise TypeError(f"the faults callable returned {faults!r}, not a FaultPlan")
        self.faults: FaultPlan | None = faults
        if faults is not None:
            self.world.record("plan", repr(faults.actions))
            faults.schedule(self.world, self.reset_connections)
        self._interest: dict[int, int] = {}
        self._woken = False
        self.closed = False
        self.guarded = guard
        self.violations: list[str] = []
        self._host_var: contextvars.ContextVar[str] = contextvars.ContextVar(
            f"sansloop_sim_host_{id(self)}", default="localhost"
        )
        self._signals: SimSignalChannel | None = None
        self.polls = 0
        self.time_limit = time_limit
        if guard:
            from . import guard as _guard

            _guard.acquire()

    # -- the world -------------------------------------------------------------

    def add_host(self, name: str, *addresses: str) -> Host:
        """Add a host with *addresses*; its name resolves to them."""
        host = self.world.add_host(name, list(addresses))
        if addresses:
            self.dns.add(name, *addresses)
        return host

    @property
    def hosts(self) -> list[str]:
        """Names of the simulated hosts, in the order they were added."""
        return list(self.world.hosts)

    @contextlib.contextmanager
    def on_host(self, name: str) -> Iterator[Host]:
        """Sockets made inside (and in tasks created inside) belong to *name*."""
        host = self.world.host(name)
        token = self._host_var.set(name)
        try:
            yield host
        finally:
            self._host_var.reset(token)

    def current_host(self) -> Host:
        """The host sockets are made on now."""
        return self.world.host(self._host_var.get())

    def wall_time(self, host: str | None = None) -> float:
        """*host*'s (default: the current host's) skewed wall clock, epoch seconds."""
        h = self.world.host(host) if host is not None else self.current_host()
        return h.clock.wall(self.world.now)

    def random(self) -> random.Random:
        """A ``random.Random`` seeded from the choice source (label ``random.seed``).

        The deterministic stand-in for the ``random`` module inside a simulated
        program: same seed, same numbers; another seed, other numbers.
        """
        return random.Random(self.choices.choose(1 << 32, "random.seed"))

    def partition(self, a: str, b: str, *, oneway: bool = False) -> None:
        """Cut a<->b now (a->b only when *oneway*)."""
        self.world.partition(a, b, oneway=oneway)

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Restore a<->b (every link when no host is named)."""
        self.world.heal(a, b)

    def crash(self, host: str) -> None:
        """Crash *host* now."""
        self.world.crash(host)

    def restart(self, host: str) -> None:
        """Bring *host* back now."""
        self.world.restart(host)

    def reset_connections(self, a: str, b: str | None = None) -> int:
        """RST every live TCP connection between *a* and *b* (any peer if None)."""
        count = 0
        for sock in list(self.world.fds.values()):
            if not isinstance(sock, TcpSocket) or sock._closed or sock.state != "connected":
                continue
            out = sock.out
            if out is None or out.dead or sock.host.name != a:
                continue
            if b is not None and out.dst.host.name != b:
                continue
            out.reset()
            count += 1
        return count

    def send_signal(self, signum: int, *, at: float | None = None) -> None:
        """Deliver *signum* to the loop's handler at virtual time *at* (default: now)."""
        world = self.world
        world.at(world.now if at is None else at, self._deliver_signal, signum)

    def _deliver_signal(self, signum: int) -> None:
        if self._signals is not None:
            self._signals.deliver(signum)
        else:
            self.world.record("signal", int(signum), False)

    def _crash_sockets(self, host: Host) -> None:
        for sock in list(self.world.fds.values()):
            if getattr(sock, "host", None) is host and hasattr(sock, "crash"):
                sock.crash()

    def note_violation(self, what: str) -> None:
        """Record a determinism violation (the guard calls this)."""
        self.violations.append(what)
        self.world.record("nondeterminism", what)

    # -- readiness -------------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        check_new(self, self.closed, self._interest, fd, events, -1)
        if fd not in self.world.fds:
            if fd >= FIRST_FD:
                raise oserror(errno.EBADF)
            raise self._real_fd(fd)
        self._interest[fd] = events

    def _real_fd(self, fd: int) -> Exception:
        what = f"watching real fd {fd}"
        if guard.active_backend() is self:
            return guard.violation(self, what)
        return NondeterminismError(f"{what}: a simulated backend polls only simulated fds")

    def modify(self, fd: int, events: int) -> None:
        check_known(self, self.closed, self._interest, fd, events)
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        check_known(self, self.closed, self._interest, fd)
        del self._interest[fd]

    def _ready(self) -> list[tuple[int, int]]:
        fds = self.world.fds
        ready = []
        for fd, events in self._interest.items():
            sock = fds.get(fd)
            if sock is None:
                continue  # closed while registered: the kernel forgets it
            mask = sock.ready_mask() & events
            if mask:
                ready.append((fd, mask))
        if len(ready) > 1:
            k = self.choices.choose(len(ready), "poll.order")
            if k:
                ready = ready[k:] + ready[:k]
        return ready

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self.closed:
            raise closed_error(self)
        world = self.world
        clock = world.clock
        self.polls += 1
        deadline = None if timeout is None else clock.now + max(timeout, 0.0)
        while True:
            world.run_due()
            ready = self._ready() if self._interest else []
            if ready or self._woken:
                self._woken = False
                break
            if deadline is not None and deadline <= clock.now:
                break
            nxt = world.next_time()
            if nxt is None:
                if deadline is None:
                    raise Deadlock(
                        f"simulated run deadlocked at t={clock.now!r}: nothing is ready, no "
                        "timer is pending and nothing is in flight, yet the loop waits forever"
                    )
                self._advance(deadline)
                break
            if deadline is not None and nxt > deadline:
                self._advance(deadline)
                break
            self._advance(nxt)
        if ready:
            world.record("ready", tuple(ready))
            clock.now += self.config.poll_cost
        return ready

    def _advance(self, when: float) -> None:
        limit = self.time_limit
        if limit is not None and when > limit:
            self.world.clock.advance_to(limit)
            raise TimeLimitExceeded(
                f"the simulated run reached its time limit of {limit!r} virtual seconds"
            )
        self.world.clock.advance_to(when)

    def wakeup(self) -> None:
        self._woken = True

    def time(self) -> float:
        """Virtual time of the world."""
        return self.world.clock.now

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._interest.clear()
        if self._signals is not None:
            self._signals.close()
        if self.guarded:
            guard.release()

    # -- network and names -------------------------------------------------------

    def socket(
        self,
        family: int = socket.AF_INET,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        """A simulated socket on the current host (see ``on_host``)."""
        if self.closed:
            raise closed_error(self)
        if family not in _FAMILIES:
            raise oserror(errno.EAFNOSUPPORT)
        kind = type & ~_SOCK_FLAGS
        host = self.current_host()
        if kind == socket.SOCK_STREAM:
            return TcpSocket.make(self.world, host, family, type, proto)  # type: ignore[no-any-return]
        if kind == socket.SOCK_DGRAM:
            return UdpSocket.make(self.world, host, family, type, proto)  # type: ignore[no-any-return]
        raise oserror(errno.ESOCKTNOSUPPORT)

    def socketpair(
        self, family: int = _AF_UNIX, type: int = _SOCK_STREAM, proto: int = 0
    ) -> tuple[Any, Any]:
        """Two connected simulated stream sockets on the current host."""
        if self.closed:
            raise closed_error(self)
        if family not in _FAMILIES:
            raise oserror(errno.EAFNOSUPPORT)
        if type & ~_SOCK_FLAGS != socket.SOCK_STREAM:
            raise oserror(errno.EOPNOTSUPP)
        return connected_pair(self.world, self.current_host(), family)

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Resolve from the DNS table (see dns.py)."""
        self.world.record("getaddrinfo", str(host), str(port))
        return self.dns.getaddrinfo(host, port, family, type, proto, flags)

    def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """Reverse-resolve from the DNS table."""
        return self.dns.getnameinfo(sockaddr, flags)

    # -- files, pipes ------------------------------------------------------------

    def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        """Not simulated: the loop falls back to reading and sending."""
        raise NotImplementedError("sendfile is not simulated; the loop reads and sends")

    def _sim_socket(self, fd: int) -> Any:
        sock = self.world.fds.get(fd)
        if sock is None or not hasattr(sock, "recv"):
            if fd >= FIRST_FD:
                raise oserror(errno.EBADF)
            raise self._real_fd(fd)
        return sock

    def read(self, fd: int, n: int) -> bytes:
        """recv() on a simulated socket fd; real fds are refused."""
        return self._sim_socket(fd).recv(n)  # type: ignore[no-any-return]

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        """send() on a simulated socket fd; real fds are refused."""
        return self._sim_socket(fd).send(data)  # type: ignore[no-any-return]

    def set_blocking(self, fd: int, blocking: bool) -> None:
        """setblocking() on a simulated socket fd; real fds are refused."""
        self._sim_socket(fd).setblocking(blocking)

    # -- child processes -----------------------------------------------------------

    def spawn_child(self, args: Any, **kwargs: Any) -> Any:
        """Refused: a real child process would run outside the simulation."""
        raise self._not_simulated(f"spawning a child process {args!r}")

    def watch_child(self, pid: int, callback: Callable[[int, int | None], object]) -> None:
        """Refused: there are no simulated child processes."""
        raise self._not_simulated(f"watching child process {pid}")

    def _not_simulated(self, what: str) -> Exception:
        if guard.active_backend() is self:
            return guard.violation(self, what)
        return NondeterminismError(f"{what}: subprocesses are not simulated")

    # -- executor and signals ---------------------------------------------------

    def default_executor(self) -> concurrent.futures.Executor:
        """A :class:`SimExecutor`: jobs run at simulated times, no threads."""
        return SimExecutor(self.world)

    def shutdown_executor(
        self, executor: concurrent.futures.Executor, done: Callable[[], object]
    ) -> None:
        """Call *done* once the simulated executor has run its pending jobs."""
        if not isinstance(executor, SimExecutor):
            raise SimulationError(
                f"{executor!r} is not a simulated executor: its threads would run outside "
                "the simulation"
            )
        executor.shutdown(wait=False)
        executor.when_idle(done)

    def signal_channel(self) -> Any:
        """A :class:`SimSignalChannel`; signals come from ``send_signal``."""
        if self._signals is None or self._signals.closed:
            self._signals = SimSignalChannel(self.world, self.wakeup)
        return self._signals

    # -- introspection ---------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """Counts: registered fds, open simulated fds, queued events, time, polls."""
        return {
            "registered_fds": len(self._interest),
            "open_fds": len(self.world.fds),
            "queued_events": self.world.pending(),
            "virtual_time": self.world.now,
            "polls": self.polls,
            "trace_events": len(self.trace),
            "violations": len(self.violations),
            "dns_lookups": self.dns.lookups,
        }

    def __repr__(self) -> str:
        return f"<SimBackend seed={self.seed!r} t={self.world.now!r} hosts={self.hosts}>"
