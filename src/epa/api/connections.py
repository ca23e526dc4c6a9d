"""Connection limits for ``epa serve``: a deadline for a request's head, and a cap on open connections.

uvicorn's HTTP/1.1 protocols wait for a request's headers for ever: fifty clients sending one header line
every ten seconds held fifty connections, and enough of them would use up the process's file descriptors.
:func:`guarded_httptools` makes the protocol class ``epa serve`` runs (httptools, the C parser: h11, in Python,
cost about a fifth of a heartbeat's CPU - see bench/fleet): a connection whose request head is not complete
``header_timeout_s`` after it opened (or after the first byte of a later request on a kept-alive connection)
is closed; the time an idle kept-alive connection may wait for its next request stays ``timeout_keep_alive``
(75 s, see ``epa.api.server``). Past ``max_connections`` open connections a new one is closed at once, before
it costs anything more than its accept, so that the process keeps descriptors for its database and files."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A request head comes in one packet or a few in the same second; ten seconds is generous for a slow network
# and short enough that a slow client holds its connection briefly.
HEADER_TIMEOUT_S = 10.0
# Well under the usual 1,024 descriptors per process (ulimit -n), leaving room for the database's and the
# log's; a load balancer in front keeps far fewer.
MAX_CONNECTIONS = 768


def guarded_httptools(header_timeout_s: float = HEADER_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS) -> type[Any]:
    """uvicorn's httptools protocol with the header deadline and the connection cap (pass it as ``http=``)."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()
                return
            self._arm_header_deadline()

        # The parser calls these: the first byte of a request, and the end of its head.
        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_deadline is None:
                self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            self._header_deadline = self.loop.call_later(header_timeout_s, self._header_too_slow)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _header_too_slow(self) -> None:
            # Still armed: no request head was completed since it was set.
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpToolsProtocol
