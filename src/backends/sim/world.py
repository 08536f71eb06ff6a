"""The simulated world: its event queue, hosts, addresses, ports and links.

Everything that happens "on the network" or "in the executor" is an event in
one queue ordered by ``(time, sequence number)``; the sequence number makes two
events at the same instant run in the order they were scheduled, so the queue
never depends on hash order or object identity. The backend's ``poll`` runs the
due events and moves the clock.

Hosts
    A host has a name, addresses, a clock (skew), an ``up`` flag and its own
    port tables. The default world has one host, ``localhost``, with 127.0.0.1
    and ::1. ``127.0.0.0/8`` and ``::1`` are *host-relative*: they always
    mean the sending host, as on a real machine. A host's name resolves to its
    addresses (see dns.py). Which host a socket belongs to is the host current
    when it is made (``SimBackend.on_host``; a context variable, so tasks
    created inside inherit it).

Links
    Every ordered pair of hosts has a link with a latency range (seconds);
    ``blocked`` holds the directed pairs that are partitioned. Same-host traffic
    uses the host's own link ``(h, h)``.

Configuration (:class:`NetConfig`) says how often the random faults happen;
every decision is drawn from the world's choice source (0 = no fault).
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .choices import ChoiceSource, pick_range
from .clock import HostClock, VirtualClock
from .trace import Trace

__all__ = ["FIRST_FD", "Host", "NetConfig", "World"]

#: The first simulated file descriptor number.
FIRST_FD = 1 << 20


@dataclass
class NetConfig:
    """Knobs of the simulated network. ``*_one_in`` = 0 disables that fault.

    Defaults give an ordinary, slightly jittery loopback network: latency
    between 50 us and 2 ms, TCP writes segmented half the time, no loss and no
    resets. ``sansloop.sim`` documents each field.
    """

    #: one-way latency range (seconds) of every link not given its own
    latency: tuple[float, float] = (0.00005, 0.002)
    #: a send() is cut into two segments at a random byte, one time in N
    tcp_segment_one_in: int = 2
    #: a send() accepts only a prefix of what it was given, one time in N
    tcp_short_write_one_in: int = 0
    #: a new connection is reset after a random number of bytes, one time in N
    tcp_reset_one_in: int = 0
    #: the reset happens within the first this-many bytes of one direction
    tcp_reset_max_offset: int = 4096
    #: bytes a connection may have sent but not yet read by the peer
    tcp_window: int = 256 * 1024
    #: largest segment (bytes); larger sends are cut deterministically
    tcp_mss: int = 65536
    #: UDP datagram lost / duplicated one time in N
    udp_loss_one_in: int = 0
    udp_dup_one_in: int = 0
    #: datagrams a UDP socket queues before dropping
    udp_queue: int = 512
    #: simulated duration range (seconds) of an executor job
    executor_duration: tuple[float, float] = (0.0, 0.001)
    #: how many choices a latency range is split into
    latency_steps: int = 16
    #: virtual seconds a poll that reports ready fds costs (a loop spinning on
    #: an always-ready fd still lets time, and so the network, move on)
    poll_cost: float = 1e-6


class Host:
    """A simulated machine: addresses, a clock, port tables, up or crashed."""

    __slots__ = ("name", "addresses", "clock", "up", "ports", "unix", "next_port", "incarnation")

    def __init__(self, name: str, addresses: list[str]) -> None:
        self.name = name
        self.addresses = addresses
        self.clock = HostClock()
        self.up = True
        #: ("tcp"|"udp", ip, port) -> list of sockets bound there
        self.ports: dict[tuple[str, str, int], list[Any]] = {}
        #: ("stream"|"dgram", path) -> socket bound there
        self.unix: dict[tuple[str, Any], Any] = {}
        self.next_port = 40000
        #: bumped by each crash: connections of an older incarnation are dead
        self.incarnation = 0

    def first_address(self, family_v6: bool) -> str:
        """This host's first non-loopback address of a family (loopback if none)."""
        for a in self.addresses:
            if (":" in a) == family_v6:
                return a
        return "::1" if family_v6 else "127.0.0.1"

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.addresses} {'up' if self.up else 'down'}>"


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 and ::1 (and the v4-mapped forms)."""
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_wildcard(ip: str) -> bool:
    """'' / 0.0.0.0 / :: (bind to every address)."""
    return ip in ("", "0.0.0.0", "::")


class World:
    """The clock, the event queue, the hosts and the links of one simulation."""

    def __init__(self, choices: ChoiceSource, trace: Trace, config: NetConfig) -> None:
        self.clock = VirtualClock()
        self.choices = choices
        self.trace = trace
        self.config = config
        self._queue: list[tuple[float, int, Callable[..., object], tuple[Any, ...]]] = []
        self._seq = 0
        self.hosts: dict[str, Host] = {}
        self.by_address: dict[str, Host] = {}
        self.latency: dict[tuple[str, str], tuple[float, float]] = {}
        self.blocked: set[tuple[str, str]] = set()
        #: pipes waiting for a partition to heal, in the order they stalled
        self.stalled: list[Any] = []
        #: callbacks run when a host crashes (the socket layer kills connections)
        self.crash_listeners: list[Callable[[Host], object]] = []
        #: simulated fd -> socket; fds start high so that a simulated fd handed
        #: to a real os call fails with EBADF instead of touching a real file
        self.fds: dict[int, Any] = {}
        self.next_fd = FIRST_FD
        self.add_host("localhost", [])

    # -- time and events -----------------------------------------------------

    @property
    def now(self) -> float:
        """The current virtual time."""
        return self.clock.now

    def at(self, when: float, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` at virtual time *when* (not before now)."""
        now = self.clock.now
        if when < now:
            when = now
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, fn, args))

    def next_time(self) -> float | None:
        """When the next event is due, or None if the queue is empty."""
        return self._queue[0][0] if self._queue else None

    def run_due(self) -> int:
        """Run every event due now (including those they schedule for now)."""
        queue = self._queue
        now = self.clock.now
        count = 0
        while queue and queue[0][0] <= now:
            _, _, fn, args = heapq.heappop(queue)
            fn(*args)
            count += 1
        return count

    def pending(self) -> int:
        """Events still queued."""
        return len(self._queue)

    def record(self, kind: str, *details: Any) -> None:
        """Add an event to the trace at the current virtual time."""
        self.trace.add(self.clock.now, kind, *details)

    def new_fd(self, sock: Any) -> int:
        """Allocate the next simulated fd for *sock*."""
        fd = self.next_fd
        self.next_fd += 1
        self.fds[fd] = sock
        return fd

    # -- hosts ---------------------------------------------------------------

    def add_host(self, name: str, addresses: list[str]) -> Host:
        """Add a host named *name* with *addresses* (strings, v4 or v6)."""
        if name in self.hosts:
            raise ValueError(f"host {name!r} already exists")
        for a in addresses:
            ipaddress.ip_address(a)  # ValueError for a bad literal
            if a in self.by_address:
                raise ValueError(f"address {a} already belongs to {self.by_address[a].name!r}")
            if is_loopback(a) or is_wildcard(a):
                raise ValueError(f"{a} is host-relative; give a host its own addresses")
        host = Host(name, list(addresses))
        self.hosts[name] = host
        for a in addresses:
            self.by_address[a] = host
        return host

    def host(self, name: str) -> Host:
        """The host named *name*; KeyError naming the known hosts."""
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"no simulated host {name!r}; hosts: {list(self.hosts)}") from None

    def route(self, sender: Host, ip: str) -> Host | None:
        """The host that *ip* reaches from *sender* (None: no such address)."""
        if is_loopback(ip):
            return sender
        return self.by_address.get(ip)

    def owns(self, host: Host, ip: str) -> bool:
        """Whether *host* may bind *ip* (its addresses, loopback or a wildcard)."""
        return is_wildcard(ip) or is_loopback(ip) or ip in host.addresses

    def ephemeral_port(self, host: Host, proto: str, ip: str) -> int:
        """The next free port of *host* for *proto* (40000-60999, in order)."""
        for _ in range(21000):
            port = host.next_port
            host.next_port = 40000 if port >= 60999 else port + 1
            if not self.port_in_use(host, proto, ip, port):
                return port
        raise OSError(98, "Address already in use")  # every port taken

    def port_in_use(self, host: Host, proto: str, ip: str, port: int) -> bool:
        """Whether binding (ip, port) on *host* would clash with a bound socket."""
        v6 = ":" in ip
        for (p, bound_ip, bound_port), socks in host.ports.items():
            if p != proto or bound_port != port or not socks or (":" in bound_ip) != v6:
                continue
            if bound_ip == ip or is_wildcard(bound_ip) or is_wildcard(ip):
                return True
        return False

    def lookup(self, host: Host, proto: str, ip: str, port: int) -> Any:
        """The socket bound on *host* that receives (proto, ip, port), or None."""
        socks = host.ports.get((proto, ip, port))
        if not socks:
            socks = host.ports.get((proto, "::" if ":" in ip else "0.0.0.0", port))
        return socks[0] if socks else None

    # -- links ---------------------------------------------------------------

    def link_latency(self, src: Host, dst: Host, label: str) -> float:
        """One latency drawn from the (src, dst) link's range; 0 picks the minimum."""
        low, high = self.latency.get((src.name, dst.name), self.config.latency)
        return pick_range(self.choices, low, high, label, self.config.latency_steps)

    def is_blocked(self, src: Host, dst: Host) -> bool:
        """Whether traffic from *src* to *dst* is cut by a partition."""
        return (src.name, dst.name) in self.blocked

    def partition(self, a: str, b: str, *, oneway: bool = False) -> None:
        """Cut a->b (and b->a unless *oneway*)."""
        self.host(a), self.host(b)
        self.blocked.add((a, b))
        if not oneway:
            self.blocked.add((b, a))
        self.record("partition", a, b, "oneway" if oneway else "both")

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Restore a<->b (every link of *a* when *b* is None, every link when
        both are); stalled traffic resumes."""
        if a is None and b is None:
            self.blocked.clear()
        else:
            named = {n for n in (a, b) if n is not None}
            both = a is not None and b is not None
            for pair in sorted(self.blocked):
                if (set(pair) == named) if both else (named & set(pair)):
                    self.blocked.discard(pair)
        self.record("heal", a or "*", b or "*")
        stalled, self.stalled = self.stalled, []
        for pipe in stalled:
            pipe.resume()

    def crash(self, name: str) -> None:
        """Crash *name*: its connections die, traffic to it is dropped until restart."""
        host = self.host(name)
        if not host.up:
            return
        host.up = False
        host.incarnation += 1
        self.record("crash", name)
        for listener in list(self.crash_listeners):
            listener(host)

    def restart(self, name: str) -> None:
        """Bring a crashed host back (its listening sockets accept again)."""
        host = self.host(name)
        if host.up:
            return
        host.up = True
        self.record("restart", name)
