"""The real PostgreSQL of tests/stack.py: SQLAlchemy with psycopg 3, and the decision database on it."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from intelligence.storage.audit import AuditLog
from intelligence.storage.database import open_database
from intelligence.storage.recommendations import Change, RecommendationStore
from intelligence.vocabulary import (
    ActionKind,
    Explanation,
    Lever,
    Recommendation,
    RecommendationStatus,
    WorkloadRef,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
TARGET = WorkloadRef("edge-1", "iot", "ingest")


def rec(min_scale: int, at: datetime = NOW) -> Recommendation:
    return Recommendation(
        ActionKind.SCALE_UP,
        Lever.KNATIVE_FLOOR,
        TARGET,
        {"min_scale": min_scale},
        at,
        0.8,
        Explanation("rule", f"to {min_scale}", inputs={"p95": 41.5}),
        at + timedelta(hours=1),
    )


def test_the_stack_database_answers(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "icos"
            assert str(conn.execute(sa.text("SHOW server_version")).scalar()).startswith("15.")
    finally:
        engine.dispose()


def test_create_insert_read_back(postgres_db):
    engine = sa.create_engine(postgres_db)
    table = sa.Table(
        "samples",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
    )
    try:
        with engine.begin() as conn:
            assert engine.dialect.name == "postgresql"
            assert engine.dialect.driver == "psycopg"
            table.metadata.create_all(conn)
            conn.execute(
                table.insert(),
                [
                    {"series": "cpu", "value": 0.25, "labels": {"cluster": "edge-1"}},
                    {"series": "memory", "value": 1.5e9, "labels": {"cluster": "fog-1"}},
                ],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.series, table.c.value, table.c.labels).order_by(table.c.id)).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("cpu", 0.25, {"cluster": "edge-1"}), ("memory", 1.5e9, {"cluster": "fog-1"})]


def test_recommendation_store_on_postgres(postgres_db):
    store = RecommendationStore(open_database(postgres_db))
    try:
        first, change = store.publish(rec(3))
        assert change is Change.OPENED
        assert store.publish(rec(3, NOW + timedelta(minutes=5))) == (first, Change.REFRESHED)
        assert store.publish(rec(5, NOW + timedelta(minutes=10))) == (first, Change.REVISED)

        stored = store.get(first)
        assert stored is not None
        assert stored.status is RecommendationStatus.OPEN
        assert stored.revision == 2
        assert stored.recommendation.params == {"min_scale": 5}
        assert stored.recommendation.created_at == NOW
        assert stored.updated_at == NOW + timedelta(minutes=10)
        assert [h.params for h in store.history(first)] == [{"min_scale": 3}, {"min_scale": 5}]
        assert [e["event"] for e in AuditLog(store.database).entries()] == ["revised", "recommended"]
    finally:
        store.database.close()


def test_each_test_database_is_fresh(postgres_db, postgres_url):
    assert postgres_db != postgres_url
    engine = sa.create_engine(postgres_db)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
    finally:
        engine.dispose()
    assert tables == 0
