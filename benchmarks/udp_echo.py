"""UDP echo benchmark bodies, in the conventions of ``micro.py``.

Contract
--------
Each body is an ``async def body(aio, n) -> int`` that takes everything from
``aio`` (stdlib ``asyncio`` or ``sansloop.compat``), echoes *n* datagrams over
loopback with ``loop.create_datagram_endpoint`` and returns *n* once every
datagram came back intact (checked by sequence number and content: a fast but
lossy or corrupting loop produces no figure). One op is one round trip.

Loss: UDP may drop a datagram when a receive queue overflows. Both bodies keep
a window of ``WINDOW`` datagrams in flight (a new one is sent for each one that
comes back), far below the kernel's queue, so a loss is a bug and raises.

- ``udp_echo``: client and echo server are two endpoints of the measured loop
  (both sides' receive and send paths are timed).
- ``udp_echo_ext``: the echo server is the only endpoint of the measured loop;
  the load client is a separate process (plain blocking sockets, same window),
  so the figure is the loop's serving cost. The client's process start (tens
  of ms) falls inside the timed region for every implementation alike; the
  default size keeps it a few percent of the run.

``BENCHMARKS`` maps names to ``micro.Benchmark`` entries: merge it into
``micro.BENCHMARKS`` (or have ``child.py`` read both) to run these under
``run.py``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from micro import Benchmark

__all__ = ["BENCHMARKS", "udp_echo", "udp_echo_ext", "WINDOW", "PAYLOAD"]

#: Datagrams in flight at once.
WINDOW = 32
#: Payload bytes per datagram (a 4-byte sequence number repeated).
PAYLOAD = 512
#: A client that sees no reply for this long reports a loss.
REPLY_TIMEOUT = 5.0


def _steady_allocator() -> None:
    """Free one large buffer first, as any long-running process has.

    glibc serves allocations above its mmap threshold (128 KiB at start) with
    mmap/munmap, and raises the threshold the first time such a block is freed.
    asyncio allocates 256 KiB per receive: in a process that never freed a
    large block each receive is an mmap, a page fault and a munmap, which
    measures the allocator, not the loop (issue 3: "measure in steady state").
    """
    block = bytes(1 << 20)
    del block


def _payload(seq: int) -> bytes:
    return seq.to_bytes(4, "big") * (PAYLOAD // 4)


class _Echo:
    """The echo server protocol: send every datagram back where it came from."""

    def __init__(self, on_done: Any = None) -> None:
        self.on_done = on_done
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data == b"done" or data.startswith(b"fail"):
            if self.on_done is not None and not self.on_done.done():
                self.on_done.set_result(data)
            return
        self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        raise AssertionError(f"echo server error: {exc!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class _Client:
    """Windowed client: WINDOW in flight, each reply releases the next datagram."""

    def __init__(self, n: int, done: Any) -> None:
        self.n = n
        self.done = done
        self.sent = 0
        self.back = 0
        self.seen = bytearray(n)
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        for _ in range(min(WINDOW, self.n)):
            self._send_next()

    def _send_next(self) -> None:
        self.transport.sendto(_payload(self.sent))
        self.sent += 1

    def datagram_received(self, data: bytes, addr: Any) -> None:
        seq = int.from_bytes(data[:4], "big")
        if data != _payload(seq) or self.seen[seq]:
            self.done.set_exception(AssertionError(f"datagram {seq} corrupted or duplicated"))
            return
        self.seen[seq] = 1
        self.back += 1
        if self.sent < self.n:
            self._send_next()
        elif self.back == self.n and not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        pass


async def udp_echo(aio: Any, n: int) -> int:
    """Echo *n* datagrams between two endpoints of the running loop."""
    _steady_allocator()
    loop = aio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    done = loop.create_future()
    client, proto = await loop.create_datagram_endpoint(
        lambda: _Client(n, done), remote_addr=server.get_extra_info("sockname")
    )
    try:
        await aio.wait_for(done, REPLY_TIMEOUT + n * 1e-4)
    finally:
        client.close()
        server.close()
    if proto.back != n or not all(proto.seen):
        raise AssertionError(f"{proto.back} of {n} datagrams came back")
    return n


_CLIENT_SCRIPT = r"""
import socket, sys
host, port, n, window, size, timeout = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6]), float(sys.argv[6])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect((host, port))
sock.settimeout(timeout)
def payload(seq):
    return seq.to_bytes(4, "big") * (size // 4)
seen = bytearray(n)
sent = back = 0
try:
    while sent < min(window, n):
        sock.send(payload(sent)); sent += 1
    while back < n:
        data = sock.recv(65536)
        seq = int.from_bytes(data[:4], "big")
        if data != payload(seq) or seen[seq]:
            raise AssertionError("corrupt or duplicate datagram %d" % seq)
        seen[seq] = 1; back += 1
        if sent < n:
            sock.send(payload(sent)); sent += 1
    sock.send(b"done")
except BaseException as exc:
    sock.send(("fail %d/%d %r" % (back, n, exc)).encode()[:1000])
    raise
"""


async def udp_echo_ext(aio: Any, n: int) -> int:
    """Serve *n* echoes to a load client running in a separate process."""
    _steady_allocator()
    loop = aio.get_running_loop()
    finished = loop.create_future()
    server, _ = await loop.create_datagram_endpoint(
        lambda: _Echo(finished), local_addr=("127.0.0.1", 0)
    )
    host, port = server.get_extra_info("sockname")[:2]
    args = [host, port, n, WINDOW, PAYLOAD, REPLY_TIMEOUT]
    client = subprocess.Popen([sys.executable, "-c", _CLIENT_SCRIPT, *map(str, args)])
    try:
        verdict = await aio.wait_for(finished, REPLY_TIMEOUT + 10 + n * 1e-4)
    finally:
        server.close()
        try:
            client.wait(timeout=REPLY_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    if verdict != b"done" or client.returncode != 0:
        raise AssertionError(f"load client: {verdict!r}, exit status {client.returncode}")
    return n


#: Sizes are chosen so one timed run takes roughly 0.3-1 s on stdlib asyncio here.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("udp_echo", udp_echo, 30_000, 300, "round trip"),
        Benchmark("udp_echo_ext", udp_echo_ext, 40_000, 300, "round trip"),
    )
}
