"""Streams side by side: stdlib asyncio, sansloop loop mode, sansloop full mode.

Flavours (``stack``):

- ``asyncio``: stdlib streams on a stdlib loop (the reference);
- ``sansloop-loop``: stdlib streams on a sansloop loop in loop mode (our
  transports under asyncio's own StreamReader/StreamWriter);
- ``sansloop-full``: ``sansloop.compat.streams`` on a full-mode sansloop loop;
- ``ours-on-asyncio``: ``sansloop.compat.streams`` on a stdlib loop (our streams
  need nothing of our loop).

The reader tests feed data by hand; the connection tests use socketpairs given
to ``loop.connect_accepted_socket`` and servers from ``start_server``.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import random
import socket
import sys
import types
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

import sansloop
import sansloop.compat
from sansloop.compat import streams as our_streams


@dataclass
class Stack:
    name: str
    streams: Any  # a module with asyncio's stream names
    new_loop: Callable[[], asyncio.AbstractEventLoop]

    def __repr__(self) -> str:
        return self.name

    def run(self, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        loop = self.new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(main(), 20))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


STACKS = {
    "asyncio": Stack("asyncio", asyncio, asyncio.new_event_loop),
    "sansloop-loop": Stack("sansloop-loop", asyncio, sansloop.new_event_loop),
    "sansloop-full": Stack("sansloop-full", our_streams, sansloop.compat.new_event_loop),
    "ours-on-asyncio": Stack("ours-on-asyncio", our_streams, asyncio.new_event_loop),
}


@pytest.fixture(params=list(STACKS))
def stack(request: pytest.FixtureRequest) -> Stack:
    return STACKS[request.param]


@pytest.fixture(params=["sansloop-full", "ours-on-asyncio"])
def ours(request: pytest.FixtureRequest) -> Stack:
    """Only the stacks running sansloop's streams."""
    return STACKS[request.param]


class CountingTransport(asyncio.Transport):
    """A transport that only records pause/resume requests (strict alternation checked)."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.pauses = 0
        self.resumes = 0

    def pause_reading(self) -> None:
        assert not self.paused
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        assert self.paused
        self.paused = False
        self.resumes += 1

    def is_closing(self) -> bool:
        return False


async def next_turn() -> None:
    """Let every task that is ready run once (a few bare yields)."""
    for _ in range(3):
        await asyncio.sleep(0)


# -- the exported names -----------------------------------------------------------


def _shape(fn: Any) -> list[tuple[str, Any, Any]]:
    params = inspect.signature(fn).parameters.values()
    return [(p.name, p.kind, p.default) for p in params]


def test_names_and_signatures_match_asyncio() -> None:
    for name in asyncio.streams.__all__:
        assert name in our_streams.__all__, name
        ours_obj, theirs = getattr(our_streams, name), getattr(asyncio, name)
        if isinstance(theirs, types.FunctionType):
            assert _shape(ours_obj) == _shape(theirs), name
    for cls in ("StreamReader", "StreamWriter", "StreamReaderProtocol"):
        for attr, theirs in vars(getattr(asyncio, cls)).items():
            if attr.startswith("_") and attr not in ("__aiter__", "__anext__", "__init__"):
                continue
            ours_obj = getattr(getattr(our_streams, cls), attr)
            if isinstance(theirs, types.FunctionType) and attr != "start_tls":
                assert _shape(ours_obj) == _shape(theirs), (cls, attr)
    assert our_streams._DEFAULT_LIMIT == 2**16


# -- StreamReader fed by hand ------------------------------------------------------


def test_reads_across_chunks(stack: Stack) -> None:
    async def main() -> list[Any]:
        reader = stack.streams.StreamReader()
        out: list[Any] = []

        async def consume() -> None:
            out.append(await reader.readline())
            out.append(await reader.readuntil(b"::"))
            out.append(await reader.readexactly(4))
            out.append(await reader.read(2))
            out.append(await reader.read())

        task = asyncio.ensure_future(consume())
        for piece in (b"he", b"llo\nkey:", b":va", b"l", b"ue", b"-rest", b"-of-it"):
            await next_turn()
            reader.feed_data(piece)
        await next_turn()
        reader.feed_eof()
        await task
        out.append(reader.at_eof())
        return out

    assert stack.run(main) == [b"hello\n", b"key::", b"valu", b"e", b"-rest-of-it", True]


def test_async_for_lines(stack: Stack) -> None:
    async def main() -> list[bytes]:
        reader = stack.streams.StreamReader()
        reader.feed_data(b"a\nbb\n\nccc")
        reader.feed_eof()
        return [line async for line in reader]

    assert stack.run(main) == [b"a\n", b"bb\n", b"\n", b"ccc"]


def test_limit_errors(stack: Stack) -> None:
    async def main() -> list[Any]:
        out: list[Any] = []
        reader = stack.streams.StreamReader(limit=4)
        reader.feed_data(b"12345\nab")
        try:
            await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            out.append((str(exc), exc.consumed))
        try:
            await reader.readline()
        except ValueError as exc:
            out.append(str(exc))
        out.append(bytes(await reader.read(10)))
        reader.feed_data(b"xyzxyz")
        try:
            await reader.readline()
        except ValueError as exc:
            out.append(str(exc))
        reader.feed_data(b"tail")
        reader.feed_eof()
        try:
            await reader.readexactly(10)
        except asyncio.IncompleteReadError as exc:
            out.append((exc.partial, exc.expected))
        return out

    assert stack.run(main) == [
        ("Separator is found, but chunk is longer than limit", 5),
        "Separator is found, but chunk is longer than limit",
        b"ab",
        "Separator is not found, and chunk exceed the limit",
        (b"tail", 10),
    ]


def test_bad_arguments(stack: Stack) -> None:
    async def main() -> list[str]:
        out = []
        for limit in (0, -5):
            try:
                stack.streams.StreamReader(limit=limit)
            except ValueError as exc:
                out.append(str(exc))
        reader = stack.streams.StreamReader()
        for call in (lambda: reader.readuntil(b""), lambda: reader.readexactly(-1)):
            try:
                await call()
            except ValueError as exc:
                out.append(str(exc))
        return out

    assert stack.run(main) == [
        "Limit cannot be <= 0",
        "Limit cannot be <= 0",
        "Separator should be at least one-byte string",
        "readexactly size can not be less than zero",
    ]


@pytest.fixture(
    params=[k for k, v in STACKS.items() if v.streams is our_streams or sys.version_info >= (3, 13)]
)
def tuple_stack(request: pytest.FixtureRequest) -> Stack:
    """The stacks whose readuntil takes a tuple: ours everywhere, asyncio's from 3.13."""
    return STACKS[request.param]


def test_tuple_separators(tuple_stack: Stack) -> None:
    async def main() -> list[Any]:
        reader = tuple_stack.streams.StreamReader()
        reader.feed_data(b"a\r\nb\nc")
        reader.feed_eof()
        out: list[Any] = [await reader.readuntil((b"\r\n", b"\n")) for _ in range(2)]
        try:
            await reader.readuntil(())
        except ValueError as exc:
            out.append(str(exc))
        return out

    assert tuple_stack.run(main) == [
        b"a\r\n",
        b"b\n",
        "Separator should contain at least one element",
    ]


def test_exception_wakes_the_waiting_reader(stack: Stack) -> None:
    async def main() -> list[Any]:
        reader = stack.streams.StreamReader()
        task = asyncio.ensure_future(reader.readexactly(10))
        await next_turn()
        err = ConnectionResetError("reset by peer")
        reader.set_exception(err)
        with pytest.raises(ConnectionResetError) as info:
            await task
        reader_after = []
        for call in (reader.read, reader.readline):
            try:
                await call()
            except ConnectionResetError as exc:
                reader_after.append(exc is err)
        return [info.value is err, reader.exception() is err, *reader_after]

    assert stack.run(main) == [True, True, True, True]


def test_two_readers_at_once(stack: Stack) -> None:
    async def main() -> str:
        reader = stack.streams.StreamReader()
        first = asyncio.ensure_future(reader.readline())
        await next_turn()
        try:
            await reader.readexactly(3)
        except RuntimeError as exc:
            message = str(exc)
        reader.feed_data(b"ok\n")
        assert await first == b"ok\n"
        return message

    assert stack.run(main) == (
        "readexactly() called while another coroutine is already waiting for incoming data"
    )


def test_cancelled_reader_leaves_data_and_stream_usable(stack: Stack) -> None:
    async def main() -> list[Any]:
        reader = stack.streams.StreamReader()
        reader.feed_data(b"par")
        task = asyncio.ensure_future(reader.readexactly(6))
        await next_turn()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reader.feed_data(b"tial\n")
        return [await reader.readline(), "waiter" in repr(reader)]

    assert stack.run(main) == [b"partial\n", False]


def test_repr(stack: Stack) -> None:
    async def main() -> list[str]:
        reader = stack.streams.StreamReader(limit=123)
        out = [repr(reader)]
        reader.feed_data(b"abc")
        reader.feed_eof()
        reader.set_exception(ValueError("v"))
        out.append(repr(reader))
        return out

    assert stack.run(main) == [
        "<StreamReader limit=123>",
        "<StreamReader 3 bytes eof limit=123 exception=ValueError('v')>",
    ]


def test_pause_and_resume_reading(stack: Stack) -> None:
    async def main() -> list[Any]:
        reader = stack.streams.StreamReader(limit=10)
        transport = CountingTransport()
        reader.set_transport(transport)
        reader.feed_data(b"x" * 20)
        states = [transport.paused]
        reader.feed_data(b"x")
        states.append(transport.paused)
        await reader.read(10)
        states.append(transport.paused)  # 11 left > limit
        await reader.read(1)
        states.append(transport.paused)  # 10 left: resumed
        return states

    assert stack.run(main) == [False, True, True, False]


def test_transport_that_cannot_pause(stack: Stack) -> None:
    class Unpausable(asyncio.Transport):
        def pause_reading(self) -> None:
            raise NotImplementedError

    async def main() -> int:
        reader = stack.streams.StreamReader(limit=2)
        reader.set_transport(Unpausable())
        for _ in range(5):
            reader.feed_data(b"abcdef")
        return len(await reader.read(100))

    assert stack.run(main) == 30


def test_readexactly_is_served_without_toggling_the_transport(stack: Stack) -> None:
    """docs/compat.md: a waiting readexactly(n) keeps reading until n are in.

    asyncio pauses above 2*limit and its waiting reader resumes at once, per
    chunk; sansloop's streams pause once, when n bytes are in. Both deliver
    the same bytes and buffer at most n plus one chunk.
    """
    limit, n, chunk = 1024, 64 * 1024, 512

    async def main() -> tuple[int, int, bool, int]:
        reader = stack.streams.StreamReader(limit=limit)
        transport = CountingTransport()
        reader.set_transport(transport)
        task = asyncio.ensure_future(reader.readexactly(n))
        peak = 0
        fed = 0
        while not task.done():
            await asyncio.sleep(0)
            if not transport.paused and fed < 2 * n:
                reader.feed_data(bytes([fed // chunk % 256]) * chunk)
                fed += chunk
                peak = max(peak, len(reader._buffer))
        data = task.result()
        expected = b"".join(bytes([i % 256]) * chunk for i in range(n // chunk))
        return transport.pauses, transport.resumes, data == expected, peak

    pauses, resumes, same_bytes, peak = stack.run(main)
    assert same_bytes
    assert peak <= n + chunk
    if stack.streams is asyncio:
        assert pauses > 50 and resumes >= pauses - 1  # toggled per chunk
    else:
        assert (pauses, resumes) == (1, 1)


def test_readline_without_newline_fails_before_192_KiB(stack: Stack) -> None:
    """Acceptance: 64 MiB with no newline, limit 64 KiB, fed as the transport allows.

    The feeder honours pause_reading as a transport does and delivers
    64 KiB per read; readline must fail with asyncio's exception before
    192 KiB were ever buffered.
    """
    limit = 64 * 1024
    total = 64 * 1024 * 1024
    chunk = 64 * 1024

    async def main() -> tuple[str, int, int]:
        reader = stack.streams.StreamReader(limit=limit)
        transport = CountingTransport()
        reader.set_transport(transport)
        task = asyncio.ensure_future(reader.readline())
        block = b"x" * chunk
        fed = peak = 0
        while fed < total:
            await asyncio.sleep(0)
            if task.done():
                break
            if not transport.paused:
                reader.feed_data(block)
                fed += chunk
                peak = max(peak, len(reader._buffer))
        with pytest.raises(ValueError) as info:
            await task
        return str(info.value), peak, fed

    message, peak, fed = stack.run(main)
    assert message == "Separator is not found, and chunk exceed the limit"
    assert peak < 192 * 1024
    assert fed < 192 * 1024


# -- over sockets --------------------------------------------------------------------


async def stream_pair(stack: Stack, family: int = socket.AF_UNIX, **kw: Any) -> tuple[Any, ...]:
    """Two connected (reader, writer) pairs over a socketpair, via connect_accepted_socket."""
    loop = asyncio.get_running_loop()
    ends = socket.socketpair(family) if family == socket.AF_UNIX else _tcp_pair()
    pairs = []
    for sock in ends:
        reader = stack.streams.StreamReader(loop=loop, **kw)
        protocol = stack.streams.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.connect_accepted_socket(lambda p=protocol: p, sock)
        pairs += [reader, stack.streams.StreamWriter(transport, protocol, reader, loop)]
    return tuple(pairs)


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


async def close_all(*writers: Any) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        try:
            await writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass


@pytest.mark.parametrize("family", [socket.AF_UNIX, socket.AF_INET])
def test_lines_and_half_close(stack: Stack, family: int) -> None:
    async def main() -> list[Any]:
        r1, w1, r2, w2 = await stream_pair(stack, family)
        w1.writelines([b"one\n", b"two\n"])
        w1.write(b"three")
        await w1.drain()
        assert w1.can_write_eof()
        w1.write_eof()
        lines = [line async for line in r2]
        w2.write(b"".join(reversed(lines)))
        w2.write_eof()
        back = await r1.read()
        info = [
            type(w1.get_extra_info("socket")).__name__,
            w1.get_extra_info("nonexistent", 42),
            w1.transport is w1.get_extra_info("nonexistent", w1.transport),
        ]
        await close_all(w1, w2)
        return [lines, back, w1.is_closing(), r1.at_eof(), *info]

    assert stack.run(main) == [
        [b"one\n", b"two\n", b"three"],
        b"threetwo\none\n",
        True,
        True,
        "TransportSocket",
        42,
        True,
    ]


def test_wait_closed_and_drain_after_close(stack: Stack) -> None:
    async def main() -> list[Any]:
        r1, w1, r2, w2 = await stream_pair(stack)
        w1.close()
        await w1.wait_closed()
        outcomes = []
        try:
            await w1.drain()
        except ConnectionResetError as exc:
            outcomes.append(str(exc))
        outcomes.append(await r2.read())  # the peer sees EOF
        w2.close()
        await w2.wait_closed()
        return outcomes

    assert stack.run(main) == ["Connection lost", b""]


def test_concurrent_drains_are_all_released(stack: Stack) -> None:
    async def main() -> tuple[int, int]:
        r1, w1, r2, w2 = await stream_pair(stack)
        w1.transport.set_write_buffer_limits(high=1024)
        payload = b"z" * (4 * 1024 * 1024)
        w1.write(payload)  # far more than the socket takes: writing pauses
        drains = [asyncio.ensure_future(w1.drain()) for _ in range(5)]
        await next_turn()
        pending_before = sum(not d.done() for d in drains)
        got = await r2.readexactly(len(payload))
        await asyncio.gather(*drains)
        await close_all(w1, w2)
        return pending_before, len(got)

    assert stack.run(main) == (5, 4 * 1024 * 1024)


def test_server_and_client_helpers(stack: Stack) -> None:
    async def main() -> list[Any]:
        seen: list[Any] = []

        async def handle(reader: Any, writer: Any) -> None:
            name = await reader.readline()
            writer.write(b"hello " + name)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            seen.append(name)

        server = await stack.streams.start_server(handle, "127.0.0.1", 0, limit=100)
        port = server.sockets[0].getsockname()[1]
        answers = []
        for who in (b"ann\n", b"bob\n"):
            reader, writer = await stack.streams.open_connection("127.0.0.1", port)
            writer.write(who)
            answers.append(await reader.read())
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return [answers, sorted(seen)]

    assert stack.run(main) == [[b"hello ann\n", b"hello bob\n"], [b"ann\n", b"bob\n"]]


def test_unix_server_and_client_helpers(stack: Stack, tmp_path: Any) -> None:
    path = str(tmp_path / "s.sock")

    async def main() -> bytes:
        async def handle(reader: Any, writer: Any) -> None:
            writer.write((await reader.readexactly(3)).upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await stack.streams.start_unix_server(handle, path)
        reader, writer = await stack.streams.open_unix_connection(path)
        writer.write(b"abc")
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return answer

    assert stack.run(main) == b"ABC"


def test_failing_client_callback_goes_to_the_handler(stack: Stack) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, ctx: reports.append(ctx))

        async def handle(reader: Any, writer: Any) -> None:
            await reader.readline()
            raise ZeroDivisionError("boom")

        server = await stack.streams.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await stack.streams.open_connection("127.0.0.1", port)
        writer.write(b"go\n")
        eof = await reader.read()  # the server closed the connection
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return [eof, [(r["message"], type(r["exception"]).__name__) for r in reports]]

    assert stack.run(main) == [
        b"",
        [("Unhandled exception in client_connected_cb", "ZeroDivisionError")],
    ]


def test_unclosed_writer_warns(stack: Stack) -> None:
    async def main() -> list[str]:
        r1, w1, r2, w2 = await stream_pair(stack)
        transport = w1.transport
        with pytest.warns(ResourceWarning) as record:
            del w1
            gc.collect()
        messages = [str(w.message) for w in record]
        await next_turn()
        closing = transport.is_closing()
        del transport
        await close_all(w2)
        return [m.split(" ")[0] + " " + m.split(" ")[1][:13] for m in messages] + [str(closing)]

    assert stack.run(main) == ["unclosed <StreamWriter", "True"]


def test_bytes_taken_from_under_a_waiting_readuntil(ours: Stack) -> None:
    """docs/compat.md: asyncio's readuntil would skip the first separator here."""

    async def main() -> list[bytes]:
        reader = ours.streams.StreamReader()
        reader.feed_data(b"abc")
        waiting = asyncio.ensure_future(reader.readuntil(b"|"))
        await next_turn()
        taken = await reader.read(2)
        reader.feed_data(b"|x|")
        return [taken, await waiting, await reader.read(10)]

    assert ours.run(main) == [b"ab", b"c|", b"x|"]


def test_reader_parking_before_a_woken_reader_ran_is_refused(ours: Stack) -> None:
    """docs/compat.md: asyncio parks it and then loses its wake-up (it hangs)."""

    async def main() -> list[Any]:
        reader = ours.streams.StreamReader()
        first = asyncio.ensure_future(reader.readexactly(2))
        await next_turn()
        second = asyncio.ensure_future(reader.readexactly(5))
        reader.feed_data(b"ab")  # wakes `first`; `second` runs before it
        await next_turn()
        return [await first, repr(second.exception())]

    assert ours.run(main) == [
        b"ab",
        "RuntimeError('readexactly() called while another coroutine is already waiting "
        "for incoming data')",
    ]


# -- CPython's own test_streams, on our streams ------------------------------------------

_CPYTHON_SUITE = """
import asyncio, io, json, sys, unittest
from sansloop.compat import streams
made = []
class Counting(streams.StreamReader):
    def __init__(self, *args, **kwargs):
        made.append(1)
        super().__init__(*args, **kwargs)
swapped = {name: getattr(streams, name) for name in streams.__all__}
swapped["StreamReader"] = Counting
for module in (asyncio, asyncio.streams):
    for name, value in swapped.items():
        setattr(module, name, value)
from test.test_asyncio import test_streams
suite = unittest.defaultTestLoader.loadTestsFromModule(test_streams)
result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
print(json.dumps({
    "run": result.testsRun,
    "skipped": len(result.skipped),
    "not_passed": sorted(t.id() for t, _ in result.failures + result.errors),
    "ours": len(made),
}))
"""


def test_cpython_test_streams_passes_on_our_streams() -> None:
    """CPython's test_streams with asyncio's stream names bound to ours (stdlib loop).

    Our StreamReader/StreamWriter/StreamReaderProtocol/open_connection/...
    replace asyncio's in a child interpreter; every test must pass.
    """
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _CPYTHON_SUITE],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["run"] >= 60
    assert report["ours"] >= 40, "the swap did not take: asyncio's own streams ran"
    assert report["not_passed"] == []


def test_readline_over_tcp_fails_before_192_KiB(stack: Stack) -> None:
    """Acceptance, over a socket: a peer sends 64 MiB with no newline; limit 64 KiB.

    The reading socket's receive buffer is 32 KiB (the kernel doubles it), so
    each read brings what a network segment train would, not the 256 KiB a
    loopback can queue up at once. readline must fail with asyncio's
    exception before 192 KiB reached the reader's buffer; the sender then
    sees the connection go.
    """

    async def main() -> tuple[str, int, bool]:
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            near = socket.socket()
            near.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
            near.connect(listener.getsockname())
            far, _ = listener.accept()
        peak = 0

        class Measuring(stack.streams.StreamReader):  # type: ignore[name-defined, misc]
            def feed_data(self, data: bytes) -> None:
                nonlocal peak
                super().feed_data(data)
                peak = max(peak, len(self._buffer))

        reader = Measuring(limit=64 * 1024, loop=loop)
        protocol = stack.streams.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, near)
        writer = stack.streams.StreamWriter(transport, protocol, reader, loop)
        _, far_writer = await stream_from_socket(stack, far)

        async def flood() -> bool:
            block = b"x" * (1024 * 1024)
            try:
                for _ in range(64):
                    far_writer.write(block)
                    await far_writer.drain()
            except (ConnectionError, BrokenPipeError):
                return True
            return False

        flooding = asyncio.ensure_future(flood())
        with pytest.raises(ValueError) as info:
            await reader.readline()
        writer.close()
        await writer.wait_closed()
        cut_off = await flooding
        far_writer.close()
        try:
            await far_writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass
        return str(info.value), peak, cut_off

    message, peak, cut_off = stack.run(main)
    assert message == "Separator is not found, and chunk exceed the limit"
    assert 64 * 1024 < peak < 192 * 1024
    assert cut_off


async def stream_from_socket(stack: Stack, sock: socket.socket) -> tuple[Any, Any]:
    loop = asyncio.get_running_loop()
    reader = stack.streams.StreamReader(loop=loop)
    protocol = stack.streams.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    return reader, stack.streams.StreamWriter(transport, protocol, reader, loop)


def test_cancelled_client_callback_closes_the_connection(ours: Stack) -> None:
    """docs/compat.md: as asyncio 3.13, on every version (no report to the handler)."""

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        reports: list[Any] = []
        loop.set_exception_handler(lambda _loop, ctx: reports.append(ctx))
        handlers: list[asyncio.Task[Any]] = []

        async def handle(reader: Any, writer: Any) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            await reader.read()

        server = await ours.streams.start_server(handle, "127.0.0.1", 0)
        reader, writer = await ours.streams.open_connection(*server.sockets[0].getsockname()[:2])
        for _ in range(1000):
            if handlers:
                break
            await asyncio.sleep(0.001)
        handlers[0].cancel()
        eof = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return [eof, reports]

    assert ours.run(main) == [b"", []]


# -- fd hygiene ------------------------------------------------------------------------

CANCELLED_OPENS = int(os.environ.get("SANSLOOP_OPEN_CANCELS", "2000"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_cancelled_open_connection_leaks_no_fd(stack: Stack) -> None:
    """Acceptance: 2,000 open_connection calls cancelled at a random step.

    The listening socket's peer ends are accepted and closed on the loop; after
    the run the process holds exactly the fds it held before.
    """
    rng = random.Random(2000)
    steps_seen: set[int] = set()
    completed = 0

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0), backlog=1000)
        listener.setblocking(False)

        async def accept_and_close() -> None:
            while True:
                peer, _ = await loop.sock_accept(listener)
                peer.close()

        acceptor = asyncio.ensure_future(accept_and_close())
        await asyncio.sleep(0)
        gc.collect()
        before = open_fds()
        host, port = listener.getsockname()
        for _ in range(CANCELLED_OPENS):
            task = asyncio.ensure_future(stack.streams.open_connection(host, port))
            steps = rng.randrange(9)  # an open takes about 6 loop turns
            for _ in range(steps):
                await asyncio.sleep(0)
            if not task.done():
                steps_seen.add(steps)
                task.cancel()
            try:
                _, writer = await task
            except asyncio.CancelledError:
                continue
            nonlocal completed
            completed += 1
            writer.close()
            await writer.wait_closed()
        for _ in range(200):  # closes scheduled on the loop (bounded)
            if open_fds() == before:
                break
            await asyncio.sleep(0)
        after = open_fds()
        acceptor.cancel()
        try:
            await acceptor
        except asyncio.CancelledError:
            pass
        listener.close()
        return before, after

    before, after = stack.run(main)
    assert after == before
    assert len(steps_seen) >= 5  # the cancellations landed at several steps
    assert 0 < completed < CANCELLED_OPENS


def test_large_readexactly_over_a_socket(stack: Stack) -> None:
    """8 MiB through readexactly with limit 64 KiB: reading pauses and resumes on a
    real transport (asyncio: per chunk; ours: once the 8 MiB are in) and every
    byte arrives in order."""
    size = 8 * 1024 * 1024

    async def main() -> tuple[bool, bytes]:
        r1, w1, r2, w2 = await stream_pair(stack, socket.AF_INET)
        blob = random.Random(8).randbytes(size)

        async def send() -> None:
            w1.write(blob)
            await w1.drain()
            w1.write(b"after")
            await w1.drain()

        sender = asyncio.ensure_future(send())
        got = await r2.readexactly(size)
        after = await r2.readexactly(5)
        await sender
        await close_all(w1, w2)
        return got == blob, after

    assert stack.run(main) == (True, b"after")
