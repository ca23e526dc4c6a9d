"""The live web dashboard: a static page (plain HTML, CSS and JavaScript, nothing to build) served at ``/`` and
``/dashboard``. The page is public; the data it shows comes from the JSON API with the admin token the user types."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from epa.errors import NotFound

STATIC = Path(__file__).parent / "static"

# The only files served, with their content types: a fixed list, so no path from the URL reaches the file system.
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "topology.js": "text/javascript; charset=utf-8",
}

# The page loads nothing but its own files and talks to nothing but its own origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"])


def _page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/", response_class=FileResponse, summary="The dashboard page (public; its data needs the admin token)")
def root_page() -> FileResponse:
    return _page()


@router.get("/dashboard", response_class=FileResponse, summary="The dashboard page, under its own name")
def dashboard_page() -> FileResponse:
    return _page()


@router.get("/dashboard/static/{name}", response_class=FileResponse, summary="The dashboard's CSS and JavaScript")
def dashboard_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no dashboard file {name!r}")
    return FileResponse(STATIC / name, media_type=media_type, headers=HEADERS)
