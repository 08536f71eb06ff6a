"""The Python fallback of ``echo_client.c``: same arguments, same JSON line.

Contract
--------
``python echo_client.py (--tcp HOST PORT | --unix PATH) CONNS TRIPS SIZE PRIME [--batch]``

One priming connection does PRIME round trips and is closed; then CONNS
connections, one forked process each with a blocking socket, do TRIPS round
trips of SIZE bytes between them, every reply checked against its request.
Prints ``{"round_trips", "conns", "size", "cpu", "cpu_measured",
"wall_measured", "sched", "client": "python"}`` (CPU includes the forked
processes) and exits 0 only if every round trip came back intact.

A Python client tops out near 50k round trips/s on these machines and then is
the bottleneck, not the server: ``tcp_echo.py`` uses it only when no C compiler
is found (and says so), and the smoke test uses it because it needs no build.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import time

TIMEOUT = 10.0


def _connect(target: tuple[str, object]) -> socket.socket:
    family, addr = target
    if family == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(TIMEOUT)
    sock.connect(addr)
    return sock


def _trips(sock: socket.socket, trips: int, size: int, salt: int) -> int:
    base = bytes((j * 31 + salt) & 0xFF for j in range(size))
    view = bytearray(size)
    for k in range(trips):
        req = (k.to_bytes(8, "little") + base[8:])[:size] if size >= 8 else base
        sock.sendall(req)
        got = 0
        while got < size:
            chunk = sock.recv_into(memoryview(view)[got:])
            if not chunk:
                raise ConnectionError("EOF from server mid-reply")
            got += chunk
        if view != req:
            raise AssertionError("reply differs from request")
    sock.close()
    return trips


def main(argv: list[str]) -> int:
    if argv[:1] == ["--unix"]:
        target: tuple[str, object] = ("unix", argv[1])
        rest = argv[2:]
    elif argv[:1] == ["--tcp"]:
        target = ("tcp", (argv[1], int(argv[2])))
        rest = argv[3:]
    else:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    conns, trips, size, prime = map(int, rest[:4])
    sched = "other"
    if rest[4:5] == ["--batch"]:
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            sched = "batch"
        except (AttributeError, OSError):
            pass
    if prime:
        _trips(_connect(target), prime, size, 0)
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    socks = [_connect(target) for _ in range(conns)]
    pids = []
    for i, sock in enumerate(socks):
        share = trips // conns + (1 if i < trips % conns else 0)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                for other in socks:
                    if other is not sock:
                        other.close()
                _trips(sock, share, size, i)
                status = 0
            finally:
                os._exit(status)
        pids.append((pid, share))
    for sock in socks:
        sock.close()
    done = 0
    for pid, share in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            done += share
    wall = time.perf_counter() - wall0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time()
    forked = children.ru_utime + children.ru_stime
    report = {
        "round_trips": done,
        "conns": conns,
        "size": size,
        "cpu": round(own + forked, 6),
        "cpu_measured": round(own - cpu0 + forked, 6),
        "wall_measured": round(wall, 6),
        "sched": sched,
        "client": "python",
    }
    print(json.dumps(report))
    return 0 if done == trips else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
