"""loop.start_tls: upgrade an existing stream transport to TLS in place.

Contract
--------
``StartTLSOps`` is a mixin of ``sansloop.compat.loop.EventLoop`` giving
``start_tls(transport, protocol, sslcontext, *, server_side=False,
server_hostname=None, ssl_handshake_timeout=None, ssl_shutdown_timeout=None)``
with asyncio's checks and messages: *sslcontext* must be an ``ssl.SSLContext``
(TypeError), *transport* must say ``_start_tls_compatible`` (TypeError), the
timeouts must be positive (ValueError).

The transport's protocol is replaced by an ``SSLTransport``'s link
(src/compat/tlstransport.py); reading is paused across the swap so that no
byte reaches the old protocol or the link before the link is connected. The
coroutine returns the new ``SSLTransport`` once the handshake completed;
*protocol* is not told ``connection_made`` again (it already is connected).
On failure or cancellation the old transport is closed and the error raised.
"""

from __future__ import annotations

import ssl
from typing import Any

from .tlstransport import SSLTransport, check_tls_timeouts

__all__ = ["StartTLSOps"]


class StartTLSOps:
    """``loop.start_tls``."""

    async def start_tls(
        self,
        transport: Any,
        protocol: Any,
        sslcontext: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> SSLTransport:
        """Wrap *transport* in TLS; return the TLS transport after the handshake."""
        if not isinstance(sslcontext, ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        check_tls_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        waiter = self.create_future()  # type: ignore[attr-defined]
        tls = SSLTransport(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=False,
        )
        # No byte may reach the link before it knows its transport.
        transport.pause_reading()
        transport.set_protocol(tls._link)
        made = self.call_soon(tls._link.connection_made, transport)  # type: ignore[attr-defined]
        resumed = self.call_soon(transport.resume_reading)  # type: ignore[attr-defined]
        try:
            await waiter
        except BaseException:
            transport.close()
            made.cancel()
            resumed.cancel()
            raise
        return tls
