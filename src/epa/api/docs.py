"""``/docs``: Swagger UI for the OpenAPI document, from the installed ``swagger-ui-bundle-v2`` package (Swagger UI
5, which reads OpenAPI 3.1; no CDN: the page loads nothing from another origin), under a Content-Security-Policy
that allows only this origin's scripts. FastAPI's own page loads its script from a CDN without an integrity pin
and starts it with an inline script, which a strict policy would block; here the start-up script is a file."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from epa.errors import NotFound

OURS = Path(__file__).parent / "docs_static"
SWAGGER = Path(str(swagger_ui_path))
# The only files served (a fixed list: no path from the URL reaches the file system), with their types.
ASSETS = {
    "swagger-ui-bundle.js": (SWAGGER, "text/javascript; charset=utf-8"),
    "swagger-ui.css": (SWAGGER, "text/css; charset=utf-8"),
    "favicon-32x32.png": (SWAGGER, "image/png"),
    "docs.js": (OURS, "text/javascript; charset=utf-8"),
}
# Swagger UI sets inline styles and shows its icons as data: URIs; everything else comes from this origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>EPA API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs_page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=HEADERS)


@router.get("/docs/static/{name}")
def docs_asset(name: str) -> FileResponse:
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"no docs file {name!r}")
    folder, media_type = found
    return FileResponse(folder / name, media_type=media_type, headers=HEADERS)
