"""A calm, durable decision stream: recommendations revised in place with their history (and the time their value
is needed), the last decided value per target, the engine's last step, and anomaly events that survive restarts.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("revision", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("in_force_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "recommendation_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recommendation_id", sa.Integer, nullable=False, index=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("summary", sa.String(2000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "decided_targets",
        sa.Column("cluster", sa.String(253), primary_key=True),
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("workload", sa.String(253), primary_key=True),
        sa.Column("lever", sa.String(32), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("direction", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "engine_state",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_step_at", sa.Float, nullable=False),
    )
    op.create_table(
        "anomaly_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("workload", sa.String(253), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reason", sa.JSON, nullable=False),
    )
    op.create_index("ix_anomaly_events_at", "anomaly_events", ["at"])
    op.create_index("ix_anomaly_events_series", "anomaly_events", ["cluster", "signal", "at"])
    # an open recommendation's first revision, so that every recommendation has its history
    op.execute(
        "INSERT INTO recommendation_revisions (recommendation_id, revision, kind, params, confidence, summary, at) "
        "SELECT id, 1, kind, params, confidence, '', created_at FROM recommendations"
    )
    _backfill_decided_targets()


_PARAM = {"knative-floor": "min_scale", "replicas": "replicas", "placement": "cluster"}
_DIRECTION = {"scale-up": 1, "scale-out": 1, "scale-down": -1, "scale-in": -1}


def _backfill_decided_targets() -> None:
    """What was last decided per target: the newest open, approved or enacted recommendation (its enacted
    value when the envelope limited it), so that a restart after the upgrade changes nothing."""
    conn = op.get_bind()
    recs = sa.table(
        "recommendations",
        *(sa.column(c) for c in ("id", "cluster", "namespace", "workload", "lever", "kind", "status")),
        sa.column("params", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("valid_until", sa.DateTime(timezone=True)),
    )
    actions = sa.table("actions", sa.column("recommendation_id"), sa.column("state"), sa.column("params", sa.JSON))
    targets = sa.table(
        "decided_targets",
        *(sa.column(c) for c in ("cluster", "namespace", "workload", "lever", "direction")),
        sa.column("value", sa.JSON),
        sa.column("changed_at", sa.DateTime(timezone=True)),
        sa.column("decided_at", sa.DateTime(timezone=True)),
        sa.column("until", sa.DateTime(timezone=True)),
    )
    enacted = {
        r.recommendation_id: r.params
        for r in conn.execute(
            sa.select(actions.c.recommendation_id, actions.c.params).where(actions.c.state == "enacted")
        )
    }
    newest: dict[tuple[str, str, str, str], Any] = {}
    query = sa.select(recs).where(recs.c.status.in_(["open", "approved", "enacted"])).order_by(recs.c.id)
    for r in conn.execute(query):
        newest[(r.cluster, r.namespace, r.workload, r.lever)] = r
    for (cluster, namespace, workload, lever), r in newest.items():
        params = enacted.get(r.id, r.params)
        conn.execute(
            targets.insert().values(
                cluster=cluster,
                namespace=namespace,
                workload=workload,
                lever=lever,
                value=params[_PARAM[lever]],
                direction=_DIRECTION.get(r.kind, 0),
                changed_at=r.created_at,
                decided_at=r.updated_at,
                until=r.valid_until if lever != "placement" else None,
            )
        )
