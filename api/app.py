"""``create_app(settings)``: the FastAPI application; heavy things are built in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.metrics import registry_for
from api.routes import actuator, anomalies, forecasts, health, models, recommendations
from intelligence.runtime.facade import ServiceFacade
from intelligence.runtime.service import Service
from intelligence.runtime.wiring import build_service
from intelligence.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    service: Service | None = None,
    build: Callable[[Settings], Service] = build_service,
    run_loop: bool = True,
) -> FastAPI:
    """Build the app. Pass ``service`` to serve one built (and driven) elsewhere, e.g. by a test."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        svc = build(settings) if owned else service
        assert svc is not None
        facade = ServiceFacade(svc)
        app.state.service = facade
        app.state.registry = registry_for(facade)
        if owned and run_loop:
            svc.start()
        try:
            yield
        finally:
            if owned:
                svc.stop()

    app = FastAPI(
        title="icos-intelligence",
        version="0.1.0",
        summary="Forecasts, anomalies and recommendations for the ICOS continuum",
        lifespan=lifespan,
    )
    for router in (
        health.router,
        forecasts.router,
        anomalies.router,
        recommendations.router,
        actuator.router,
        models.router,
    ):
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(app.state.registry), media_type=CONTENT_TYPE_LATEST)

    return app
