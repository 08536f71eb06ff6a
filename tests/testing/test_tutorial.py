"""docs/simulation.md's tutorial is an executable test: this file runs its code.

The code blocks marked ``<!-- tutorial: app -->``, ``test`` and ``fix`` are read
from the page and executed, so the page and this test cannot drift apart.
Checked, as the tutorial claims:

- hypothesis finds the planted bug within its default budget (100 examples;
  the run is derandomized so that CI sees the same search every time);
- the shrunk failure has at most 3 unusual decisions (counted from its replay
  token, which records every decision);
- the token replays to the same failure, without hypothesis;
- the fixed cache passes the same test.
"""

from __future__ import annotations

import linecache
import re
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from sansloop import sim

PAGE = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"


def _blocks(tag: str) -> str:
    text = PAGE.read_text()
    found = re.findall(rf"<!-- tutorial: {tag} -->\n```python\n(.*?)```", text, re.S)
    assert len(found) == 1, f"docs/simulation.md has {len(found)} '{tag}' blocks"
    return str(found[0])


def _tutorial() -> types.ModuleType:
    module = types.ModuleType("tutorial")
    code = _blocks("app") + "\n" + _blocks("test") + "\n" + _blocks("fix")
    # A source of its own in linecache, so that tracebacks and inspect (which
    # hypothesis uses) read the tutorial's code, not the markdown around it.
    filename = "<tutorial from docs/simulation.md>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    exec(compile(code, filename, "exec"), module.__dict__)
    return module


def _failing_run(test: Any) -> tuple[AssertionError, list[bool]]:
    """Run the hypothesis test, derandomized; the failure, and which examples failed."""
    failed: list[bool] = []
    inner = test.hypothesis.inner_test

    def counting(world: Any) -> None:
        try:
            inner(world)
        except AssertionError:
            failed.append(True)
            raise
        failed.append(False)

    test.hypothesis.inner_test = counting
    try:
        _derandomized(test)
    except AssertionError as exc:
        return exc, failed
    finally:
        test.hypothesis.inner_test = inner
    raise AssertionError("hypothesis did not find the planted bug")


def _derandomized(test: Any) -> None:
    """Call a @given test with the page's settings plus a fixed search, no database."""
    page_settings = test._hypothesis_internal_use_settings
    test._hypothesis_internal_use_settings = settings(
        page_settings, derandomize=True, database=None
    )
    try:
        test()
    finally:
        test._hypothesis_internal_use_settings = page_settings


# a few seconds of CPU; far more wall time on a loaded 2-core machine
@pytest.mark.timeout(240)
def test_hypothesis_finds_shrinks_and_replays_the_stale_cache() -> None:
    tutorial = _tutorial()
    test = tutorial.test_the_cache_agrees_with_the_service
    # the page's test uses hypothesis's default budget
    assert test._hypothesis_internal_use_settings.max_examples == 100

    error, failed = _failing_run(test)
    assert failed.index(True) < 100  # found while generating, within the budget

    notes = getattr(error, "__notes__", [])
    token_notes = [n for n in notes if n.startswith("sansloop replay token: ")]
    assert token_notes, notes
    token = token_notes[-1].split(": ", 1)[1]
    decisions = sim.decode_token(token)["c"]
    unusual = [v for v in decisions if v]
    assert 1 <= len(unusual) <= 3, notes
    assert any(n.startswith("sansloop world: ") and "unusual" in n for n in notes)

    with pytest.raises(AssertionError):
        sim.replay(token, tutorial.scenario)


@pytest.mark.timeout(240)
def test_the_fixed_cache_passes() -> None:
    tutorial = _tutorial()
    tutorial.Cache = tutorial.FixedCache  # the scenario looks Cache up when it runs
    test = tutorial.test_the_cache_agrees_with_the_service
    _derandomized(test)
