"""sansloop.sim.run: unmodified asyncio programs on virtual time, both modes."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

import sansloop
from sansloop import sim
from sansloop.compat.loop import EventLoop

MODES = ["loop", "full"]


async def _upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _echo_three() -> list[bytes]:
    server = await asyncio.start_server(_upper, "127.0.0.1", 8888)
    reader, writer = await asyncio.open_connection("localhost", 8888)
    out = []
    for i in range(3):
        await asyncio.sleep(3600)
        writer.write(b"hello %d\n" % i)
        out.append(await reader.readline())
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return out


@pytest.mark.parametrize("mode", MODES)
def test_echo_on_virtual_time(mode: str) -> None:
    started = time.process_time()  # CPU time: a loaded machine does not inflate it
    result = sim.run(_echo_three, seed=3, mode=mode)
    cpu = time.process_time() - started
    assert result.value == [b"HELLO 0\n", b"HELLO 1\n", b"HELLO 2\n"]
    assert 3 * 3600 <= result.elapsed < 3 * 3600 + 1
    assert cpu < 2.0
    assert len(result.digest) == 64 and len(result.trace) > 10


def test_same_seed_same_digest_across_modes() -> None:
    a = sim.run(_echo_three, seed=11, mode="loop")
    b = sim.run(_echo_three, seed=11, mode="full")
    assert a.digest == b.digest


@pytest.mark.parametrize("mode", MODES)
def test_backend_on_new_event_loop(mode: str) -> None:
    backend = sim.SimBackend(seed=7)
    loop = (
        sansloop.new_event_loop(backend=backend)
        if mode == "loop"
        else EventLoop(backend, mode="full")
    )
    try:
        assert loop.run_until_complete(_echo_three())[2] == b"HELLO 2\n"
        assert loop.time() >= 3 * 3600
    finally:
        loop.close()
    assert backend.closed


def test_wait_for_times_out_virtually() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10_000), 5)
        return loop.time() - t0

    assert sim.run(main).value == pytest.approx(5.0)


@pytest.mark.parametrize("mode", MODES)
def test_deadlock_is_reported_with_a_token(mode: str) -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(sim.Deadlock) as info:
        sim.run(main, seed=5, mode=mode)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "seed=5" in notes and "sim1-" in notes


def test_exception_gets_seed_and_replay_token() -> None:
    async def main() -> None:
        await asyncio.sleep(1)
        raise ValueError("boom")

    with pytest.raises(ValueError) as info:
        sim.run(main, seed=42)
    (note,) = info.value.__notes__
    token = note.split("replay token: ")[1].split()[0]
    assert sim.decode_token(token)["s"] == 42
    with pytest.raises(ValueError, match="boom"):
        sim.replay(token, main)


def test_main_may_take_the_backend() -> None:
    async def main(backend: sim.SimBackend) -> str:
        assert sim.current() is backend
        return backend.name

    assert sim.run(main).value == "sim"


def test_bad_arguments() -> None:
    async def main() -> None:
        pass

    with pytest.raises(ValueError):
        sim.run(main, mode="nope")
    with pytest.raises(TypeError):
        sim.run(main(), seed=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sim.decode_token("garbage")


def test_digest_is_stable_across_processes_and_hash_seeds() -> None:
    import json
    import os
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys, json; sys.path.insert(0, {here!r}); "
        "from test_sim_run import _echo_three; from sansloop import sim; "
        "print(json.dumps([repr(e) for e in sim.run(_echo_three, seed=9).trace]))"
    )
    traces = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=50
        )
        assert out.returncode == 0, out.stderr
        traces.append(json.loads(out.stdout))
    here_trace = [repr(e) for e in sim.run(_echo_three, seed=9).trace]
    for other in traces:
        diff = next(
            (i for i, (a, b) in enumerate(zip(here_trace, other, strict=False)) if a != b),
            None if len(here_trace) == len(other) else min(len(here_trace), len(other)),
        )
        assert diff is None, (diff, here_trace[diff : diff + 3], other[diff : diff + 3])


def test_full_mode_with_the_compat_namespace() -> None:
    import sansloop.compat as aio

    async def main() -> tuple[list[bytes], str, int]:
        async def handle(reader: Any, writer: Any) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await aio.start_server(handle, "localhost", 80)

        async def one(i: int) -> bytes:
            reader, writer = await aio.open_connection("localhost", 80)
            await aio.sleep(i * 100)
            writer.write(b"x%d\n" % i)
            line: bytes = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return line

        async with aio.TaskGroup() as group:
            tasks = [group.create_task(one(i)) for i in range(5)]
        async with aio.timeout(10):
            await aio.sleep(1)
        server.close()
        await server.wait_closed()
        kind = type(aio.current_task()).__module__
        return [t.result() for t in tasks], kind, await aio.to_thread(len, "four")

    result = sim.run(main, mode="full")
    assert result.value == ([b"X%d\n" % i for i in range(5)], "sansloop.core.tasks", 4)
    assert 401 <= result.elapsed < 402


def test_dual_stack_server_happy_eyeballs_sendfile_and_sock_api(tmp_path: Any) -> None:
    source = tmp_path / "payload"
    source.write_bytes(b"filedata" * 1000)

    async def main(backend: sim.SimBackend) -> tuple[list[str], int, bytes, bytes]:
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        class Sink(asyncio.Protocol):
            def __init__(self) -> None:
                self.buf = b""

            def data_received(self, data: bytes) -> None:
                self.buf += data
                if len(self.buf) == 8000:
                    got.set_result(self.buf)

        server = await loop.create_server(Sink, None, 9000, reuse_port=True)
        names = sorted(str(s.getsockname()) for s in server.sockets)
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "localhost", 9000, happy_eyeballs_delay=0.1
        )
        with open(source, "rb") as f:  # reading a real file is allowed
            sent = await loop.sendfile(transport, f)
        data = await got
        transport.close()
        a, b = backend.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, b"hello")
        hello = await loop.sock_recv(b, 5)
        a.close()
        b.close()
        server.close()
        await server.wait_closed()
        return names, sent, data, hello

    names, sent, data, hello = sim.run(main).value
    assert names == ["('0.0.0.0', 9000)", "('::', 9000, 0, 0)"]
    assert sent == 8000 and data == b"filedata" * 1000 and hello == b"hello"


def test_time_limit_stops_a_program_that_never_ends() -> None:
    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(1)

    with pytest.raises(sim.TimeLimitExceeded) as info:
        sim.run(heartbeat, time_limit=3600)
    assert "3600" in str(info.value) and "replay token" in info.value.__notes__[0]


def test_digest_sees_the_bytes_not_only_their_lengths() -> None:
    async def send(payload: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        a, b = sim.current().socketpair(socket.AF_INET)
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, payload)
        got = await loop.sock_recv(b, 10)
        a.close()
        b.close()
        return got

    one = sim.run(lambda: send(b"aaaa"), seed=1)
    two = sim.run(lambda: send(b"bbbb"), seed=1)
    assert one.value == b"aaaa" and two.value == b"bbbb"
    assert one.digest != two.digest


def test_a_hypothesis_driven_choice_source_replays_from_its_token() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    class Drawn:
        def __init__(self, data: Any) -> None:
            self.data = data

        def choose(self, n: int, label: str) -> int:
            value: int = self.data.draw(st.integers(0, n - 1), label=label)
            return value

    @settings(
        max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.data())
    def check(data: Any) -> None:
        result = sim.run(_echo_three, choices=Drawn(data), latency=(0.001, 0.5))
        assert result.value == [b"HELLO 0\n", b"HELLO 1\n", b"HELLO 2\n"]
        assert "c" in sim.decode_token(result.token)  # the drawn values travel in it
        assert sim.replay(result.token, _echo_three, latency=(0.001, 0.5)).digest == result.digest

    check()
