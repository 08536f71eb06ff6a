"""The simulated network's semantics, through asyncio's own APIs (loop mode and full)."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from typing import Any

import pytest

from sansloop import sim

MODES = ["loop", "full"]
TWO_HOSTS = {"db": "10.0.0.2", "app": "10.0.0.3"}


class Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)


async def _udp_burst() -> list[int]:
    loop = asyncio.get_running_loop()
    rx, receiver = await loop.create_datagram_endpoint(Collect, local_addr=("127.0.0.1", 5000))
    tx, _ = await loop.create_datagram_endpoint(Collect, remote_addr=("127.0.0.1", 5000))
    for i in range(200):
        tx.sendto(b"%d" % i)
    await asyncio.sleep(1)
    rx.close()
    tx.close()
    return [int(x) for x in receiver.got]


@pytest.mark.parametrize("mode", MODES)
def test_udp_loss_duplication_reordering(mode: str) -> None:
    got = sim.run(
        _udp_burst, mode=mode, udp_loss_one_in=10, udp_dup_one_in=10, latency=(0.001, 0.01)
    ).value
    assert len(set(got)) < 200  # some lost
    assert len(got) > len(set(got))  # some twice
    assert got != sorted(got)  # some out of order
    assert set(got) <= set(range(200))


def test_udp_calm_network_delivers_everything_in_order() -> None:
    assert sim.run(_udp_burst, latency=(0.001, 0.001)).value == list(range(200))


@pytest.mark.parametrize("mode", MODES)
def test_unix_stream_server(mode: str) -> None:
    async def main() -> tuple[bytes, bytes, Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(handle, "/nonexistent/sim.sock")
        reader, writer = await asyncio.open_unix_connection("/nonexistent/sim.sock")
        writer.write(b"abc\n")
        line, eof = await reader.readline(), await reader.read()
        peer = writer.get_extra_info("peername")
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return line, eof, peer

    assert sim.run(main, mode=mode).value == (b"ABC\n", b"", "/nonexistent/sim.sock")


def test_refused_and_unreachable() -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        out = []
        for host in ("127.0.0.1", "10.9.9.9"):
            t0 = loop.time()
            try:
                await asyncio.open_connection(host, 1)
            except OSError as exc:
                out.append((type(exc), exc.errno, round(loop.time() - t0)))
        return out

    assert sim.run(main).value == [
        (ConnectionRefusedError, errno.ECONNREFUSED, 0),
        (TimeoutError, errno.ETIMEDOUT, 127),  # SYN retried 1+2+...+64 s
    ]


def test_accept_backlog_full_drops_syns() -> None:
    async def main(backend: sim.SimBackend) -> list[Any]:
        loop = asyncio.get_running_loop()
        listener = backend.socket()
        listener.bind(("127.0.0.1", 90))
        listener.listen(1)  # nobody accepts: two fit (backlog + 1), as on Linux

        async def connect() -> Any:
            sock = backend.socket()
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, ("127.0.0.1", 90))
                return "ok"
            except OSError as exc:
                return exc.errno
            finally:
                sock.close()

        results = await asyncio.gather(*(connect() for _ in range(4)))
        listener.close()
        return list(results)

    results = sim.run(main).value
    assert results.count("ok") == 2 and results.count(errno.ETIMEDOUT) == 2


@pytest.mark.parametrize("mode", MODES)
def test_half_close(mode: str) -> None:
    async def main() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.read())[::-1])
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 80)
        reader, writer = await asyncio.open_connection("127.0.0.1", 80)
        writer.write(b"0123456789" * 10_000)
        writer.write_eof()
        data = await reader.read()
        writer.close()
        server.close()
        return data

    assert sim.run(main, mode=mode).value == b"9876543210" * 10_000


def test_hosts_dns_partition_heal_and_skew() -> None:
    async def main(backend: sim.SimBackend) -> list[Any]:
        out: list[Any] = []
        with backend.on_host("db"):

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(b"%r\n" % (writer.get_extra_info("peername"),))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "0.0.0.0", 5432)
        with backend.on_host("app"):
            reader, writer = await asyncio.open_connection("db", 5432)
            out.append(await reader.readline())
            writer.close()
            backend.partition("app", "db")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.open_connection("db", 5432), 10)
            backend.heal()
            reader, writer = await asyncio.open_connection("db", 5432)
            out.append(await reader.readline())
            writer.close()
        out.append(backend.wall_time("db") - backend.wall_time("app"))
        server.close()
        return out

    plan = sim.FaultPlan().skew("db", offset=2.5)
    first, second, skew = sim.run(main, hosts=TWO_HOSTS, faults=plan).value
    assert first.startswith(b"('10.0.0.3', ") and second.startswith(b"('10.0.0.3', ")
    assert skew == 2.5


def test_oneway_partition_stalls_then_heals_in_order() -> None:
    async def main(backend: sim.SimBackend) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        with backend.on_host("db"):
            got = loop.create_future()

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                got.set_result(await reader.readexactly(30))
                writer.close()

            server = await asyncio.start_server(handle, "10.0.0.2", 1)
        with backend.on_host("app"):
            _, writer = await asyncio.open_connection("10.0.0.2", 1)
            writer.write(b"0123456789")
            await asyncio.sleep(1)  # partition app->db at 2, heal at 7
            writer.write(b"abcdefghij")
            await asyncio.sleep(2)
            writer.write(b"ABCDEFGHIJ")
            data = await got
            writer.close()
        server.close()
        return data, loop.time()

    plan = sim.FaultPlan().partition("app", "db", at=2, heal=7, oneway=True)
    data, when = sim.run(main, hosts=TWO_HOSTS, faults=plan).value
    assert data == b"0123456789abcdefghijABCDEFGHIJ"
    assert 7 < when < 8


def test_crash_and_restart() -> None:
    async def main(backend: sim.SimBackend) -> list[Any]:
        with backend.on_host("db"):

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                try:
                    while line := await reader.readline():
                        writer.write(line)
                        await writer.drain()
                except ConnectionError:
                    pass  # this host crashed under us
                finally:
                    writer.close()

            server = await asyncio.start_server(handle, "10.0.0.2", 1)
        out: list[Any] = []
        with backend.on_host("app"):
            reader, writer = await asyncio.open_connection("10.0.0.2", 1)
            writer.write(b"a\n")
            out.append(await reader.readline())
            await asyncio.sleep(10)  # crash at 5, restart at 8
            writer.write(b"b\n")
            with pytest.raises(ConnectionResetError):
                await reader.readline()  # the restarted host lost the connection
            reader, writer = await asyncio.open_connection("10.0.0.2", 1)
            writer.write(b"c\n")
            out.append(await reader.readline())
            writer.close()
        server.close()
        return out

    plan = sim.FaultPlan().crash("db", at=5, restart=8)
    assert sim.run(main, hosts=TWO_HOSTS, faults=plan).value == [b"a\n", b"c\n"]


def test_reset_fault_plan() -> None:
    async def main(backend: sim.SimBackend) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.read()
            except ConnectionResetError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", 1)
        try:
            await reader.read()
        except ConnectionResetError as exc:
            return exc.errno
        finally:
            writer.close()
            server.close()

    plan = sim.FaultPlan().reset("localhost", at=3)
    assert sim.run(main, faults=plan).value == errno.ECONNRESET


def test_executor_is_simulated_and_ordered() -> None:
    async def main() -> tuple[list[int], tuple[str, str], float]:
        loop = asyncio.get_running_loop()
        squares = await asyncio.gather(*(loop.run_in_executor(None, pow, i, 2) for i in range(5)))
        name = await loop.getnameinfo(("127.0.0.1", 80))
        return list(squares), name, loop.time()

    squares, name, elapsed = sim.run(main, executor_duration=(0.5, 2.0)).value
    assert squares == [0, 1, 4, 9, 16] and name == ("localhost", "http")
    assert 0.5 <= elapsed <= 4.0


def test_simulated_signal() -> None:
    async def main(backend: sim.SimBackend) -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "usr1")
        backend.send_signal(signal.SIGUSR1, at=5)
        result = await got
        loop.remove_signal_handler(signal.SIGUSR1)
        return result, loop.time()

    assert sim.run(main).value == ("usr1", 5)


def test_dns_table() -> None:
    backend = sim.SimBackend(dns={"api.example": ["10.1.1.1", "10.1.1.2"]}, guard=False)
    try:
        infos = backend.getaddrinfo("api.example", 443, type=socket.SOCK_STREAM)
        assert [i[4] for i in infos] == [("10.1.1.1", 443), ("10.1.1.2", 443)]
        v6 = backend.getaddrinfo("localhost", "http", family=socket.AF_INET6)
        assert {i[4] for i in v6} == {("::1", 80, 0, 0)}
        with pytest.raises(socket.gaierror):
            backend.getaddrinfo("nowhere.example", 80)
        assert backend.getnameinfo(("10.1.1.2", 443)) == ("api.example", "https")
    finally:
        backend.close()


def test_socket_api_errors() -> None:
    backend = sim.SimBackend(guard=False)
    try:
        a = backend.socket()
        b = backend.socket()
        a.bind(("127.0.0.1", 80))
        with pytest.raises(OSError) as info:
            b.bind(("127.0.0.1", 80))
        assert info.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as info:
            b.bind(("10.0.0.9", 0))
        assert info.value.errno == errno.EADDRNOTAVAIL
        with pytest.raises(OSError) as info:
            b.getpeername()
        assert info.value.errno == errno.ENOTCONN
        assert isinstance(a, socket.socket) and a.fileno() >= 1 << 20
        a.close()
        assert a.fileno() == -1
        b.close()
        with pytest.raises(OSError):
            b.send(b"x")
    finally:
        backend.close()


def test_random_fault_plans_come_from_the_seed() -> None:
    hosts = ["localhost", "db", "app"]
    plans = [sim.FaultPlan.random(sim.SeededChoices(seed), hosts) for seed in range(30)]
    assert plans[3] == sim.FaultPlan.random(sim.SeededChoices(3), hosts)  # replays
    assert len({repr(p) for p in plans}) > 10  # and varies
    kinds = {action[1] for plan in plans for action in plan}
    assert {"partition", "crash", "reset", "latency", "skew", "heal", "restart"} <= kinds
    assert len(sim.FaultPlan.random(sim.ZeroChoices(), hosts)) == 0  # all zeros: calm
    assert all(len([a for a in p if a[1] not in ("heal", "restart")]) <= 3 for p in plans)


def test_run_with_a_random_plan_drawn_from_its_seed() -> None:
    async def main(backend: sim.SimBackend) -> Any:
        await asyncio.sleep(100)
        return backend.faults

    def draw(choices: sim.ChoiceSource, hosts: list[str]) -> sim.FaultPlan:
        return sim.FaultPlan.random(choices, hosts, horizon=50)

    hosts = ["localhost", *TWO_HOSTS]
    seed = next(s for s in range(50) if len(draw(sim.SeededChoices(s), hosts)) >= 2)
    first = sim.run(main, seed=seed, hosts=TWO_HOSTS, faults=draw)
    again = sim.run(main, seed=seed, hosts=TWO_HOSTS, faults=draw)
    assert first.value == again.value and first.digest == again.digest
    assert first.value == draw(sim.SeededChoices(seed), hosts)  # the seed decides the plan
    assert [e for e in first.trace if e[1] == "fault"]  # applied and traced
    with pytest.raises(TypeError):
        sim.run(main, faults=lambda c, h: None)


@pytest.mark.parametrize("mode", MODES)
def test_tls_over_simulated_tcp(mode: str) -> None:
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 443, ssl=server_ctx)
        reader, writer = await asyncio.open_connection("localhost", 443, ssl=client_ctx)
        writer.write(b"secret\n")
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return line

    # The application's results replay; the handshake's bytes come from
    # OpenSSL's own random generator (an ECDSA signature's length varies), so
    # a TLS run's trace digest is not promised to (docs/simulation.md).
    assert sim.run(main, seed=1, mode=mode, tcp_segment_one_in=1).value == b"SECRET\n"
