"""redis-py's asyncio client unchanged on sansloop, against a real redis-server.

The module fixture starts Debian's ``redis-server`` (``.ci/run`` installs it)
on a free loopback port, with no persistence, and owns its lifetime: it waits
for the server's "Ready to accept connections" line, and terminates and reaps
it at the end. Without the binary the module is skipped with that reason,
except under CI (``CI`` set), where a missing server is a failure.

Each scenario runs on stdlib asyncio and on sansloop (``run_on``):

- 10,000 plain commands, one round trip each, from 10 concurrent workers sharing
  the client's connection pool: SET, GET, INCR and APPEND, every reply checked,
  and the server-side totals checked at the end;
- 10,000 commands in one pipeline (no MULTI): SETs, GETs of what was set,
  and INCRBYs on one counter, every reply checked in order.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")
import redis.asyncio as aioredis  # noqa: E402

COMMANDS = 10_000
WORKERS = 10
READY_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes]) -> str:
    """Read the server's log until it is ready; its log so far if it is not."""
    assert proc.stdout is not None
    log = b""
    deadline = time.monotonic() + READY_TIMEOUT
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"Ready to accept connections" not in log:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:  # the server exited
                break
            log += chunk
    return log.decode(errors="replace")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed: .ci/run should have installed it")
        pytest.skip("redis-server not installed (Debian: apt-get install redis-server)")
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--daemonize", "no",
            "--loglevel", "notice",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        log = _wait_ready(proc)
        if "Ready to accept connections" not in log:
            pytest.fail(f"redis-server did not become ready on port {port}:\n{log}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_ten_thousand_plain_commands(run_on, redis_url: str) -> None:
    per_worker = COMMANDS // WORKERS
    prefix = f"plain:{run_on.name}"

    async def worker(client: aioredis.Redis, w: int) -> int:
        sent = 0
        for i in range(per_worker // 4):
            key = f"{prefix}:{w}:{i}"
            value = f"value-{w}-{i}".encode() * (1 + i % 7)
            assert await client.set(key, value) is True
            assert await client.get(key) == value
            assert await client.incr(f"{prefix}:counter") >= 1
            assert await client.append(f"{prefix}:log:{w}", b"x") == i + 1
            sent += 4
        return sent

    async def main() -> tuple[int, int, list[int], int]:
        client = aioredis.from_url(redis_url, max_connections=WORKERS)
        try:
            await client.delete(f"{prefix}:counter", *(f"{prefix}:log:{w}" for w in range(WORKERS)))
            sent = sum(await asyncio.gather(*(worker(client, w) for w in range(WORKERS))))
            counter = int(await client.get(f"{prefix}:counter"))
            logs = [await client.strlen(f"{prefix}:log:{w}") for w in range(WORKERS)]
            keys = len([k async for k in client.scan_iter(match=f"{prefix}:*:*", count=1000)])
        finally:
            await client.aclose()
        return sent, counter, logs, keys

    sent, counter, logs, keys = run_on(main())
    assert sent == COMMANDS
    assert counter == COMMANDS // 4
    assert logs == [per_worker // 4] * WORKERS
    # every SET key plus the per-worker APPEND logs
    assert keys == COMMANDS // 4 + WORKERS


def test_ten_thousand_commands_pipelined(run_on, redis_url: str) -> None:
    prefix = f"pipe:{run_on.name}"
    n = COMMANDS // 4  # n SETs, n GETs, n INCRBYs, n EXISTS

    async def main() -> list[object]:
        client = aioredis.from_url(redis_url)
        try:
            await client.delete(f"{prefix}:counter")
            async with client.pipeline(transaction=False) as pipe:
                for i in range(n):
                    pipe.set(f"{prefix}:{i}", i.to_bytes(4, "big") * (1 + i % 5))
                for i in range(n):
                    pipe.get(f"{prefix}:{i}")
                for i in range(n):
                    pipe.incrby(f"{prefix}:counter", i)
                for i in range(n):
                    pipe.exists(f"{prefix}:{i}", f"{prefix}:absent:{i}")
                assert len(pipe) == COMMANDS
                return list(await pipe.execute())
        finally:
            await client.aclose()

    replies = run_on(main())
    assert len(replies) == COMMANDS
    assert replies[:n] == [True] * n
    assert replies[n : 2 * n] == [i.to_bytes(4, "big") * (1 + i % 5) for i in range(n)]
    running = 0
    expected_counts = []
    for i in range(n):
        running += i
        expected_counts.append(running)
    assert replies[2 * n : 3 * n] == expected_counts
    assert replies[3 * n :] == [1] * n
