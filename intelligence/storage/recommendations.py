"""Recommendations in the decision database: one open recommendation per target and lever."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from intelligence.storage.audit import write_audit
from intelligence.storage.database import Database, aware, jsonable
from intelligence.storage.outbox import write_recommendation_event
from intelligence.storage.schema import recommendations
from intelligence.vocabulary import ActionKind, Explanation, Lever, Recommendation, RecommendationStatus, WorkloadRef


@dataclass(frozen=True, slots=True)
class StoredRecommendation:
    id: int
    status: RecommendationStatus
    recommendation: Recommendation
    updated_at: datetime


class RecommendationStore:
    """Writes are transactions; one open recommendation per (kind, target, parameter names)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine

    def upsert(self, rec: Recommendation) -> tuple[int, bool]:
        """Store ``rec``; returns (id, is_new).

        The same open recommendation is refreshed (its ``updated_at`` and validity);
        an open one with other parameters is superseded by ``rec``.
        """
        now = rec.created_at
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(recommendations.c.id, recommendations.c.params)
                .where(recommendations.c.dedup_key == rec.dedup_key)
                .where(recommendations.c.status == RecommendationStatus.OPEN.value)
                .order_by(recommendations.c.id.desc())
                .limit(1)
            ).first()
            params = jsonable(dict(rec.params))
            if row is not None and row.params == params:
                conn.execute(
                    recommendations.update()
                    .where(recommendations.c.id == row.id)
                    .values(updated_at=now, valid_until=rec.valid_until, confidence=rec.confidence)
                )
                return int(row.id), False
            if row is not None:
                conn.execute(
                    recommendations.update()
                    .where(recommendations.c.id == row.id)
                    .values(status=RecommendationStatus.SUPERSEDED.value, updated_at=now)
                )
            inserted = conn.execute(
                recommendations.insert().values(
                    dedup_key=rec.dedup_key,
                    kind=rec.kind.value,
                    lever=rec.lever.value,
                    cluster=rec.target.cluster,
                    namespace=rec.target.namespace,
                    workload=rec.target.name,
                    params=params,
                    confidence=rec.confidence,
                    explanation=jsonable(asdict(rec.explanation)),
                    status=RecommendationStatus.OPEN.value,
                    created_at=now,
                    updated_at=now,
                    valid_until=rec.valid_until,
                )
            ).inserted_primary_key
            assert inserted is not None
            new_id = inserted[0]
            write_audit(
                conn,
                now,
                "recommended",
                {
                    "superseded": int(row.id) if row is not None else None,
                    "params": params,
                    "summary": rec.explanation.summary,
                },
                int(new_id),
            )
            write_recommendation_event(conn, int(new_id), now, {"superseded": int(row.id) if row is not None else None})
            return int(new_id), True

    def extend(self, dedup_key: str, now: datetime, valid_until: datetime) -> bool:
        """The evidence of the open recommendation still holds: keep it valid longer."""
        with self.engine.begin() as conn:
            result = conn.execute(
                recommendations.update()
                .where(recommendations.c.dedup_key == dedup_key)
                .where(recommendations.c.status == RecommendationStatus.OPEN.value)
                .values(updated_at=now, valid_until=valid_until)
            )
            return bool(result.rowcount)

    def get(self, rec_id: int) -> StoredRecommendation | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(recommendations).where(recommendations.c.id == rec_id)).mappings().first()
        return None if row is None else self._from_row(row)

    def set_status(
        self,
        rec_id: int,
        status: RecommendationStatus,
        now: datetime,
        expected: tuple[RecommendationStatus, ...] = (),
        audit: dict[str, Any] | None = None,
    ) -> bool:
        """Move a recommendation to ``status`` (only from one of ``expected``, if given) and audit it."""
        with self.engine.begin() as conn:
            query = recommendations.update().where(recommendations.c.id == rec_id)
            if expected:
                query = query.where(recommendations.c.status.in_([s.value for s in expected]))
            result = conn.execute(query.values(status=status.value, updated_at=now))
            if not result.rowcount:
                return False
            if audit is not None:
                write_audit(conn, now, status.value, audit, rec_id)
            write_recommendation_event(conn, rec_id, now, audit)
            return True

    def expire(self, now: datetime) -> int:
        """Mark open recommendations past their validity as expired."""
        with self.engine.begin() as conn:
            result = conn.execute(
                recommendations.update()
                .where(recommendations.c.status == RecommendationStatus.OPEN.value)
                .where(recommendations.c.valid_until.is_not(None))
                .where(recommendations.c.valid_until < now)
                .values(status=RecommendationStatus.EXPIRED.value, updated_at=now)
                .returning(recommendations.c.id)
            )
            expired = [int(r.id) for r in result]
            for rec_id in expired:
                write_recommendation_event(conn, rec_id, now, {"reason": "valid_until passed"})
            return len(expired)

    def find(
        self,
        status: RecommendationStatus | None = None,
        cluster: str | None = None,
        namespace: str | None = None,
        limit: int = 100,
    ) -> list[StoredRecommendation]:
        query = sa.select(recommendations).order_by(recommendations.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(recommendations.c.status == status.value)
        if cluster is not None:
            query = query.where(recommendations.c.cluster == cluster)
        if namespace is not None:
            query = query.where(recommendations.c.namespace == namespace)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._from_row(r) for r in rows]

    @staticmethod
    def _from_row(r: Any) -> StoredRecommendation:
        exp = r["explanation"]
        rec = Recommendation(
            kind=ActionKind(r["kind"]),
            lever=Lever(r["lever"]),
            target=WorkloadRef(r["cluster"], r["namespace"], r["workload"]),
            params=r["params"],
            created_at=aware(r["created_at"]) or datetime.now(UTC),
            confidence=r["confidence"],
            explanation=Explanation(
                rule=exp.get("rule", ""),
                summary=exp.get("summary", ""),
                inputs=exp.get("inputs", {}),
                rejected=tuple(exp.get("rejected", ())),
                expected_effect=exp.get("expected_effect", ""),
            ),
            valid_until=aware(r["valid_until"]),
        )
        return StoredRecommendation(
            r["id"], RecommendationStatus(r["status"]), rec, aware(r["updated_at"]) or rec.created_at
        )
