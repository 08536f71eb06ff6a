"""The loop's servers: create_server, create_unix_server and the Server object.

A facet (mixin) of ``EventLoop``. Being written for the networking issue; until its methods land, asyncio.AbstractEventLoop's NotImplementedError stands.
"""

from __future__ import annotations

__all__ = ["ServerOps"]


class ServerOps:
    """create_server and friends."""
