"""How far each shard's engine got: the time of its last step, so that a restarted simulated clock goes on from
there instead of going back to the last checkpoint (a recommendation is never dated before one already made)."""

from __future__ import annotations

import sqlalchemy as sa

from intelligence.storage.database import Database
from intelligence.storage.schema import engine_state


class EngineProgress:
    def __init__(self, database: Database, shard: int) -> None:
        self.engine = database.engine
        self.shard = shard

    def last_step(self) -> float | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(engine_state.c.last_step_at).where(engine_state.c.shard == self.shard)
            ).scalar()
        return float(found) if found is not None else None

    def record(self, now: float) -> None:
        with self.engine.begin() as conn:
            where = engine_state.c.shard == self.shard
            if not conn.execute(engine_state.update().where(where).values(last_step_at=now)).rowcount:
                conn.execute(engine_state.insert().values(shard=self.shard, last_step_at=now))
