"""The loop's datagram endpoints: create_datagram_endpoint.

A facet (mixin) of ``EventLoop``. Being written for the networking issue; until its methods land, asyncio.AbstractEventLoop's NotImplementedError stands.
"""

from __future__ import annotations

__all__ = ["DatagramOps"]


class DatagramOps:
    """create_datagram_endpoint."""
