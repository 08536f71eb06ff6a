"""The loop's file transfer: sendfile and sock_sendfile.

A facet (mixin) of ``EventLoop``. Being written for the networking issue; until its methods land, asyncio.AbstractEventLoop's NotImplementedError stands.
"""

from __future__ import annotations

__all__ = ["SendfileOps"]


class SendfileOps:
    """sendfile and sock_sendfile."""
