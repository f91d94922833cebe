"""The latest forecast and anomaly score of every series of a sharded fleet, in the decision database.

A replica keeps its own series' latest forecasts and scores in memory; when sharded it also
writes them here at every step (one row per series, replaced in place), so that any replica
answers a query about any series: its own from memory, the others' from here. A row says
which shard wrote it and when, so a reader can tell a series nobody refreshes any more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from intelligence.storage.database import Database
from intelligence.storage.schema import series_latest
from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, SeriesKey


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _floats(values: Iterable[float]) -> list[float | None]:
    return [_finite(float(v)) for v in values]


def forecast_json(fc: Forecast) -> dict[str, Any]:
    return {
        "origin": fc.origin,
        "step_seconds": fc.step_seconds,
        "point": _floats(fc.point),
        "quantiles": [[q, _floats(values)] for q, values in fc.quantiles.items()],
        "model": fc.model,
        "surge": _floats(fc.surge),
        "last": _finite(fc.last),
    }


def _nan(values: Sequence[float | None]) -> tuple[float, ...]:
    return tuple(math.nan if v is None else float(v) for v in values)


def forecast_of(key: SeriesKey, data: dict[str, Any]) -> Forecast:
    return Forecast(
        key,
        float(data["origin"]),
        float(data["step_seconds"]),
        _nan(data["point"]),
        {float(q): _nan(values) for q, values in data["quantiles"]},
        data["model"],
        _nan(data["surge"]),
        data["last"],
    )


def score_json(s: AnomalyScore) -> dict[str, Any]:
    r = s.reason
    reason = {
        "model": r.model,
        "observed": _finite(r.observed),
        "expected": _finite(r.expected),
        "lower": _finite(r.lower),
        "upper": _finite(r.upper),
        "detail": r.detail,
    }
    return {"timestamp": s.timestamp, "score": s.score, "reason": reason}


def score_of(key: SeriesKey, data: dict[str, Any]) -> AnomalyScore:
    r = data["reason"]
    observed = math.nan if r["observed"] is None else r["observed"]
    reason = AnomalyReason(r["model"], observed, r["expected"], r["lower"], r["upper"], r["detail"])
    return AnomalyScore(key, float(data["timestamp"]), float(data["score"]), reason)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(series_latest)
    return stmt.on_conflict_do_update(
        index_elements=[series_latest.c.series],
        set_={
            "shard": stmt.excluded.shard,
            "written_at": stmt.excluded.written_at,
            "forecast": sa.func.coalesce(stmt.excluded.forecast, series_latest.c.forecast),
            "score": sa.func.coalesce(stmt.excluded.score, series_latest.c.score),
        },
    )


class SharedLatest:
    """Rows of ``series_latest``: written by each series' owner, read by any replica."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def put(self, shard: int, forecasts: Iterable[Forecast], scores: Iterable[AnomalyScore], now: float) -> int:
        """Replace the rows of these series (a series with a forecast but no new score keeps its score)."""
        rows: dict[SeriesKey, dict[str, Any]] = {}

        def row(key: SeriesKey) -> dict[str, Any]:
            found = rows.get(key)
            if found is None:
                found = rows[key] = {
                    "series": str(key),
                    "cluster": key.cluster,
                    "signal": key.signal,
                    "labels": key.label_dict,
                    "shard": shard,
                    "written_at": now,
                    "forecast": None,
                    "score": None,
                }
            return found

        for fc in forecasts:
            row(fc.key)["forecast"] = forecast_json(fc)
        for s in scores:
            row(s.key)["score"] = score_json(s)
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(_upsert(conn.dialect.name), list(rows.values()))
        return len(rows)

    def _rows(self, cluster: str | None, signal: str | None, column: sa.Column[Any]) -> list[Any]:
        query = sa.select(
            series_latest.c.cluster, series_latest.c.signal, series_latest.c.labels, series_latest.c.shard, column
        ).where(column.is_not(None))
        if cluster is not None:
            query = query.where(series_latest.c.cluster == cluster)
        if signal is not None:
            query = query.where(series_latest.c.signal == signal)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def forecasts(self, cluster: str | None = None, signal: str | None = None) -> list[tuple[int, Forecast]]:
        """(writer's shard, forecast) of every series with a forecast, of ``cluster`` and ``signal`` if given."""
        out = []
        for r in self._rows(cluster, signal, series_latest.c.forecast):
            out.append((int(r.shard), forecast_of(SeriesKey.of(r.cluster, r.signal, r.labels), r.forecast)))
        return out

    def scores(self, cluster: str | None = None, signal: str | None = None) -> list[tuple[int, AnomalyScore]]:
        """(writer's shard, latest anomaly score) of every series with a score."""
        out = []
        for r in self._rows(cluster, signal, series_latest.c.score):
            out.append((int(r.shard), score_of(SeriesKey.of(r.cluster, r.signal, r.labels), r.score)))
        return out

    def drop(self, keys: Iterable[SeriesKey]) -> None:
        """Forget series that left the continuum."""
        names = [str(k) for k in keys]
        with self.engine.begin() as conn:
            for i in range(0, len(names), 500):
                conn.execute(series_latest.delete().where(series_latest.c.series.in_(names[i : i + 500])))
