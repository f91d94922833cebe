"""Recommendations and the audit log in a real database (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from intelligence.vocabulary import ActionKind, Explanation, Lever, Recommendation, RecommendationStatus, WorkloadRef

metadata = sa.MetaData()

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(512), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("workload", sa.String(253), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("explanation", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("recommendation_id", sa.Integer, nullable=True, index=True),
    sa.Column("detail", sa.JSON, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredRecommendation:
    id: int
    status: RecommendationStatus
    recommendation: Recommendation
    updated_at: datetime


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class RecommendationStore:
    """Writes are transactions; one open recommendation per (kind, target, parameter names)."""

    def __init__(self, url: str) -> None:
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine: Engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

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
            params = _jsonable(dict(rec.params))
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
                    cluster=rec.target.cluster,
                    namespace=rec.target.namespace,
                    workload=rec.target.name,
                    params=params,
                    confidence=rec.confidence,
                    explanation=_jsonable(asdict(rec.explanation)),
                    status=RecommendationStatus.OPEN.value,
                    created_at=now,
                    updated_at=now,
                    valid_until=rec.valid_until,
                )
            ).inserted_primary_key
            assert inserted is not None
            new_id = inserted[0]
            conn.execute(
                audit_log.insert().values(
                    at=now,
                    event="recommended",
                    recommendation_id=new_id,
                    detail={
                        "superseded": int(row.id) if row is not None else None,
                        "params": params,
                        "summary": rec.explanation.summary,
                    },
                )
            )
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
                conn.execute(
                    audit_log.insert().values(
                        at=now, event=status.value, recommendation_id=rec_id, detail=_jsonable(audit)
                    )
                )
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
            )
            return int(result.rowcount or 0)

    def audit(self, event: str, at: datetime, detail: dict[str, Any], recommendation_id: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                audit_log.insert().values(
                    at=at, event=event, recommendation_id=recommendation_id, detail=_jsonable(detail)
                )
            )

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

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    @staticmethod
    def _from_row(r: Any) -> StoredRecommendation:
        exp = r["explanation"]
        rec = Recommendation(
            kind=ActionKind(r["kind"]),
            lever=next(lever for lever in Lever if lever.param in r["params"]),
            target=WorkloadRef(r["cluster"], r["namespace"], r["workload"]),
            params=r["params"],
            created_at=_aware(r["created_at"]) or datetime.now(UTC),
            confidence=r["confidence"],
            explanation=Explanation(
                rule=exp.get("rule", ""),
                summary=exp.get("summary", ""),
                inputs=exp.get("inputs", {}),
                rejected=tuple(exp.get("rejected", ())),
                expected_effect=exp.get("expected_effect", ""),
            ),
            valid_until=_aware(r["valid_until"]),
        )
        return StoredRecommendation(
            r["id"], RecommendationStatus(r["status"]), rec, _aware(r["updated_at"]) or rec.created_at
        )
