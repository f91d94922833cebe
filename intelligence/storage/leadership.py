"""Which replica does the work that must happen once for the whole fleet: an election in the decision database.

On PostgreSQL the leader is the replica holding a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own, kept open while it leads. The lock
lives as long as that session: a leader that stops, crashes or loses its connection
releases it, and the next replica that asks gets it (at its next step). A replica checks
its connection at every step, so a leader cut off from the database stops leading at its
next step; TCP keepalives bound how long the server takes to notice a leader that vanished
without closing its connection (a lost node: about 25 seconds).

Other databases (SQLite: one machine, in practice one replica) have no such lock: the
leader is shard 0, always.
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intelligence.storage.database import Database

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x1C05_1EAD  # PostgreSQL advisory lock of the fleet's leader (the migrations use another)

# libpq: give up connecting after 5 s; probe an idle connection after 10 s, every 5 s, 3 times (a vanished peer is
# noticed by both ends within about 25 s); a write unacknowledged for 15 s fails
_KEEPALIVE = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


class Leadership(Protocol):
    """Asked once per engine step: does this replica lead the fleet now?"""

    @property
    def how(self) -> str: ...

    def check(self) -> bool: ...

    def close(self) -> None: ...

    def step_down(self) -> None:
        """Lead no more for now (the next ``check`` may take the lead again)."""
        ...


class StaticLeadership:
    """No election: this replica leads or not, for good (a single replica, or a database without advisory locks)."""

    def __init__(self, leads: bool, how: str = "a single replica") -> None:
        self._leads = leads
        self.how = how

    def check(self) -> bool:
        return self._leads

    def close(self) -> None:
        pass

    def step_down(self) -> None:
        pass  # nobody else could lead: shard 0 leads (or nobody) whatever happens


class AdvisoryLockLeadership:
    """The leader holds a PostgreSQL session-level advisory lock on a dedicated connection."""

    how = "PostgreSQL advisory lock"

    def __init__(self, database: Database, key: int = LEADER_LOCK_KEY) -> None:
        self.key = key
        self.name = database.name
        # a connection of its own, outside the pool: the lock lives exactly as long as this session
        self._engine = sa.create_engine(database.url, poolclass=sa.pool.NullPool, connect_args=_KEEPALIVE)
        self._connection: Connection | None = None
        self.last_error: str | None = None

    def check(self) -> bool:
        """True while the lock is held (the session answers); otherwise try to take it."""
        if self._connection is not None:
            try:
                self._connection.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.SQLAlchemyError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("leader lock session on %s lost (%s): leading no more", self.name, self.last_error)
                self._drop()
        return self._try_lock()

    def _try_lock(self) -> bool:
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.SQLAlchemyError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        try:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
        except sa.exc.SQLAlchemyError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._connection, self.last_error = conn, None
        return True

    def _drop(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.invalidate()  # never back to a pool: the session, and the lock with it, is gone
                conn.close()
            except sa.exc.SQLAlchemyError:
                log.debug("closing the lost leader session failed", exc_info=True)

    def step_down(self) -> None:
        """Release the lock now, so that another replica takes it at its next step."""
        if self._connection is not None:
            log.warning("leader lock on %s released: this replica stands aside", self.name)
        self._drop()

    def close(self) -> None:
        """Hand leadership over: closing the session releases the lock at once."""
        self._drop()
        self._engine.dispose()


def leadership_for(database: Database, shard_index: int, sharded: bool) -> Leadership:
    """The election that fits the database: an advisory lock on PostgreSQL when sharded, else shard 0."""
    if not sharded:
        return StaticLeadership(True)
    if database.engine.dialect.name == "postgresql":
        return AdvisoryLockLeadership(database)
    return StaticLeadership(shard_index == 0, f"shard 0 ({database.engine.dialect.name} has no advisory locks)")
