"""The documentation builds: Sphinx + MyST, warnings as errors, API from docstrings.

The build needs the ``docs`` extra (``pip install -e '.[docs]'``; ``.ci/run``
installs it). Without Sphinx the build test is skipped, saying so; the
coverage checks below need nothing.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_core_module_is_in_the_api_reference() -> None:
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"automodule:: sansloop\.core\.(\w+)", api))
    modules = {p.stem for p in (ROOT / "src" / "core").glob("*.py") if p.stem != "__init__"}
    assert modules - documented == set(), "add them to docs/api.md"
    assert documented - modules == set(), "remove them from docs/api.md"


def test_the_toctree_takes_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    assert ":glob:" in toctree and "\n*\n" in toctree  # a new page joins by itself


@pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("myst_parser") is None,
    reason="the docs extra is not installed (pip install -e '.[docs]')",
)
@pytest.mark.timeout(300)  # about 10 s of CPU; far more on a loaded 2-core machine
def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html"]
        + ["-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=290,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    api = (out / "api.html").read_text(encoding="utf-8")
    for anchor in (
        "sansloop.new_event_loop",
        "sansloop.compat.loop.EventLoop.create_connection",
        "sansloop.backends.base.Backend.poll",
        "sansloop.core.scheduler.Scheduler",
        "sansloop.core.tls.TLSMachine",
    ):
        assert f'id="{anchor}"' in api, anchor
    assert (out / "quickstart.html").exists() and (out / "compat.html").exists()
