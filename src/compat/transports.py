"""Helpers shared by sansloop's transports (stream, datagram, sendfile fallback).

- ``signal_protocol(loop, transport, protocol, signal)``: deliver a ``WriteFlowControl``
  answer (``"pause_writing"``/``"resume_writing"``) to the protocol; an exception
  goes to the loop's exception handler with asyncio's message
  (``"protocol.pause_writing() failed"``), SystemExit/KeyboardInterrupt propagate.
- ``socket_extra(sock, extra)``: asyncio's extra-info keys for a socket
  (``'socket'`` as an ``asyncio.trsock.TransportSocket``, ``'sockname'``,
  ``'peername'``).
- ``set_nodelay(sock)``: TCP_NODELAY on TCP sockets, as asyncio does.
- ``WriteBufferLimits``: the write-buffer methods of asyncio's WriteTransport
  (get_write_buffer_size/limits, set_write_buffer_limits, the
  ``_protocol_paused`` name asyncio's sendfile fallback and start_tls read),
  for a transport whose ``_flow`` is a ``core.flowcontrol.WriteFlowControl``.
- ``LOG_THRESHOLD_FOR_CONNLOST_WRITES``: asyncio's constant (5): writes after the
  connection was lost are counted; from that many on each logs a warning.
"""

from __future__ import annotations

import socket
from asyncio import trsock
from typing import Any, Final

__all__ = [
    "LOG_THRESHOLD_FOR_CONNLOST_WRITES",
    "WriteBufferLimits",
    "set_nodelay",
    "signal_protocol",
    "socket_extra",
]

#: asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES: writes to a lost
#: connection are silent until this many, then each logs a warning.
LOG_THRESHOLD_FOR_CONNLOST_WRITES: Final = 5


def signal_protocol(loop: Any, transport: Any, protocol: Any, signal: str) -> None:
    """Call ``protocol.<signal>()``; report its exception to the loop."""
    try:
        getattr(protocol, signal)()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop.call_exception_handler(
            {
                "message": f"protocol.{signal}() failed",
                "exception": exc,
                "transport": transport,
                "protocol": protocol,
            }
        )


class WriteBufferLimits:
    """Write-buffer size and water marks, answered by the transport's ``_flow``."""

    __slots__ = ()

    _flow: Any
    _loop: Any
    _protocol: Any

    def get_write_buffer_size(self) -> int:
        """Bytes buffered, not yet handed to the kernel."""
        return self._flow.size  # type: ignore[no-any-return]

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)`` water marks."""
        return self._flow.get_limits()  # type: ignore[no-any-return]

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks (asyncio's defaults: 64 KiB and high // 4)."""
        signal = self._flow.set_limits(high, low)
        if signal is not None:
            signal_protocol(self._loop, self, self._protocol, signal)

    @property
    def _protocol_paused(self) -> bool:
        # The name asyncio's sendfile fallback and start_tls read.
        return self._flow.paused  # type: ignore[no-any-return]


def socket_extra(sock: socket.socket, extra: dict[str, Any] | None) -> dict[str, Any]:
    """The extra-info mapping of a socket transport (asyncio's keys)."""
    info: dict[str, Any] = dict(extra) if extra else {}
    info["socket"] = trsock.TransportSocket(sock)
    try:
        info["sockname"] = sock.getsockname()
    except OSError:
        info["sockname"] = None
    if "peername" not in info:
        try:
            info["peername"] = sock.getpeername()
        except OSError:
            info["peername"] = None
    return info


def set_nodelay(sock: socket.socket) -> None:
    """Disable Nagle on TCP sockets (small writes go out without waiting for ACKs)."""
    if (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
        and sock.proto == socket.IPPROTO_TCP
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
