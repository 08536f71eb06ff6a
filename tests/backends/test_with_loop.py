"""Each backend under the real EventLoop: threads waking it, fds reported."""

from __future__ import annotations

import socket
import threading

import pytest

import sansloop
from sansloop.backends import available_backends, get_backend


@pytest.mark.parametrize("name", available_backends())
def test_call_soon_threadsafe_flood_from_eight_threads(name: str) -> None:
    backend = get_backend(name)
    loop = sansloop.new_event_loop(backend=backend)
    try:
        counted: list[int] = []
        finished: list[int] = []
        barrier = threading.Barrier(8)

        async def main() -> int:
            all_done = loop.create_future()

            def thread_finished() -> None:  # FIFO: its appends have all run
                finished.append(1)
                if len(finished) == 8:
                    all_done.set_result(None)

            def flood() -> None:
                barrier.wait(10)
                for i in range(1250):
                    loop.call_soon_threadsafe(counted.append, i)
                loop.call_soon_threadsafe(thread_finished)

            threads = [threading.Thread(target=flood) for _ in range(8)]
            for t in threads:
                t.start()
            await all_done
            for t in threads:
                t.join(10)
            return len(counted)

        assert loop.run_until_complete(main()) == 10_000
        stats = backend.statistics()
        assert 1 <= stats["wakeups"] <= stats["polls"] + 8
    finally:
        loop.close()


@pytest.mark.parametrize("name", available_backends())
def test_add_reader_sees_data_and_eof(name: str) -> None:
    loop = sansloop.new_event_loop(backend=get_backend(name))
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        chunks: list[bytes] = []
        done = loop.create_future()

        def on_readable() -> None:
            data = a.recv(3)  # less than is there: level-triggering calls us again
            chunks.append(data)
            if not data:
                loop.remove_reader(a.fileno())
                done.set_result(None)

        loop.add_reader(a.fileno(), on_readable)
        b.sendall(b"hello world")
        b.close()
        loop.run_until_complete(done)
        assert b"".join(chunks) == b"hello world"
        assert chunks[-1] == b""
    finally:
        a.close()
        loop.close()
