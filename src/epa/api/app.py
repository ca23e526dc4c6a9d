"""The ASGI application: routers, error handling, and the database it serves."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from epa import __version__
from epa.api import errors, metrics, text
from epa.api.dashboard import router as dashboard_router
from epa.api.routes import alias, device, flavor, host, image, inventory, server
from epa.inventory import Database
from epa.service.scheduling import SchedulingService, ServiceConfig


def create_app(
    db: Database, config: ServiceConfig | None = None, max_image_bytes: int = image.DEFAULT_MAX_IMAGE_BYTES
) -> FastAPI:
    app = FastAPI(
        title="EPA",
        version=__version__,
        description="Enhanced Platform Awareness: PCI device inventory of a VM cloud's hosts.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # Before any route's own dependencies (auth reads the database too).
        dependencies=[Depends(text.refuse_unstorable_text)],
    )
    app.state.db = db
    app.state.max_image_bytes = max_image_bytes
    app.state.scheduling = SchedulingService(db, config)
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in (host, inventory, device, alias, flavor, image, server):
        app.include_router(module.router)
    app.include_router(dashboard_router)
    metrics.install(app)
    return app
