"""Hypothesis strategies over the simulation's choice source.

Contract
--------
A simulated run (``sansloop.sim``) takes every random decision from one
``ChoiceSource``: ``choose(n, label)`` -> an int in ``[0, n)``, where 0 is the
ordinary outcome (keep the order, no fault, minimal latency, no split).
:class:`HypothesisChoices` answers each decision with a hypothesis draw,
``integers(0, n - 1)``, made while the program runs. Hypothesis shrinks
integers toward 0, so a failing run shrinks toward the fewest unusual
decisions: the fewest reorderings and faults that still make it fail.

Strategies:

- :func:`choices` -- a :class:`HypothesisChoices`, drawing every decision or
  only the labels you name;
- :func:`schedules` -- one that draws only ordering, timing and
  fragmentation decisions (``poll.order``, latencies, segmentation, short
  writes, executor durations, ``random.seed``): faults stay off;
- :func:`fault_plans` -- a ``FaultPlan`` among given hosts, drawn up front (so
  it is printed with the failing example);
- :func:`worlds` -- a :class:`SimWorld`: a schedule, optionally faults, and
  the world's options; ``world.run(main)`` runs a coroutine function in it
  (``sansloop.sim.run``) and ``world.backend()`` makes a ``SimBackend`` for a
  loop you drive.

Decisions are drawn lazily, while the program runs, after the strategy has
returned its object: hypothesis records them in the example as usual (the
object keeps the ``draw`` of the example it was made in). After a run the
world adds a hypothesis ``note`` listing its unusual decisions and the replay
token, so the failing example that hypothesis prints says what went wrong
and how to run it again without hypothesis (``sansloop.sim.replay``).

This module imports hypothesis; ``sansloop.testing`` imports it on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import Frozen, StopTest

from sansloop.backends.sim.backend import SimBackend
from sansloop.backends.sim.faults import FaultPlan

__all__ = [
    "FAULT_LABELS",
    "SCHEDULE_LABELS",
    "HypothesisChoices",
    "SimWorld",
    "choices",
    "fault_plans",
    "schedules",
    "worlds",
]

#: label families of the decisions that inject a fault
FAULT_LABELS: tuple[str, ...] = ("tcp.reset", "udp.loss", "udp.dup", "fault.")
#: label families of ordering, timing and fragmentation decisions
SCHEDULE_LABELS: tuple[str, ...] = (
    "poll.order",
    "tcp.latency",
    "udp.latency",
    "tcp.segment",
    "tcp.send.short",
    "executor.",
    "random.",
)
#: decisions drawn from hypothesis per run at most; later ones are 0
DEFAULT_MAX_DRAWS = 2000


#: integers(0, n - 1) by n, made once
_RANGES: dict[int, st.SearchStrategy[int]] = {}


def _matches(label: str, families: Sequence[str]) -> bool:
    return any(label == f or label.startswith(f if f.endswith(".") else f + ".") for f in families)


class HypothesisChoices:
    """A ``ChoiceSource`` whose decisions are hypothesis draws.

    *draw* draws a value from a strategy: ``data.draw`` of ``st.data()``
    inside a test, or the ``draw`` of a ``@st.composite`` strategy. *wanted*
    says which labels are drawn (default: all); the others get 0, the ordinary
    outcome. After *max_draws* draws every decision is 0 (a long run does not
    exhaust the example's budget).

    ``record`` holds every ``(label, n, value)`` decision; ``values()`` the
    values (what ``sansloop.sim.ReplayChoices`` replays), ``unusual()`` the
    decisions that were not 0.
    """

    __slots__ = ("_draw", "_wanted", "max_draws", "drawn", "record", "stopped")

    def __init__(
        self,
        draw: Callable[[st.SearchStrategy[int]], int],
        *,
        wanted: Callable[[str], bool] | None = None,
        max_draws: int = DEFAULT_MAX_DRAWS,
    ) -> None:
        if not callable(draw):
            raise TypeError(f"draw must be callable (data.draw), got {draw!r}")
        self._draw = draw
        self._wanted = wanted
        self.max_draws = max_draws
        #: decisions drawn from hypothesis
        self.drawn = 0
        self.record: list[tuple[str, int, int]] = []
        #: hypothesis ended the example during a draw (it ran out of choices):
        #: later decisions are 0 and :meth:`check` re-raises this
        self.stopped: StopTest | None = None

    def choose(self, n: int, label: str) -> int:
        """A hypothesis draw in ``[0, n)`` (0 for unwanted labels and ``n == 1``)."""
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"choose() needs an int n, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"choose() needs n >= 1, got {n}")
        value = 0
        if (
            n > 1
            and self.stopped is None
            and self.drawn < self.max_draws
            and (self._wanted is None or self._wanted(label))
        ):
            self.drawn += 1
            strategy = _RANGES.get(n)
            if strategy is None:
                strategy = _RANGES[n] = st.integers(min_value=0, max_value=n - 1)
            try:
                value = self._draw(strategy)
            except StopTest as stop:
                # Raised inside the loop (a callback, a socket call) it would
                # be taken for the program's error; the run goes on calmly and
                # check() hands it to hypothesis afterwards.
                self.stopped = stop
            except Frozen:
                # The example is over (a transport collected afterwards
                # closing its socket): nothing more is recorded.
                self.stopped = StopTest(0)
        self.record.append((label, n, value))
        return value

    def check(self) -> None:
        """Re-raise the StopTest hypothesis raised during a draw, if any.

        Call it after the run when driving a loop yourself
        (:meth:`SimWorld.run` does): hypothesis then discards the example.
        """
        if self.stopped is not None:
            raise self.stopped

    def values(self) -> list[int]:
        """Every decision's value, in order."""
        return [v for _, _, v in self.record]

    def unusual(self) -> list[tuple[int, str, int]]:
        """``(position, label, value)`` of each decision that was not 0."""
        return [(i, label, v) for i, (label, _, v) in enumerate(self.record) if v]

    def describe(self) -> str:
        """One line: how many decisions, and the unusual ones."""
        odd = self.unusual()
        shown = ", ".join(f"#{i} {label}={v}" for i, label, v in odd[:12])
        more = f", ... {len(odd) - 12} more" if len(odd) > 12 else ""
        return f"{len(self.record)} decisions, {len(odd)} unusual" + (
            f": {shown}{more}" if odd else ""
        )

    def __repr__(self) -> str:
        return f"<HypothesisChoices {self.describe()}>"


def _label_filter(
    include: Iterable[str] | None, exclude: Iterable[str] | None
) -> Callable[[str], bool] | None:
    inc = tuple(include) if include is not None else None
    exc = tuple(exclude) if exclude is not None else ()
    if inc is None and not exc:
        return None

    def wanted(label: str) -> bool:
        if exc and _matches(label, exc):
            return False
        return inc is None or _matches(label, inc)

    return wanted


@st.composite
def _choices(
    draw: st.DrawFn,
    include: tuple[str, ...] | None,
    exclude: tuple[str, ...] | None,
    max_draws: int,
) -> HypothesisChoices:
    return HypothesisChoices(draw, wanted=_label_filter(include, exclude), max_draws=max_draws)


def choices(
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    max_draws: int = DEFAULT_MAX_DRAWS,
) -> st.SearchStrategy[HypothesisChoices]:
    """A :class:`HypothesisChoices` drawing every decision, or only some.

    *include* / *exclude* are label families (``"tcp.segment"`` matches
    ``tcp.segment`` and ``tcp.segment.at``; a family ending in ``.`` matches
    the labels it prefixes). Decisions not drawn are 0.
    """
    return _choices(
        tuple(include) if include is not None else None,
        tuple(exclude) if exclude is not None else None,
        max_draws,
    )


def schedules(*, max_draws: int = DEFAULT_MAX_DRAWS) -> st.SearchStrategy[HypothesisChoices]:
    """A choice source drawing orderings, timings and fragmentation; never a fault.

    Every label not known as a fault (:data:`FAULT_LABELS`) is drawn, so an
    ordering decision the simulation adds later is drawn too.
    """
    return choices(exclude=FAULT_LABELS, max_draws=max_draws)


@st.composite
def _fault_plans(
    draw: st.DrawFn, hosts: tuple[str, ...], horizon: float, max_faults: int
) -> FaultPlan:
    return FaultPlan.random(HypothesisChoices(draw), hosts, horizon=horizon, max_faults=max_faults)


def fault_plans(
    hosts: Sequence[str] = ("localhost",), *, horizon: float = 60.0, max_faults: int = 3
) -> st.SearchStrategy[FaultPlan]:
    """A ``FaultPlan`` of at most *max_faults* faults among *hosts* in ``[0, horizon]``.

    Drawn with ``FaultPlan.random`` through hypothesis: the plan shrinks to
    fewer, earlier, shorter faults, and the empty plan is the simplest.
    """
    if isinstance(hosts, str):
        hosts = (hosts,)
    return _fault_plans(tuple(hosts), float(horizon), max_faults)


class SimWorld:
    """A simulated world drawn by :func:`worlds`: its choices, faults and options.

    ``run(main, **options)`` runs coroutine function *main* in it with
    ``sansloop.sim.run`` and returns the ``SimResult``; ``backend(**options)``
    makes the ``SimBackend`` instead, for a loop you make. Use one or the other,
    once per example: the decisions are drawn as the run goes.
    """

    def __init__(
        self,
        source: HypothesisChoices,
        faults: FaultPlan | Callable[..., FaultPlan] | None,
        options: dict[str, Any],
    ) -> None:
        self.choices = source
        self.faults = faults
        self.options = options
        #: the last run's replay token (set by run(), success or failure)
        self.token: str | None = None
        self.runs = 0

    @property
    def unusual(self) -> int:
        """How many decisions so far were not the ordinary outcome."""
        return len(self.choices.unusual())

    def _merged(self, options: dict[str, Any]) -> dict[str, Any]:
        merged = dict(self.options)
        merged.update(options)
        if "faults" not in merged and self.faults is not None:
            merged["faults"] = self.faults
        return merged

    def run(self, main: Callable[..., Coroutine[Any, Any, Any]], **options: Any) -> Any:
        """``sansloop.sim.run(main, choices=<this world's>, ...)``; notes the decisions."""
        from sansloop import sim

        self.runs += 1
        try:
            result = sim.run(main, choices=self.choices, **self._merged(options))
        except BaseException as exc:
            self.choices.check()
            self.token = _token_from_notes(exc)
            note(f"sansloop world: {self.choices.describe()}")
            if self.token is not None:
                note(f"sansloop replay token: {self.token}")
            raise
        self.choices.check()
        self.token = result.token
        note(f"sansloop world: {self.choices.describe()}")
        return result

    def backend(self, **options: Any) -> SimBackend:
        """A ``SimBackend`` on this world's choices (close it when done)."""
        self.runs += 1
        return SimBackend(choices=self.choices, **self._merged(options))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        faults = "drawn while running" if callable(self.faults) else repr(self.faults)
        return f"SimWorld(faults={faults}{', ' + opts if opts else ''})"


def _token_from_notes(exc: BaseException) -> str | None:
    for line in getattr(exc, "__notes__", ()):
        marker = "replay token: "
        if marker in line:
            return line.split(marker, 1)[1].split()[0]
    return None


@st.composite
def _worlds(
    draw: st.DrawFn,
    schedule: bool,
    faults: bool | FaultPlan,
    horizon: float,
    max_faults: int,
    max_draws: int,
    options: dict[str, Any],
) -> SimWorld:
    if schedule and faults is True:
        wanted = None
    elif schedule:
        wanted = _label_filter(None, FAULT_LABELS)
    elif faults is True:
        wanted = _label_filter(FAULT_LABELS, None)
    else:

        def wanted(label: str) -> bool:
            return False

    source = HypothesisChoices(draw, wanted=wanted, max_draws=max_draws)
    plan: FaultPlan | Callable[..., FaultPlan] | None
    if isinstance(faults, FaultPlan):
        plan = faults
    elif faults:

        def plan(choices: Any, hosts: Sequence[str]) -> FaultPlan:
            return FaultPlan.random(choices, hosts, horizon=horizon, max_faults=max_faults)

    else:
        plan = None
    return SimWorld(source, plan, dict(options))


def worlds(
    *,
    schedule: bool = True,
    faults: bool | FaultPlan = False,
    horizon: float = 60.0,
    max_faults: int = 3,
    max_draws: int = DEFAULT_MAX_DRAWS,
    **options: Any,
) -> st.SearchStrategy[SimWorld]:
    """Simulated worlds whose decisions hypothesis draws (and shrinks).

    - *schedule*: draw orderings, latencies and fragmentation (else all 0);
    - *faults*: ``True`` draws a fault plan (``FaultPlan.random`` among the
      world's hosts within *horizon*, at most *max_faults*) and the network's
      fault decisions (resets, UDP loss and duplication, when the options
      enable them); a ``FaultPlan`` is used as given; ``False``: no fault;
    - *options*: passed to ``sansloop.sim.run`` / ``SimBackend``: ``mode``,
      ``hosts``, ``dns``, and NetConfig fields such as ``latency``,
      ``tcp_segment_one_in``, ``tcp_reset_one_in``.

    ::

        @settings(deadline=None)
        @given(sansloop.testing.worlds(latency=(0.001, 0.050)))
        def test_cache_is_coherent(world):
            world.run(main)
    """
    return _worlds(schedule, faults, float(horizon), max_faults, max_draws, options)
