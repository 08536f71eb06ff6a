"""The suite's autouse leak check (tests/conftest.py) fails the tests it should.

A throwaway test directory gets a copy of tests/conftest.py and five tests:
a clean one, one leaking an fd, one leaving a thread running, one leaking a
socket into a reference cycle (its ResourceWarning surfaces at collection),
and one leaking on purpose under ``allow_leaks``. pytest runs them in a
child process; only the three leaky ones may fail, each for its reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = """
import os, socket, threading

def test_clean():
    os.close(os.open(os.devnull, os.O_RDONLY))

def test_leaks_an_fd():
    test_leaks_an_fd.fd = os.open(os.devnull, os.O_RDONLY)

STOP = threading.Event()

def test_leaves_a_thread_running():
    threading.Thread(target=STOP.wait, args=(10,), daemon=True).start()

def test_leaks_a_socket_into_a_cycle():
    holder = {"sock": socket.socket()}
    holder["self"] = holder

import pytest

@pytest.mark.allow_leaks("on purpose, to test the marker")
def test_allowed():
    test_allowed.fd = os.open(os.devnull, os.O_RDONLY)
"""


def test_the_leak_check_fails_exactly_the_leaky_tests(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parent.parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(TESTS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "-W",
            "error",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    out = result.stdout + result.stderr
    assert "5 passed, 3 errors" in out, out
    assert "ERROR test_sample.py::test_leaks_an_fd" in out
    assert "ERROR test_sample.py::test_leaves_a_thread_running" in out
    assert "ERROR test_sample.py::test_leaks_a_socket_into_a_cycle" in out
    assert "1 more open fds: ['" in out and "-> /dev/null']" in out
    assert "thread still running" in out
    assert "ResourceWarning: unclosed <socket.socket" in out
