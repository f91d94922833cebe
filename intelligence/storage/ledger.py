"""The action ledger: what was enacted, in the database, so that nothing is enacted twice.

Each recommendation gets at most one action row (a unique constraint, which also
holds between replicas). The row is written as ``intent`` *before* the API call
and as ``enacted`` after the read-back verified it. A process that dies between
the two leaves an ``intent``: at the next start the actuator asks the cluster
whether the change is in force and records ``enacted`` without writing again, or
``abandoned`` (the decision is stale; a fresh one will follow). Temporary failures
go to ``retry`` with a due time; the adapters read before they write, so a retry
after a write whose answer was lost does not write twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from intelligence.decisions.envelope import EnactedAction
from intelligence.storage.database import Database, aware, jsonable
from intelligence.storage.schema import actions, switches
from intelligence.vocabulary import Lever, WorkloadRef

KILL_SWITCH = "kill"


class ActionState(enum.StrEnum):
    INTENT = "intent"  # about to call the API (or died doing so)
    ENACTED = "enacted"  # verified by reading the object back
    RETRY = "retry"  # a temporary error; tried again when due
    FAILED = "failed"  # a permanent error, or too many attempts
    ABANDONED = "abandoned"  # found as an intent after a crash, and not in force
    RELEASED = "released"  # a floor whose pulse ended: back to the policy's min-scale (or a newer pulse took over)


@dataclass(frozen=True, slots=True)
class ActionRow:
    id: int
    recommendation_id: int
    target: WorkloadRef
    lever: Lever
    kind: str
    params: dict[str, Any]
    direction: int
    state: ActionState
    attempts: int
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    detail: dict[str, Any]


def _row(r: Any) -> ActionRow:
    return ActionRow(
        id=r["id"],
        recommendation_id=r["recommendation_id"],
        target=WorkloadRef(r["cluster"], r["namespace"], r["workload"]),
        lever=Lever(r["lever"]),
        kind=r["kind"],
        params=dict(r["params"]),
        direction=r["direction"],
        state=ActionState(r["state"]),
        attempts=r["attempts"],
        created_at=aware(r["created_at"]),
        updated_at=aware(r["updated_at"]),
        due_at=aware(r["due_at"]),
        detail=dict(r["detail"]),
    )


class ActionLedger:
    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def begin(
        self,
        recommendation_id: int,
        target: WorkloadRef,
        lever: Lever,
        kind: str,
        params: dict[str, Any],
        direction: int,
        now: datetime,
    ) -> int | None:
        """Record the intent; None if this recommendation already has an action (here or in another replica)."""
        try:
            with self.engine.begin() as conn:
                inserted = conn.execute(
                    actions.insert().values(
                        recommendation_id=recommendation_id,
                        lever=lever.value,
                        cluster=target.cluster,
                        namespace=target.namespace,
                        workload=target.name,
                        kind=kind,
                        params=jsonable(params),
                        direction=direction,
                        state=ActionState.INTENT.value,
                        attempts=1,
                        created_at=now,
                        updated_at=now,
                        detail={},
                    )
                ).inserted_primary_key
        except IntegrityError:
            return None
        assert inserted is not None
        return int(inserted[0])

    def claim_retry(self, action_id: int, now: datetime) -> bool:
        """Turn a due ``retry`` into an ``intent`` again (one attempt more); False if someone else did."""
        with self.engine.begin() as conn:
            result = conn.execute(
                actions.update()
                .where(actions.c.id == action_id)
                .where(actions.c.state == ActionState.RETRY.value)
                .values(state=ActionState.INTENT.value, attempts=actions.c.attempts + 1, updated_at=now)
            )
            return bool(result.rowcount)

    def finish(
        self, action_id: int, state: ActionState, now: datetime, detail: dict[str, Any], due: timedelta | None = None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                actions.update()
                .where(actions.c.id == action_id)
                .values(
                    state=state.value,
                    updated_at=now,
                    due_at=now + due if due is not None else None,
                    detail=jsonable(detail),
                )
            )

    def find(self, *states: ActionState, limit: int = 1000) -> list[ActionRow]:
        query = sa.select(actions).order_by(actions.c.id.desc()).limit(limit)
        if states:
            query = query.where(actions.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings().all()]

    def enacted_floors(self) -> list[ActionRow]:
        """Floors enacted and not yet released: the pulses that may be running, oldest first."""
        query = (
            sa.select(actions)
            .where(actions.c.state == ActionState.ENACTED.value)
            .where(actions.c.lever.in_([lever.value for lever in Lever if lever.scales]))
            .order_by(actions.c.id)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings().all()]

    def for_recommendation(self, recommendation_id: int) -> ActionRow | None:
        with self.engine.connect() as conn:
            r = (
                conn.execute(sa.select(actions).where(actions.c.recommendation_id == recommendation_id))
                .mappings()
                .first()
            )
        return None if r is None else _row(r)

    def enacted_since(self, since: datetime) -> list[EnactedAction]:
        """Actions enacted (or being enacted) since ``since``: what the envelope counts."""
        query = (
            sa.select(
                actions.c.cluster, actions.c.namespace, actions.c.workload, actions.c.created_at, actions.c.direction
            )
            .where(actions.c.created_at >= since)
            .where(actions.c.state.in_([ActionState.ENACTED.value, ActionState.INTENT.value]))
        )
        with self.engine.connect() as conn:
            return [
                EnactedAction(WorkloadRef(r.cluster, r.namespace, r.workload), aware(r.created_at), r.direction)
                for r in conn.execute(query)
            ]

    def last_moves(self) -> dict[tuple[str, str], datetime]:
        """When each workload (namespace, name) was last moved to another cluster."""
        query = (
            sa.select(actions.c.namespace, actions.c.workload, sa.func.max(actions.c.updated_at))
            .where(actions.c.lever == Lever.PLACEMENT.value)
            .where(actions.c.state == ActionState.ENACTED.value)
            .group_by(actions.c.namespace, actions.c.workload)
        )
        with self.engine.connect() as conn:
            return {(r[0], r[1]): aware(r[2]) for r in conn.execute(query)}

    def switch(self, name: str = KILL_SWITCH) -> tuple[bool, str]:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(switches).where(switches.c.name == name)).mappings().first()
        return (bool(r["on"]), str(r["reason"])) if r is not None else (False, "")

    def set_switch(self, on: bool, reason: str, now: datetime, name: str = KILL_SWITCH) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                switches.update().where(switches.c.name == name).values(on=on, at=now, reason=reason)
            )
            if not updated.rowcount:
                conn.execute(switches.insert().values(name=name, on=on, at=now, reason=reason))
