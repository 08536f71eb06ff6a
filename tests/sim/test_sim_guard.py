"""The determinism guard: the real world reached from a simulated run is reported."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest

from sansloop import sim

MODES = ["loop", "full"]


async def _reads_time() -> float:
    return time.time()


async def _real_socket() -> None:
    with socket.socket():
        pass


async def _swallows_the_error() -> str:
    try:
        time.monotonic()
    except Exception:
        pass
    return "carried on"


async def _starts_a_thread() -> None:
    threading.Thread(target=lambda: None).start()


async def _blocking_job() -> None:
    await asyncio.to_thread(time.sleep, 0.001)


async def _nondeterministic_program() -> float:
    # the example: reads time.time() and calls a real socket
    loop = asyncio.get_running_loop()
    started = time.time()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    await loop.sock_sendto(sock, b"x", ("127.0.0.1", 9))
    sock.close()
    return time.time() - started


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "program, what",
    [
        (_reads_time, "time.time()"),
        (_real_socket, "socket.__new__"),
        (_starts_a_thread, "Thread.start()"),
        (_blocking_job, "time.sleep()"),
        (_nondeterministic_program, "time.time()"),
    ],
)
def test_real_world_is_reported(mode: str, program: object, what: str) -> None:
    with pytest.raises(
        sim.NondeterminismError, match=what.replace("(", r"\(").replace(")", r"\)")
    ) as info:
        sim.run(program, mode=mode)  # type: ignore[arg-type]
    assert any("replay token" in note for note in info.value.__notes__)


@pytest.mark.parametrize("mode", MODES)
def test_a_swallowed_violation_still_fails_the_run(mode: str) -> None:
    with pytest.raises(sim.NondeterminismError, match=r"time\.monotonic\(\)"):
        sim.run(_swallows_the_error, mode=mode)


def test_logging_and_the_simulated_executor_are_allowed(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> int:
        logging.getLogger("sansloop.test").warning("a log record's timestamp is fine")
        return await asyncio.to_thread(sum, [40, 2])

    assert sim.run(main).value == 42
    assert "timestamp is fine" in caplog.text


def test_guard_is_lifted_outside_the_run() -> None:
    async def main() -> None:
        await asyncio.sleep(1)

    sim.run(main)
    assert time.time() > 0 and time.monotonic() > 0  # patched functions restored
    assert time.time.__module__ == "time"
    backend = sim.SimBackend(seed=1)
    try:
        assert time.time() > 0  # guarded only while a simulated loop runs
    finally:
        backend.close()


def test_guard_can_be_disabled() -> None:
    async def main() -> bool:
        return time.time() > 0

    assert sim.run(main, guard=False).value is True


def test_blocking_simulated_socket_is_refused() -> None:
    async def main() -> None:
        sock = sim.current().socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.recv(10)  # blocking mode: would wait forever
        finally:
            sock.close()

    with pytest.raises(sim.SimulationError, match="would wait forever"):
        sim.run(main)


def test_subprocess_is_reported() -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

    with pytest.raises(sim.NondeterminismError, match="child process|subprocess"):
        sim.run(main)


def test_removing_a_real_file_is_reported(tmp_path: object) -> None:
    import os
    import pathlib

    victim = pathlib.Path(str(tmp_path)) / "keep.me"
    victim.write_text("x")

    async def main() -> None:
        os.unlink(victim)

    with pytest.raises(sim.NondeterminismError, match="os.remove"):
        sim.run(main)
    assert victim.exists()
