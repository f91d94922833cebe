"""Schema migrations of the decision database, on SQLite and on the stack's real PostgreSQL.

A database made by a release before migrations existed (tables created by
``metadata.create_all``, no version table, targets as ``cluster/namespace/workload``
strings) is recognised and upgraded, keeping every row; a new one is created at the head,
and the head is exactly the schema the code queries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.specs import PolicySpec
from intelligence.storage.database import VERSION_TABLE, current_revision, head_revision, open_database
from intelligence.storage.ledger import ActionLedger, ActionState
from intelligence.storage.recommendations import RecommendationStore
from intelligence.storage.schema import metadata
from intelligence.vocabulary import Lever, Mode, RecommendationStatus, WorkloadRef

pytestmark = pytest.mark.integration

THEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
INGEST = WorkloadRef("edge-1", "iot", "ingest")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decisions.db'}"
    else:
        yield request.getfixturevalue("postgres_db")


def _legacy_schema() -> sa.MetaData:
    """The tables exactly as the first releases created them (``intelligence/recommendations.py`` and
    ``intelligence/ledger.py`` before migrations), copied here so the test does not depend on the migrations."""
    legacy = sa.MetaData()
    sa.Table(
        "recommendations",
        legacy,
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
    sa.Table(
        "audit_log",
        legacy,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("recommendation_id", sa.Integer, nullable=True, index=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    sa.Table(
        "actions",
        legacy,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recommendation_id", sa.Integer, nullable=False, unique=True),
        sa.Column("target", sa.String(800), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("direction", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    sa.Table(
        "actuator_switches",
        legacy,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("on", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
    )
    return legacy


def _write_legacy_history(url: str) -> None:
    legacy = _legacy_schema()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            legacy.create_all(conn)
            recs, audit, actions, switches = (legacy.tables[n] for n in legacy.tables)
            common = {"confidence": 0.8, "created_at": THEN, "updated_at": THEN, "valid_until": THEN}
            explanation = {"rule": "r", "summary": "s", "inputs": {}, "rejected": [], "expected_effect": ""}
            conn.execute(
                recs.insert(),
                [
                    {
                        "dedup_key": "edge-1/iot/ingest:min_scale",
                        "kind": "scale-up",
                        "cluster": "edge-1",
                        "namespace": "iot",
                        "workload": "ingest",
                        "params": {"min_scale": 4},
                        "explanation": explanation,
                        "status": "enacted",
                        **common,
                    },
                    {
                        "dedup_key": "edge-1/iot/ingest:cluster",
                        "kind": "reallocation",
                        "cluster": "edge-1",
                        "namespace": "iot",
                        "workload": "ingest",
                        "params": {"cluster": "fog-1"},
                        "explanation": explanation,
                        "status": "enacted",
                        **common,
                    },
                    {
                        "dedup_key": "cloud-1/shop/cart:replicas",
                        "kind": "scale-out",
                        "cluster": "cloud-1",
                        "namespace": "shop",
                        "workload": "cart",
                        "params": {"replicas": 3},
                        "explanation": explanation,
                        "status": "open",
                        **{**common, "valid_until": THEN + timedelta(days=365)},
                    },
                ],
            )
            conn.execute(
                actions.insert(),
                [
                    {
                        "recommendation_id": 1,
                        "target": "edge-1/iot/ingest",
                        "kind": "scale-up",
                        "params": {"min_scale": 3},  # the envelope limited it
                        "direction": 1,
                        "state": "enacted",
                        "attempts": 1,
                        "created_at": THEN,
                        "updated_at": THEN,
                        "detail": {},
                    },
                    {
                        "recommendation_id": 2,
                        "target": "edge-1/iot/ingest",
                        "kind": "reallocation",
                        "params": {"cluster": "fog-1"},
                        "direction": 0,
                        "state": "enacted",
                        "attempts": 2,
                        "created_at": THEN,
                        "updated_at": THEN + timedelta(minutes=1),
                        "detail": {"object": "ManifestWork"},
                    },
                ],
            )
            conn.execute(audit.insert(), [{"at": THEN, "event": "recommended", "recommendation_id": 1, "detail": {}}])
            conn.execute(switches.insert(), [{"name": "kill", "on": True, "at": THEN, "reason": "maintenance"}])
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_is_upgraded_keeping_its_history(empty_url):
    _write_legacy_history(empty_url)
    database = open_database(empty_url)
    try:
        with database.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            assert "target" not in {c["name"] for c in sa.inspect(conn).get_columns("actions")}
        recs = {r.id: r for r in RecommendationStore(database).find(status=None)}
        assert {i: r.recommendation.lever for i, r in recs.items()} == {
            1: Lever.KNATIVE_FLOOR,
            2: Lever.PLACEMENT,
            3: Lever.REPLICAS,
        }
        assert recs[3].status is RecommendationStatus.OPEN
        assert recs[3].recommendation.dedup_key == "cloud-1/shop/cart:replicas"
        ledger = ActionLedger(database)
        rows = {a.recommendation_id: a for a in ledger.find()}
        assert rows[1].target == INGEST
        assert rows[1].lever is Lever.KNATIVE_FLOOR
        assert rows[1].params == {"min_scale": 3}
        assert rows[2].lever is Lever.PLACEMENT
        assert rows[2].attempts == 2
        assert rows[2].state is ActionState.ENACTED
        assert ledger.last_moves() == {("iot", "ingest"): THEN + timedelta(minutes=1)}
        assert ledger.switch() == (True, "maintenance")
        from intelligence.actuation.actuator import Actuator

        book = PolicyBook(PolicySpec(mode=Mode.RECOMMEND))
        published = Actuator(database, book, timedelta(hours=1)).published
        assert published[(INGEST, Lever.KNATIVE_FLOOR)].value == 3  # the value enacted, as before the upgrade
        assert published[(INGEST, Lever.PLACEMENT)].value == "fog-1"
    finally:
        database.close()


def test_a_new_database_is_created_at_the_head_which_is_the_schema_the_code_queries(empty_url):
    database = open_database(empty_url)
    try:
        with database.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            differences = [d for d in compare_metadata(context, metadata) if not _is_version_table(d)]
        assert differences == []
        again = open_database(empty_url)  # a second start migrates nothing
        assert again.migrate() == (head_revision(), head_revision())
        again.close()
    finally:
        database.close()


def _is_version_table(difference: object) -> bool:
    return VERSION_TABLE in str(difference)


def test_replicas_starting_together_on_postgresql_migrate_once(postgres_db):
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_database(postgres_db).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    database = open_database(postgres_db)
    with database.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    database.close()


def test_an_unreachable_database_is_a_clear_error_without_its_password():
    from intelligence.storage.database import DatabaseError

    with pytest.raises(DatabaseError) as caught:
        open_database("postgresql+psycopg://icos:s3cret@127.0.0.1:9/icos")
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1:9/icos" in str(caught.value)
