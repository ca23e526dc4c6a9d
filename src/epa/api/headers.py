"""Headers on every answer: ``X-Content-Type-Options: nosniff`` (a browser never guesses a JSON error or a
token into HTML or script), and ``Cache-Control: no-store`` unless the route chose its own caching (API answers
carry tokens and inventory: no cache, shared or private, may keep them)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULTS = (("x-content-type-options", "nosniff"), ("cache-control", "no-store"))


class SecurityHeaders:
    """ASGI middleware adding :data:`DEFAULTS` to every HTTP answer that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULTS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
