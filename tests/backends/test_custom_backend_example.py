"""The worked example of docs/backends.md passes the conformance suite."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from sansloop.backends.conformance import BackendConformance

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_backend.py"


def _load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("custom_backend_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()


class TestCustomBackendExample(BackendConformance):
    factory = staticmethod(example.SelectBackend)


def test_example_is_short() -> None:
    code = [line for line in EXAMPLE.read_text().splitlines() if line.strip()]
    assert len(code) <= 90


def test_command_line_runner_passes_the_example() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sansloop.backends.conformance",
            "examples.custom_backend:SelectBackend",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert "checks passed" in result.stdout


def test_command_line_runner_fails_a_broken_backend(tmp_path: Path) -> None:
    (tmp_path / "broken_backend.py").write_text(
        "from sansloop.backends.poll import PollBackend\n"
        "class NoKeyError(PollBackend):\n"
        "    def unregister(self, fd):\n"
        "        if fd in self._interest:\n"
        "            super().unregister(fd)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sansloop.backends.conformance", "broken_backend:NoKeyError"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert result.returncode == 1
    assert "FAIL broken_backend:NoKeyError test_unregister_unknown_raises_keyerror" in result.stdout


def test_the_guide_shows_the_example_as_it_is() -> None:
    guide = (ROOT / "docs" / "backends.md").read_text()
    start = guide.index("```python\nimport select\n") + len("```python\n")
    shown = guide[start : guide.index("```", start)]
    assert shown.strip() in EXAMPLE.read_text()
    assert shown.count("\n") >= 60
