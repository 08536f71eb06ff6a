"""The choice source: the one place a simulated run's randomness comes from.

Contract (``sansloop.testing`` builds on it; keep it stable)

    class ChoiceSource(Protocol):
        def choose(self, n: int, label: str) -> int: ...

``choose(n, label)`` returns an int in ``[0, n)``; *n* >= 1 (``n == 1`` always
returns 0 and may still be recorded). *label* names the decision for traces and
for strategies that want to steer one kind of decision (for example
``"tcp.segment"``, ``"link.latency"``, ``"udp.drop"``); it never changes the
meaning of the returned number.

**0 always means "the ordinary outcome"**: no reordering (keep the FIFO / the
first candidate), no fault (no loss, no duplication, no reset), the minimal
latency of a range, no segmentation (send the whole chunk). A source that
always returns 0 therefore gives the calmest possible run, and a hypothesis
draw that shrinks toward 0 gives the fewest reorderings and faults.

Every random decision of the simulation goes through one source, in a stable
order: the simulation never iterates a set or a dict of fds, sockets or hosts
in hash order before drawing. Given the same source outputs the same program
takes the same path, which is what makes a run replay exactly.

Implementations here:

- :class:`SeededChoices` -- ``random.Random(seed)``, the default;
- :class:`ZeroChoices` -- always 0 (the calm run);
- :class:`RecordingChoices` -- wraps another source and records every
  ``(label, n, value)`` draw (for replay tokens and for counting how many
  non-zero, i.e. unusual, decisions a run made);
- :class:`ReplayChoices` -- replays a recorded list of values, then 0.

Helpers :func:`chance` and :func:`pick_range` turn the primitive into the
shapes the simulation needs without bypassing it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

__all__ = [
    "ChoiceSource",
    "SeededChoices",
    "ZeroChoices",
    "RecordingChoices",
    "ReplayChoices",
    "chance",
    "pick_range",
]


@runtime_checkable
class ChoiceSource(Protocol):
    """Where every random decision of a simulated run comes from."""

    def choose(self, n: int, label: str) -> int:
        """An int in ``[0, n)``; 0 is the ordinary, calm outcome."""
        ...


def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"choose() needs an int n, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"choose() needs n >= 1, got {n}")


class SeededChoices:
    """The default source: a ``random.Random`` seeded once.

    The draw for ``n == 1`` consumes nothing, so adding a decision that can only
    go one way does not shift every later draw.
    """

    __slots__ = ("seed", "_rng", "draws")

    def __init__(self, seed: int | str | bytes = 0) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        #: how many draws with ``n > 1`` were made
        self.draws = 0

    def choose(self, n: int, label: str) -> int:
        """A uniform int in ``[0, n)``."""
        _check_n(n)
        if n == 1:
            return 0
        self.draws += 1
        return self._rng.randrange(n)

    def __repr__(self) -> str:
        return f"<SeededChoices seed={self.seed!r} draws={self.draws}>"


class ZeroChoices:
    """Always the ordinary outcome: no faults, no reordering, minimal latency."""

    __slots__ = ()

    def choose(self, n: int, label: str) -> int:
        """Always 0."""
        _check_n(n)
        return 0


class RecordingChoices:
    """Wrap *inner* and record each draw as ``(label, n, value)``."""

    __slots__ = ("inner", "record")

    def __init__(self, inner: ChoiceSource) -> None:
        self.inner = inner
        self.record: list[tuple[str, int, int]] = []

    def choose(self, n: int, label: str) -> int:
        """Draw from the wrapped source and remember the answer."""
        value = self.inner.choose(n, label)
        if not 0 <= value < n:
            raise ValueError(f"choice source {self.inner!r} returned {value} for n={n} ({label})")
        self.record.append((label, n, value))
        return value

    def values(self) -> list[int]:
        """The recorded values, in draw order."""
        return [v for _, _, v in self.record]

    def nonzero(self) -> int:
        """How many draws were not the ordinary outcome."""
        return sum(1 for _, _, v in self.record if v)


class ReplayChoices:
    """Replay *values* in order (each clamped into ``[0, n)``), then 0 forever."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Iterable[int]) -> None:
        self._values: Sequence[int] = list(values)
        self._index = 0

    def choose(self, n: int, label: str) -> int:
        """The next recorded value, or 0 when the record is used up."""
        _check_n(n)
        if self._index >= len(self._values):
            return 0
        value = self._values[self._index]
        self._index += 1
        return value % n if value >= n or value < 0 else value


def chance(choices: ChoiceSource, one_in: int, label: str) -> bool:
    """True with probability ``1/one_in`` under a uniform source.

    Uses ``choose(one_in, label)`` and answers True only for the last value
    (``one_in - 1``) so that 0 -- the ordinary outcome -- means "no".
    ``one_in <= 0`` disables the event without drawing.
    """
    if one_in <= 0:
        return False
    if one_in == 1:
        return True
    return choices.choose(one_in, label) == one_in - 1


def pick_range(
    choices: ChoiceSource, low: float, high: float, label: str, steps: int = 16
) -> float:
    """A value in ``[low, high]`` in *steps* equal steps; 0 picks *low*."""
    if high <= low:
        return low
    k = choices.choose(steps + 1, label)
    return low + (high - low) * k / steps
