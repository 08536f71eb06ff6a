"""Security checklist items that had no test of their own (docs/security.md).

- exec never involves a shell: arguments full of shell syntax reach the
  program literally (asyncio.create_subprocess_exec on a sansloop loop);
- a Unix server's socket file gets the mode asyncio gives it (bind under the
  process umask: 0o777 & ~umask), the same as stdlib asyncio's.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import sansloop
from sansloop.compat.loop import EventLoop

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "sansloop-loop": lambda: EventLoop(sansloop.get_backend("epoll"), mode="loop"),
}

HOSTILE = ["$(id)", "`id`", ";", "|", "&&", "> /tmp/x", "'", '"', "*", "$HOME", "\\"]


@pytest.mark.parametrize("kind", list(LOOPS))
def test_exec_passes_shell_syntax_literally(kind: str) -> None:
    loop = LOOPS[kind]()
    code = "import sys; print(repr(sys.argv[1:]))"

    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, *HOSTILE, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return out

    try:
        out = loop.run_until_complete(main())
    finally:
        loop.close()
    assert out.decode().strip() == repr(HOSTILE)


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=oct)
@pytest.mark.parametrize("kind", list(LOOPS))
def test_unix_server_socket_mode_follows_the_umask(kind: str, umask: int, tmp_path: Path) -> None:
    loop = LOOPS[kind]()
    path = str(tmp_path / "server.sock")

    async def main() -> int:
        server = await loop.create_unix_server(asyncio.Protocol, path)
        try:
            return os.stat(path).st_mode
        finally:
            server.close()
            await server.wait_closed()

    saved = os.umask(umask)
    try:
        mode = loop.run_until_complete(main())
    finally:
        os.umask(saved)
        loop.close()
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o777 & ~umask
    if kind != "asyncio" or sys.version_info >= (3, 13):  # asyncio cleans up from 3.13
        assert not os.path.exists(path)  # removed on close (it was still ours)
