"""Recommendations in the decision database: one open recommendation per target and lever."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from intelligence.storage.audit import write_audit
from intelligence.storage.database import Database, aware, jsonable
from intelligence.storage.outbox import write_recommendation_event
from intelligence.storage.schema import recommendation_revisions, recommendations
from intelligence.vocabulary import ActionKind, Explanation, Lever, Recommendation, RecommendationStatus, WorkloadRef


class Change(enum.StrEnum):
    OPENED = "opened"  # no open recommendation for the target and lever: a new one
    REVISED = "revised"  # the open one now says something else (revision + 1)
    REFRESHED = "refreshed"  # the open one says the same: still valid, nothing new


@dataclass(frozen=True, slots=True)
class StoredRecommendation:
    id: int
    status: RecommendationStatus
    recommendation: Recommendation
    updated_at: datetime
    revision: int = 1


@dataclass(frozen=True, slots=True)
class Revision:
    """One value a recommendation had, and when it was published."""

    revision: int
    kind: ActionKind
    params: dict[str, Any]
    confidence: float
    summary: str
    at: datetime


def _current(dedup_key: str, now: datetime) -> sa.Select[Any]:
    standing = [RecommendationStatus.APPROVED.value, RecommendationStatus.ENACTED.value]
    return (
        sa.select(
            recommendations.c.id,
            recommendations.c.params,
            recommendations.c.revision,
            recommendations.c.status,
            recommendations.c.valid_until,
        )
        .where(recommendations.c.dedup_key == dedup_key)
        .where(recommendations.c.status.in_([RecommendationStatus.OPEN.value, *standing]))
        .where(recommendations.c.valid_until.is_(None) | (recommendations.c.valid_until >= now))
        .order_by(recommendations.c.id.desc())
        .limit(1)
    )


def _standing(dedup_keys: Sequence[str], now: datetime) -> sa.Select[Any]:
    """The rows :func:`_current` looks among, for several targets and levers at once (the newest of each wins)."""
    standing = [RecommendationStatus.APPROVED.value, RecommendationStatus.ENACTED.value]
    return (
        sa.select(
            recommendations.c.dedup_key,
            recommendations.c.id,
            recommendations.c.params,
            recommendations.c.revision,
            recommendations.c.status,
            recommendations.c.valid_until,
        )
        .where(recommendations.c.dedup_key.in_(dedup_keys))
        .where(recommendations.c.status.in_([RecommendationStatus.OPEN.value, *standing]))
        .where(recommendations.c.valid_until.is_(None) | (recommendations.c.valid_until >= now))
    )


_REFRESH = (
    recommendations.update()
    .where(recommendations.c.id == sa.bindparam("rec_id"))
    .values(
        updated_at=sa.bindparam("at"),
        valid_until=sa.bindparam("until"),
        confidence=sa.bindparam("conf"),
        in_force_at=sa.bindparam("in_force"),
    )
)


def _refresh_values(rec_id: int, rec: Recommendation) -> dict[str, Any]:
    """The same value still standing: its validity, confidence and time in force, refreshed (no event)."""
    return {
        "rec_id": rec_id,
        "at": rec.created_at,
        "until": rec.valid_until,
        "conf": rec.confidence,
        "in_force": rec.in_force_at,
    }


def _expire(conn: sa.Connection, now: datetime, *where: sa.ColumnElement[bool]) -> list[int]:
    """Open recommendations whose validity is over become expired (a floor's pulse ending now can still be
    extended by the decision of this step: see :meth:`~intelligence.decisions.publication.Published.running`);
    each one's event is written in the same transaction. Returns their ids."""
    result = conn.execute(
        recommendations.update()
        .where(recommendations.c.status == RecommendationStatus.OPEN.value)
        .where(recommendations.c.valid_until.is_not(None))
        .where(recommendations.c.valid_until < now)
        .where(*where)
        .values(status=RecommendationStatus.EXPIRED.value, updated_at=now)
        .returning(recommendations.c.id)
    )
    expired = [int(r.id) for r in result]
    for rec_id in expired:
        write_recommendation_event(conn, rec_id, now, {"reason": "valid_until passed"})
    return expired


class RecommendationStore:
    """Writes are transactions; one open recommendation per target and lever, revised in place."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine

    def publish(self, rec: Recommendation) -> tuple[int, Change]:
        """Publish ``rec``: the open recommendation of its target and lever is updated in place, else opened.

        The same value refreshes the standing one (its validity and confidence: a pulse extended,
        even once enacted, or continued when it ends now); another value revises an open one still
        running in place (revision + 1, the history kept, audited); otherwise (none standing, one
        ending now, or an approved or enacted one that says something else) a new one opens,
        revision 1.
        """
        return self.publish_many([rec])[0]

    def publish_many(self, recs: Sequence[Recommendation]) -> list[tuple[int, Change]]:
        """:meth:`publish` each of ``recs``, in order, in one transaction (a step's decisions: one commit, not one
        per recommendation); all or none are written.

        A step's recommendations (one time, one per target and lever) expire, are looked up and are refreshed in
        a few statements for all of them; only those that change are written one by one."""
        if not recs:
            return []
        keys = [rec.dedup_key for rec in recs]
        with self.engine.begin() as conn:
            if len(set(keys)) < len(keys) or len({rec.created_at for rec in recs}) > 1:
                return [self._publish(conn, rec) for rec in recs]  # one after the other: each sees the last
            now = recs[0].created_at
            standing: dict[str, Any] = {}
            for chunk in range(0, len(keys), 500):
                part = keys[chunk : chunk + 500]
                _expire(conn, now, recommendations.c.dedup_key.in_(part))  # their time is over
                for found in conn.execute(_standing(part, now)):
                    if found.dedup_key not in standing or found.id > standing[found.dedup_key].id:
                        standing[found.dedup_key] = found
            out: list[tuple[int, Change]] = []
            refreshed: list[dict[str, Any]] = []
            for rec in recs:
                row, params = standing.get(rec.dedup_key), jsonable(dict(rec.params))
                if row is not None and row.params == params:
                    refreshed.append(_refresh_values(int(row.id), rec))
                    out.append((int(row.id), Change.REFRESHED))
                else:
                    out.append(self._change(conn, rec, row, params))
            if refreshed:
                conn.execute(_REFRESH, refreshed)
            return out

    @classmethod
    def _publish(cls, conn: sa.Connection, rec: Recommendation) -> tuple[int, Change]:
        now = rec.created_at
        params = jsonable(dict(rec.params))
        _expire(conn, now, recommendations.c.dedup_key == rec.dedup_key)  # its time is over
        row = conn.execute(_current(rec.dedup_key, now)).first()
        if row is not None and row.params == params:
            conn.execute(_REFRESH, [_refresh_values(int(row.id), rec)])
            return int(row.id), Change.REFRESHED  # the same value, still standing: no event
        return cls._change(conn, rec, row, params)

    @staticmethod
    def _change(conn: sa.Connection, rec: Recommendation, row: Any, params: Any) -> tuple[int, Change]:
        """Revise the open one (``row``) in place, or open a new one: the history, audit and event written."""
        now = rec.created_at
        content = {
            "kind": rec.kind.value,
            "params": params,
            "confidence": rec.confidence,
            "explanation": jsonable(asdict(rec.explanation)),
            "updated_at": now,
            "valid_until": rec.valid_until,
            "in_force_at": rec.in_force_at,
        }
        running = row is not None and (row.valid_until is None or aware(row.valid_until) > now)
        if row is not None and running and row.status == RecommendationStatus.OPEN.value:
            rec_id, revision, change = int(row.id), int(row.revision) + 1, Change.REVISED
            conn.execute(
                recommendations.update().where(recommendations.c.id == rec_id).values(**content, revision=revision)
            )
        else:
            if row is not None and row.status == RecommendationStatus.OPEN.value:  # it ends now: another begins
                conn.execute(
                    recommendations.update()
                    .where(recommendations.c.id == row.id)
                    .values(status=RecommendationStatus.EXPIRED.value, updated_at=now)
                )
                write_recommendation_event(conn, int(row.id), now, {"reason": "its pulse ended; another begins"})
            revision, change = 1, Change.OPENED
            inserted = conn.execute(
                recommendations.insert().values(
                    **content,
                    dedup_key=rec.dedup_key,
                    lever=rec.lever.value,
                    cluster=rec.target.cluster,
                    namespace=rec.target.namespace,
                    workload=rec.target.name,
                    status=RecommendationStatus.OPEN.value,
                    created_at=now,
                    revision=revision,
                )
            ).inserted_primary_key
            assert inserted is not None
            rec_id = int(inserted[0])
        conn.execute(
            recommendation_revisions.insert().values(
                recommendation_id=rec_id,
                revision=revision,
                kind=rec.kind.value,
                params=params,
                confidence=rec.confidence,
                summary=rec.explanation.summary[:2000],
                at=now,
            )
        )
        detail = {"revision": revision, "params": params, "summary": rec.explanation.summary}
        if row is not None:
            detail["previous"] = row.params
        write_audit(conn, now, "recommended" if change is Change.OPENED else "revised", detail, rec_id)
        write_recommendation_event(conn, rec_id, now, {"revision": revision})
        return rec_id, change

    def current(self, dedup_key: str, now: datetime) -> StoredRecommendation | None:
        """The recommendation that stands for a target and lever: the open one, or one approved or enacted whose
        validity runs (a floor's pulse)."""
        with self.engine.connect() as conn:
            row = conn.execute(_current(dedup_key, now)).first()
        return self.get(int(row.id)) if row is not None else None

    def history(self, rec_id: int) -> list[Revision]:
        """Every value a recommendation had, oldest first."""
        query = (
            sa.select(recommendation_revisions)
            .where(recommendation_revisions.c.recommendation_id == rec_id)
            .order_by(recommendation_revisions.c.revision)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Revision(
                r["revision"], ActionKind(r["kind"]), dict(r["params"]), r["confidence"], r["summary"], aware(r["at"])
            )
            for r in rows
        ]

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
            return len(_expire(conn, now))

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
            created_at=aware(r["created_at"]),
            confidence=r["confidence"],
            explanation=Explanation(
                rule=exp.get("rule", ""),
                summary=exp.get("summary", ""),
                inputs=exp.get("inputs", {}),
                rejected=tuple(exp.get("rejected", ())),
                expected_effect=exp.get("expected_effect", ""),
            ),
            valid_until=aware(r["valid_until"]),
            in_force_at=aware(r["in_force_at"]),
        )
        return StoredRecommendation(
            r["id"], RecommendationStatus(r["status"]), rec, aware(r["updated_at"]), r["revision"]
        )
