"""TCP and Unix-socket echo benchmark bodies, in the conventions of ``micro.py``.

Contract
--------
Each body is an ``async def body(aio, n) -> int`` that takes everything from
``aio`` (stdlib ``asyncio`` or ``sansloop.compat``): it starts an echo server
on the running loop, starts the load client in a separate process, and returns
*n* once the client reports *n* round trips done, every reply checked byte for
byte against its request (a fast but corrupting loop produces no figure). One
op is one request/response round trip of the message size.

- ``tcp_proto_*``: ``loop.create_server`` with a protocol whose
  ``data_received`` calls ``transport.write(data)``.
- ``tcp_streams_*``: ``start_server``; the handler loops ``reader.read(64 KiB)``,
  ``writer.write``, ``await writer.drain()``.
- ``unix_proto_1k``: the protocol server over ``loop.create_unix_server``.

Messages of 1 KiB, 16 KiB and 100 KiB; ``CONNS`` (8) connections, each with one
request in flight. The measured process is the server only; its CPU time is
what ``child.py`` reports.

The load client (``echo_client.c``) is compiled on first use with ``cc -O2``
into ``benchmarks/results/`` (gitignored), named by a hash of its source. With
no compiler, ``echo_client.py`` (one forked process per connection) is used and
a warning is printed: that client tops out near 50k round trips/s here and
hides loop differences. ``CLIENT`` (or the environment variable
``SANSLOOP_ECHO_CLIENT``) forces ``"c"`` or ``"python"``. The client first does
``PRIME`` round trips on one connection and closes it (steady state: the server
has freed a connection's buffers before the measured ones open). It asks for
SCHED_BATCH unless ``SANSLOOP_ECHO_SCHED=other``; CPU pinning is ``run.py
--cpu`` (the client inherits the child's affinity).

After each run, ``CLIENT_REPORT`` holds the client's JSON report (``round_trips``,
``cpu`` of its whole life, ``cpu_measured``/``wall_measured`` of the measured
connections, ``sched``, ``client``); ``child.py`` copies it into its result line
as ``client`` so the table can show the client's CPU beside the server's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from micro import Benchmark

__all__ = ["BENCHMARKS", "CLIENT_REPORT", "CONNS", "PRIME", "client_command"]

HERE = os.path.dirname(os.path.abspath(__file__))
C_SOURCE = os.path.join(HERE, "echo_client.c")
PY_CLIENT = os.path.join(HERE, "echo_client.py")
BUILD_DIR = os.path.join(HERE, "results")

#: Concurrent connections, one request in flight on each.
CONNS = 8
#: Round trips on the priming connection, closed before the measured ones open.
PRIME = 16
#: How often the server checks that the client process is still there (seconds).
CHECK_EVERY = 0.25
#: The streams handler's read size.
READ_CHUNK = 65536
#: ``None``: the C client if it builds, else Python. ``"c"`` or ``"python"`` force one.
CLIENT: str | None = os.environ.get("SANSLOOP_ECHO_CLIENT") or None
#: The last run's client report (see the module docstring).
CLIENT_REPORT: dict[str, Any] = {}

_built: dict[str, str | None] = {}


def _steady_allocator() -> None:
    """Free one large block first (glibc then serves big buffers from its heap)."""
    block = bytes(1 << 20)
    del block


def _build_c_client() -> str | None:
    """The path of the compiled C client, building it if needed; ``None`` if impossible."""
    if "path" in _built:
        return _built["path"]
    path = None
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is not None:
        with open(C_SOURCE, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        target = os.path.join(BUILD_DIR, f"echo_client-{digest}")
        if os.access(target, os.X_OK):
            path = target
        else:
            os.makedirs(BUILD_DIR, exist_ok=True)
            tmp = f"{target}.{os.getpid()}.tmp"
            proc = subprocess.run(
                [cc, "-O2", "-o", tmp, C_SOURCE], capture_output=True, text=True, timeout=120
            )
            if proc.returncode == 0:
                os.replace(tmp, target)  # atomic: concurrent builders agree
                path = target
            else:
                print(
                    f"warning: {cc} failed to build echo_client.c:\n{proc.stderr}", file=sys.stderr
                )
    _built["path"] = path
    return path


def client_command(target: list[str], trips: int, size: int) -> list[str]:
    """The load client's command line for *target* (``--tcp H P`` or ``--unix PATH``)."""
    kind = CLIENT
    exe = None
    if kind != "python":
        exe = _build_c_client()
        if exe is None:
            if kind == "c":
                raise RuntimeError("the C echo client was asked for but cannot be built")
            print(
                "warning: no C compiler; using the Python load client, which tops out "
                "near 50k round trips/s and may be the bottleneck",
                file=sys.stderr,
            )
    args = [*target, str(CONNS), str(trips), str(size), str(PRIME)]
    if os.environ.get("SANSLOOP_ECHO_SCHED", "batch") == "batch":
        args.append("--batch")
    if exe is None:
        return [sys.executable, PY_CLIENT, *args]
    return [exe, *args]


class _EchoProtocol:
    """Write back every chunk received; report the connection's end."""

    def __init__(self, on_closed: Callable[[], None]) -> None:
        self.on_closed = on_closed
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> None:
        return None  # close our side too

    def pause_writing(self) -> None:
        pass  # the client keeps one request in flight: the buffer stays bounded

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_closed()


async def _serve(aio: Any, n: int, size: int, style: str, unix: bool) -> int:
    _steady_allocator()
    loop = aio.get_running_loop()
    all_closed = loop.create_future()
    expected = CONNS + (1 if PRIME else 0)
    closed = 0

    def one_closed() -> None:
        nonlocal closed
        closed += 1
        if closed == expected and not all_closed.done():
            all_closed.set_result(None)

    async def handle(reader: Any, writer: Any) -> None:
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            one_closed()

    tmpdir = tempfile.mkdtemp(prefix="sansloop-echo-") if unix else None
    if unix:
        assert tmpdir is not None
        path = os.path.join(tmpdir, "echo.sock")
        if style == "proto":
            server = await loop.create_unix_server(lambda: _EchoProtocol(one_closed), path)
        else:
            server = await aio.start_unix_server(handle, path)
        target = ["--unix", path]
    else:
        if style == "proto":
            server = await loop.create_server(lambda: _EchoProtocol(one_closed), "127.0.0.1", 0)
        else:
            server = await aio.start_server(handle, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]
        target = ["--tcp", host, str(port)]
    client = subprocess.Popen(
        client_command(target, n, size),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            # Until every connection closed, or the client exited (a client that
            # failed early never opens some connections); a check every 0.25 s.
            deadline = loop.time() + 60 + n * 1e-3
            while not all_closed.done() and client.poll() is None:
                if loop.time() > deadline:
                    client.kill()
                    raise TimeoutError(f"echo: {closed} of {expected} connections closed")
                await aio.wait({all_closed}, timeout=CHECK_EVERY)
        finally:
            server.close()
            await server.wait_closed()
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    lines = out.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if client.returncode != 0 or report.get("round_trips") != n:
        raise AssertionError(
            f"load client: exit status {client.returncode}, report {report}, "
            f"stderr {err.strip()[-500:]!r}"
        )
    CLIENT_REPORT.clear()
    CLIENT_REPORT.update(report)
    return n


def _body(style: str, size: int, unix: bool = False) -> Callable[[Any, int], Awaitable[int]]:
    async def body(aio: Any, n: int) -> int:
        return await _serve(aio, n, size, style, unix)

    body.__name__ = body.__qualname__ = f"{'unix' if unix else 'tcp'}_{style}_{size}"
    body.__doc__ = f"Echo *n* round trips of {size} bytes ({style}, {'Unix' if unix else 'TCP'})."
    return body


KIB = 1024

#: Sizes are chosen so one timed run takes roughly 0.3-1 s on stdlib asyncio here.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("tcp_proto_1k", _body("proto", KIB), 40_000, 64, "round trip"),
        Benchmark("tcp_proto_16k", _body("proto", 16 * KIB), 20_000, 64, "round trip"),
        Benchmark("tcp_proto_100k", _body("proto", 100 * KIB), 4_000, 16, "round trip"),
        Benchmark("tcp_streams_1k", _body("streams", KIB), 30_000, 64, "round trip"),
        Benchmark("tcp_streams_16k", _body("streams", 16 * KIB), 15_000, 64, "round trip"),
        Benchmark("tcp_streams_100k", _body("streams", 100 * KIB), 3_000, 16, "round trip"),
        Benchmark("unix_proto_1k", _body("proto", KIB, unix=True), 40_000, 64, "round trip"),
    )
}
