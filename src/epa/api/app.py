"""The ASGI application: routers, error handling, and the database it serves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
from fastapi import Depends, FastAPI

from epa import __version__
from epa.api import docs, errors, headers, limits, metrics, offloop, text
from epa.api.dashboard import router as dashboard_router
from epa.api.routes import alias, device, flavor, heartbeat, host, image, inventory, server
from epa.inventory import Database
from epa.service.heartbeats import HeartbeatWriter
from epa.service.scheduling import SchedulingService, ServiceConfig
from epa.service.servers import ServerActions


def create_app(
    db: Database,
    config: ServiceConfig | None = None,
    metrics_public: bool = False,
    max_image_bytes: int = image.DEFAULT_MAX_IMAGE_BYTES,
    listen: bool = False,
) -> FastAPI:
    """The API on ``db``; ``metrics_public`` serves ``/metrics`` without a token (a scraper on a trusted network);
    ``max_image_bytes`` bounds one uploaded image part; ``listen``: the scheduler view is woken by the change
    feed's notifications (PostgreSQL, ``SchedulingService``), let go when the app shuts down."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(app.state.scheduling.close)

    app = FastAPI(
        lifespan=lifespan,
        title="EPA",
        version=__version__,
        description="Enhanced Platform Awareness: PCI device inventory of a VM cloud's hosts.",
        openapi_url="/openapi.json",
        docs_url=None,  # epa.api.docs: Swagger UI from the installed package, under a CSP
        redoc_url=None,
        # Before any route's own dependencies (auth reads the database too).
        dependencies=[Depends(text.refuse_unstorable_text)],
    )
    app.state.db = db
    app.state.max_image_bytes = max_image_bytes
    app.state.scheduling = SchedulingService(db, config, listen=listen)
    app.state.server_actions = ServerActions(app.state.scheduling)
    service = app.state.scheduling.config
    # A host silent for half the agent timeout is put back on the change feed by its next heartbeat.
    revive = timedelta(seconds=service.scheduler.alive_seconds / 2)
    app.state.heartbeats = HeartbeatWriter(db, service.heartbeat_flush_seconds, revive)
    errors.install(app)

    # On the event loop itself: it answers while every worker thread is busy (a report, a slow database).
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in (host, inventory, heartbeat, device, alias, flavor, image, server):
        app.include_router(module.router)
    app.include_router(dashboard_router)
    app.include_router(docs.router)
    metrics.install(app, public=metrics_public)
    offloop.install(app)
    # The heartbeat, sent by every host every scan, is answered by the edge itself (routes.heartbeat).
    app.add_middleware(limits.BodyGuard, lanes=[heartbeat.LANE])
    app.add_middleware(headers.SecurityHeaders)  # outermost: on the edge's own refusals too
    return app
