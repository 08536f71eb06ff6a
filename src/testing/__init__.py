"""sansloop.testing: tools for testing asyncio programs with sansloop.

Contract
--------
- Cancellation-point fuzzing (no extra dependency):
  :func:`cancel_at` and :func:`cancellation_points` cancel a coroutine at its
  k-th await point, for every k, on any loop (sansloop.testing.cancellation).
- Hypothesis integration (needs ``hypothesis``, imported on first use):
  :class:`HypothesisChoices`, a ``ChoiceSource`` whose every decision is a
  hypothesis draw (so a failing run shrinks toward the fewest unusual
  decisions), and the strategies :func:`choices`, :func:`schedules`,
  :func:`fault_plans` and :func:`worlds` (sansloop.testing.strategies).
- A pytest plugin (sansloop.testing.plugin, registered under the ``pytest11``
  entry point): the fixtures ``sansloop_sim`` and ``sim_loop`` seeded from
  ``--sansloop-seed``.

Nothing here touches the OS: the loops and worlds it runs in are made by
sansloop's compat layer and the simulated backend.
"""

from __future__ import annotations

from typing import Any

from .cancellation import (
    AwaitPoint,
    CancelAt,
    CancellationReport,
    PointOutcome,
    cancel_at,
    cancellation_points,
)

__all__ = [
    "AwaitPoint",
    "CancelAt",
    "CancellationReport",
    "HypothesisChoices",
    "PointOutcome",
    "SimWorld",
    "cancel_at",
    "cancellation_points",
    "choices",
    "fault_plans",
    "schedules",
    "worlds",
]

_HYPOTHESIS_NAMES = {
    "HypothesisChoices",
    "SimWorld",
    "choices",
    "fault_plans",
    "schedules",
    "worlds",
}


def __getattr__(name: str) -> Any:
    # The strategies need hypothesis; importing sansloop.testing must not.
    if name in _HYPOTHESIS_NAMES:
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
