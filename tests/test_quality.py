"""Quality gates run as tests, so that CI (= the test suite) enforces them.

- mypy in strict mode on src/core, the pure layer that is also a library API.
  mypy names these modules ``src.core.*`` (it cannot see the package-dir
  mapping to ``sansloop``), so strictness is asked for on the command line;
  ``--follow-imports=silent`` keeps the gate on core: the modules core pulls
  in (the ``sansloop`` front door) are read but not judged here.
- ruff's lint rules (pyproject's ``[tool.ruff]``) on src and tests.

Both tools come with the ``test`` extra (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def test_mypy_strict_on_core() -> None:
    result = _run("mypy", "--strict", "--follow-imports=silent", "--no-error-summary", "src/core")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check() -> None:
    result = _run("ruff", "check", "--no-cache", "--output-format", "concise", "src", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
