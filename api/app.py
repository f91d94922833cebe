"""``create_app(settings)``: the FastAPI application; heavy things are built in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from api.metrics import CONTENT_TYPE, Export, MetricsRenderer
from api.middleware import Guard
from api.routes import actuator, anomalies, events, forecasts, health, models, page, recommendations
from api.schemas import ForecastJsonCache
from api.security import TokenBook
from intelligence.runtime.facade import ServiceFacade
from intelligence.runtime.service import Service
from intelligence.runtime.wiring import build_service
from intelligence.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Forecasts, anomalies and recommendations for the ICOS continuum, and the events of the remediation loop.

- Times are UTC, on the service's clock: **simulated** in the embedded default (its clock runs faster than real
  time). Every response says which in `X-ICOS-Time-Basis` (`simulated`, `replayed` or `real`).
- Every value carries its unit (`unit`, the signal's).
- Lists are paged: `limit` and `offset` in, `X-Total-Count` and a `Link: <...>; rel="next"` header out.
- Mutating endpoints need `Authorization: Bearer <token>`; the token's name is who is recorded as having acted.
- `/v1/events` is a CloudEvents 1.0 stream (`Accept: text/event-stream`) or a JSON page; webhooks deliver the same.
"""

TAGS = [
    {"name": "health", "description": "Probes, clusters, and who the caller is"},
    {"name": "forecasts", "description": "Latest forecasts with their bands, and past forecasts next to actuals"},
    {"name": "anomalies", "description": "Anomaly events and latest scores"},
    {"name": "recommendations", "description": "What the service proposes; approving and rejecting"},
    {"name": "actuator", "description": "Kill switch, action ledger, audit log, placement scores, drains"},
    {"name": "models", "description": "Model kinds, registered versions, accuracy; promotion and rollback"},
    {"name": "events", "description": "CloudEvents: the stream, pages of it, webhook subscribers"},
]


def _export(settings: Settings) -> Export:
    m = settings.metrics
    return Export(tuple(m.horizons), tuple(m.quantiles), m.max_series_per_cluster)


def create_app(
    settings: Settings,
    service: Service | None = None,
    build: Callable[[Settings], Service] = build_service,
    run_loop: bool = True,
) -> FastAPI:
    """Build the app. Pass ``service`` to serve one built (and driven) elsewhere, e.g. by a test."""

    def attach(app: FastAPI, svc: Service) -> None:
        facade = ServiceFacade(svc)
        app.state.service = facade
        app.state.metrics = MetricsRenderer(facade, _export(settings), facade.telemetry)
        app.state.forecast_json = ForecastJsonCache()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        svc = build(settings) if owned else service
        assert svc is not None
        attach(app, svc)
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
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served offline by api.routes.page
        redoc_url=None,
    )
    if service is not None:
        attach(app, service)  # served before the lifespan runs too (e.g. by an ASGI test client without one)
    app.state.tokens = TokenBook(settings.api.token_file, settings.api.tokens_dir)
    app.add_middleware(
        Guard,
        tokens=app.state.tokens,
        max_body_bytes=settings.api.max_body_bytes,
        access_log=settings.api.access_log,
        time_basis=settings.time_basis,
    )
    for router in (
        page.router,
        health.router,
        forecasts.router,
        anomalies.router,
        recommendations.router,
        actuator.router,
        models.router,
        events.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        renderer: MetricsRenderer = request.app.state.metrics
        return Response(await run_in_threadpool(renderer.render), media_type=CONTENT_TYPE)

    return app
