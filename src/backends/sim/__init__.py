"""sansloop.backends.sim: the deterministic simulation backend.

One job per module: ``choices`` (the seeded choice source every random decision
goes through). The public face is :mod:`sansloop.sim`.
"""

from __future__ import annotations

from .choices import ChoiceSource, RecordingChoices, ReplayChoices, SeededChoices, ZeroChoices

__all__ = ["ChoiceSource", "RecordingChoices", "ReplayChoices", "SeededChoices", "ZeroChoices"]
