"""Trickle: 1,000 connections at 16 KiB/s both ways lose and reorder nothing.

Long tier only (``SANSLOOP_RELIABILITY=long``). Each loop kind (stdlib
asyncio, sansloop loop mode, sansloop full mode) runs in its own child
interpreter, one after the other: a stream server and 1,000 stream clients
on one loop. Every connection end sends its own byte stream (a 1 MiB random
block rotated by a per-stream offset) at 16 KiB/s, 4 KiB every 0.25 s on an
absolute schedule, for ``SANSLOOP_TRICKLE_SECONDS`` seconds (default 300),
then ``write_eof()``; the other end compares every chunk it reads with the
bytes expected at that position.

Asserted: every connection on every kind delivers exactly
16 KiB x seconds bytes each way with 0 mismatching chunks (a lost,
duplicated or reordered byte shifts everything after it), and each sansloop
child's peak RSS (``ru_maxrss`` of RUSAGE_SELF, read by the child at its
end) is at most 1.5x the stdlib child's.

Command (a short check; the issue's figure is the 300 s default)::

    SANSLOOP_RELIABILITY=long SANSLOOP_TRICKLE_SECONDS=5 \\
        python -m pytest -p no:randomly -s tests/reliability/test_trickle.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
SECONDS = float(os.environ.get("SANSLOOP_TRICKLE_SECONDS", "300"))
CONNECTIONS = 1_000
RATE = 16 << 10
TICK = 0.25
KINDS = ("asyncio", "sansloop-loop", "sansloop-full")

#: One loop kind's trickle (child): argv kind, connections, seconds, rate, tick.
CHILD = r"""
import asyncio, json, random, resource, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
kind = sys.argv[1]
conns, seconds, rate, tick = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if kind == "asyncio":
    api, loop = asyncio, asyncio.new_event_loop()
else:
    import sansloop, sansloop.compat
    from sansloop.compat.loop import EventLoop
    loop = EventLoop(sansloop.get_backend("epoll"), mode=kind.split("-")[1])
    api = sansloop.compat if kind == "sansloop-full" else asyncio

BLOCK = random.Random(16).randbytes(1 << 20)
DOUBLED = memoryview(BLOCK + BLOCK)
CHUNK = int(rate * tick)
TICKS = round(seconds / tick)
TOTAL = CHUNK * TICKS


def expected(stream, start, length):
    offset = (stream * 7919 + start) % len(BLOCK)
    return DOUBLED[offset : offset + length]


async def trickle(reader, writer, out_stream, in_stream, phase):
    async def send():
        start = loop.time() + phase
        for k in range(TICKS):
            delay = start + k * tick - loop.time()
            if delay > 0:
                await api.sleep(delay)
            writer.write(bytes(expected(out_stream, k * CHUNK, CHUNK)))
            await writer.drain()
        writer.write_eof()

    sender = api.ensure_future(send())
    got = mismatches = 0
    while data := await reader.read(65536):
        if expected(in_stream, got, len(data)) != data:
            mismatches += 1
        got += len(data)
    await sender
    writer.close()
    await writer.wait_closed()
    return got, mismatches


async def main():
    rng = random.Random(1000)
    results = []

    async def serve(reader, writer):
        index = int.from_bytes(await reader.readexactly(4), "big")
        results.append(await trickle(reader, writer, 2 * index + 1, 2 * index, rng.random() * tick))

    server = await api.start_server(serve, "127.0.0.1", 0, backlog=conns)
    port = server.sockets[0].getsockname()[1]

    async def client(index):
        reader, writer = await api.open_connection("127.0.0.1", port)
        writer.write(index.to_bytes(4, "big"))
        results.append(await trickle(reader, writer, 2 * index, 2 * index + 1, rng.random() * tick))

    began = time.perf_counter()
    await api.gather(*(client(i) for i in range(conns)))
    while len(results) < 2 * conns and time.perf_counter() - began < seconds + 120:
        await api.sleep(0.05)
    server.close()
    await server.wait_closed()
    return results, time.perf_counter() - began


results, wall = loop.run_until_complete(main())
loop.close()
print(json.dumps({
    "ends": len(results),
    "short": sum(1 for got, _ in results if got != TOTAL),
    "mismatches": sum(m for _, m in results),
    "bytes": sum(got for got, _ in results),
    "total_each": TOTAL,
    "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "cpu": time.process_time(),
    "wall": wall,
}))
"""


def run_child(kind: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(CONNECTIONS), str(SECONDS), str(RATE), str(TICK)],
        capture_output=True,
        text=True,
        timeout=SECONDS + 300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def enough_fds() -> bool:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return hard == resource.RLIM_INFINITY or hard >= 2 * CONNECTIONS + 200


@pytest.mark.skipif(not LONG, reason="long tier: minutes of trickle (SANSLOOP_RELIABILITY=long)")
@pytest.mark.skipif(not enough_fds(), reason="RLIMIT_NOFILE hard limit below 2,200")
@pytest.mark.timeout(int(3 * (SECONDS + 300)))
def test_a_thousand_trickling_connections_lose_nothing_within_1_5x_stdlib_rss() -> None:
    reports = {kind: run_child(kind) for kind in KINDS}
    print(f"trickle {CONNECTIONS} x {RATE} B/s x {SECONDS:g} s both ways:", reports)
    total = int(RATE * TICK) * round(SECONDS / TICK)
    for kind, report in reports.items():
        assert report["ends"] == 2 * CONNECTIONS, (kind, report)
        assert report["total_each"] == total, (kind, report)
        assert report["short"] == 0 and report["mismatches"] == 0, (kind, report)
        assert report["bytes"] == 2 * CONNECTIONS * total, (kind, report)
    reference = reports["asyncio"]["maxrss_kib"]
    for kind in ("sansloop-loop", "sansloop-full"):
        assert reports[kind]["maxrss_kib"] <= 1.5 * reference, (kind, reports)
