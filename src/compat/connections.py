"""The loop's outgoing connections: create_connection, create_unix_connection, connect_accepted_socket.

A facet (mixin) of ``EventLoop``. Being written for the networking issue; until its methods land, asyncio.AbstractEventLoop's NotImplementedError stands.
"""

from __future__ import annotations

__all__ = ["ConnectionOps"]


class ConnectionOps:
    """create_connection and friends."""
