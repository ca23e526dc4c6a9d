"""Turn an API error answer back into the ``epa.errors`` class its stable code names."""

from __future__ import annotations

import json
from typing import Any

from epa.errors import (
    Conflict,
    EpaError,
    Forbidden,
    GenerationConflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)

_BY_CODE: dict[str, type[EpaError]] = {
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
}
# An answer without a readable error code (a proxy's HTML page, say) is judged by its status alone.
_BY_STATUS: dict[int, type[EpaError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}
_BODY_EXCERPT = 200


def _decode(text: str) -> tuple[str | None, str | None, Any]:
    """(code, message, current_generation) of an ``{"error": {...}}`` body; Nones where absent."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, None, None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None, None, None
    error = body["error"]
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    current = body.get("current_generation", error.get("current_generation"))
    return code, message, current


def error_from_response(status: int, text: str, method: str, url: str) -> EpaError:
    """The EpaError for a non-2xx answer. The server's code is kept on the error (``err.code``) even
    where the class is a broader one (``invalid_alias`` is an ``InvalidInput`` with that code)."""
    code, message, current = _decode(text)
    if status >= 500:
        detail = message or text.strip()[:_BODY_EXCERPT] or "no body"
        return ServiceUnavailable(f"EPA server at {url} answered {method} with HTTP {status}: {detail}")
    if message is None:
        excerpt = text.strip()[:_BODY_EXCERPT]
        message = f"{method} {url}: HTTP {status}" + (f": {excerpt}" if excerpt else "")
    error: EpaError
    if code == "generation_conflict":
        current_generation = current if isinstance(current, int) and not isinstance(current, bool) else None
        error = GenerationConflict(message, current_generation)
    elif code is not None and code in _BY_CODE:
        error = _BY_CODE[code](message)
    elif code is not None and code.startswith("invalid_"):
        error = InvalidInput(message)
    elif code is None:
        error = _BY_STATUS.get(status, EpaError)(message)
    else:
        error = EpaError(message)
    if code is not None:
        error.code = code
    return error
