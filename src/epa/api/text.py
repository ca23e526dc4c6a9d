"""The one rule for every piece of text a request brings: it is text that any database can store (and a path or
query parameter is at most :data:`MAX_PARAMETER` characters).

PostgreSQL's text cannot hold NUL (U+0000): a NUL in a name, a query parameter or a body field was a
500 there, while SQLite stored it or answered 404. JSON can also spell a lone surrogate (``"\\ud800"``),
which is not Unicode and which no database driver can encode (a 500 on both). Both are refused here, for
every route, before a handler or the database sees them: one answer, 400 ``invalid_input`` naming where,
on every backend."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from epa.errors import InvalidInput

# JSON text can only spell a NUL or a surrogate as an escape (a raw NUL is not allowed in a JSON string,
# and UTF-8 cannot encode a surrogate): a body without these escapes needs no walk. A match (a valid
# surrogate pair, or an escaped backslash before "u0000") only means the walk decides.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def may_hold_unstorable(raw: bytes) -> bool:
    """False when the JSON text ``raw`` cannot decode to an unstorable string: a scan in C, about 100
    times cheaper than walking the decoded body."""
    return _SUSPECT_ESCAPE.search(raw) is not None


def storable(text: str) -> bool:
    """No NUL, and valid Unicode (no unpaired surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Where a value sits in a body: (parent's path, key or index), None at the top. Rendered only when a
# string is refused: building "body.devices[3].tags" for every value doubled the walk on a big report.
Where = tuple["Where", str | int] | None


def first_unstorable(body: Any) -> tuple[str, str] | None:
    """The first string (object keys too) in a decoded JSON value that is not storable, with where it is.

    Iterative: JSON nests as deep as the decoder allows, deeper than Python's recursion limit. About
    20 ms per 1,000 devices of an inventory report."""
    stack: list[tuple[Any, Where]] = [(body, None)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return _render(path), item
        elif isinstance(item, dict):
            for key, child in item.items():
                if not storable(key):
                    return f"{_render(path)} (a key)", key
                stack.append((child, (path, key)))
        elif isinstance(item, list):
            stack.extend((child, (path, i)) for i, child in enumerate(item))
    return None


def _render(path: Where) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "body" + "".join(reversed(parts))


def _check(where: str, text: str) -> None:
    if not storable(text):
        shown = repr(text) if len(text) <= 60 else repr(text[:57]) + f"... ({len(text)} characters)"
        raise InvalidInput(f"{where} ({shown}): text must not contain NUL or an unpaired surrogate")


# Every path and query parameter is a name, an id, an address or a filter: none is near this long, and an
# error naming one (404 "alias ... not found") quotes it whole.
MAX_PARAMETER = 256


def _check_parameter(where: str, text: str) -> None:
    _check(where, text)
    if len(text) > MAX_PARAMETER:
        raise InvalidInput(f"{where} ({text[:57]!r}... {len(text)} characters) is longer than {MAX_PARAMETER}")


def check_body(body: Any) -> None:
    """Refuse a decoded JSON body holding a string no database can store (400 naming where it is)."""
    found = first_unstorable(body)
    if found is not None:
        _check(*found)


def check_parameters(path: Mapping[str, Any], query: Iterable[tuple[str, str]]) -> None:
    """Refuse a path or query parameter that is unstorable or too long (400 naming it)."""
    for name, value in path.items():
        _check_parameter(f"path parameter {name}", str(value))
    for name, value in query:
        _check_parameter("a query parameter's name", name)
        _check_parameter(f"query parameter {name}", value)


async def refuse_unstorable_text(request: Request) -> None:
    """A dependency of the whole application: path and query parameters, and the JSON body of the routes
    that take one (FastAPI has decoded it already; ``request.json()`` returns that). The body was read under
    its cap, after authentication (``epa.api.limits``); routes that decode their own body off the event loop
    (``epa.api.offloop``) check it there."""
    check_parameters(request.path_params, request.query_params.multi_items())
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return
    raw = await request.body()
    if not raw or not may_hold_unstorable(raw):
        return
    try:
        body = await request.json()
    except ValueError:  # not JSON (another content type): the route's own validation answers
        return
    check_body(body)
