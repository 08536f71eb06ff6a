"""The layer rules of DESIGN.md, enforced by reading the source (AST, no import).

- core (src/core) imports nothing of sansloop outside sansloop.core (so neither
  backends nor compat nor the front door that pulls them in), relative or
  absolute, at run time or under ``TYPE_CHECKING``;
- core imports none of the modules that reach the outside world (sockets,
  readiness, threads, processes, signals, clocks), and of asyncio only
  ``asyncio.exceptions`` (exception identity);
- core calls no clock or OS I/O function (``time.monotonic()``, ``os.read()``,
  ...), however the name was imported or aliased, and imports nothing
  dynamically (``__import__``, ``importlib``);
- backends import nothing of sansloop outside backends and core;
- compat and the front door call no clock, readiness, socket-factory, name
  resolution, thread, process or signal function themselves: they ask the
  backend (the few exceptions are listed with their reasons).

The scanner is tested on synthetic bad files too, so that a rule cannot pass
by scanning nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

#: Top-level stdlib modules core must not import: they reach the OS, a clock,
#: threads or the event loop.
FORBIDDEN_IN_CORE = frozenset(
    {
        "_socket",
        "_thread",
        "asyncio",  # except asyncio.exceptions, see _forbidden_module
        "concurrent",
        "ctypes",
        "fcntl",
        "mmap",
        "multiprocessing",
        "queue",
        "sched",
        "select",
        "selectors",
        "signal",
        "socket",
        "subprocess",
        "threading",
        "time",
    }
)

#: Calls that read a clock or do OS I/O; core is handed ``now`` and bytes instead.
FORBIDDEN_CALLS = frozenset(
    {f"os.{name}" for name in (
        "read", "write", "open", "close", "pipe", "pipe2", "dup", "dup2", "fork",
        "kill", "killpg", "waitpid", "system", "popen", "set_blocking", "sendfile",
        "readv", "writev", "urandom", "getrandom", "times", "fsync", "lseek",
    )}
    | {"datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
       "datetime.date.today", "datetime.now", "datetime.utcnow", "datetime.today",
       "__import__", "importlib.import_module", "importlib.__import__"}
)  # fmt: skip

#: Any attribute of these modules, called from core, is a clock or a syscall.
FORBIDDEN_CALL_MODULES = frozenset({"time", "socket", "select", "signal", "subprocess"})


def _package_of(path: Path, src: Path) -> list[str]:
    """The dotted package (as parts) that a file's relative imports start from."""
    parts = ["sansloop", *path.relative_to(src).with_suffix("").parts]
    return parts[:-1]  # a module's package; for __init__, the package itself


def _imported_names(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    """Every dotted name an import statement may bind (module and module.attr)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base_parts = package[: len(package) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _forbidden_module(name: str) -> bool:
    top = name.split(".")[0]
    if top == "asyncio":
        return not (name == "asyncio.exceptions" or name.startswith("asyncio.exceptions."))
    return top in FORBIDDEN_IN_CORE


def _aliases(tree: ast.AST, package: list[str]) -> dict[str, str]:
    """Local name -> dotted name it stands for, from the module's imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = _imported_names(node, package)[0]
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
    return names


def _dotted(expr: ast.expr, aliases: dict[str, str]) -> str | None:
    """``a.b.c`` for a call target made of names and attributes, aliases resolved."""
    attrs: list[str] = []
    while isinstance(expr, ast.Attribute):
        attrs.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    head = aliases.get(expr.id, expr.id)
    return ".".join([head, *reversed(attrs)])


def _own_imports(path: Path, src: Path, allowed: tuple[str, ...]) -> list[str]:
    """Imports of sansloop modules outside the *allowed* subpackages."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(path, src)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names = _imported_names(node, package)
        if isinstance(node, ast.ImportFrom):
            base, *members = names
            # `from .. import core` names sansloop.core; `from .. import x` otherwise
            # reaches the front door, which imports every layer.
            names = members if base == "sansloop" else [base]
        for name in names:
            if name != "sansloop" and not name.startswith("sansloop."):
                continue
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                problems.append(f"{path.name}:{node.lineno}: imports {name}")
    return problems


def scan_core_file(path: Path, src: Path) -> list[str]:
    """Every breach of core's rules in one file, as 'file:line: what'."""
    problems = _own_imports(path, src, ("sansloop.core",))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(path, src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in _imported_names(node, package):
                if _forbidden_module(name):
                    problems.append(f"{path.name}:{node.lineno}: imports {name}")
        elif isinstance(node, ast.ImportFrom) and not node.level:
            base, *members = _imported_names(node, package)
            if _forbidden_module(base) and any(_forbidden_module(m) for m in members):
                problems.append(f"{path.name}:{node.lineno}: imports from {base}")
            for member in members:
                if member in FORBIDDEN_CALLS:
                    problems.append(f"{path.name}:{node.lineno}: imports {member}")
    problems += _forbidden_calls(path, tree, package, FORBIDDEN_CALLS, FORBIDDEN_CALL_MODULES)
    return problems


def _forbidden_calls(
    path: Path, tree: ast.AST, package: list[str], names: frozenset[str], modules: frozenset[str]
) -> list[str]:
    """Calls of the dotted *names*, or of anything in *modules*, aliases resolved."""
    aliases = _aliases(tree, package)
    problems: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target = _dotted(node.func, aliases)
            if target is None:
                continue
            if target in names or target.split(".")[0] in modules:
                problems.append((node.lineno, f"{path.name}:{node.lineno}: calls {target}()"))
    return [problem for _, problem in sorted(problems)]


def scan_backend_file(path: Path, src: Path) -> list[str]:
    """Every import a backend makes of sansloop outside backends and core."""
    return _own_imports(path, src, ("sansloop.backends", "sansloop.core"))


#: What compat and the front door must ask the backend for instead of calling:
#: the clock, readiness, sockets and name resolution, threads, processes, signals.
#: (Methods of socket objects the user hands in are not visible to this scan.)
COMPAT_FORBIDDEN_CALLS = FORBIDDEN_CALLS | frozenset(
    {f"socket.{name}" for name in (
        "socket", "socketpair", "fromfd", "create_connection", "create_server",
        "getaddrinfo", "getnameinfo", "gethostbyname",
    )}
    | {"threading.Thread", "threading.Timer", "_thread.start_new_thread",
       "concurrent.futures.ThreadPoolExecutor", "concurrent.futures.ProcessPoolExecutor",
       "os.waitpid", "os.waitstatus_to_exitcode", "os.pidfd_open"}
)  # fmt: skip
COMPAT_FORBIDDEN_CALL_MODULES = frozenset({"time", "select", "selectors", "subprocess", "signal"})


#: Exceptions by file, each with its reason.
COMPAT_ALLOWED_CALLS = {
    # asyncio.Runner routes Ctrl-C to the main task by swapping the interpreter's
    # SIGINT handler (main thread only); that is Python-level handler
    # bookkeeping, not the loop's signal I/O, which is the backend's.
    "runners.py": {"signal.getsignal", "signal.signal"},
}


def scan_compat_file(path: Path, src: Path) -> list[str]:
    """Every clock or OS call made directly by compat or the front door."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    allowed = COMPAT_ALLOWED_CALLS.get(path.name, set())
    return [
        problem
        for problem in _forbidden_calls(
            path,
            tree,
            _package_of(path, src),
            COMPAT_FORBIDDEN_CALLS,
            COMPAT_FORBIDDEN_CALL_MODULES,
        )
        if problem.split(": calls ", 1)[1].removesuffix("()") not in allowed
    ]


def _python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


# -- the real tree -----------------------------------------------------------


def test_the_scan_covers_the_layers() -> None:
    core = [p.name for p in _python_files(SRC / "core")]
    backends = [p.name for p in _python_files(SRC / "backends")]
    assert {"__init__.py", "scheduler.py", "handles.py"} <= set(core)
    assert {"__init__.py", "base.py"} <= set(backends)
    compat = [p.name for p in _compat_and_front_door()]
    assert {"loop.py", "__init__.py", "cli.py", "__main__.py"} <= set(compat)


@pytest.mark.parametrize("path", _python_files(SRC / "core"), ids=lambda p: p.name)
def test_core_is_pure(path: Path) -> None:
    assert scan_core_file(path, SRC) == []


@pytest.mark.parametrize("path", _python_files(SRC / "backends"), ids=lambda p: p.name)
def test_backends_do_not_import_compat(path: Path) -> None:
    assert scan_backend_file(path, SRC) == []


def _compat_and_front_door() -> list[Path]:
    return _python_files(SRC / "compat") + sorted(SRC.glob("*.py"))


@pytest.mark.parametrize("path", _compat_and_front_door(), ids=lambda p: str(p.relative_to(SRC)))
def test_compat_asks_the_backend_for_the_outside_world(path: Path) -> None:
    assert scan_compat_file(path, SRC) == []


# -- the scanner can fail ----------------------------------------------------

BAD_CORE = '''\
"""A core module that breaks every rule."""
import socket
import time as clock
import asyncio
import threading, select
from asyncio import Future
from asyncio import events
from os import read
from typing import TYPE_CHECKING
import os as _os
import sansloop.backends.epoll
from sansloop import compat
from .. import backends
from ..compat.loop import EventLoop
from .. import __version__
import importlib

if TYPE_CHECKING:
    from ..backends.base import Backend

def now():
    return clock.monotonic()

def chatter(fd):
    _os.write(fd, b"x")
    return read(fd, 1)

def sneaky():
    return importlib.import_module("sansloop.compat"), __import__("socket")
'''

GOOD_CORE = '''\
"""A core module that keeps the rules."""
from __future__ import annotations
import asyncio.exceptions
from asyncio import exceptions
from asyncio.exceptions import CancelledError, InvalidStateError
import os
import sys
from . import binding
from .handles import Handle
from ..core import scheduler
from sansloop.core.formatting import format_callback_source

def path(p):
    return os.fspath(p)

def frame():
    return sys._getframe(1)
'''


def _write(tmp_path: Path, relative: str, text: str) -> tuple[Path, Path]:
    src = tmp_path / "src"
    path = src / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path, src


def test_scanner_reports_every_breach_in_a_bad_core_module(tmp_path: Path) -> None:
    path, src = _write(tmp_path, "core/bad.py", BAD_CORE)
    found = "\n".join(scan_core_file(path, src))
    expected = [
        "bad.py:2: imports socket",
        "bad.py:3: imports time",
        "bad.py:4: imports asyncio",
        "bad.py:5: imports threading",
        "bad.py:5: imports select",
        "bad.py:6: imports from asyncio",
        "bad.py:7: imports from asyncio",
        "bad.py:8: imports os.read",
        "bad.py:11: imports sansloop.backends.epoll",
        "bad.py:12: imports sansloop.compat",
        "bad.py:13: imports sansloop.backends",
        "bad.py:14: imports sansloop.compat.loop",
        "bad.py:15: imports sansloop.__version__",
        "bad.py:19: imports sansloop.backends.base",
        "bad.py:22: calls time.monotonic()",
        "bad.py:25: calls os.write()",
        "bad.py:26: calls os.read()",
        "bad.py:29: calls importlib.import_module()",
        "bad.py:29: calls __import__()",
    ]
    missing = [line for line in expected if line not in found]
    assert missing == [], found


def test_scanner_accepts_a_good_core_module(tmp_path: Path) -> None:
    path, src = _write(tmp_path, "core/good.py", GOOD_CORE)
    assert scan_core_file(path, src) == []


def test_scanner_resolves_relative_imports_in_a_subpackage(tmp_path: Path) -> None:
    path, src = _write(
        tmp_path,
        "core/tls/__init__.py",
        "from .. import handles\nfrom ... import compat\nfrom ...backends import base\n",
    )
    assert scan_core_file(path, src) == [
        "__init__.py:2: imports sansloop.compat",
        "__init__.py:3: imports sansloop.backends",
    ]


def test_scanner_reports_a_backend_importing_compat(tmp_path: Path) -> None:
    text = (
        "from .base import Backend\n"
        "from ..core.scheduler import Scheduler\n"
        "from ..compat.loop import EventLoop\n"
        "import sansloop.compat\n"
    )
    path, src = _write(tmp_path, "backends/bad.py", text)
    assert scan_backend_file(path, src) == [
        "bad.py:3: imports sansloop.compat.loop",
        "bad.py:4: imports sansloop.compat",
    ]


def test_scanner_reports_compat_calling_the_os(tmp_path: Path) -> None:
    text = (
        "import socket, threading, time\n"
        "from time import monotonic as now\n"
        "import os\n"
        "def f():\n"
        "    threading.get_ident()\n"
        "    socket.AF_INET\n"
        "    os.path.exists('x')\n"
        "    s = socket.socket()\n"
        "    threading.Thread(target=f).start()\n"
        "    os.write(1, b'x')\n"
        "    return now(), time.time()\n"
    )
    path, src = _write(tmp_path, "compat/bad.py", text)
    assert scan_compat_file(path, src) == [
        "bad.py:8: calls socket.socket()",
        "bad.py:9: calls threading.Thread()",
        "bad.py:10: calls os.write()",
        "bad.py:11: calls time.monotonic()",
        "bad.py:11: calls time.time()",
    ]
