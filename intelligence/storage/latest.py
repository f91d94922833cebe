"""The latest forecast and anomaly score of every series of a sharded fleet, in the decision database.

A replica keeps its own series' latest forecasts and scores in memory; when sharded it also
writes them here at every step (one row per series, replaced in place), so that any replica
answers a query about any series: its own from memory, the others' from here. A row says
which shard wrote it and when, so a reader can tell a series nobody refreshes any more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from intelligence.storage.database import Database
from intelligence.storage.schema import series_latest
from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, SeriesKey


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _floats(values: Iterable[float]) -> list[float | None]:
    return [_finite(float(v)) for v in values]


def forecast_json(fc: Forecast, finite: bool = True) -> dict[str, Any]:
    """The forecast as JSON values; ``finite=False`` leaves NaN and infinities for orjson, which writes them null."""
    floats: Callable[[Iterable[float]], Any] = _floats if finite else tuple
    return {
        "origin": fc.origin,
        "step_seconds": fc.step_seconds,
        "point": floats(fc.point),
        "quantiles": [[q, floats(values)] for q, values in fc.quantiles.items()],
        "model": fc.model,
        "surge": floats(fc.surge),
        "last": _finite(fc.last) if finite else fc.last,
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


# The statements of the COPY path, spelled out (the columns of schema.series_latest)
_STAGE_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS series_latest_stage (LIKE series_latest INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
_STAGE_COPY = (
    "COPY series_latest_stage (series, cluster, signal, labels, shard, written_at, forecast, score) FROM STDIN"
)
_STAGE_UPSERT = (
    "INSERT INTO series_latest (series, cluster, signal, labels, shard, written_at, forecast, score) "
    "SELECT series, cluster, signal, labels, shard, written_at, forecast, score FROM series_latest_stage "
    "ON CONFLICT (series) DO UPDATE SET shard = excluded.shard, written_at = excluded.written_at, "
    "forecast = coalesce(excluded.forecast, series_latest.forecast), "
    "score = coalesce(excluded.score, series_latest.score)"
)


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _copy_upsert(conn: sa.Connection, rows: Iterable[_Row]) -> None:
    """PostgreSQL: the rows streamed by COPY into a temporary table, then one upsert from it.

    ``executemany`` of ``INSERT ... ON CONFLICT`` costs a statement per series; at every step of
    every replica of a large fleet that was the largest cost of sharding
    (docs/deployment.md#shards-measured): 75 µs per series, 22 µs this way.
    """
    driver = conn.connection.driver_connection  # psycopg 3, inside this transaction
    assert driver is not None
    cursor = driver.cursor()
    cursor.execute(_STAGE_CREATE)
    with cursor.copy(_STAGE_COPY) as copy:
        for r in rows:
            key = r.key
            copy.write_row(
                (
                    str(key),
                    key.cluster,
                    key.signal,
                    orjson.dumps(key.label_dict).decode(),
                    r.shard,
                    r.now,
                    None if r.forecast is None else _json_text(forecast_json(r.forecast, finite=False)),
                    None if r.score is None else _json_text(score_json(r.score)),
                )
            )
    cursor.execute(_STAGE_UPSERT)


@dataclass(slots=True)
class _Row:
    key: SeriesKey
    shard: int
    now: float
    forecast: Forecast | None = None
    score: AnomalyScore | None = None

    def as_params(self) -> dict[str, Any]:
        key = self.key
        return {
            "series": str(key),
            "cluster": key.cluster,
            "signal": key.signal,
            "labels": key.label_dict,
            "shard": self.shard,
            "written_at": self.now,
            "forecast": None if self.forecast is None else forecast_json(self.forecast),
            "score": None if self.score is None else score_json(self.score),
        }


class SharedLatest:
    """Rows of ``series_latest``: written by each series' owner, read by any replica."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def put(self, shard: int, forecasts: Iterable[Forecast], scores: Iterable[AnomalyScore], now: float) -> int:
        """Replace the rows of these series (a series with a forecast but no new score keeps its score)."""
        rows: dict[SeriesKey, _Row] = {}
        for fc in forecasts:
            rows.setdefault(fc.key, _Row(fc.key, shard, now)).forecast = fc
        for sc in scores:
            rows.setdefault(sc.key, _Row(sc.key, shard, now)).score = sc
        if not rows:
            return 0
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                _copy_upsert(conn, rows.values())
            else:
                conn.execute(_upsert(conn.dialect.name), [r.as_params() for r in rows.values()])
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
