"""Every test that docs/reliability.md and docs/security.md name exists.

A promise is only as good as the test behind it: each ``tests/...py::name``
reference in the two pages must name a file that defines that test (a
parametrized test counts once), so a renamed or deleted test fails here
instead of leaving a promise unbacked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["reliability.md", "security.md"]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)?)`|`::(\w+)`")


def references(page: str) -> list[tuple[str, str]]:
    found = []
    last_file = ""
    for match in REFERENCE.finditer((ROOT / "docs" / page).read_text(encoding="utf-8")):
        path, name, continued = match.groups()
        if path:
            last_file = path
            found.append((path, name[2:]))
        else:  # `::name` continues the file named just before it
            found.append((last_file, continued))
    return found


@pytest.mark.parametrize("page", PAGES)
def test_every_named_test_exists(page: str) -> None:
    refs = references(page)
    assert len(refs) >= 15, refs
    missing = []
    for path, name in refs:
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert missing == []
