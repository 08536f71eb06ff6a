"""Every fd the loop opens is close-on-exec; fds it does not own are untouched.

A loop (each backend, each mode) is put to work -- a TCP server and a
connection to it, a Unix server, a signal handler (the wakeup channel),
a read pipe, the default executor, getaddrinfo -- and then every fd that
appeared in /proc/self/fd meanwhile must be non-inheritable (FD_CLOEXEC), so
no child started by anyone (close_fds=False included) can inherit one. The
process's fds 0, 1 and 2 keep the inheritable flag they had (uvloop #40
set CLOEXEC on fds it did not own and broke every later subprocess).
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile

import pytest

import sansloop
from sansloop.compat.loop import EventLoop

BACKENDS = [n for n in ("epoll", "poll", "selectors") if n in sansloop.available_backends()]


def open_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue  # the listing's own fd, closed by now
        fds.add(int(name))
    return fds


@pytest.mark.parametrize("mode", ["loop", "full"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_fd_the_loop_opens_is_close_on_exec(backend: str, mode: str) -> None:
    std_flags = {fd: os.get_inheritable(fd) for fd in (0, 1, 2) if fd in open_fds()}
    before = open_fds()
    seen: set[int] = set()
    inheritable: list[tuple[int, str]] = []
    loop = EventLoop(sansloop.get_backend(backend), mode=mode)
    read_fd, write_fd = os.pipe()

    async def main() -> None:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        with tempfile.TemporaryDirectory() as tmp:
            unix_server = await loop.create_unix_server(asyncio.Protocol, os.path.join(tmp, "s"))
            loop.add_signal_handler(signal.SIGUSR2, lambda: None)
            pipe_transport, _ = await loop.connect_read_pipe(
                asyncio.Protocol, os.fdopen(read_fd, "rb", 0)
            )
            await loop.run_in_executor(None, lambda: None)
            await loop.getaddrinfo("127.0.0.1", port)
            await asyncio.sleep(0)
            for fd in open_fds() - before - {write_fd}:  # write_fd: the test's own
                seen.add(fd)
                if os.get_inheritable(fd):
                    inheritable.append((fd, os.readlink(f"/proc/self/fd/{fd}")))
            loop.remove_signal_handler(signal.SIGUSR2)
            pipe_transport.close()
            unix_server.close()
            await unix_server.wait_closed()
        transport.close()
        server.close()
        await server.wait_closed()
        await loop.shutdown_default_executor()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        os.close(write_fd)
    assert len(seen) >= 6  # poller/wakeup, 2 listeners, 2 connection ends, the pipe...
    assert inheritable == []
    assert {fd: os.get_inheritable(fd) for fd in std_flags} == std_flags
