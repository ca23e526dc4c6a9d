"""The edge of every request: who is calling is known before a byte of its body is read, and the body is read
under its route's size cap, counted as it streams in, so that a refused body is never held whole.

A route states its cap with :func:`body_limit`; routes that say nothing take :data:`DEFAULT_BODY_LIMIT`. A route
that streams a large body itself (a disk image upload) declares a large cap, or none, and reads
``request.stream()`` chunk by chunk; the guard counts those chunks against the cap as they arrive::

    @router.put("/v1/images/{name}/data")
    @body_limit(64 * 2**30)          # or body_limit(None): no cap at all, the route bounds what it keeps
    async def upload_image(name: str, request: Request, _: Admin) -> JSONResponse:
        async for chunk in request.stream():   # never request.body(): that would hold it whole
            ...

A body over the cap is a 413 ``payload_too_large`` naming the limit: at once when ``Content-Length`` says so,
otherwise as soon as the count passes it. Authentication happens first, for every route that needs a token
(those whose dependencies include :func:`epa.api.auth.principal`): an unauthenticated request is answered 401
without reading its body at all, and the route's own dependency reuses the caller found here.

A :class:`Lane` is a route the edge answers itself, under its cap, without the framework's routing, dependencies
and validation: for a small request sent by every host many times a minute (the heartbeat), those cost several
times the work the request asks for. The lane's handler takes the body and gives the whole answer; an EPA error
it raises is answered as the app's exception handlers answer it (``epa.api.errors.error_response``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from epa.api import auth
from epa.api.errors import epa_error_response, error_response, http_error_response
from epa.errors import EpaError
from epa.inventory import Database

# Every body but an inventory report is a name and a few fields: a kilobyte. 64 KiB leaves room for a long
# reason text and any JSON formatting, and is what a body costs at most before its route looks at it.
DEFAULT_BODY_LIMIT = 64 * 1024
# The largest realistic host has about 4,096 PCI functions (16 ports x 255 VFs with their PFs and root ports:
# 4,112); its report is 2.47 MiB as the agent sends it (about 630 bytes a function, bench/hostile_inputs.py).
# 16 MiB is 6.5x that: headroom for long names and tags; a report in memory costs about 25 MB (measured there).
INVENTORY_BODY_LIMIT = 16 * 1024 * 1024
# A server's state report carries its libvirt domain XML (up to 1,000,000 characters; a real one is 5-30 kB).
STATE_BODY_LIMIT = 2 * 1024 * 1024
# A server's create carries its cloud-init user-data (64 KiB) and up to 16 SSH keys of 8 KiB: with JSON's
# escapes (up to 6 bytes a character) that stays under 1 MiB.
SERVER_CREATE_BODY_LIMIT = 1024 * 1024
# The end of a server's console an agent sends: at most 256 Ki characters, escaped as JSON.
CONSOLE_BODY_LIMIT = 2 * 1024 * 1024

F = TypeVar("F", bound=Callable[..., Any])
_DECLARED: dict[Callable[..., Any], int | None] = {}


def body_limit(max_bytes: int | None) -> Callable[[F], F]:
    """Declare the largest request body (in bytes) the decorated endpoint takes; ``None`` for no cap (the route
    streams ``request.stream()`` and bounds what it keeps itself). Put it under the router's decorator."""

    def declare(endpoint: F) -> F:
        _DECLARED[endpoint] = max_bytes
        return endpoint

    return declare


def _uses(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


@dataclass(frozen=True, slots=True)
class Rule:
    """What the edge does for one route: authenticate first or not, and the body cap (None: none)."""

    needs_token: bool
    limit: int | None


# For URLs that match no route (the app answers 404 without reading the body) and for the pages FastAPI adds
# itself (the OpenAPI document): no token, the small cap.
NO_ROUTE = Rule(needs_token=False, limit=DEFAULT_BODY_LIMIT)


def rule_for(route: RouteContext) -> Rule:
    """A route needs a token when its dependencies include :func:`epa.api.auth.principal`; its cap is what
    :func:`body_limit` declared for its endpoint, else :data:`DEFAULT_BODY_LIMIT`."""
    endpoint = route.endpoint
    if not isinstance(route.original_route, APIRoute) or endpoint is None:
        return NO_ROUTE
    return Rule(_uses(route.dependant, auth.principal), _DECLARED.get(endpoint, DEFAULT_BODY_LIMIT))


class RouteRules:
    """The rule of the route that will serve a request, found as the router finds it (the first full match,
    else the first route whose path matches: the router answers that one 405)."""

    def __init__(self) -> None:
        self._routes: list[tuple[RouteContext, Rule]] = []
        self._built_from: list[BaseRoute] | None = None
        self._built_count = -1

    def _table(self, routes: list[BaseRoute]) -> list[tuple[RouteContext, Rule]]:
        if routes is not self._built_from or len(routes) != self._built_count:
            self._routes = [(r, rule_for(r)) for r in iter_route_contexts(routes)]
            self._built_from, self._built_count = routes, len(routes)
        return self._routes

    def __call__(self, routes: list[BaseRoute], scope: Scope) -> Rule:
        partial: Rule | None = None
        for route, rule in self._table(routes):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return rule
            if match is Match.PARTIAL and partial is None:
                partial = rule
        return partial or NO_ROUTE


@dataclass(frozen=True, slots=True)
class Lane:
    """A route the edge serves itself (see the module's docstring): requests of ``method`` on a path that
    ``path`` matches whole, bodies of at most ``limit`` bytes, answered by ``serve(scope, match, body)``.
    No token is checked here: the handler authenticates (the heartbeat's batch checks its tokens)."""

    method: str
    path: re.Pattern[str]
    limit: int
    serve: Callable[[Scope, re.Match[str], bytes], Awaitable[Response]]


class PayloadTooLarge(HTTPException):
    """A body past its route's cap (an ``HTTPException``: FastAPI passes those on from reading a body)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than this route takes ({limit} bytes at most)",
            headers={"Connection": "close"},
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


class BodyGuard:
    """ASGI middleware: authenticate, then cap the body (see the module's docstring)."""

    def __init__(self, app: ASGIApp, lanes: Sequence[Lane] = ()) -> None:
        self.app = app
        self.rules = RouteRules()
        self.lanes = tuple(lanes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for lane in self.lanes:
            if scope["method"] == lane.method:
                found = lane.path.fullmatch(scope["path"])
                if found is not None:
                    await _serve_lane(lane, found, scope, receive, send)
                    return
        rule = self.rules(scope["app"].router.routes, scope)
        length = _content_length(scope)
        unread = bool(length) or bool(_header(scope, b"transfer-encoding"))
        # The body is never read when the answer comes from here: close the connection rather than drain it.
        close = {"Connection": "close"} if unread else None
        if rule.needs_token:
            db: Database = scope["app"].state.db
            try:
                who = await anyio.to_thread.run_sync(auth.principal_from_header, db, _header(scope, b"authorization"))
            except EpaError as e:
                await epa_error_response(e, close)(scope, receive, send)
                return
            scope.setdefault("state", {})[auth.PRINCIPAL] = who
        limit = rule.limit
        if limit is None:
            await self.app(scope, receive, send)
            return
        if length is not None and length > limit:
            refused = PayloadTooLarge(limit)
            await http_error_response(refused)(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)


async def _serve_lane(lane: Lane, found: re.Match[str], scope: Scope, receive: Receive, send: Send) -> None:
    length = _content_length(scope)
    if length is not None and length > lane.limit:
        await http_error_response(PayloadTooLarge(lane.limit))(scope, receive, send)
        return
    try:
        body = await _read_body(_counted(receive, lane.limit))
        if body is None:  # the client went away: nobody to answer
            return
        response = await lane.serve(scope, found, body)
    except Exception as e:
        refused = error_response(e)
        if refused is None:
            raise
        response = refused
    await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (None if the client disconnected first)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`PayloadTooLarge` once the body passes ``limit`` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(limit)
        return message

    return counted
