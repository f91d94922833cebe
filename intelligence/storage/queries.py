"""Paged reads for the API: a page of rows and how many there are in all (no silent truncation).

The stores keep their own reads for the service; these answer "rows ``offset`` to
``offset + limit`` of what matches, and the total", newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from intelligence.storage.database import Database, aware
from intelligence.storage.ledger import ActionRow, ActionState
from intelligence.storage.ledger import _row as _action
from intelligence.storage.recommendations import RecommendationStore, StoredRecommendation
from intelligence.storage.schema import actions, audit_log, recommendations
from intelligence.vocabulary import RecommendationStatus

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int  # rows that match, in all


def _page(database: Database, table: sa.Table, where: list[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit).offset(offset)
    count = sa.select(sa.func.count()).select_from(table)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    with database.engine.connect() as conn:
        total = int(conn.execute(count).scalar() or 0)
        rows = list(conn.execute(query).mappings()) if offset < total else []
    return rows, total


def recommendation_page(
    database: Database,
    status: RecommendationStatus | None,
    cluster: str | None,
    namespace: str | None,
    limit: int,
    offset: int,
) -> Page[StoredRecommendation]:
    c = recommendations.c
    where = [
        clause
        for value, clause in (
            (status, c.status == (status.value if status else None)),
            (cluster, c.cluster == cluster),
            (namespace, c.namespace == namespace),
        )
        if value is not None
    ]
    rows, total = _page(database, recommendations, where, limit, offset)
    return Page([RecommendationStore._from_row(r) for r in rows], total)


def action_page(
    database: Database, state: ActionState | None, cluster: str | None, limit: int, offset: int
) -> Page[ActionRow]:
    where = [actions.c.state == state.value] if state is not None else []
    if cluster is not None:
        where.append(actions.c.cluster == cluster)
    rows, total = _page(database, actions, where, limit, offset)
    return Page([_action(r) for r in rows], total)


def audit_page(
    database: Database, event: str | None, recommendation_id: int | None, limit: int, offset: int
) -> Page[dict[str, Any]]:
    where = []
    if event is not None:
        where.append(audit_log.c.event == event)
    if recommendation_id is not None:
        where.append(audit_log.c.recommendation_id == recommendation_id)
    rows, total = _page(database, audit_log, where, limit, offset)
    return Page([{**r, "at": aware(r["at"])} for r in rows], total)


def counts_by_cluster(database: Database) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Recommendations per (cluster, status) and actions per (cluster, state): what dashboards count."""
    with database.engine.connect() as conn:
        recs = conn.execute(
            sa.select(recommendations.c.cluster, recommendations.c.status, sa.func.count()).group_by(
                recommendations.c.cluster, recommendations.c.status
            )
        )
        rec_counts = {(r[0], r[1]): int(r[2]) for r in recs}
        acts = conn.execute(
            sa.select(actions.c.cluster, actions.c.state, sa.func.count()).group_by(actions.c.cluster, actions.c.state)
        )
        action_counts = {(r[0], r[1]): int(r[2]) for r in acts}
    return rec_counts, action_counts
