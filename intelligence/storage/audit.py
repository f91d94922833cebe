"""The audit log: every decision the service published, refused or enacted, and every operator's act."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intelligence.storage.database import Database, aware, jsonable
from intelligence.storage.schema import audit_log


def write_audit(
    conn: Connection, at: datetime, event: str, detail: dict[str, Any], recommendation_id: int | None = None
) -> None:
    """One audit entry, inside the caller's transaction (so it commits with the change it records)."""
    conn.execute(
        audit_log.insert().values(at=at, event=event, recommendation_id=recommendation_id, detail=jsonable(detail))
    )


class AuditLog:
    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    def record(self, event: str, at: datetime, detail: dict[str, Any], recommendation_id: int | None = None) -> None:
        with self._engine.begin() as conn:
            write_audit(conn, at, event, detail, recommendation_id)

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings().all()
        return [{**row, "at": aware(row["at"])} for row in rows]


class QuietAuditLog(AuditLog):
    """An audit log that does not repeat itself: the same event with the same detail about the same subject is
    written once (a refusal that holds for an hour is one entry, not sixty). Memory only: a restart may repeat one."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._said: dict[object, str] = {}

    def record_once(
        self, subject: object, event: str, at: datetime, detail: dict[str, Any], recommendation_id: int | None = None
    ) -> None:
        text = f"{event}:{detail}"
        if self._said.get(subject) == text:
            return
        self._said[subject] = text
        self.record(event, at, detail, recommendation_id)
