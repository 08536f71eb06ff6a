"""Fault-injected soak: echo connections through ChaosBackend over real sockets.

Per seed: 200 connections each send 256 KiB of seeded random bytes in random
chunks (1..64 KiB, draining after each) to an echo server on the same loop and
read the echo back, while the backend injects 20% EAGAIN, 5% EINTR, 30% short
writes, 10% spurious readiness and resets 1% of connections at a random byte
offset. Checked, on every connection:

- not reset: the echo is byte-identical; the client's and the server's
  protocols each saw connection_made, data, connection_lost(None), once each
  and in that order;
- reset (either end, per the backend's record): the client protocol sees
  exactly one connection_lost, with ConnectionResetError; its reader raises
  exactly once (that error); what arrived before is a prefix of what was sent;
- the server accepted every connection and each of its protocols was told of
  the loss exactly once; no task is left pending and nothing is left in the
  loop's ready queue; the process has the same fds after the loop is closed.

Seeds rotate the backend (epoll, poll, selectors) and the loop mode (loop,
full). CI runs 50 seeds at the full 200 x 256 KiB (about 0.3 s each here);
``SANSLOOP_RELIABILITY=long`` runs 1,000 (the long tier, docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import pytest

import sansloop
from sansloop.backends.chaos import ChaosBackend, FaultRates
from sansloop.compat.loop import EventLoop

LONG = os.environ.get("SANSLOOP_RELIABILITY", "") == "long"
SEEDS = range(1000) if LONG else range(50)
CONNECTIONS = 200
SIZE = 256 * 1024
MAX_CHUNK = 64 * 1024

RATES = FaultRates(
    eagain=0.20,
    eintr=0.05,
    short_write=0.30,
    spurious=0.10,
    reset=0.01,
    reset_within=SIZE,
)

BACKENDS = [n for n in ("epoll", "poll", "selectors") if n in sansloop.available_backends()]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class Recorder:
    """The callbacks a protocol was given, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def assert_lifecycle(self, lost: type[BaseException] | None) -> None:
        kinds = [kind for kind, _ in self.events]
        assert kinds[0] == "made" and kinds.count("made") == 1, kinds[:3]
        assert kinds.count("lost") == 1 and kinds[-1] == "lost", kinds[-3:]
        exc = self.events[-1][1]
        if lost is None:
            assert exc is None
        else:
            assert type(exc) is lost, exc


class EchoServer(asyncio.Protocol):
    def __init__(self, registry: list[EchoServer]) -> None:
        registry.append(self)
        self.record = Recorder()
        self.peer: Any = None
        self.echoed = 0

    def connection_made(self, transport: Any) -> None:
        self.record.events.append(("made", None))
        self.transport = transport
        self.peer = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        self.record.events.append(("data", len(data)))
        self.echoed += len(data)
        self.transport.write(data)

    def eof_received(self) -> None:
        self.record.events.append(("eof", None))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.record.events.append(("lost", exc))


class CountingStreamProtocol(asyncio.StreamReaderProtocol):
    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self.record = Recorder()

    def connection_made(self, transport: Any) -> None:
        self.record.events.append(("made", None))
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.record.events.append(("data", len(data)))
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.record.events.append(("lost", exc))
        super().connection_lost(exc)


def payload(seed: int, index: int) -> bytes:
    return random.Random(seed * 100_003 + index).randbytes(SIZE)


async def one_client(seed: int, index: int, port: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed * 7919 + index)
    data = payload(seed, index)
    reader = asyncio.StreamReader(limit=2**16)
    protocol = CountingStreamProtocol(reader)
    transport, _ = await loop.create_connection(lambda: protocol, "127.0.0.1", port)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    name = transport.get_extra_info("sockname")

    async def send() -> None:
        view = memoryview(data)
        sent = 0
        while sent < SIZE:
            n = rng.randint(1, MAX_CHUNK)
            writer.write(view[sent : sent + n])
            sent += n
            await writer.drain()

    sender = asyncio.ensure_future(send())
    received = bytearray()
    read_errors: list[BaseException] = []
    while len(received) < SIZE:
        try:
            chunk = await reader.read(MAX_CHUNK)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on
            read_errors.append(exc)
            break
        if not chunk:
            break
        received += chunk
    send_error: BaseException | None = None
    try:
        await sender
    except ConnectionError as exc:
        send_error = exc
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    return {
        "name": name,
        "intact": bytes(received) == data,
        "prefix": data.startswith(received),
        "read_errors": read_errors,
        "send_error": send_error,
        "record": protocol.record,
    }


def run_seed(seed: int) -> None:
    backend_name = BACKENDS[seed % len(BACKENDS)]
    mode = ("loop", "full")[seed % 2]
    fds_before = fd_count()
    chaos = ChaosBackend(sansloop.get_backend(backend_name), seed=seed, rates=RATES)
    loop = EventLoop(chaos, mode=mode)
    servers: list[EchoServer] = []

    async def main() -> list[dict[str, Any]]:
        server = await loop.create_server(
            lambda: EchoServer(servers), "127.0.0.1", 0, backlog=CONNECTIONS * 2
        )
        port = server.sockets[0].getsockname()[1]
        results = await asyncio.gather(*(one_client(seed, i, port) for i in range(CONNECTIONS)))
        server.close()
        await server.wait_closed()  # every accepted connection is gone too
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert pending == []
        return results

    try:
        results = loop.run_until_complete(main())
        assert loop.statistics()["ready"] == 0
    finally:
        loop.close()
    assert fd_count() == fds_before

    # The client end of each reset connection (the reset was made at either end).
    server_address = servers[0].transport.get_extra_info("sockname")
    reset_names = set()
    for reset in chaos.resets:
        assert server_address in (reset.sockname, reset.peername)
        reset_names.add(reset.peername if reset.sockname == server_address else reset.sockname)
    assert len(servers) == CONNECTIONS
    reset_clients = 0
    for result in results:
        record = result["record"]
        if result["name"] in reset_names:
            reset_clients += 1
            record.assert_lifecycle(ConnectionResetError)
            assert len(result["read_errors"]) == 1
            assert type(result["read_errors"][0]) is ConnectionResetError
            assert result["prefix"]
        else:
            assert result["intact"], result["name"]
            assert result["read_errors"] == [] and result["send_error"] is None
            record.assert_lifecycle(None)
    assert reset_clients == len(reset_names)
    for server in servers:
        if server.peer in reset_names:
            kinds = [kind for kind, _ in server.record.events]
            assert kinds.count("made") == 1 and kinds.count("lost") == 1
        else:
            server.record.assert_lifecycle(None)
            assert server.echoed == SIZE
    # The faults asked for were made (the rates are per call: hundreds of each).
    for kind in ("eagain", "eintr", "short_write", "spurious"):
        assert chaos.counts[kind] > 0, (kind, dict(chaos.counts))


@pytest.mark.parametrize("seed", SEEDS)
def test_echo_under_injected_faults(seed: int) -> None:
    run_seed(seed)
