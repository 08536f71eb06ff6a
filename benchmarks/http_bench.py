"""Keep-alive HTTP/1.1 server benchmark, loaded by ``wrk``, in the conventions of ``micro.py``.

Contract
--------
``http_keepalive`` is an ``async def body(aio, n) -> int``: it starts a small
HTTP/1.1 server written as a ``Protocol`` on the running loop
(``loop.create_server``), runs ``wrk`` against it in a separate process
(``WRK_THREADS`` thread, ``CONNS`` keep-alive connections, no pipelining), and
returns *n* once the server has answered *n* requests. One op is one request
answered. The measured process is the server alone.

The protocol parses each request far enough to be honest (the request line
must be ``GET <path> HTTP/1.1``; requests end at a blank line and may arrive
split across reads or several per read) and answers each with a fixed 200
response carrying ``Content-Length``. After the *n*-th answer it answers
nothing more, and ``wrk`` is stopped with SIGINT (which makes it print its
summary). The body fails unless wrk reports no socket errors and no non-2xx
responses, and at least *n* - ``CONNS`` responses received (the last replies may
still be in flight when wrk stops).

The load client: ``wrk`` (Debian package ``wrk``), written in C and event-driven;
it inherits the child's CPU affinity (``run.py --cpu``) and runs under
SCHED_BATCH unless ``SANSLOOP_ECHO_SCHED=other`` (the reasons are in
docs/performance.md). Its CPU for its whole life (``RUSAGE_CHILDREN``) goes to
``CLIENT_REPORT["cpu_measured"]``, so the table shows it beside the server's.
Without wrk the body raises ``RuntimeError`` naming the package.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
from typing import Any

from micro import Benchmark

__all__ = ["BENCHMARKS", "CLIENT_REPORT", "CONNS", "HttpProtocol", "RESPONSE"]

#: Keep-alive connections wrk keeps open.
CONNS = 8
#: wrk threads (one: the machine has two CPUs, and the server should get one).
WRK_THREADS = 1
#: The response to every request.
BODY = b"Hello, World!"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nServer: sansloop-bench\r\n\r\n"
    + BODY
)
#: Requests larger than this without a blank line are a client bug.
MAX_HEAD = 8192
#: The last run's client report (see the module docstring).
CLIENT_REPORT: dict[str, Any] = {}


class HttpProtocol:
    """Answer each complete GET request with ``RESPONSE``; count the answers."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.transport: Any = None
        self.buf = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        state = self.state
        start = 0
        answered = 0
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            if not buf.startswith(b"GET ", start) or buf.find(b" HTTP/1.1\r\n", start, end + 2) < 0:
                state["bad"] += 1
                self.transport.close()
                return
            start = end + 4
            answered += 1
        self.buf = buf[start:]
        if len(self.buf) > MAX_HEAD:
            state["bad"] += 1
            self.transport.close()
            return
        if answered:
            room = state["limit"] - state["answered"]
            if answered > room:
                answered = room
            if answered > 0:
                state["answered"] += answered
                self.transport.write(RESPONSE * answered if answered > 1 else RESPONSE)
                if state["answered"] >= state["limit"] and not state["done"].done():
                    state["done"].set_result(None)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _wrk_command(wrk: str, port: int) -> list[str]:
    """wrk's command line, under ``chrt --batch`` when asked and available.

    ``chrt`` rather than a ``preexec_fn``: a ``preexec_fn`` makes ``subprocess`` fork
    instead of ``posix_spawn``/``vfork``, and the server then pays copy-on-write
    page faults inside the timed region.
    """
    cmd = [wrk, f"-t{WRK_THREADS}", f"-c{CONNS}", "-d600s", f"http://127.0.0.1:{port}/"]
    chrt = shutil.which("chrt")
    if os.environ.get("SANSLOOP_ECHO_SCHED", "batch") == "batch" and chrt is not None:
        cmd = [chrt, "--batch", "0", *cmd]
    return cmd


def _parse_wrk(out: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    m = re.search(r"(\d+) requests in", out)
    report["responses"] = int(m.group(1)) if m else None
    report["socket_errors"] = "Socket errors" in out
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    report["non_2xx"] = int(m.group(1)) if m else 0
    return report


async def http_keepalive(aio: Any, n: int) -> int:
    """Answer *n* keep-alive HTTP/1.1 requests from wrk (see the module docstring)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    block = bytes(1 << 20)  # steady allocator, as in tcp_echo.py
    del block
    loop = aio.get_running_loop()
    state: dict[str, Any] = {"answered": 0, "bad": 0, "limit": n, "done": loop.create_future()}
    protocols: list[HttpProtocol] = []

    def factory() -> HttpProtocol:
        proto = HttpProtocol(state)
        protocols.append(proto)
        return proto

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = subprocess.Popen(
        _wrk_command(wrk, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = loop.time() + 60 + n * 1e-3
        while not state["done"].done() and client.poll() is None and not state["bad"]:
            if loop.time() > deadline:
                raise TimeoutError(f"http: {state['answered']} of {n} requests answered")
            await aio.wait({state["done"]}, timeout=0.25)
        if client.poll() is None:
            client.send_signal(signal.SIGINT)
        while client.poll() is None:  # let the loop run while wrk prints and exits
            await aio.sleep(0.01)
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        server.close()
        for proto in protocols:
            if proto.transport is not None:
                proto.transport.abort()
        await server.wait_closed()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = _parse_wrk(out)
    if (
        state["bad"]
        or state["answered"] != n
        or report["responses"] is None
        or report["responses"] < n - CONNS
        or report["socket_errors"]
        or report["non_2xx"]
    ):
        raise AssertionError(
            f"http: answered {state['answered']} of {n}, {state['bad']} bad request(s), "
            f"wrk {report}, exit status {client.returncode}, stderr {err.strip()[-300:]!r}, "
            f"output {out.strip()[-400:]!r}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CLIENT_REPORT.clear()
    CLIENT_REPORT.update(report, cpu=cpu, cpu_measured=cpu, client="wrk")
    return n


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b for b in (Benchmark("http_keepalive", http_keepalive, 60_000, 500, "request"),)
}
