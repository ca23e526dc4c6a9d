"""Bodies parsed and handled off the event loop, for the routes whose bodies are large (inventory reports).

FastAPI decodes and validates a declared body on the event loop, before the route runs: for a report of
thousands of devices that is tens of milliseconds during which no other request (``/healthz`` included) is
served. Such a route takes the raw body instead (read under its cap by ``epa.api.limits``) and hands decoding,
the unstorable-text check, validation and its own work to a worker thread through :func:`run`, in a pool of
:data:`HEAVY_WORKERS`: at most that many large bodies are in memory at once, whatever the clients send, and
the ordinary routes keep the rest of the thread pool. The OpenAPI document still describes the body:
:func:`request_body` gives the route's ``openapi_extra`` and :func:`install` adds the models' schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from epa.api.text import check_body, may_hold_unstorable
from epa.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# Two: one report can be decoded while another is reconciled (reconciling writes serialise on the database
# anyway), and memory is bounded by two of the largest accepted bodies.
HEAVY_WORKERS = 2
_heavy = anyio.CapacityLimiter(HEAVY_WORKERS)
_MODELS: dict[str, type[BaseModel]] = {}


def parse(raw: bytes, model: type[M]) -> M:
    """``raw`` JSON validated as ``model``: 400 naming the problem (the field and the value) if it is not."""
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(f"body: not valid JSON ({str(e)[:100]})") from e
    if may_hold_unstorable(raw):
        check_body(decoded)
    try:
        return model.model_validate(decoded)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_context=False)) from e


async def run(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread of the heavy-body pool."""
    return await anyio.to_thread.run_sync(work, *args, limiter=_heavy)


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents ``model`` as the route's (required, JSON) body."""
    _MODELS[model.__name__] = model
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install(app: FastAPI) -> None:
    """Put the schemas of the models named by :func:`request_body` into the app's OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, model in sorted(_MODELS.items()):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for nested, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(nested, definition)
            schemas.setdefault(name, schema)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
