"""sansloop.backends.sim: the deterministic simulation backend.

One job per module:

- ``choices``  the choice source every random decision goes through (0 = calm);
- ``clock``    virtual time and each host's skewed view of it;
- ``world``    the event queue, hosts, addresses, ports, links, NetConfig;
- ``sockets``  the socket.socket subclass every simulated socket is;
- ``tcp``      stream sockets (TCP, AF_UNIX streams) and their pipes;
- ``udp``      datagram sockets;
- ``dns``      name resolution from a table;
- ``faults``   FaultPlan: timed partitions, resets, crashes, skew, latency;
- ``executor`` run_in_executor/to_thread at simulated times, no threads;
- ``signals``  add_signal_handler over simulated signal delivery;
- ``trace``    the events of a run and their sha256 digest;
- ``guard``    reports the real clock, sockets, threads, processes in a run;
- ``errors``   SimulationError, NondeterminismError, Deadlock, TimeLimitExceeded;
- ``backend``  SimBackend, the Backend interface over all of it.

The public face is :mod:`sansloop.sim` (docs/simulation.md).
"""

from __future__ import annotations

from .choices import ChoiceSource, RecordingChoices, ReplayChoices, SeededChoices, ZeroChoices

__all__ = ["ChoiceSource", "RecordingChoices", "ReplayChoices", "SeededChoices", "ZeroChoices"]
