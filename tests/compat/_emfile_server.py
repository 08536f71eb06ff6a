"""A server that runs out of file descriptors: run by test_servers.py in a subprocess.

Usage: ``python _emfile_server.py KIND COUNT`` where KIND is ``asyncio``,
``loop-<backend>`` or ``full-<backend>``. The script starts a server, lowers
its own RLIMIT_NOFILE, fills every free fd, prints ``port N`` and waits for
the parent's COUNT clients. From the first "out of system resource" report it
measures its own CPU time (resource.getrusage) for 1.5 s of wall time: the
episode. Then it frees the fds and measures how long until COUNT connections
are made. The last line of its output is a JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import resource
import sys
import time
from typing import Any

EPISODE = 1.5


def make_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.new_event_loop()
    from sansloop.backends import get_backend
    from sansloop.compat.loop import EventLoop

    mode, _, backend = kind.partition("-")
    return EventLoop(get_backend(backend or "epoll"), mode=mode)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(loop: asyncio.AbstractEventLoop, count: int) -> dict[str, Any]:
    reports: list[str] = []
    others: list[str] = []
    first_report = loop.create_future()

    def handler(_loop: Any, context: dict[str, Any]) -> None:
        if context.get("message") == "socket.accept() out of system resource":
            reports.append(repr(context.get("exception")))
            if not first_report.done():
                first_report.set_result(None)
        else:
            others.append(str(context.get("message")))

    loop.set_exception_handler(handler)
    transports: list[asyncio.BaseTransport] = []
    everyone = loop.create_future()

    class Counting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)
            if len(transports) == count:
                everyone.set_result(None)

    server = await loop.create_server(Counting, "127.0.0.1", 0, backlog=count + 50)
    port = server.sockets[0].getsockname()[1]

    in_use = len(os.listdir("/proc/self/fd"))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + count + 30, hard))
    hog: list[int] = []
    while True:
        try:
            hog.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == errno.EMFILE, exc
            break
    print("port", port, flush=True)

    await first_report
    cpu_before, started = cpu_seconds(), time.monotonic()
    await asyncio.sleep(EPISODE)
    episode = time.monotonic() - started
    cpu = cpu_seconds() - cpu_before
    accepted_during = len(transports)

    for fd in hog:
        os.close(fd)
    freed = time.monotonic()
    await everyone
    accept_after_free = time.monotonic() - freed

    for transport in transports:
        transport.close()
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await asyncio.sleep(0)
    return {
        "kind": sys.argv[1],
        "accepted": len(transports),
        "accepted_during_episode": accepted_during,
        "reports": len(reports),
        "other_errors": others,
        "episode": round(episode, 3),
        "cpu": round(cpu, 4),
        "cpu_share": round(cpu / episode, 4),
        "accept_after_free": round(accept_after_free, 3),
    }


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    the_loop = make_loop(kind)
    try:
        result = the_loop.run_until_complete(main(the_loop, count))
    finally:
        the_loop.close()
    print(json.dumps(result), flush=True)
