"""Packaging: the wheel and the sdist install in a fresh venv and work.

Two tiers:

- always (fast): every package directory under ``src/`` is listed in
  ``pyproject.toml`` (setuptools' explicit ``packages``), so no subpackage is
  silently left out of the wheel;
- the packaging tier (about a minute; ``.ci/run`` runs it): ``python -m build``
  makes an sdist and, from it, a wheel; each is installed into its own fresh
  venv, outside the checkout, and a smoke script runs a real program on it
  (loop mode and full mode, a TCP echo over loopback, the console script).
  Run it with::

      pip install -e '.[test,packaging]'
      SANSLOOP_PACKAGING_TESTS=1 python -m pytest -q tests/test_packaging.py

  It needs ``build`` (the ``packaging`` extra) and pip's package index (the
  venvs install attrs, and setuptools for the isolated builds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

import sansloop

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
ENABLED = os.environ.get("SANSLOOP_PACKAGING_TESTS") == "1"

_skip_unless_enabled = pytest.mark.skipif(
    not ENABLED,
    reason="the packaging tier: SANSLOOP_PACKAGING_TESTS=1 runs it (.ci/run does)",
)
# A build plus a venv and a pip install: about 10 s each here, several times
# that on a loaded machine, so more than the suite's 60 s per test.
_long = pytest.mark.timeout(600)


def tier(test):  # type: ignore[no-untyped-def]
    """The packaging tier's marks: skipped unless enabled, a long timeout."""
    return _skip_unless_enabled(_long(test))


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def _source_packages() -> set[str]:
    found = set()
    for init in SRC.rglob("__init__.py"):
        if "__pycache__" in init.parts:
            continue
        rel = init.parent.relative_to(SRC).parts
        found.add(".".join(("sansloop", *rel)))
    return found


def test_every_subpackage_is_declared() -> None:
    assert _source_packages() == _declared_packages()


SMOKE = textwrap.dedent(
    """\
    import asyncio
    import pathlib
    import sys

    import sansloop
    import sansloop.compat

    where = pathlib.Path(sansloop.__file__).resolve()
    assert pathlib.Path(sys.prefix).resolve() in where.parents, where

    async def echo(reader, writer):
        writer.write(await reader.read(1024))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        await writer.drain()
        reply = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        slept = await asyncio.sleep(0.01, result="slept")
        return type(loop).__name__, reply.decode(), slept

    print(sansloop.run(main()))

    async def full():
        queue = sansloop.compat.Queue()
        async with sansloop.compat.TaskGroup() as tg:
            for i in range(3):
                tg.create_task(queue.put(i * i))
        return sorted([queue.get_nowait() for _ in range(3)])

    print(sansloop.compat.run(full()))
    """
)


def _run(cmd: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs
    )  # type: ignore[call-overload]
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, ROOT])
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


@tier
def test_wheel_contents(dist: Path) -> None:
    wheel = _one(dist, f"sansloop-{sansloop.__version__}-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _declared_packages():
        path = package.replace(".", "/") + "/__init__.py"
        assert path in names, path
    assert "sansloop/py.typed" in names
    assert "sansloop/__main__.py" in names and "sansloop/repl.py" in names
    assert not any(n.startswith(("tests/", "src/", "benchmarks/")) for n in names)


@tier
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installs_in_a_fresh_venv_and_runs(dist: Path, tmp_path: Path, kind: str) -> None:
    artifact = _one(dist, "*.whl" if kind == "wheel" else "*.tar.gz")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", artifact])
    script = tmp_path / "smoke.py"
    script.write_text(SMOKE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONASYNCIODEBUG")}
    result = _run([python, script], cwd=tmp_path, env=env)
    assert result.stdout.splitlines() == ["('EventLoop', 'ping', 'slept')", "[0, 1, 4]"]
    info = _run([venv / "bin" / "sansloop", "info"], cwd=tmp_path, env=env)
    assert info.stdout.startswith(f"sansloop {sansloop.__version__}\n")
    hello = _run([python, "-m", "sansloop", "run", ROOT / "examples" / "hello.py"], cwd=tmp_path)
    assert hello.stdout.startswith("event loop: sansloop.compat.loop.EventLoop\n")
    # Installed from a wheel, the benchmarks are not there: bench says so.
    bench = subprocess.run(
        [str(python), "-m", "sansloop", "bench"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert bench.returncode == 2 and "not installed with the package" in bench.stderr
