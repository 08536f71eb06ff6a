"""The fuzz tiers: fast by default, longer and shared when the environment asks.

By default every fuzzer runs the example budget written in its file (the fast
tier CI runs). Two environment variables turn the same tests into the long
tier (docs/fuzzing.md):

- ``SANSLOOP_FUZZ_EXAMPLES=N``: every hypothesis test under fuzz/ (``@given``
  functions and rule-based state machines) runs N examples instead;
- ``SANSLOOP_FUZZ_DB=<where>``: hypothesis's example database, shared by
  every worker and every run: a directory path
  (``DirectoryBasedExampleDatabase``, e.g. on a shared file system) or
  ``redis://host:port/db`` (``RedisExampleDatabase``, needs the ``redis``
  package). Failing examples saved there are replayed first by everyone.

Nothing here distributes work: pytest-xdist (``-n auto``) spreads the tests
over cores; the database shares what each found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

FUZZ_DIR = Path(__file__).resolve().parent


def _database() -> ExampleDatabase | None:
    where = os.environ.get("SANSLOOP_FUZZ_DB")
    if not where:
        return None
    if where.startswith("redis://"):
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase

        return RedisExampleDatabase(redis.Redis.from_url(where))
    return DirectoryBasedExampleDatabase(where)


def _override() -> dict[str, Any]:
    changes: dict[str, Any] = {}
    examples = os.environ.get("SANSLOOP_FUZZ_EXAMPLES")
    if examples:
        changes["max_examples"] = int(examples)
    database = _database()
    if database is not None:
        changes["database"] = database
    return changes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    changes = _override()
    if not changes:
        return
    done: set[int] = set()
    for item in items:
        if FUZZ_DIR not in Path(str(item.path)).resolve().parents:
            continue
        cls = getattr(item, "cls", None)
        if cls is not None and isinstance(getattr(cls, "settings", None), settings):
            target: Any = cls  # a rule-based state machine's TestCase
        else:
            target = getattr(item, "obj", None)
            if not hasattr(target, "_hypothesis_internal_use_settings"):
                continue
        if id(target) in done:
            continue
        done.add(id(target))
        if target is cls:
            cls.settings = settings(cls.settings, **changes)
        else:
            target._hypothesis_internal_use_settings = settings(
                target._hypothesis_internal_use_settings, **changes
            )
