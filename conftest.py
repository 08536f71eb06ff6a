"""Root conftest: keeps pyproject's pytest options valid with or without plugins.

pyproject configures pytest-asyncio (``asyncio_mode``,
``asyncio_default_fixture_loop_scope``), which the ``integration`` extra
installs. Without that plugin pytest would call those keys unknown, and the
suite's ``filterwarnings = error`` turns that into a failed run; so when the
plugin is absent (not installed, or disabled with ``-p no:asyncio``) this file
registers the two keys itself, as inert settings.
"""

from __future__ import annotations

import pytest

_PYTEST_ASYNCIO_KEYS = ("asyncio_mode", "asyncio_default_fixture_loop_scope")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.hasplugin("asyncio"):
        return
    for key in _PYTEST_ASYNCIO_KEYS:
        parser.addini(key, help=f"pytest-asyncio's {key} (inert: pytest-asyncio is not loaded)")
