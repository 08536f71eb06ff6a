"""Idle connections cost at most 8 KiB of resident memory each, server side.

A child interpreter runs the server (one loop kind); a grandchild opens
WARM (100) plain blocking sockets to it, waits, then N more, and holds them
all idle. Only the server process's RSS is measured (``VmRSS`` in
``/proc/self/status``): once in ``connection_made`` of the WARM-th accepted
connection (imports and first-use costs behind us; only then is the holder
told to open the N), and again in ``connection_made`` of the last one, each
after a ``gc.collect()``. The growth divided by N must be at most
8 KiB for each sansloop mode; stdlib asyncio is measured the same way as
the reference.

RLIMIT_NOFILE's soft limit is raised to the hard limit in both children;
the test skips (saying so) only if the hard limit cannot hold N + 200 fds.

- CI: N = 1,000 per loop kind.
- ``SANSLOOP_RELIABILITY=long``: N = 10,000 per loop kind.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
IDLE = 10_000 if LONG else 1_000
WARM = 100
BOUND = 8 << 10

#: The holder (grandchild): opens the connections, holds them until stdin closes.
HOLDER = r"""
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, warm, idle = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(warm)]
sys.stdin.readline()  # the server has measured its base
held += [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
sys.stdin.read()
"""

#: The server (child): argv kind, warm, idle; prints one JSON line.
SERVER = r"""
import asyncio, gc, json, resource, subprocess, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
kind, warm, idle, holder_code = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == "asyncio":
    loop = asyncio.new_event_loop()
else:
    import sansloop
    from sansloop.compat.loop import EventLoop
    loop = EventLoop(sansloop.get_backend("epoll"), mode=kind.split("-")[1])


def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024


marks = {}
done = loop.create_future()
transports = []


class Idle(asyncio.Protocol):
    def connection_made(self, transport):
        transports.append(transport)
        if len(transports) == warm:
            gc.collect()
            marks["base"] = rss()
            holder.stdin.write(b"go\n")
            holder.stdin.flush()
        elif len(transports) == warm + idle:
            gc.collect()
            marks["after"] = rss()
            done.set_result(None)

    def connection_lost(self, exc):
        if not done.done():
            done.set_exception(AssertionError(f"an idle connection was lost: {exc!r}"))


async def main():
    global holder
    server = await loop.create_server(Idle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(port), str(warm), str(idle)],
        stdin=subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(done, 120)
        for transport in transports:
            assert not transport.is_closing()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        for transport in transports:
            transport.abort()
        server.close()
        await server.wait_closed()


loop.run_until_complete(main())
loop.close()
print(json.dumps({"accepted": len(transports), **marks}))
"""


def idle_cost(kind: str) -> tuple[int, float]:
    """(connections accepted, RSS bytes per idle connection) of *kind*'s server."""
    proc = subprocess.run(
        [sys.executable, "-c", SERVER, kind, str(WARM), str(IDLE), HOLDER],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    marks = json.loads(proc.stdout.strip().splitlines()[-1])
    return marks["accepted"], (marks["after"] - marks["base"]) / IDLE


def enough_fds() -> bool:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return hard == resource.RLIM_INFINITY or hard >= WARM + IDLE + 200


@pytest.mark.skipif(
    not enough_fds(),
    reason=f"RLIMIT_NOFILE hard limit below {WARM + IDLE + 200}: cannot hold the idle connections",
)
@pytest.mark.parametrize("kind", ["asyncio", "sansloop-loop", "sansloop-full"])
def test_an_idle_connection_costs_at_most_8_kib_of_server_rss(kind: str) -> None:
    accepted, per_connection = idle_cost(kind)
    print(f"{kind}: {IDLE} idle connections, {per_connection:.0f} bytes RSS each")
    assert accepted == WARM + IDLE
    assert per_connection <= BOUND, (kind, per_connection)
