"""The decision database: one SQLAlchemy engine, its schema migrations, and the conventions of every store.

SQLite in the state directory by default, any SQLAlchemy URL (PostgreSQL in production).
:func:`open_database` brings the schema to the head of ``migrations/`` with Alembic before
anything reads it: a new database is created, one made by a release before migrations
existed is recognised (its tables, no version table) and upgraded keeping its history.
On PostgreSQL, replicas starting together take turns (an advisory lock). The only
package that imports SQLAlchemy and Alembic is :mod:`intelligence.storage`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, overload

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

VERSION_TABLE = "icos_schema_version"  # not alembic's default: MLflow keeps its own in a database it may share
BEFORE_MIGRATIONS = "0001"  # the schema the first releases created without a version table
_LOCK_KEY = 0x1C05_D0B5  # PostgreSQL advisory lock held while migrating


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message names it (without its password)."""


def redacted(url: str) -> str:
    """The URL as it may be logged: no password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown only by its scheme
        return url.split(":", 1)[0] + ":..."


@overload
def aware(value: datetime) -> datetime: ...


@overload
def aware(value: None) -> None: ...


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def jsonable(value: Any) -> Any:
    """What a JSON column can hold (datetimes and enums as their text)."""
    return json.loads(json.dumps(value, default=str))


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("intelligence.storage") / "migrations"))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(files("intelligence.storage") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


@dataclass
class Database:
    """The engine every store of the service shares."""

    url: str
    engine: Engine

    @property
    def name(self) -> str:
        return redacted(self.url)

    def migrate(self) -> tuple[str | None, str]:
        """Bring the schema to the head revision; returns (revision before, revision after)."""
        with self.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            before = current_revision(conn)
            config = _alembic_config(conn)
            if before is None and sa.inspect(conn).has_table("recommendations"):
                command.stamp(config, BEFORE_MIGRATIONS)
                before = BEFORE_MIGRATIONS
                log.info("database %s predates migrations: recognised as revision %s", self.name, before)
            command.upgrade(config, "head")
            after = current_revision(conn)
        assert after is not None
        if before != after:
            log.info("database %s migrated from revision %s to %s", self.name, before or "(empty)", after)
        return before, after

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_write_ahead(dbapi_connection: Any, _record: Any) -> None:
    """Readers (the API) never wait for the engine's writes, and a commit does not wait for the disk each time."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(url: str, migrate: bool = True) -> Database:
    """Connect (SQLite: write-ahead log, waits up to 30 s for a lock) and migrate to the head revision."""
    try:
        sqlite = url.startswith("sqlite")
        engine = sa.create_engine(url, connect_args={"timeout": 30} if sqlite else {}, pool_pre_ping=True)
        if sqlite and ":memory:" not in url:
            sa.event.listen(engine, "connect", _sqlite_write_ahead)
        database = Database(url, engine)
    except Exception as exc:
        raise DatabaseError(f"{redacted(url)}: {type(exc).__name__}: {exc}") from exc
    if migrate:
        try:
            database.migrate()
        except Exception as exc:
            database.close()
            raise DatabaseError(f"{database.name}: cannot migrate the schema: {type(exc).__name__}: {exc}") from exc
    return database
