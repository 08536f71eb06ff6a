"""sansloop.sim: run asyncio programs in a deterministic simulated world.

Two entry points:

- ``SimBackend(seed=7, ...)``, a backend: hand it to
  ``sansloop.new_event_loop(backend=...)`` (loop mode) or
  ``sansloop.compat.loop.EventLoop(backend, mode="full")`` and run an unmodified
  asyncio program on virtual time and a simulated network;
- ``run(main, *, seed=0, faults=None, mode="loop", ...)``: run the coroutine
  function *main* in a fresh world and get a :class:`SimResult` (value, virtual
  time elapsed, trace and its sha256 digest, replay token). When *main*
  raises, the exception is re-raised with a note giving the seed and a replay
  token; ``replay(token, main)`` runs the same world again, exactly.

Contract: the same *main*, seed (or choice values), fault plan and options
give the same trace digest in every run, process and mode; anything that
reads the real world from inside the run (time.time(), a real socket, a real
thread) raises :class:`NondeterminismError` and fails the run. See
docs/simulation.md.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import random as _random
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .backends.sim.backend import SimBackend
from .backends.sim.choices import (
    ChoiceSource,
    RecordingChoices,
    ReplayChoices,
    SeededChoices,
    ZeroChoices,
)
from .backends.sim.errors import (
    Deadlock,
    NondeterminismError,
    SimulationError,
    TimeLimitExceeded,
)
from .backends.sim.faults import FaultPlan
from .backends.sim.trace import Trace
from .backends.sim.world import NetConfig

__all__ = [
    "ChoiceSource",
    "Deadlock",
    "FaultPlan",
    "NetConfig",
    "NondeterminismError",
    "RecordingChoices",
    "ReplayChoices",
    "SeededChoices",
    "SimBackend",
    "SimResult",
    "SimulationError",
    "TimeLimitExceeded",
    "Trace",
    "ZeroChoices",
    "current",
    "random",
    "decode_token",
    "replay",
    "run",
    "wall_time",
]

_TOKEN_PREFIX = "sim1-"


@dataclass
class SimResult:
    """What a simulated run returned and how it went."""

    value: Any
    #: virtual seconds from start to the end of *main*
    elapsed: float
    #: sha256 (hex) of the trace
    digest: str
    trace: Trace
    seed: Any
    mode: str
    #: replay(token, main, ...) re-runs this world exactly
    token: str
    #: choices drawn, and how many of them were not the ordinary outcome (0)
    draws: int = 0
    unusual: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def current() -> SimBackend:
    """The SimBackend of the running loop (RuntimeError outside a simulated run)."""
    loop = asyncio.get_running_loop()
    backend = getattr(loop, "_backend", None)
    if not isinstance(backend, SimBackend):
        raise RuntimeError("no simulated run: the running loop's backend is not a SimBackend")
    return backend


def wall_time(host: str | None = None) -> float:
    """The simulated wall clock (epoch seconds) of *host* or of the current host.

    The deterministic stand-in for ``time.time()``: it follows the host's
    clock skew from the fault plan.
    """
    return current().wall_time(host)


def random() -> _random.Random:
    """A ``random.Random`` seeded from the current simulated run's choice source."""
    return current().random()


def _encode_token(seed: Any, mode: str, values: list[int] | None, digest: str) -> str:
    doc: dict[str, Any] = {"s": seed, "m": mode, "d": digest[:16]}
    if values is not None:
        end = len(values)
        while end and not values[end - 1]:
            end -= 1  # ReplayChoices answers 0 past the end: trailing zeros are implied
        doc["c"] = values[:end]
    raw = zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 9)
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    """The fields of a replay token: seed ``s``, mode ``m``, digest prefix ``d``,
    and the recorded choice values ``c`` when the run was not seeded."""
    if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX):
        raise ValueError(f"not a sansloop.sim replay token: {token!r}")
    body = token[len(_TOKEN_PREFIX) :]
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        doc = json.loads(raw)
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"corrupt sansloop.sim replay token: {exc}") from None
    if not isinstance(doc, dict) or "s" not in doc or "m" not in doc:
        raise ValueError("corrupt sansloop.sim replay token")
    return doc


def _call_main(main: Callable[..., Any], backend: SimBackend) -> Coroutine[Any, Any, Any]:
    if not callable(main):
        if inspect.iscoroutine(main):
            main.close()  # a coroutine object cannot be replayed: we need the function
        raise TypeError(f"main must be a coroutine function, got {main!r}")
    try:
        params = inspect.signature(main).parameters.values()
        wants_backend = any(
            p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in params
        )
    except (TypeError, ValueError):
        wants_backend = False
    coro = main(backend) if wants_backend else main()
    if not inspect.iscoroutine(coro):
        if hasattr(coro, "close"):
            coro.close()
        raise TypeError(f"main() must return a coroutine, got {coro!r}")
    return coro


def run(
    main: Callable[..., Any],
    *,
    seed: int | str = 0,
    faults: Any = None,
    mode: str = "loop",
    choices: ChoiceSource | None = None,
    hosts: Any = None,
    dns: Any = None,
    guard: bool = True,
    debug: bool | None = None,
    time_limit: float | None = None,
    **net: Any,
) -> SimResult:
    """Run coroutine function *main* in a fresh simulated world; see the module doc.

    *main* is called with no argument, or with the SimBackend when it takes a
    positional parameter (to reach hosts, partitions, the trace...).
    *choices* replaces the seeded choice source (the replay token then carries
    the values drawn). *faults* is a FaultPlan or a callable drawing one from
    the run's choices (``FaultPlan.random``). *time_limit* bounds the virtual
    time (TimeLimitExceeded past it). *net* are :class:`NetConfig` fields.
    """
    from .compat.loop import EventLoop
    from .compat.runners import Runner

    if mode not in ("loop", "full"):
        raise ValueError(f"mode must be 'loop' or 'full', not {mode!r}")
    if not isinstance(seed, (int, str)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int or a str, got {seed!r}")
    source: ChoiceSource = choices if choices is not None else SeededChoices(seed)
    recorder = RecordingChoices(source)
    backend = SimBackend(
        seed,
        choices=recorder,
        hosts=hosts,
        dns=dns,
        faults=faults,
        guard=guard,
        time_limit=time_limit,
        **net,
    )

    def token() -> str:
        values = recorder.values() if choices is not None else None
        return _encode_token(seed, mode, values, backend.trace.digest())

    start = backend.time()
    end = start
    try:
        with Runner(debug=debug, loop_factory=lambda: EventLoop(backend, mode=mode)) as runner:
            value = runner.run(_call_main(main, backend))
            end = backend.time()
    except BaseException as exc:
        if isinstance(exc, Exception) or isinstance(exc, asyncio.CancelledError):
            t = token()
            exc.add_note(
                f"sansloop.sim: seed={seed!r} mode={mode!r} t={backend.time():.6f} "
                f"replay token: {t}  (sansloop.sim.replay(token, main, ...same options))"
            )
            if backend.violations and not isinstance(exc, NondeterminismError):
                exc.add_note(f"sansloop.sim: nondeterminism detected: {backend.violations}")
        raise
    finally:
        backend.close()
    t = token()
    if backend.violations:
        err = NondeterminismError(
            f"the simulated run touched the real world ({'; '.join(backend.violations)}) "
            "and the program carried on: the run cannot replay"
        )
        err.add_note(f"sansloop.sim: seed={seed!r} mode={mode!r} replay token: {t}")
        raise err
    return SimResult(
        value=value,
        elapsed=end - start,
        digest=backend.trace.digest(),
        trace=backend.trace,
        seed=seed,
        mode=mode,
        token=t,
        draws=len(recorder.record),
        unusual=recorder.nonzero(),
        stats=backend.statistics(),
    )


def replay(
    token: str, main: Callable[..., Any], *, check: bool = True, **options: Any
) -> SimResult:
    """Re-run the world a :func:`run` described by *token* (same *options* as then).

    With *check*, a run whose trace differs from the recorded one (its digest
    prefix) raises SimulationError: the program or the options changed, or
    something nondeterministic escaped the guard.
    """
    doc = decode_token(token)
    choices = ReplayChoices(doc["c"]) if "c" in doc else None
    try:
        result = run(main, seed=doc["s"], mode=doc["m"], choices=choices, **options)
    except BaseException as exc:
        if check and isinstance(exc, Exception):
            exc.add_note(f"sansloop.sim: replayed from {token}")
        raise
    if check and not result.digest.startswith(doc["d"]):
        raise SimulationError(
            f"replay diverged: trace digest {result.digest[:16]} != recorded {doc['d']}"
        )
    return result
