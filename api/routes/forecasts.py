from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import ServiceDep
from api.schemas import ForecastOut

router = APIRouter(prefix="/v1/forecasts", tags=["forecasts"])


@router.get("", response_model=list[ForecastOut], summary="Latest forecast of every series, with its band")
def list_forecasts(
    service: ServiceDep,
    cluster: str | None = None,
    signal: str | None = None,
    namespace: str | None = None,
    workload: str | None = None,
    limit: int = Query(500, ge=1, le=10_000),
) -> list[ForecastOut]:
    labels = {k: v for k, v in (("namespace", namespace), ("workload", workload)) if v is not None}
    return [ForecastOut.of(fc) for fc in service.forecasts(cluster, signal, **labels)[:limit]]
