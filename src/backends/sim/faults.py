"""Fault plans: the faults of a simulated run, at virtual times.

A :class:`FaultPlan` is a list of timed actions built with chained calls::

    plan = (FaultPlan()
            .latency("client", "db", 0.010, 0.200)       # from t=0
            .partition("client", "db", at=5.0, heal=9.0)  # both ways
            .partition("a", "b", at=1.0, oneway=True)     # a->b only, never healed
            .reset("client", "db", at=3.0)                # RST every connection between them
            .crash("db", at=20.0, restart=30.0)
            .skew("db", offset=2.5, drift=0.0001))

``SimBackend(faults=plan)`` applies it: each action becomes an event on the
world's queue (so it is ordered with the traffic by (time, sequence)), and
each applied action is in the trace. :meth:`FaultPlan.random` draws a plan
from the choice source instead -- every draw labelled ``fault.*``, 0 meaning
"no fault" -- so a plan found by hypothesis shrinks toward fewer faults.

The plan is data (a list of tuples, ``repr``-able) so that it can be printed
in a failure report and written back as code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .choices import ChoiceSource, pick_range

if TYPE_CHECKING:
    from .world import World

__all__ = ["FaultPlan"]


class FaultPlan:
    """Timed faults to apply to a simulated world; see the module docstring."""

    def __init__(self, actions: Sequence[tuple[Any, ...]] = ()) -> None:
        #: (time, kind, *args), in the order they were added
        self.actions: list[tuple[Any, ...]] = list(actions)

    def _add(self, at: float, kind: str, *args: Any) -> FaultPlan:
        if at < 0:
            raise ValueError(f"a fault cannot happen before t=0 (got at={at})")
        self.actions.append((float(at), kind, *args))
        return self

    def latency(
        self,
        a: str,
        b: str,
        low: float,
        high: float | None = None,
        *,
        at: float = 0.0,
        both: bool = True,
    ) -> FaultPlan:
        """From *at*, latency a->b (and b->a when *both*) is drawn from [low, high]."""
        high = low if high is None else high
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low <= high, got {low}, {high}")
        return self._add(at, "latency", a, b, low, high, both)

    def partition(
        self, a: str, b: str, *, at: float = 0.0, heal: float | None = None, oneway: bool = False
    ) -> FaultPlan:
        """Cut a<->b (a->b only when *oneway*) at *at*; restore it at *heal*."""
        self._add(at, "partition", a, b, oneway)
        if heal is not None:
            if heal < at:
                raise ValueError("heal must not come before the partition")
            self._add(heal, "heal", a, b)
        return self

    def reset(self, a: str, b: str | None = None, *, at: float = 0.0) -> FaultPlan:
        """RST every TCP connection between a and b (of a, when b is None) at *at*."""
        return self._add(at, "reset", a, b)

    def crash(self, host: str, *, at: float = 0.0, restart: float | None = None) -> FaultPlan:
        """Crash *host* at *at* and bring it back at *restart* (never, if None)."""
        self._add(at, "crash", host)
        if restart is not None:
            if restart < at:
                raise ValueError("restart must not come before the crash")
            self._add(restart, "restart", host)
        return self

    def skew(
        self, host: str, offset: float = 0.0, drift: float = 0.0, *, at: float = 0.0
    ) -> FaultPlan:
        """From *at*, *host*'s clock reads *offset* seconds off and drifts by *drift*."""
        return self._add(at, "skew", host, offset, drift)

    @classmethod
    def random(
        cls,
        choices: ChoiceSource,
        hosts: Sequence[str],
        *,
        horizon: float = 60.0,
        max_faults: int = 3,
    ) -> FaultPlan:
        """Draw up to *max_faults* faults among *hosts* within [0, horizon].

        Each fault costs a few draws: whether there is one more (0 = stop), its
        kind, the hosts, the times. All-zero draws give an empty plan.
        """
        plan = cls()
        names = list(hosts)
        if not names:
            return plan
        kinds = ("partition", "oneway", "crash", "reset", "latency", "skew")
        for _ in range(max_faults):
            if choices.choose(2, "fault.more") == 0:
                break
            kind = kinds[choices.choose(len(kinds), "fault.kind")]
            a = names[choices.choose(len(names), "fault.host")]
            b = names[choices.choose(len(names), "fault.peer")]
            at = pick_range(choices, 0.0, horizon, "fault.at")
            length = pick_range(choices, 0.0, horizon / 2, "fault.length")
            if kind in ("partition", "oneway"):
                plan.partition(a, b, at=at, heal=at + length, oneway=kind == "oneway")
            elif kind == "crash":
                plan.crash(a, at=at, restart=at + length)
            elif kind == "reset":
                plan.reset(a, b, at=at)
            elif kind == "latency":
                plan.latency(a, b, 0.0, pick_range(choices, 0.001, 2.0, "fault.latency"), at=at)
            else:
                plan.skew(a, offset=pick_range(choices, -5.0, 5.0, "fault.skew"))
        return plan

    def schedule(self, world: World, reset_between: Any) -> None:
        """Put every action on *world*'s queue; *reset_between(a, b)* resets connections."""
        for action in self.actions:
            world.at(action[0], _apply, world, action, reset_between)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultPlan) and other.actions == self.actions

    def __repr__(self) -> str:
        return f"FaultPlan({self.actions!r})"


def _apply(world: World, action: tuple[Any, ...], reset_between: Any) -> None:
    kind = action[1]
    args = action[2:]
    world.record("fault", kind, *map(str, args))
    if kind == "latency":
        a, b, low, high, both = args
        world.host(a), world.host(b)
        world.latency[(a, b)] = (low, high)
        if both:
            world.latency[(b, a)] = (low, high)
    elif kind == "partition":
        a, b, oneway = args
        world.partition(a, b, oneway=oneway)
    elif kind == "heal":
        world.heal(*args)
    elif kind == "reset":
        reset_between(*args)
    elif kind == "crash":
        world.crash(args[0])
    elif kind == "restart":
        world.restart(args[0])
    elif kind == "skew":
        host, offset, drift = args
        clock = world.host(host).clock
        clock.offset, clock.drift = offset, drift
    else:  # pragma: no cover - _add only makes the kinds above
        raise ValueError(f"unknown fault {kind!r}")
