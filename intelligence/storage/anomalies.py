"""Anomaly events (a score at or above the threshold) in the decision database: they survive restarts, are
read newest first, and are kept for ``retention`` (older ones are pruned as new ones arrive)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from intelligence.storage.database import Database, jsonable
from intelligence.storage.schema import anomaly_events
from intelligence.vocabulary import AnomalyReason, AnomalyScore, SeriesKey


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class AnomalyEvents:
    def __init__(self, database: Database, retention_seconds: float) -> None:
        self.engine = database.engine
        self.retention_seconds = retention_seconds
        self._pruned_at = -math.inf

    def append(self, events: Sequence[AnomalyScore]) -> None:
        """Store new events (in one transaction); prune those older than the retention now and then."""
        if not events:
            return
        rows = [
            {
                "cluster": e.key.cluster,
                "signal": e.key.signal,
                "namespace": e.key.label("namespace"),
                "workload": e.key.label("workload"),
                "labels": e.key.label_dict,
                "at": e.timestamp,
                "score": e.score,
                "reason": jsonable({k: _finite(v) if isinstance(v, float) else v for k, v in asdict(e.reason).items()}),
            }
            for e in events
        ]
        newest = max(e.timestamp for e in events)
        with self.engine.begin() as conn:
            conn.execute(anomaly_events.insert(), rows)
            if newest - self._pruned_at >= min(self.retention_seconds / 10.0, 3600.0):
                conn.execute(anomaly_events.delete().where(anomaly_events.c.at < newest - self.retention_seconds))
                self._pruned_at = newest

    def find(
        self,
        since: float | None = None,
        min_score: float | None = None,
        cluster: str | None = None,
        signal: str | None = None,
        limit: int = 100,
    ) -> list[AnomalyScore]:
        """Events, newest first (by the sample's time, then by arrival)."""
        query = sa.select(anomaly_events).order_by(anomaly_events.c.at.desc(), anomaly_events.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(anomaly_events.c.at >= since)
        if min_score is not None:
            query = query.where(anomaly_events.c.score >= min_score)
        if cluster is not None:
            query = query.where(anomaly_events.c.cluster == cluster)
        if signal is not None:
            query = query.where(anomaly_events.c.signal == signal)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AnomalyScore(
                SeriesKey.of(r["cluster"], r["signal"], r["labels"]),
                float(r["at"]),
                float(r["score"]),
                AnomalyReason(**r["reason"]),
            )
            for r in rows
        ]
