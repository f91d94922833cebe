"""``/v1/forecasts``: the latest forecast of every series, and past forecasts next to what happened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from api.deps import Limit, Name, Offset, ServiceDep, UtcTime
from api.pagination import paged_response, set_page
from api.schemas import ForecastJsonCache, ForecastOut, HistoryOut

router = APIRouter(prefix="/v1/forecasts", tags=["forecasts"])


def _labels(namespace: str | None, workload: str | None) -> dict[str, str]:
    return {k: v for k, v in (("namespace", namespace), ("workload", workload)) if v is not None}


@router.get(
    "",
    response_model=list[ForecastOut],
    summary="Latest forecast of every series, with its band and surge, in series order",
    responses=paged_response("The page of forecasts"),
)
async def list_forecasts(
    service: ServiceDep,
    request: Request,
    response: Response,
    cluster: Name = None,
    signal: Name = None,
    namespace: Name = None,
    workload: Name = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """In the event loop (no thread hop): an in-memory read, and each forecast's JSON made once per step."""
    found = service.forecasts(cluster, signal, **_labels(namespace, workload))
    page = found[offset : offset + limit]
    cache: ForecastJsonCache = request.app.state.forecast_json
    body = Response(cache.list(page, service.units), media_type="application/json")
    set_page(body, request, len(found), offset, len(page))
    return body


@router.get(
    "/history",
    response_model=list[HistoryOut],
    summary="Past forecasts next to what happened, per series, over a time range (with the accuracy over it)",
    responses=paged_response("The page of series"),
)
def history(
    service: ServiceDep,
    request: Request,
    response: Response,
    cluster: Name = None,
    signal: Name = None,
    namespace: Name = None,
    workload: Name = None,
    start: UtcTime | None = None,
    end: UtcTime | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> list[HistoryOut]:
    """Kept in memory for the last ``history.keep_steps`` samples of each series; ``start`` defaults to that far
    back from ``end``, ``end`` to the service's now plus the horizon."""
    step = timedelta(seconds=service.step_seconds)
    end = end or service.now() + service.horizon_steps * step
    start = start or end - (service.horizon_steps + service.history_keep_steps) * step
    if start > end:
        error = {"type": "value_error", "loc": ("query", "start"), "msg": "start is after end", "input": str(start)}
        raise RequestValidationError([error])
    keys = service.history_keys(cluster, signal, **_labels(namespace, workload))
    page = keys[offset : offset + limit]
    set_page(response, request, len(keys), offset, len(page))
    units = service.units
    out = []
    for key in page:
        found = service.forecast_history(key, start.timestamp(), end.timestamp())
        if found is not None:
            out.append(HistoryOut.of(found, units.get(key.signal, "")))
    return out
