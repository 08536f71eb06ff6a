"""The simulation's own exceptions: whose fault a failed simulated run is.

- :class:`SimulationError` -- base class; a misuse of the simulation itself.
- :class:`NondeterminismError` -- the program under simulation reached for the
  real world (the real clock, a real socket, a real thread, a blocking call
  on a simulated socket): the run can no longer replay exactly.
- :class:`TimeLimitExceeded` -- virtual time passed the run's ``time_limit``
  (a program that never ends, a heartbeat loop, would otherwise spin forever
  in wall time, jumping from timer to timer).
- :class:`Deadlock` -- nothing can ever happen again: no callback is ready, no
  timer is pending, nothing is in flight on the simulated network or in the
  simulated executor, and the loop was asked to wait forever.
"""

from __future__ import annotations

__all__ = ["Deadlock", "NondeterminismError", "SimulationError", "TimeLimitExceeded"]


class SimulationError(RuntimeError):
    """Base class of the errors raised by the simulation backend."""


class NondeterminismError(SimulationError):
    """A simulated run touched the real world (clock, socket, thread, blocking call)."""


class Deadlock(SimulationError):
    """The simulated program waits forever: no timer, no I/O, no job in flight."""


class TimeLimitExceeded(SimulationError):
    """Virtual time went past the run's ``time_limit``."""
