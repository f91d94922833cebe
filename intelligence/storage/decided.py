"""The last decided value of every target and lever, durable: after a restart nothing is decided again
from scratch, so nothing is re-issued and the stream stays calm across restarts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from intelligence.decisions.publication import Published, direction
from intelligence.storage.database import Database, aware
from intelligence.storage.schema import decided_targets
from intelligence.vocabulary import Lever, WorkloadRef


@dataclass(frozen=True, slots=True)
class Decided:
    """A value decided (published) for a target and lever, ``until`` then (a floor's pulse), and the state before."""

    target: WorkloadRef
    lever: Lever
    value: int | str
    known: Published | None
    until: datetime | None = None

    def state(self, now: datetime) -> Published:
        """The new state: a running pulse that keeps its value is extended, not changed."""
        known, value = self.known, self.value
        if known is not None and known.value == value and known.running(now):
            return Published(value, known.direction, known.changed_at, now, self.until)
        return Published(value, direction(known.value if known else None, value), now, now, self.until)


class DecidedTargets:
    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def all(self) -> dict[tuple[WorkloadRef, Lever], Published]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(decided_targets)).mappings().all()
        return {
            (WorkloadRef(r["cluster"], r["namespace"], r["workload"]), Lever(r["lever"])): Published(
                r["value"], r["direction"], aware(r["changed_at"]), aware(r["decided_at"]), aware(r["until"])
            )
            for r in rows
        }

    def record(
        self,
        target: WorkloadRef,
        lever: Lever,
        value: int | str,
        now: datetime,
        known: Published | None,
        until: datetime | None = None,
    ) -> Published:
        """``value`` was decided (published) now, ``until`` then (a floor's pulse); returns the new state
        (``known``: the state before). A running pulse that keeps its value is extended, not changed."""
        return self.record_many([Decided(target, lever, value, known, until)], now)[0]

    def record_many(self, decided: Sequence[Decided], now: datetime) -> list[Published]:
        """:meth:`record` each of ``decided`` in one transaction (a step's decisions); returns their new states."""
        states = [d.state(now) for d in decided]
        if not states:
            return states
        with self.engine.begin() as conn:
            for d, state in zip(decided, states, strict=True):
                key = {"cluster": d.target.cluster, "namespace": d.target.namespace, "workload": d.target.name}
                key["lever"] = d.lever.value
                values = {
                    "value": state.value,
                    "direction": state.direction,
                    "changed_at": state.changed_at,
                    "decided_at": state.decided_at,
                    "until": state.until,
                }
                where = sa.and_(*(decided_targets.c[k] == v for k, v in key.items()))
                if not conn.execute(decided_targets.update().where(where).values(**values)).rowcount:
                    conn.execute(decided_targets.insert().values(**key, **values))
        return states
