"""Targets as structured columns: the lever a recommendation or action sets, and the action's workload.

Before, an action's target was the string ``cluster/namespace/workload`` and the lever was
guessed from the parameter names. Existing rows are converted here, once: the only place
those strings are ever parsed.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LEVER_OF_PARAM = {"min_scale": "knative-floor", "replicas": "replicas", "cluster": "placement"}


def _lever(row_id: int, table: str, params: Any) -> str:
    for name, lever in _LEVER_OF_PARAM.items():
        if isinstance(params, dict) and name in params:
            return lever
    raise RuntimeError(f"{table} row {row_id}: params {params!r} name no known lever; cannot migrate")


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("lever", sa.String(32), nullable=True))
    recs = sa.table(
        "recommendations",
        sa.column("id", sa.Integer),
        sa.column("params", sa.JSON),
        sa.column("cluster", sa.String),
        sa.column("namespace", sa.String),
        sa.column("workload", sa.String),
        sa.column("lever", sa.String),
        sa.column("dedup_key", sa.String),
    )
    for row in conn.execute(sa.select(recs.c.id, recs.c.params, recs.c.cluster, recs.c.namespace, recs.c.workload)):
        lever = _lever(row.id, "recommendations", row.params)
        key = f"{row.cluster}/{row.namespace}/{row.workload}:{lever}"
        conn.execute(recs.update().where(recs.c.id == row.id).values(lever=lever, dedup_key=key))
    with op.batch_alter_table("recommendations") as batch:
        batch.alter_column("lever", existing_type=sa.String(32), nullable=False)

    with op.batch_alter_table("actions") as batch:
        for name, size in (("lever", 32), ("cluster", 253), ("namespace", 253), ("workload", 253)):
            batch.add_column(sa.Column(name, sa.String(size), nullable=True))
    acts = sa.table(
        "actions",
        sa.column("id", sa.Integer),
        sa.column("target", sa.String),
        sa.column("params", sa.JSON),
        sa.column("lever", sa.String),
        sa.column("cluster", sa.String),
        sa.column("namespace", sa.String),
        sa.column("workload", sa.String),
    )
    for action in conn.execute(sa.select(acts.c.id, acts.c.target, acts.c.params)):
        parts = str(action.target).split("/", 2)
        if len(parts) != 3:
            raise RuntimeError(f"actions row {action.id}: target {action.target!r} is not cluster/namespace/workload")
        cluster, namespace, workload = parts
        conn.execute(
            acts.update()
            .where(acts.c.id == action.id)
            .values(
                lever=_lever(action.id, "actions", action.params),
                cluster=cluster,
                namespace=namespace,
                workload=workload,
            )
        )
    with op.batch_alter_table("actions") as batch:
        for name, size in (("lever", 32), ("cluster", 253), ("namespace", 253), ("workload", 253)):
            batch.alter_column(name, existing_type=sa.String(size), nullable=False)
        batch.drop_index("ix_actions_target")
        batch.drop_column("target")
        batch.create_index("ix_actions_workload", ["namespace", "workload"])
