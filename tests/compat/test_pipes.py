"""loop.connect_read_pipe / loop.connect_write_pipe, side by side on asyncio and sansloop.

Every scenario runs on stdlib asyncio's own loop (the reference) and on
sansloop in loop mode over each readiness backend and in full mode, over real
``os.pipe()`` pipes, socketpairs and ptys: multi-MB round trips byte-exact,
EOF, the reader going away under a writer, write flow control against a slow
reader, pause/resume reading, bad input, fd hygiene over many cycles and the
ResourceWarning of an unclosed transport. The sansloop-only tests at the end
check that the bytes go through the backend (Backend.read/write/set_blocking).
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import random
import socket
import tempfile
import tty
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.backends.epoll import EpollBackend
from sansloop.compat.pipes import ReadPipeTransport, WritePipeTransport

SIZE = 4 * 1024 * 1024 + 777  # a few MB, not a multiple of any buffer size
DATA = random.Random(4).randbytes(SIZE)

FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "loop-epoll": lambda: sansloop.new_event_loop("epoll"),
    "loop-poll": lambda: sansloop.new_event_loop("poll"),
    "loop-selectors": lambda: sansloop.new_event_loop("selectors"),
    "full-epoll": sansloop.compat.new_event_loop,
}


@pytest.fixture(params=list(FACTORIES))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    the_loop = FACTORIES[request.param]()
    try:
        yield the_loop
    finally:
        the_loop.close()


class Recorder(asyncio.Protocol):
    """Records every callback; ``lost`` resolves with connection_lost's argument."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: Any = None
        self.lost = loop.create_future()
        self.resumed: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert type(data) is bytes
        self.data += data

    def eof_received(self) -> None:
        self.events.append("eof")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def _pipe_objects() -> tuple[io.FileIO, io.FileIO]:
    r, w = os.pipe()
    return io.FileIO(r, "rb"), io.FileIO(w, "wb")


async def _turns(n: int) -> None:
    """Let the loop run *n* iterations (a bounded number of callbacks, no time)."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- round trips ------------------------------------------------------------


def test_round_trip_several_mb_byte_exact_then_eof(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        assert rt.get_extra_info("pipe") is rpipe and wt.get_extra_info("pipe") is wpipe
        assert rp.events == ["made"] and wp.events == ["made"]
        view = memoryview(DATA)
        for start in range(0, SIZE, 100_003):
            wt.write(view[start : start + 100_003])
        assert wt.get_write_buffer_size() > 0  # a pipe holds far less than 4 MB
        wt.close()
        assert wt.is_closing()
        assert await wp.lost is None
        assert await rp.lost is None
        assert bytes(rp.data) == DATA
        assert rp.events == ["made", "eof", "lost"]
        assert wp.events[0] == "made" and wp.events[-1] == "lost"
        assert wt.get_write_buffer_size() == 0

    loop.run_until_complete(main())
    assert rpipe.closed and wpipe.closed


def test_read_pipe_eof_then_connection_lost(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    rpipe = io.FileIO(r, "rb")

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        assert isinstance(rt, asyncio.ReadTransport)
        assert rt.is_reading() and not rt.is_closing()
        os.write(w, b"last words")
        os.close(w)
        assert await rp.lost is None
        assert rp.events == ["made", "eof", "lost"]
        assert bytes(rp.data) == b"last words"
        assert rt.is_closing() and not rt.is_reading()
        rt.close()  # a no-op now
        rt.pause_reading()
        rt.resume_reading()

    loop.run_until_complete(main())
    assert rpipe.closed


def test_read_pipe_close_gives_connection_lost_none(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        rt.close()
        assert rt.is_closing()
        assert await rp.lost is None
        assert rp.events == ["made", "lost"]

    try:
        loop.run_until_complete(main())
    finally:
        wpipe.close()
    assert rpipe.closed


def test_pause_and_resume_reading(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    rpipe = io.FileIO(r, "rb")

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        rt.pause_reading()
        assert not rt.is_reading()
        rt.pause_reading()  # twice is fine
        os.write(w, b"held back")
        await _turns(20)
        assert rp.data == b""
        rt.resume_reading()
        assert rt.is_reading()
        rt.resume_reading()
        for _ in range(1000):
            if rp.data == b"held back":
                break
            await asyncio.sleep(0)
        assert rp.data == b"held back"
        os.close(w)
        assert await rp.lost is None

    loop.run_until_complete(main())


def test_pause_reading_before_connection_made_holds_data(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    rpipe = io.FileIO(r, "rb")
    os.write(w, b"early")

    class PausesAtOnce(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: PausesAtOnce(loop), rpipe)
        await _turns(20)
        assert rp.data == b"" and not rt.is_reading()
        rt.resume_reading()
        os.close(w)
        assert await rp.lost is None
        assert rp.data == b"early"

    loop.run_until_complete(main())


# -- the reader going away ---------------------------------------------------


def test_reader_closing_with_nothing_buffered(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        wt.write(b"hello")
        assert wt.get_write_buffer_size() == 0
        assert os.read(rpipe.fileno(), 100) == b"hello"
        rpipe.close()
        # As asyncio: the write end turns readable; nothing buffered: no error.
        assert await wp.lost is None
        assert wt.is_closing()
        for _ in range(7):
            wt.write(b"dropped")  # counted, never raised
        assert wt.get_write_buffer_size() == 0

    loop.run_until_complete(main())
    assert wpipe.closed


def test_reader_closing_with_data_buffered_is_broken_pipe(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        wt.set_write_buffer_limits(high=10 * 1024 * 1024)
        wt.write(b"x" * (1024 * 1024))  # more than a pipe holds
        assert wt.get_write_buffer_size() > 0
        rpipe.close()
        exc = await wp.lost
        assert isinstance(exc, BrokenPipeError)
        assert wt.get_write_buffer_size() == 0
        assert wp.events == ["made", "lost"]

    loop.run_until_complete(main())
    assert wpipe.closed


def test_socketpair_peer_closing_loses_the_write_pipe(loop: asyncio.AbstractEventLoop) -> None:
    rsock, wsock = socket.socketpair()
    wpipe = io.FileIO(wsock.detach(), "wb")

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        wt.write(b"1")
        rsock.setblocking(False)
        assert await loop.sock_recv(rsock, 10) == b"1"
        rsock.close()
        assert await wp.lost is None

    loop.run_until_complete(main())
    assert wpipe.closed


def test_write_to_a_pipe_whose_reader_left_before_connecting(
    loop: asyncio.AbstractEventLoop,
) -> None:
    rpipe, wpipe = _pipe_objects()
    rpipe.close()

    class NoWatch(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # Written before the transport watches for the reader leaving:
            # the write itself meets EPIPE.
            transport.write(b"into the void")

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: NoWatch(loop), wpipe)
        assert isinstance(await wp.lost, BrokenPipeError)
        assert wt.is_closing()

    loop.run_until_complete(main())


# -- write flow control -------------------------------------------------------


def test_flow_control_with_a_slow_reader(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()
    received = bytearray()

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        assert wt.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        wt.set_write_buffer_limits(high=32 * 1024, low=8 * 1024)
        assert wt.get_write_buffer_limits() == (8 * 1024, 32 * 1024)
        sent = 0
        chunk = 16 * 1024
        # Write until the protocol is told to pause (the pipe holds 64 KiB).
        while "pause" not in wp.events:
            wt.write(DATA[sent : sent + chunk])
            sent += chunk
            assert sent < 1024 * 1024
        assert wt.get_write_buffer_size() > 32 * 1024
        # A slow reader: a little at a time, the loop turning in between.
        wp.resumed = loop.create_future()
        reads = 0
        while not wp.resumed.done():
            received.extend(os.read(rpipe.fileno(), 4096))
            reads += 1
            await _turns(2)
            assert reads < 10_000
        assert wt.get_write_buffer_size() <= 8 * 1024
        assert wp.events == ["made", "pause", "resume"]
        wt.close()
        # The pipe is still full: the close completes as the reader drains it.
        while not wp.lost.done():
            received.extend(os.read(rpipe.fileno(), 65536))
            await _turns(2)
            reads += 1
            assert reads < 10_000
        assert wp.lost.result() is None
        while True:
            data = os.read(rpipe.fileno(), 65536)
            if not data:
                break
            received.extend(data)
        assert bytes(received) == DATA[:sent]

    try:
        loop.run_until_complete(main())
    finally:
        rpipe.close()


def test_writelines_goes_through_flow_control(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        wt.writelines([b"a" * 100_000, bytearray(b"b" * 100_000), memoryview(b"c" * 100_000)])
        assert wp.events == ["made", "pause"]
        assert wt.get_write_buffer_size() == 300_000 - 65536
        wt.abort()
        assert wt.get_write_buffer_size() == 0
        assert await wp.lost is None
        assert wp.events == ["made", "pause", "lost"]  # no resume for a lost pipe

    try:
        loop.run_until_complete(main())
    finally:
        rpipe.close()


def test_new_limits_pause_at_once_and_bad_limits_raise(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        wt.write(b"z" * (65536 + 5000))
        assert wt.get_write_buffer_size() == 5000
        assert wp.events == ["made"]
        wt.set_write_buffer_limits(high=1000)
        assert wp.events == ["made", "pause"]
        with pytest.raises(ValueError, match=r"high \(1\) must be >= low \(2\) must be >= 0"):
            wt.set_write_buffer_limits(high=1, low=2)
        wt.abort()
        await wp.lost

    try:
        loop.run_until_complete(main())
    finally:
        rpipe.close()


def test_write_eof_flushes_then_loses(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        assert wt.can_write_eof()
        wt.write(b"tail")
        wt.write_eof()
        wt.write_eof()
        assert wt.is_closing()
        assert await wp.lost is None
        assert os.read(rpipe.fileno(), 100) == b"tail"
        assert os.read(rpipe.fileno(), 100) == b""  # the write end is closed

    try:
        loop.run_until_complete(main())
    finally:
        rpipe.close()


def test_write_rejects_text(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()
    # asyncio only asserts the type (gone under -O); sansloop raises TypeError.
    expected = TypeError if isinstance(loop, sansloop.EventLoop) else AssertionError

    async def main() -> None:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        with pytest.raises(expected):
            wt.write("text")  # type: ignore[arg-type]
        if expected is TypeError:
            with pytest.raises(TypeError, match="bytes-like object, not 'str'"):
                wt.write("text")  # type: ignore[arg-type]
        assert wt.get_write_buffer_size() == 0 and not wt.is_closing()
        wt.close()
        await wp.lost

    try:
        loop.run_until_complete(main())
    finally:
        rpipe.close()


# -- ptys ----------------------------------------------------------------------


def test_pty_is_a_character_device_both_ways(loop: asyncio.AbstractEventLoop) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    master_read = io.FileIO(master, "rb", closefd=False)
    slave_write = io.FileIO(slave, "wb")

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), master_read)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), slave_write)
        payload = bytes(range(256)) * 40
        wt.write(payload)
        for _ in range(10_000):
            if len(rp.data) >= len(payload):
                break
            await asyncio.sleep(0)
        assert bytes(rp.data) == payload
        # The write end of a pty is not watched for reading: input typed on the
        # master side is not taken for "the reader left".
        os.write(master, b"typed")
        await _turns(20)
        assert not wt.is_closing()
        wt.close()
        assert await wp.lost is None
        rt.close()
        assert await rp.lost is None

    try:
        loop.run_until_complete(main())
    finally:
        os.close(master)


# -- bad input -------------------------------------------------------------------


def test_a_regular_file_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryFile() as f:

        async def main() -> None:
            with pytest.raises(ValueError) as info:
                await loop.connect_read_pipe(asyncio.Protocol, f)
            assert str(info.value) == "Pipe transport is for pipes/sockets only."
            with pytest.raises(ValueError) as info:
                await loop.connect_write_pipe(asyncio.Protocol, f)
            assert str(info.value) == (
                "Pipe transport is only for pipes, sockets and character devices"
            )

        loop.run_until_complete(main())
        assert not f.closed
        gc.collect()  # the refused transports must not warn


def test_a_closed_fd_is_an_oserror(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()
    fd = rpipe.fileno()
    wpipe.close()
    rpipe.close()

    class Gone:
        def fileno(self) -> int:
            return fd

        def close(self) -> None:
            pass

    async def main() -> None:
        with pytest.raises(OSError):
            await loop.connect_read_pipe(asyncio.Protocol, Gone())

    if isinstance(loop, sansloop.EventLoop):
        loop.run_until_complete(main())
        gc.collect()  # the half-made transport does not warn
    else:
        # asyncio keeps the pipe on the half-made transport, which then warns.
        with pytest.warns(ResourceWarning, match="unclosed transport"):
            loop.run_until_complete(main())
            gc.collect()


# -- hygiene -------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_fd_count_back_to_baseline_after_500_cycles(loop: asyncio.AbstractEventLoop) -> None:
    async def cycles(n: int) -> None:
        for i in range(n):
            rpipe, wpipe = _pipe_objects()
            rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
            wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
            wt.write(b"%d" % i)
            if i % 3 == 0:
                wt.abort()
            else:
                wt.close()
            await wp.lost
            if i % 2:
                rt.close()
            assert await rp.lost is None

    loop.run_until_complete(cycles(5))  # warm up whatever the loop allocates once
    gc.collect()
    before = _open_fds()
    loop.run_until_complete(cycles(500))
    gc.collect()
    assert _open_fds() == before


@pytest.mark.parametrize("name", list(FACTORIES))
def test_unclosed_transports_warn_and_close_their_pipes(name: str) -> None:
    # A loop of its own: the transports must be collected with it.
    loop = FACTORIES[name]()
    rpipe, wpipe = _pipe_objects()

    async def main(lp: asyncio.AbstractEventLoop) -> tuple[Any, Any]:
        rt, _ = await lp.connect_read_pipe(asyncio.Protocol, rpipe)
        wt, _ = await lp.connect_write_pipe(asyncio.Protocol, wpipe)
        return rt, wt

    rt, wt = loop.run_until_complete(main(loop))
    assert "fd=" in repr(rt) and "fd=" in repr(wt)
    loop.close()
    # After the loop closed, the repr says the pipe is still open (asyncio #314).
    assert "open" in repr(rt) and "open" in repr(wt)
    with pytest.warns(ResourceWarning, match="unclosed transport") as record:
        del rt, wt, loop
        gc.collect()
    assert len([w for w in record if "unclosed transport" in str(w.message)]) == 2
    assert rpipe.closed and wpipe.closed


def test_cancelled_connect_closes_the_transport(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()
    made: list[Any] = []

    class Remember(Recorder):
        def connection_made(self, transport: Any) -> None:
            made.append(self)
            super().connection_made(transport)

    async def main() -> None:
        task = loop.create_task(loop.connect_read_pipe(lambda: Remember(loop), rpipe))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert made and await made[0].lost is None

    try:
        loop.run_until_complete(main())
    finally:
        wpipe.close()
    assert rpipe.closed


# -- sansloop only ---------------------------------------------------------------


class CountingBackend(EpollBackend):
    """Counts the pipe calls the loop makes through the backend."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {"read": 0, "write": 0, "set_blocking": 0}

    def read(self, fd: int, n: int) -> bytes:
        self.calls["read"] += 1
        return super().read(fd, n)

    def write(self, fd: int, data: Any) -> int:
        self.calls["write"] += 1
        return super().write(fd, data)

    def set_blocking(self, fd: int, blocking: bool) -> None:
        self.calls["set_blocking"] += 1
        super().set_blocking(fd, blocking)


@pytest.mark.parametrize("mode", ["loop", "full"])
def test_pipe_io_goes_through_the_backend(mode: str) -> None:
    backend = CountingBackend()
    loop = sansloop.EventLoop(backend, mode=mode)
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        assert isinstance(rt, ReadPipeTransport) and isinstance(wt, WritePipeTransport)
        assert loop._transports[rpipe.fileno()] is rt
        assert loop._transports[wpipe.fileno()] is wt
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(rpipe.fileno(), print)
        wt.write(b"through the backend")
        wt.close()
        await wp.lost
        await rp.lost
        assert rp.data == b"through the backend"

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert backend.calls["set_blocking"] == 2
    assert backend.calls["write"] >= 1
    assert backend.calls["read"] >= 2  # the data, then EOF
    assert not loop._transports


def test_repr_follows_the_state() -> None:
    loop = sansloop.new_event_loop()
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        assert repr(rt) == f"<ReadPipeTransport fd={rpipe.fileno()} polling>"
        assert repr(wt) == f"<WritePipeTransport fd={wpipe.fileno()} idle bufsize=0>"
        rt.pause_reading()
        assert repr(rt) == f"<ReadPipeTransport fd={rpipe.fileno()} idle>"
        wt.write(b"q" * 100_000)
        assert repr(wt) == f"<WritePipeTransport fd={wpipe.fileno()} polling bufsize=34464>"
        wfd = wpipe.fileno()
        wt.abort()
        assert repr(wt) == f"<WritePipeTransport closing fd={wfd} idle bufsize=0>"
        await wp.lost
        assert repr(wt) == f"<WritePipeTransport closed fd={wfd} closed>"
        rt.close()
        await rp.lost

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


# -- streams over pipes (what asyncio.subprocess builds on) ----------------------


def test_stdlib_streams_over_pipes_with_drain(loop: asyncio.AbstractEventLoop) -> None:
    rpipe, wpipe = _pipe_objects()

    async def main() -> None:
        reader = asyncio.StreamReader(limit=2**16)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rpipe)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(), wpipe
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)

        async def produce() -> None:
            view = memoryview(DATA)
            for start in range(0, SIZE, 300_001):
                writer.write(view[start : start + 300_001])
                await writer.drain()  # waits while the write pipe is paused
                assert transport.get_write_buffer_size() <= 64 * 1024
            writer.close()

        producer = loop.create_task(produce())
        received = await reader.read()  # to EOF
        await producer
        assert received == DATA
        assert reader.at_eof()

    loop.run_until_complete(main())
    assert rpipe.closed and wpipe.closed


def test_many_pipes_at_once_byte_exact(loop: asyncio.AbstractEventLoop) -> None:
    count, size = 32, 512 * 1024

    async def one(i: int) -> None:
        payload = random.Random(i).randbytes(size)
        rpipe, wpipe = _pipe_objects()
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        for start in range(0, size, 70_000):
            wt.write(payload[start : start + 70_000])
        wt.close()
        assert await wp.lost is None
        assert await rp.lost is None
        assert bytes(rp.data) == payload
        assert "pause" in wp.events and wp.events[-2:] == ["resume", "lost"]

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(count)))

    loop.run_until_complete(main())


def test_debug_mode_logs_as_asyncio(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    rpipe, wpipe = _pipe_objects()
    loop.set_debug(True)

    async def main() -> None:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        rt.pause_reading()
        rt.resume_reading()
        wt.close()
        await wp.lost
        await rp.lost

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.run_until_complete(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(m.startswith("Read pipe ") and " connected: (" in m for m in messages)
    assert any(m.startswith("Write pipe ") and " connected: (" in m for m in messages)
    assert any(m.endswith(" pauses reading") for m in messages)
    assert any(m.endswith(" resumes reading") for m in messages)
    closed = [r for r in caplog.records if r.getMessage().endswith(" was closed by peer")]
    assert len(closed) == 1 and closed[0].levelno == logging.INFO
